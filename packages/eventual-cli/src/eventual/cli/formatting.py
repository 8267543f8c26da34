"""How executions and histories print for people: short JSON, times, statuses, outcomes and
the history table."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

_STATUS_STYLE = {"IN_PROGRESS": "yellow", "SUCCEEDED": "green", "FAILED": "red"}


def short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: str | None) -> str:
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return t.strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def outcome(execution: dict[str, Any]) -> str:
    status = execution.get("status")
    if status == "SUCCEEDED":
        return escape(short_json(execution.get("result")))
    if status == "FAILED":
        return escape(f"{execution.get('error')}: {execution.get('message') or ''}".strip())
    return ""


def event_details(e: dict[str, Any]) -> str:
    t = e.get("type")
    seq = f"#{e['seq']} " if "seq" in e else ""
    attempt = f" (attempt {e['attempt']})" if e.get("attempt", 1) not in (1, None) else ""
    if t == "WorkflowStarted":
        return f"input {short_json(e.get('input'))}"
    if t == "TaskScheduled":
        args = ", ".join(short_json(a, 30) for a in e.get("args", []))
        return f"{seq}{e.get('name')}({args}){attempt}"
    if t == "TaskSucceeded":
        return f"{seq}result {short_json(e.get('result'))}{attempt}"
    if t in ("TaskFailed", "ChildWorkflowFailed", "WorkflowFailed"):
        return f"{seq}{e.get('error')}: {e.get('message', '')}{attempt}".strip()
    if t == "TaskRetryScheduled":
        return f"{seq}retry at {when(e.get('until'))} after {e.get('error')}{attempt}"
    if t == "TimerScheduled":
        return f"{seq}until {when(e.get('until'))}"
    if t == "ChildWorkflowScheduled":
        return f"{seq}{e.get('name')} as {e.get('execution_id')}"
    if t == "ChildWorkflowSucceeded":
        return f"{seq}result {short_json(e.get('result'))}"
    if t == "SignalReceived":
        return f"{e.get('signal')} {short_json(e.get('payload'))}"
    if t == "SignalSent":
        return f"{seq}{e.get('signal')} to {e.get('execution_id')}"
    if t == "EventsEmitted":
        names = ", ".join(ev.get("name", "?") for ev in e.get("events", []))
        return f"{seq}{names}"
    if t == "WorkflowSucceeded":
        return f"result {short_json(e.get('result'))}"
    return seq.strip()


def history_table(events: list[dict[str, Any]], start: int = 0) -> Table:
    # Fixed widths, so the tables `start --follow` prints one after another line up.
    table = Table(box=None, pad_edge=False, show_header=start == 0)
    table.add_column("#", justify="right", style="dim", min_width=3)
    table.add_column("Time", style="dim", no_wrap=True, min_width=19)
    table.add_column("Event", no_wrap=True, min_width=22)
    table.add_column("Details", overflow="fold")
    for i, e in enumerate(events, start=start):
        style = (
            "red"
            if e.get("type") in ("WorkflowFailed", "TaskFailed", "ChildWorkflowFailed")
            else "green"
            if e.get("type") == "WorkflowSucceeded"
            else ""
        )
        name = f"[{style}]{e.get('type')}[/]" if style else str(e.get("type"))
        table.add_row(str(i), when(e.get("timestamp")), name, escape(event_details(e)))
    return table
