"""The SQLite adapters assembled into :class:`SqlitePorts`, whose unit of work is one SQLite
transaction that also consumes the queue rows (and in-memory task results) the running
orchestration was handed."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

from ...history import InputEvent
from ..ports import Ports, TaskClaim
from .claims import SqliteClaimStore
from .database import Database
from .event_bus import SqliteEventBus
from .execution_queue import SqliteExecutionQueue
from .executions import SqliteExecutionStore
from .hooks import _Hooks
from .logs import SqliteLogSink
from .tasks import SqliteTaskDispatcher
from .timers import SqliteTimerScheduler

# Made for every step: plain classes with slots (a frozen dataclass costs ~10x to build).


class _Consuming:
    """The queue rows the orchestration running in this context was handed."""

    __slots__ = ("db", "deleted", "handoffs", "row_ids")

    def __init__(
        self,
        db: Database,
        row_ids: tuple[int, ...],
        deleted: list[bool],
        handoffs: tuple[_Handoff, ...] = (),
    ) -> None:
        self.db = db
        self.row_ids = row_ids
        self.deleted = deleted
        self.handoffs = handoffs


class _Handoff:
    """A task result handed from a worker of this process straight to the orchestrator. Until
    the step that applies it commits, nothing durable says the attempt finished, so a crash
    runs it again; the commit records the result in the history (its finished claim)."""

    __slots__ = ("claim", "event")

    def __init__(self, claim: TaskClaim, event: InputEvent) -> None:
        self.claim = claim
        self.event = event


def _settle_handoffs(ports: SqlitePorts, handoffs: Sequence[_Handoff]) -> None:
    if handoffs:
        cast(SqliteClaimStore, ports.claims).settle([h.claim for h in handoffs])


_consuming: contextvars.ContextVar[_Consuming | None] = contextvars.ContextVar(
    "eventual_sqlite_consuming", default=None
)


@dataclass
class SqlitePorts(Ports):
    db: Database | None = None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[None]:
        """Every adapter write inside joins one SQLite transaction, together with the deletion
        of the queue rows the current orchestration consumes."""
        db = self.db
        assert db is not None
        consuming = _consuming.get()
        if consuming is not None and consuming.db is not db:
            consuming = None
        async with db.transaction() as outermost:
            yield
            if outermost and consuming is not None:
                queue = cast(SqliteExecutionQueue, self.queue)
                await queue.delete(consuming.row_ids)
                _settle_handoffs(self, consuming.handoffs)
        if outermost and consuming is not None:
            consuming.deleted[0] = True


def open_ports(db: Database, *, run_id: str, hooks: _Hooks | None = None) -> SqlitePorts:
    """The SQLite adapters over ``db`` (an opened :class:`Database`)."""
    hooks = hooks or _Hooks()
    return SqlitePorts(
        executions=SqliteExecutionStore(db, hooks),
        tasks=SqliteTaskDispatcher(db, hooks),
        claims=SqliteClaimStore(db, run_id),
        timers=SqliteTimerScheduler(db, hooks),
        events=SqliteEventBus(db, hooks),
        queue=SqliteExecutionQueue(db, hooks),
        logs=SqliteLogSink(db),
        db=db,
    )
