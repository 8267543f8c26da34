"""What the engine asks the runtime to do after a step: the outgoing work.

Commands are not part of the history (the call events are); they are recomputed on replay and
dropped there, because the original run already carried them out. Every command is idempotent
by construction (deterministic ids), so a runtime that crashes after dispatching and before
committing may dispatch them again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..history import EmittedEvent, InputEvent, ParentRef


@dataclass(frozen=True)
class DispatchTask:
    execution_id: str
    workflow: str
    seq: int
    attempt: int
    name: str
    args: list[Any]
    timeout: float | None
    heartbeat_timeout: float | None


@dataclass(frozen=True)
class ScheduleTimer:
    """Deliver ``event`` to ``execution_id`` at ``due`` (stamped with the firing time)."""

    execution_id: str
    due: datetime
    event: InputEvent

    @property
    def timer_id(self) -> str:
        return f"{self.execution_id}|{self.event.id}"


@dataclass(frozen=True)
class CancelTimer:
    execution_id: str
    timer_id: str


@dataclass(frozen=True)
class StartChild:
    parent: ParentRef
    workflow: str
    execution_id: str
    input: Any


@dataclass(frozen=True)
class SendSignal:
    execution_id: str
    signal: str
    payload: Any
    signal_id: str


@dataclass(frozen=True)
class EmitEvents:
    events: list[EmittedEvent]


@dataclass(frozen=True)
class NotifyParent:
    """Deliver a child's outcome (``ChildWorkflowSucceeded``/``Failed``) to its parent."""

    parent: ParentRef
    event: InputEvent


Command = (
    DispatchTask | ScheduleTimer | CancelTimer | StartChild | SendSignal | EmitEvents | NotifyParent
)
