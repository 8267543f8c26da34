"""How the SQLite runtime writes values into its text columns and reads them back: timestamps,
history and input events, timer requests."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from ...history import HistoryEvent, InputEvent, event_adapter, event_json
from ..ports import TimerRequest


def _ts(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _event_json(event: HistoryEvent | InputEvent) -> str:
    return event_json(event).decode()


def _event_from(text: str) -> Any:
    return event_adapter.validate_json(text)


def _timer_json(timer: TimerRequest) -> str:
    return json.dumps(
        {
            "timer_id": timer.timer_id,
            "execution_id": timer.execution_id,
            "due": _ts(timer.due),
            "event": event_adapter.dump_python(timer.event, mode="json")
            if timer.event is not None
            else None,
            "heartbeat": list(timer.heartbeat) if timer.heartbeat is not None else None,
        }
    )


def _timer_from(text: str) -> TimerRequest:
    data = json.loads(text)
    heartbeat = data.get("heartbeat")
    return TimerRequest(
        timer_id=data["timer_id"],
        execution_id=data["execution_id"],
        due=datetime.fromisoformat(data["due"]),
        event=cast(InputEvent, event_adapter.validate_python(data["event"]))
        if data["event"] is not None
        else None,
        heartbeat=(int(heartbeat[0]), int(heartbeat[1]), float(heartbeat[2]))
        if heartbeat is not None
        else None,
    )
