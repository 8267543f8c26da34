"""How the SQLite runtime writes values into its text columns and reads them back: timestamps,
history and input events, timer requests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from ...errors import HistoryCorrupted
from ...history import HistoryEvent, InputEvent, event_adapter, event_json
from ..ports import TimerRequest


def _ts(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _event_json(event: HistoryEvent | InputEvent) -> str:
    return event_json(event).decode()


def _event_from(text: str | bytes) -> Any:
    return event_adapter.validate_json(text)


def _unreadable(raw: str | bytes | None) -> str | None:
    """Why a stored event cannot be read back (None if it can)."""
    if raw is None:
        return "the event is missing"
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "it is not UTF-8 text"
    try:
        _event_from(raw)
    except ValidationError as exc:
        issues = exc.errors(include_url=False)
        return (issues[0]["msg"] if issues else str(exc))[:160]
    except ValueError as exc:
        return str(exc)[:160]
    return None


def _history_corrupted(
    path: Path, execution_id: str, position: int, reason: str
) -> HistoryCorrupted:
    return HistoryCorrupted(
        f"the history of execution {execution_id!r} is corrupted at position {position} in "
        f"{path} ({reason}); it cannot be replayed, so the execution fails: start it again "
        "to redo its work",
        execution_id=execution_id,
        position=position,
    )


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
