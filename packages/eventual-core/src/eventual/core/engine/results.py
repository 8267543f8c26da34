"""What one step of the engine returns: the new history events, the commands to carry out,
the outcome if the execution finished, and the log lines workflow code wrote."""

from __future__ import annotations

from datetime import datetime

from .._record import FrozenRecord, Record, init_field
from ..history import HistoryEvent, WorkflowFailed, WorkflowSucceeded
from .commands import Command

# Records and plain classes, not dataclasses: a dataclass compiles its methods when the module
# is imported, which every AWS handler's cold start would pay (see ``eventual.core._record``).


class LogEntry(FrozenRecord):
    __slots__ = _fields = ("timestamp", "level", "logger", "message")
    timestamp: datetime
    level: str
    logger: str
    message: str

    def __init__(self, timestamp: datetime, level: str, logger: str, message: str) -> None:
        init_field(self, "timestamp", timestamp)
        init_field(self, "level", level)
        init_field(self, "logger", logger)
        init_field(self, "message", message)


class StepResult(Record):
    """What one step produced: events to append, work to dispatch, the outcome if any."""

    __slots__ = _fields = ("events", "commands", "dropped", "completion", "logs")
    events: list[HistoryEvent]
    commands: list[Command]
    dropped: list[HistoryEvent]
    completion: WorkflowSucceeded | WorkflowFailed | None
    logs: list[LogEntry]

    def __init__(
        self,
        events: list[HistoryEvent] | None = None,
        commands: list[Command] | None = None,
        dropped: list[HistoryEvent] | None = None,
        completion: WorkflowSucceeded | WorkflowFailed | None = None,
        logs: list[LogEntry] | None = None,
    ) -> None:
        self.events = [] if events is None else events
        self.commands = [] if commands is None else commands
        self.dropped = [] if dropped is None else dropped
        self.completion = completion
        self.logs = [] if logs is None else logs
