"""The ports between the shared runtime logic and infrastructure.

Each port has an in-memory adapter in :mod:`eventual.core.runtime.memory`; the SQLite and AWS
runtimes supply their own. A runtime is a choice of adapters: the orchestrator, the workers and
the system commands are the same code everywhere.

The execution store holds both the execution records and their histories, because one
orchestration step must commit the new history events and the new status together
(``commit_step``), conditional on the history length the step was computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .._record import Record
from ..engine.commands import DispatchTask
from ..engine.results import LogEntry
from ..history import EmittedEvent, HistoryEvent, InputEvent
from ..models import Execution, ExecutionStatus
from ..tokens import decode_token as decode_token  # re-exported: the runtime's callers use it
from ..tokens import encode_token as encode_token  # re-exported too (eventual.core.runtime)


class ConflictError(Exception):
    """Another orchestrator advanced the execution first; the step must be recomputed."""


class Clock(Protocol):
    def now(self) -> datetime: ...


# StoredExecution and TimerRequest (and TaskRequest, the engine's record) are Records, not
# dataclasses: a dataclass compiles its methods when the module is imported, which every AWS
# handler's cold start would pay (see ``eventual.core._record``).


class StoredExecution(Record):  # not frozen: made every step, and a frozen one costs ~10x
    """An execution record with the length of its history (the commit version)."""

    __slots__ = _fields = ("execution", "history_length")
    execution: Execution
    history_length: int

    def __init__(self, execution: Execution, history_length: int) -> None:
        self.execution = execution
        self.history_length = history_length


class ExecutionStore(Protocol):
    async def create(self, execution: Execution) -> tuple[StoredExecution, bool]:
        """Create the record if absent; returns the stored one and whether it was created."""
        ...

    async def get(self, execution_id: str) -> StoredExecution | None: ...

    async def list(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[ExecutionStatus] | None = None,
        limit: int = 100,
        next_token: str | None = None,
        ascending: bool = False,
        build: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        """Newest first (by start time, then id), or oldest first with ``ascending``; a token
        continues the listing in the direction it was made for. ``build`` keeps the executions
        started on that build (``Execution.build``)."""
        ...

    async def read_history(self, execution_id: str) -> list[HistoryEvent]: ...

    async def commit_step(
        self,
        execution_id: str,
        *,
        expected_length: int,
        events: Sequence[HistoryEvent],
        execution: Execution,
    ) -> None:
        """Append ``events`` and store ``execution`` atomically, if the history still has
        ``expected_length`` events; else raise :class:`ConflictError`."""
        ...


TaskRequest = DispatchTask
"""A task attempt to run: the engine's :class:`DispatchTask` command itself, handed to the
task dispatcher as it is (its fields, and ``token``, the attempt's task token)."""


class TaskDispatcher(Protocol):
    async def dispatch(self, request: TaskRequest) -> None: ...


@dataclass(slots=True)  # not frozen: made every step, and a frozen one costs ~10x
class TaskClaim:
    execution_id: str
    seq: int
    attempt: int
    claimed_at: datetime
    last_heartbeat: datetime | None = None
    heartbeat_details: Any = None
    done: bool = False
    timed_out: bool = False

    def finished(self, *, timed_out: bool = False) -> TaskClaim:
        """A copy of this claim, done (built directly: ``dataclasses.replace`` is several
        times slower, and finishing is on every task step's path)."""
        return TaskClaim(
            self.execution_id,
            self.seq,
            self.attempt,
            self.claimed_at,
            self.last_heartbeat,
            self.heartbeat_details,
            True,
            timed_out,
        )


class TaskClaimStore(Protocol):
    async def claim(self, execution_id: str, seq: int, attempt: int, now: datetime) -> bool:
        """True for the first caller for (execution, seq, attempt); False ever after."""
        ...

    async def get(self, execution_id: str, seq: int, attempt: int) -> TaskClaim | None: ...

    async def heartbeat(
        self, execution_id: str, seq: int, attempt: int, now: datetime, details: Any = None
    ) -> TaskClaim | None: ...

    async def finish(
        self, execution_id: str, seq: int, attempt: int, *, timed_out: bool = False
    ) -> bool:
        """Mark the attempt done (or timed out). False if it already was."""
        ...


class TimerRequest(Record):  # not frozen: made every step, and a frozen one costs ~10x
    """Deliver ``event`` into ``execution_id`` at ``due``; or, for a heartbeat check, look at
    the task claim then."""

    __slots__ = _fields = ("timer_id", "execution_id", "due", "event", "heartbeat")
    timer_id: str
    execution_id: str
    due: datetime
    event: InputEvent | None
    heartbeat: tuple[int, int, float] | None  # (seq, attempt, heartbeat_timeout)

    def __init__(
        self,
        timer_id: str,
        execution_id: str,
        due: datetime,
        event: InputEvent | None = None,
        heartbeat: tuple[int, int, float] | None = None,
    ) -> None:
        self.timer_id = timer_id
        self.execution_id = execution_id
        self.due = due
        self.event = event
        self.heartbeat = heartbeat


class TimerScheduler(Protocol):
    async def schedule(self, timer: TimerRequest) -> None: ...
    async def cancel(self, timer_id: str) -> None: ...


class EventBus(Protocol):
    async def publish(self, events: Sequence[EmittedEvent]) -> None: ...


class ExecutionQueue(Protocol):
    async def enqueue(self, execution_id: str, events: Sequence[InputEvent]) -> None:
        """Deliver events to an execution, in order, at least once."""
        ...


class LogSink(Protocol):
    async def append(self, execution_id: str, entries: Sequence[LogEntry]) -> None: ...
    async def read(
        self, execution_id: str | None = None, *, workflow: str | None = None
    ) -> list[tuple[str, LogEntry]]: ...


@dataclass
class Ports:
    """The adapters a runtime is made of."""

    executions: ExecutionStore
    tasks: TaskDispatcher
    claims: TaskClaimStore
    timers: TimerScheduler
    events: EventBus
    queue: ExecutionQueue
    logs: LogSink

    def unit_of_work(self) -> AbstractAsyncContextManager[None]:
        """One orchestration step's writes; a transactional adapter set overrides this."""
        return _NO_UNIT


class _NoUnit:
    """The unit of work of adapters without transactions: nothing to do (and no generator
    to make for each step, as an ``asynccontextmanager`` would)."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_UNIT = _NoUnit()
