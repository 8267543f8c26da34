"""The recorded history of an execution through the system handler, in our own JSON form."""

from __future__ import annotations

from typing import Any

from eventual.core.history import event_dict
from eventual.core.wire import events_from_wire


def recorded(aws: Any, execution_id: str) -> list[dict[str, Any]]:
    """``getExecutionWorkflowHistory`` (the wire format) decoded to ``{"type": "TaskScheduled",
    ...}`` dicts, in recorded order."""
    wire = aws.system("getExecutionWorkflowHistory", execution_id)["events"]
    return [event_dict(e) for e in events_from_wire(wire)]
