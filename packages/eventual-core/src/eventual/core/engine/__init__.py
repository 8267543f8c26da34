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
from .executor import LogEntry, StepResult, WorkflowExecutor
from .loop import WorkflowLoop, WorkflowLoopError

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
