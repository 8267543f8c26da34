"""The timer scheduler of the SQLite runtime: timers in the ``timers`` table, by due time."""

from __future__ import annotations

from ..ports import TimerRequest
from .codec import _timer_from, _timer_json
from .database import Database
from .hooks import _Hooks


class SqliteTimerScheduler:
    def __init__(self, db: Database, hooks: _Hooks | None = None) -> None:
        self.db = db
        self.hooks = hooks or _Hooks()

    async def schedule(self, timer: TimerRequest) -> None:
        body = _timer_json(timer)
        # REPLACE gives a rescheduled timer a new row id, so a firing that is still running
        # for the old row cannot delete the new one.
        await self.db.defer(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO timers (timer_id, execution_id, due, request) "
                "VALUES (?,?,?,?)",
                (timer.timer_id, timer.execution_id, timer.due.timestamp(), body),
            )
        )
        self.db.after_commit(self.hooks.timers_changed)

    async def cancel(self, timer_id: str) -> None:
        await self.db.defer(
            lambda conn: conn.execute("DELETE FROM timers WHERE timer_id = ?", (timer_id,))
        )
        self.db.after_commit(self.hooks.timers_changed)

    async def due(self, now: float, limit: int = 500) -> list[tuple[int, TimerRequest]]:
        rows = await self.db.read(
            lambda conn: conn.execute(
                "SELECT id, request FROM timers WHERE due <= ? ORDER BY due, id LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [(r[0], _timer_from(r[1])) for r in rows]

    async def next_due(self, after: float) -> float | None:
        row = await self.db.read(
            lambda conn: conn.execute(
                "SELECT MIN(due) FROM timers WHERE due > ?", (after,)
            ).fetchone()
        )
        return row[0] if row is not None else None

    async def delete_row(self, row_id: int) -> None:
        await self.db.defer(lambda conn: conn.execute("DELETE FROM timers WHERE id = ?", (row_id,)))
