"""The event bus of the SQLite runtime: published events wait in the ``outbox`` table until the
driver has delivered them."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ...history import EmittedEvent
from .database import Database
from .hooks import _Hooks


class SqliteEventBus:
    """Published events go to an outbox table; the driver delivers them, then deletes them."""

    def __init__(self, db: Database, hooks: _Hooks | None = None) -> None:
        self.db = db
        self.hooks = hooks or _Hooks()

    async def publish(self, events: Sequence[EmittedEvent]) -> None:
        if not events:
            return
        rows = [(e.name, json.dumps(e.payload, default=str)) for e in events]
        await self.db.defer(
            lambda conn: conn.executemany("INSERT INTO outbox (name, payload) VALUES (?,?)", rows)
        )
        self.db.after_commit(self.hooks.outbox_changed)

    async def take(self, after_id: int, limit: int) -> list[tuple[int, EmittedEvent]]:
        rows = await self.db.read(
            lambda conn: conn.execute(
                "SELECT id, name, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        )
        return [(r[0], EmittedEvent(name=r[1], payload=json.loads(r[2]))) for r in rows]

    async def delete(self, row_id: int) -> None:
        await self.db.defer(lambda conn: conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,)))
