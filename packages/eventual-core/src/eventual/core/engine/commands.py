"""What the engine asks the runtime to do after a step: the outgoing work.

Commands are not part of the history (the call events are); they are recomputed on replay and
dropped there, because the original run already carried them out. Every command is idempotent
by construction (deterministic ids), so a runtime that crashes after dispatching and before
committing may dispatch them again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .._record import FrozenRecord, Record, init_field
from ..history import EmittedEvent, InputEvent, ParentRef
from ..tokens import encode_token

# Records, not dataclasses: a dataclass compiles its methods when the module is imported, which
# every AWS handler's cold start would pay (see ``eventual.core._record``).


class DispatchTask(Record):  # not frozen: made every step, and a frozen one costs ~10x
    """Run task ``name`` with ``args``: attempt ``attempt`` of the call at ``seq``. The runtime
    hands this very record to its task dispatcher (``runtime.ports.TaskRequest`` is this
    class): nothing is copied between the engine's command and the port's request."""

    __slots__ = _fields = (
        "execution_id",
        "workflow",
        "seq",
        "attempt",
        "name",
        "args",
        "timeout",
        "heartbeat_timeout",
    )
    execution_id: str
    workflow: str
    seq: int
    attempt: int
    name: str
    args: list[Any]
    timeout: float | None
    heartbeat_timeout: float | None

    def __init__(
        self,
        execution_id: str,
        workflow: str,
        seq: int,
        attempt: int,
        name: str,
        args: list[Any],
        timeout: float | None = None,
        heartbeat_timeout: float | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.workflow = workflow
        self.seq = seq
        self.attempt = attempt
        self.name = name
        self.args = args
        self.timeout = timeout
        self.heartbeat_timeout = heartbeat_timeout

    @property
    def token(self) -> str:
        """The attempt's task token (what ``updateTask`` and heartbeats name it by)."""
        return encode_token(self.execution_id, self.seq, self.attempt)


class ScheduleTimer(FrozenRecord):
    """Deliver ``event`` to ``execution_id`` at ``due`` (stamped with the firing time)."""

    __slots__ = _fields = ("execution_id", "due", "event")
    execution_id: str
    due: datetime
    event: InputEvent

    def __init__(self, execution_id: str, due: datetime, event: InputEvent) -> None:
        init_field(self, "execution_id", execution_id)
        init_field(self, "due", due)
        init_field(self, "event", event)

    @property
    def timer_id(self) -> str:
        return f"{self.execution_id}|{self.event.id}"


class CancelTimer(FrozenRecord):
    __slots__ = _fields = ("execution_id", "timer_id")
    execution_id: str
    timer_id: str

    def __init__(self, execution_id: str, timer_id: str) -> None:
        init_field(self, "execution_id", execution_id)
        init_field(self, "timer_id", timer_id)


class StartChild(FrozenRecord):
    __slots__ = _fields = ("parent", "workflow", "execution_id", "input")
    parent: ParentRef
    workflow: str
    execution_id: str
    input: Any

    def __init__(self, parent: ParentRef, workflow: str, execution_id: str, input: Any) -> None:
        init_field(self, "parent", parent)
        init_field(self, "workflow", workflow)
        init_field(self, "execution_id", execution_id)
        init_field(self, "input", input)


class SendSignal(FrozenRecord):
    __slots__ = _fields = ("execution_id", "signal", "payload", "signal_id")
    execution_id: str
    signal: str
    payload: Any
    signal_id: str

    def __init__(self, execution_id: str, signal: str, payload: Any, signal_id: str) -> None:
        init_field(self, "execution_id", execution_id)
        init_field(self, "signal", signal)
        init_field(self, "payload", payload)
        init_field(self, "signal_id", signal_id)


class EmitEvents(FrozenRecord):
    __slots__ = _fields = ("events",)
    events: list[EmittedEvent]

    def __init__(self, events: list[EmittedEvent]) -> None:
        init_field(self, "events", events)


class NotifyParent(FrozenRecord):
    """Deliver a child's outcome (``ChildWorkflowSucceeded``/``Failed``) to its parent."""

    __slots__ = _fields = ("parent", "event")
    parent: ParentRef
    event: InputEvent

    def __init__(self, parent: ParentRef, event: InputEvent) -> None:
        init_field(self, "parent", parent)
        init_field(self, "event", event)


Command = (
    DispatchTask | ScheduleTimer | CancelTimer | StartChild | SendSignal | EmitEvents | NotifyParent
)
