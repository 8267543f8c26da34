"""The SQLite adapters assembled into :class:`SqlitePorts`, whose unit of work is one SQLite
transaction that also consumes the queue rows (and in-memory task results) the running
orchestration was handed."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

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
    """An event handed from this process straight to the orchestrator, with no queue row and
    no commit of its own: the commit of the step that applies it records it in the history.

    A task result (``claim``): until that commit, nothing durable says the attempt finished,
    so a crash runs it again. A signal (``sent``, its sender's future): the sender waits for
    that commit (:func:`_settle_sent` answers True), so a signal acknowledged is kept; when the
    step fails instead (False), the sender queues the signal itself.
    """

    __slots__ = ("claim", "event", "sent")

    def __init__(
        self,
        claim: TaskClaim | None,
        event: InputEvent,
        sent: asyncio.Future[bool] | None = None,
    ) -> None:
        self.claim = claim
        self.event = event
        self.sent = sent


def _settle_handoffs(ports: SqlitePorts, handoffs: Sequence[_Handoff]) -> None:
    if handoffs:
        claims = [h.claim for h in handoffs if h.claim is not None]
        if claims:
            cast(SqliteClaimStore, ports.claims).settle(claims)


def _settle_sent(handoffs: Sequence[_Handoff], kept: bool) -> None:
    """Tell the senders of the signals among ``handoffs`` whether the step that was handed
    them committed (or dropped them as stale, as a queued row would be): ``kept``."""
    for h in handoffs:
        sent = h.sent
        if sent is not None and not sent.done():
            sent.set_result(kept)


_consuming: contextvars.ContextVar[_Consuming | None] = contextvars.ContextVar(
    "eventual_sqlite_consuming", default=None
)


@dataclass
class SqlitePorts(Ports):
    db: Database | None = None

    def unit_of_work(self) -> _Unit:
        """Every adapter write inside joins one SQLite transaction, together with the deletion
        of the queue rows the current orchestration consumes."""
        db = self.db
        assert db is not None
        return _Unit(self, db)


class _Unit:
    """The unit of work of :class:`SqlitePorts` (a class, not a generator: one per step)."""

    __slots__ = ("_block", "_consuming", "_outermost", "_ports")

    def __init__(self, ports: SqlitePorts, db: Database) -> None:
        self._ports = ports
        self._block = db.transaction()
        consuming = _consuming.get()
        self._consuming = consuming if consuming is not None and consuming.db is db else None
        self._outermost = False

    async def __aenter__(self) -> None:
        self._outermost = await self._block.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        consuming = self._consuming if self._outermost else None
        if exc is None and consuming is not None:
            try:
                await cast(SqliteExecutionQueue, self._ports.queue).delete(consuming.row_ids)
                _settle_handoffs(self._ports, consuming.handoffs)
            except BaseException as failed:
                await self._block.__aexit__(type(failed), failed, failed.__traceback__)
                raise
        await self._block.__aexit__(kind, exc, tb)
        if exc is None and consuming is not None:
            consuming.deleted[0] = True


def open_ports(
    db: Database, *, run_id: str, hooks: _Hooks | None = None, cache_size: int = 1024
) -> SqlitePorts:
    """The SQLite adapters over ``db`` (an opened :class:`Database`); the execution store
    keeps up to ``cache_size`` records (as many as the runtime keeps warm executors)."""
    hooks = hooks or _Hooks()
    claims = SqliteClaimStore(db, run_id)
    return SqlitePorts(
        executions=SqliteExecutionStore(db, cache_size=cache_size),
        tasks=SqliteTaskDispatcher(db, hooks, expect=claims.expect),
        claims=claims,
        timers=SqliteTimerScheduler(db, hooks),
        events=SqliteEventBus(db, hooks),
        queue=SqliteExecutionQueue(db, hooks),
        logs=SqliteLogSink(db),
        db=db,
    )
