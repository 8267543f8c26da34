"""The TimerScheduler port: SQS ``DelaySeconds`` up to 15 minutes, EventBridge Scheduler
``at()`` schedules beyond, both delivering to the timer queue."""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from eventual.core.history import event_dict, validate_event
from eventual.core.runtime.ports import Clock, TimerRequest

from .. import names as n
from ..clients import client, error_code
from ._codec import _iso, _parse_iso


def encode_timer(timer: TimerRequest) -> str:
    return json.dumps(
        {
            "timer": {
                "id": timer.timer_id,
                "executionId": timer.execution_id,
                "due": _iso(timer.due),
                "event": event_dict(timer.event) if timer.event is not None else None,
                "heartbeat": list(timer.heartbeat) if timer.heartbeat is not None else None,
            }
        }
    )


def _whole_second(t: datetime) -> datetime:
    """``t`` rounded up to a whole second (``at()`` has second precision: never fire early)."""
    t = t.astimezone(UTC)
    if t.microsecond:
        t = t.replace(microsecond=0) + timedelta(seconds=1)
    return t


def decode_timer(data: Any) -> TimerRequest:
    message = json.loads(data) if isinstance(data, (str, bytes)) else data
    t = message["timer"]
    hb = t.get("heartbeat")
    return TimerRequest(
        timer_id=t["id"],
        execution_id=t["executionId"],
        due=_parse_iso(t["due"]),
        event=validate_event(t["event"]) if t.get("event") else None,  # type: ignore[arg-type]
        heartbeat=(int(hb[0]), int(hb[1]), float(hb[2])) if hb else None,
    )


class AwsTimerScheduler:
    """Timers within 15 minutes are delayed messages on the timer queue; later ones are
    one-time EventBridge Scheduler schedules (deleting themselves after they run) whose
    target is the same queue. A timer that reaches the handler early is re-armed."""

    def __init__(self, names: n.ServiceNames, clock: Clock, *, memo_size: int = 4096) -> None:
        self.names = names
        self.clock = clock
        self.memo_size = memo_size
        self._short: OrderedDict[str, None] = OrderedDict()

    async def schedule(self, timer: TimerRequest) -> None:
        body = encode_timer(timer)
        delay = (timer.due - self.clock.now()).total_seconds()
        if delay <= n.MAX_SQS_DELAY_SECONDS:
            client("sqs").send_message(
                QueueUrl=self.names.timer_queue_url,
                MessageBody=body,
                DelaySeconds=max(0, math.ceil(delay)),
            )
            self._short[timer.timer_id] = None
            while len(self._short) > self.memo_size:
                self._short.popitem(last=False)
            return
        self._short.pop(timer.timer_id, None)
        params = {
            "Name": self.names.schedule_name(timer.timer_id),
            "GroupName": self.names.schedule_group,
            "ScheduleExpression": f"at({_whole_second(timer.due):%Y-%m-%dT%H:%M:%S})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {
                "Arn": self.names.timer_queue_arn,
                "RoleArn": self.names.scheduler_role_arn,
                "Input": body,
            },
        }
        scheduler = client("scheduler")
        try:
            scheduler.create_schedule(**params)
        except Exception as exc:
            if error_code(exc) != "ConflictException":
                raise
            scheduler.update_schedule(**params)

    async def cancel(self, timer_id: str) -> None:
        """A delayed message cannot be withdrawn: when it arrives the orchestrator drops it.
        A schedule is deleted (a timer this process scheduled as a message costs nothing)."""
        if timer_id in self._short:
            del self._short[timer_id]
            return
        try:
            client("scheduler").delete_schedule(
                Name=self.names.schedule_name(timer_id), GroupName=self.names.schedule_group
            )
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
