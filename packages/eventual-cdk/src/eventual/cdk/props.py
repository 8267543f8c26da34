"""Per-function settings: ``CommandProps``, ``TaskProps``, ``SubscriptionProps`` (and the
``FunctionProps`` they share, also used for the orchestrator, timer and system functions)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import aws_cdk as cdk

DurationLike = cdk.Duration | timedelta | int | float
"""A ``Duration``, a ``timedelta``, or seconds."""


def to_duration(value: DurationLike) -> cdk.Duration:
    if isinstance(value, cdk.Duration):
        return value
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds != int(seconds):
        return cdk.Duration.millis(int(seconds * 1000))
    return cdk.Duration.seconds(int(seconds))


@dataclass(frozen=True)
class FunctionProps:
    """Settings of one Lambda function; ``None`` keeps the construct's default.

    - ``memory_size``: MB (128-10240).
    - ``timeout``: a ``Duration``, ``timedelta`` or seconds (at most 15 minutes).
    - ``environment``: variables added to the function's environment (after the service-wide
      ``environment``; the ``EVENTUAL_*`` variables cannot be overridden).
    - ``reserved_concurrency``: reserved concurrent executions.
    """

    memory_size: int | None = None
    timeout: DurationLike | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class CommandProps(FunctionProps):
    """A command with props gets its own function (commands without share one).

    ``timeout`` is capped at 30 seconds, API Gateway's integration limit."""


@dataclass(frozen=True)
class TaskProps(FunctionProps):
    """A task's function (every task has its own).

    - ``retry_attempts``: Lambda's retries of a failed asynchronous invocation (0-2; default
      2). A task that still fails lands in the tasks' dead-letter queue.
    - ``max_event_age``: how long Lambda keeps trying to deliver an invocation (1 minute to
      6 hours; default 6 hours).

    The default timeout is the task's own ``timeout`` (capped at 15 minutes), else 5 minutes.
    """

    retry_attempts: int | None = None
    max_event_age: DurationLike | None = None


@dataclass(frozen=True)
class SubscriptionProps(FunctionProps):
    """A subscription's function (every subscription has its own, with its own rule).

    - ``retry_attempts``: EventBridge's retries of a failed delivery (0-185; default 185).
    - ``max_event_age``: how long EventBridge keeps retrying (1 minute to 24 hours).
    Events that still cannot be delivered land in the subscriptions' dead-letter queue."""

    retry_attempts: int | None = None
    max_event_age: DurationLike | None = None
