"""All the AWS adapters together: :class:`AwsPorts` and :func:`build_ports`."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from eventual.core.runtime.ports import Clock, Ports

from .. import names as n
from .event_bus import EventBridgeBus
from .execution_queue import SqsExecutionQueue
from .execution_store import DynamoExecutionStore
from .log_sink import CloudWatchLogSink
from .payload_store import PayloadStore
from .task_claims import DynamoClaimStore
from .task_dispatcher import LambdaTaskDispatcher
from .timer_scheduler import AwsTimerScheduler


class AwsPorts(Ports):
    """The ports on AWS, with the payload store the handlers decode their events with. (A
    plain subclass: a dataclass would compile its methods on every cold start.)"""

    payloads: PayloadStore | None

    def __init__(self, *, payloads: PayloadStore | None = None, **ports: Any) -> None:
        super().__init__(**ports)
        self.payloads = payloads

    def unit_of_work(self) -> AbstractAsyncContextManager[None]:
        """Each write is its own request (a step is one transaction); when the unit ends, the
        executions it finished are marked for retention (after the step's logs are written)."""
        if isinstance(self.executions, DynamoExecutionStore):
            return self.executions.unit_of_work()
        return super().unit_of_work()


def build_ports(
    names: n.ServiceNames,
    clock: Clock,
    *,
    cache_commits: bool = False,
    completes_retention: bool | None = None,
) -> AwsPorts:
    """The AWS ports. ``cache_commits`` is the orchestrator's setting; so, by default, is
    ``completes_retention`` (finishing an interrupted retention marking when a read finds one:
    the orchestrator is the function granted the permissions to, and the one that reads a
    finished execution again when a message for it is redelivered)."""
    payloads = PayloadStore(names)
    if completes_retention is None:
        completes_retention = cache_commits
    return AwsPorts(
        executions=DynamoExecutionStore(
            names,
            payloads,
            cache_commits=cache_commits,
            completes_retention=completes_retention,
        ),
        tasks=LambdaTaskDispatcher(names, payloads),
        claims=DynamoClaimStore(names),
        timers=AwsTimerScheduler(names, clock),
        events=EventBridgeBus(names, payloads),
        queue=SqsExecutionQueue(names, payloads),
        logs=CloudWatchLogSink(names),
        payloads=payloads,
    )
