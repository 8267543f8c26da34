"""The deterministic workflow engine (pure: no I/O)."""

from .commands import (
    CancelTimer,
    Command,
    DispatchTask,
    EmitEvents,
    NotifyParent,
    ScheduleTimer,
    SendSignal,
    StartChild,
)
from .executor import WorkflowExecutor
from .loop import WorkflowLoop, WorkflowLoopError
from .results import LogEntry, StepResult

__all__ = [
    "CancelTimer",
    "Command",
    "DispatchTask",
    "EmitEvents",
    "LogEntry",
    "NotifyParent",
    "ScheduleTimer",
    "SendSignal",
    "StartChild",
    "StepResult",
    "WorkflowExecutor",
    "WorkflowLoop",
    "WorkflowLoopError",
]
