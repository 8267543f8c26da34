"""The execution queue of the SQLite runtime: events into executions, in order, in the
``queue`` table."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from ...history import InputEvent
from .codec import _event_from, _event_json
from .database import Database
from .hooks import _Hooks


@dataclass(frozen=True)
class QueuedEvent:
    row_id: int
    event: InputEvent


class SqliteExecutionQueue:
    """Events into executions, in order (a task result waiting here is one reason an attempt
    is not outstanding on start: see :func:`_outstanding_attempts`)."""

    def __init__(self, db: Database, hooks: _Hooks | None = None) -> None:
        self.db = db
        self.hooks = hooks or _Hooks()

    async def enqueue(self, execution_id: str, events: Sequence[InputEvent]) -> None:
        if not events:
            return
        rows = [(execution_id, _event_json(e)) for e in events]

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO queue (execution_id, event) VALUES (?,?)", rows)

        await self.db.defer(op)
        self.db.after_commit(lambda: self.hooks.queue_changed(execution_id))

    async def peek(self, execution_id: str, limit: int) -> list[QueuedEvent]:
        rows = await self.db.read(
            lambda conn: conn.execute(
                "SELECT id, event FROM queue WHERE execution_id = ? ORDER BY id LIMIT ?",
                (execution_id, limit),
            ).fetchall()
        )
        return [QueuedEvent(r[0], _event_from(r[1])) for r in rows]

    async def delete(self, row_ids: Sequence[int]) -> None:
        ids = [(i,) for i in row_ids]
        if ids:
            await self.db.defer(
                lambda conn: conn.executemany("DELETE FROM queue WHERE id = ?", ids)
            )

    async def executions_with_events(self) -> list[str]:
        rows = await self.db.read(
            lambda conn: conn.execute(
                "SELECT execution_id FROM queue GROUP BY execution_id ORDER BY MIN(id)"
            ).fetchall()
        )
        return [r[0] for r in rows]
