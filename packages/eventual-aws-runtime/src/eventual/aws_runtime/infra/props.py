"""Per-function settings: ``CommandProps``, ``TaskProps``, ``SubscriptionProps`` (and the
``FunctionProps`` they share, also used for the orchestrator, timer and system functions), the
same for the CDK construct and the Pulumi component."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class SupportsToSeconds(Protocol):
    """A duration that says its length in seconds (``aws_cdk.Duration``)."""

    def to_seconds(self) -> float: ...


DurationLike = SupportsToSeconds | timedelta | int | float
"""A ``timedelta``, seconds, or a duration with ``to_seconds()`` (a CDK ``Duration``)."""


def seconds_of(value: DurationLike) -> float:
    """The length of ``value`` in seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float):
        return float(value)
    return float(value.to_seconds())


@dataclass(frozen=True)
class FunctionProps:
    """Settings of one Lambda function; ``None`` keeps the construct's default.

    - ``memory_size``: MB (128-10240).
    - ``timeout``: a ``Duration``, ``timedelta`` or seconds (at most 15 minutes).
    - ``environment``: variables added to the function's environment (after the service-wide
      ``environment``; the ``EVENTUAL_*`` variables cannot be overridden).
    - ``reserved_concurrency``: reserved concurrent executions.
    - ``calls``: what the function's own code calls of eventual's client, by name
      (``"start_execution"``, ``"get_status"``, ``"send_signal"``, ``"emit"``,
      ``"complete_task"``; ``eventual.aws_runtime.infra.permissions.CALLS``). The function's
      role gets only what those need; ``None`` (the default) allows every call, ``[]`` none.
      For the functions that run your code: the API function, commands, tasks, subscriptions
      and the orchestrator (the workflows' child workflows, signals and events).
    """

    memory_size: int | None = None
    timeout: DurationLike | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    reserved_concurrency: int | None = None
    calls: Iterable[str] | None = None


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
