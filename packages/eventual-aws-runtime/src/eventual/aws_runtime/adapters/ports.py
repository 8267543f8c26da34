"""All the AWS adapters together: :class:`AwsPorts` and :func:`build_ports`."""

from __future__ import annotations

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


def build_ports(names: n.ServiceNames, clock: Clock, *, cache_commits: bool = False) -> AwsPorts:
    payloads = PayloadStore(names)
    return AwsPorts(
        executions=DynamoExecutionStore(names, payloads, cache_commits=cache_commits),
        tasks=LambdaTaskDispatcher(names, payloads),
        claims=DynamoClaimStore(names),
        timers=AwsTimerScheduler(names, clock),
        events=EventBridgeBus(names, payloads),
        queue=SqsExecutionQueue(names, payloads),
        logs=CloudWatchLogSink(names),
        payloads=payloads,
    )
