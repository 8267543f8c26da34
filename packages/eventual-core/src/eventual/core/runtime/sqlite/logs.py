"""The log sink of the SQLite runtime: workflow log entries in the ``logs`` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...engine.results import LogEntry
from .codec import _ts
from .database import Database


class SqliteLogSink:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, execution_id: str, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        workflow = execution_id.split("/", 1)[0]
        rows = [
            (execution_id, workflow, _ts(e.timestamp), e.level, e.logger, e.message)
            for e in entries
        ]
        await self.db.defer(
            lambda conn: conn.executemany(
                "INSERT INTO logs (execution_id, workflow, timestamp, level, logger, message) "
                "VALUES (?,?,?,?,?,?)",
                rows,
            )
        )

    async def read(
        self, execution_id: str | None = None, *, workflow: str | None = None
    ) -> list[tuple[str, LogEntry]]:
        where: list[str] = []
        params: list[Any] = []
        if execution_id is not None:
            where.append("execution_id = ?")
            params.append(execution_id)
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        sql = "SELECT execution_id, timestamp, level, logger, message FROM logs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        rows = await self.db.read(lambda conn: conn.execute(sql, params).fetchall())
        return [
            (
                r[0],
                LogEntry(
                    timestamp=datetime.fromisoformat(r[1]), level=r[2], logger=r[3], message=r[4]
                ),
            )
            for r in rows
        ]
