"""The execution store of the SQLite runtime: execution records (with a cache of what this
process committed) and their histories."""

from __future__ import annotations

import base64
import functools
import json
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...errors import HistoryCorrupted
from ...history import HistoryEvent
from ...models import Execution, ExecutionStatus
from ..ports import ConflictError, StoredExecution
from .codec import _event_from, _event_json, _history_corrupted, _unreadable
from .database import Database

# An execution's record and its history's length (the history table is the one count).
_SELECT_STORED = (
    "SELECT record, (SELECT COALESCE(MAX(position) + 1, 0) FROM history "
    "WHERE execution_id = executions.id) FROM executions WHERE id = ?"
)

_INSERT_ROW = "INSERT INTO history (execution_id, position, event) VALUES (?,?,?)"
# Up to this many history rows go in one INSERT (each count is one cached statement).
_ROWS_PER_INSERT = 16


@functools.cache
def _insert_rows(count: int) -> str:
    return _INSERT_ROW + ",(?,?,?)" * (count - 1)


class SqliteExecutionStore:
    """Execution records and histories. The records this process committed or read are kept in
    a small cache (one process owns the file, so it sees every write): an orchestration step
    then reads nothing but its queued events, and an unchanged record is not encoded again."""

    def __init__(self, db: Database, *, cache_size: int = 1024) -> None:
        self.db = db
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[StoredExecution, str]] = OrderedDict()

    def _remember(self, stored: StoredExecution, record: str) -> None:
        cache = self._cache
        cache[stored.execution.id] = (stored, record)
        cache.move_to_end(stored.execution.id)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def forget_cache(self) -> None:
        self._cache.clear()

    async def create(self, execution: Execution) -> tuple[StoredExecution, bool]:
        record = execution.model_dump_json()

        def op(conn: sqlite3.Connection) -> tuple[str, int] | None:
            cur = conn.execute(
                "INSERT OR IGNORE INTO executions "
                "(id, workflow, status, start_ts, history_length, record, build) "
                "VALUES (?,?,?,?,0,?,?)",
                (
                    execution.id,
                    execution.workflow,
                    execution.status.value,
                    execution.start_time.timestamp(),
                    record,
                    execution.build,
                ),
            )
            if cur.rowcount == 1:
                return None
            return conn.execute(_SELECT_STORED, (execution.id,)).fetchone()

        row = await self.db.write(op)
        if row is None:
            stored = StoredExecution(execution, 0)
            self.db.after_commit(lambda: self._remember(stored, record))
            return stored, True
        return StoredExecution(Execution.model_validate_json(row[0]), row[1]), False

    async def get(self, execution_id: str) -> StoredExecution | None:
        if not self.db.in_transaction():
            cached = self._cache.get(execution_id)
            if cached is not None:
                return cached[0]
        row = await self.db.read(
            lambda conn: conn.execute(_SELECT_STORED, (execution_id,)).fetchone()
        )
        if row is None:
            return None
        stored = StoredExecution(Execution.model_validate_json(row[0]), row[1])
        if not self.db.in_transaction():
            self._remember(stored, row[0])
        return stored

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
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if build is not None:
            where.append("build = ?")
            params.append(build)
        if statuses:
            values = sorted({ExecutionStatus(s).value for s in statuses})
            where.append(f"status IN ({','.join('?' * len(values))})")
            params.extend(values)
        if next_token:
            try:
                start_ts, last_id = json.loads(base64.urlsafe_b64decode(next_token.encode()))
            except Exception:
                raise ValueError(
                    "next_token is not a token this runtime returned; start without one"
                ) from None
            beyond = ">" if ascending else "<"
            where.append(f"(start_ts {beyond} ? OR (start_ts = ? AND id {beyond} ?))")
            params.extend([start_ts, start_ts, last_id])
        sql = "SELECT record, start_ts, id FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = "ASC" if ascending else "DESC"
        sql += f" ORDER BY start_ts {order}, id {order} LIMIT ?"
        params.append(limit + 1)
        rows = await self.db.read(lambda conn: conn.execute(sql, params).fetchall())
        page = rows[:limit]
        token = None
        if len(rows) > limit and page:
            last = page[-1]
            token = base64.urlsafe_b64encode(json.dumps([last[1], last[2]]).encode()).decode()
        return [Execution.model_validate_json(r[0]) for r in page], token

    async def count(
        self, *, workflow: str | None = None, build: str | None = None
    ) -> dict[str, int]:
        """How many executions there are per status (of one workflow, of one build); read
        from the ``executions_by_status`` index alone."""
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
        if build is not None:
            where.append("build = ?")
            params.append(build)
        sql = "SELECT status, COUNT(*) FROM executions INDEXED BY executions_by_status"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " GROUP BY status"
        rows = await self.db.read(lambda conn: conn.execute(sql, params).fetchall())
        return {str(status): int(n) for status, n in rows}

    async def purge_finished(self, ended_before: datetime, limit: int) -> list[str]:
        """Delete up to ``limit`` finished executions that ended before ``ended_before``, with
        their history, task claims and logs, in one short write; returns their ids. An
        execution in progress is never touched."""

        def op(conn: sqlite3.Connection) -> list[str]:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM executions WHERE status != 'IN_PROGRESS' AND "
                    "julianday(json_extract(record, '$.end_time')) < julianday(?) LIMIT ?",
                    (ended_before.isoformat(), limit),
                )
            ]
            for table, column in (
                ("history", "execution_id"),
                ("claims", "execution_id"),
                ("logs", "execution_id"),
                ("executions", "id"),
            ):
                conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(i,) for i in ids])
            return ids

        ids = await self.db.write(op)
        for execution_id in ids:
            self._cache.pop(execution_id, None)
        return ids

    async def read_history(self, execution_id: str) -> list[HistoryEvent]:
        if not self.db.in_transaction():
            cached = self._cache.get(execution_id)
            if cached is not None and cached[0].history_length == 0:
                return []  # a new execution (the cache holds what was committed)
        try:
            rows = await self.db.read(
                lambda conn: conn.execute(
                    "SELECT event FROM history WHERE execution_id = ? ORDER BY position",
                    (execution_id,),
                ).fetchall()
            )
            return [_event_from(r[0]) for r in rows]
        except (ValueError, sqlite3.OperationalError) as exc:
            # Not valid JSON, not an event, not even text ("Could not decode to UTF-8"):
            # find the row, and say which.
            corrupted = await self._find_corruption(execution_id)
            if corrupted is None:
                raise
            raise corrupted from exc

    async def _find_corruption(self, execution_id: str) -> HistoryCorrupted | None:
        rows = await self.db.read(
            lambda conn: conn.execute(
                "SELECT position, CAST(event AS BLOB) FROM history WHERE execution_id = ? "
                "ORDER BY position",
                (execution_id,),
            ).fetchall()
        )
        for position, raw in rows:
            reason = _unreadable(raw)
            if reason is not None:
                return _history_corrupted(self.db.path, execution_id, position, reason)
        return None

    async def commit_step(
        self,
        execution_id: str,
        *,
        expected_length: int,
        events: Sequence[HistoryEvent],
        execution: Execution,
    ) -> None:
        encoded = [_event_json(e) for e in events]
        cached = self._cache.get(execution_id)
        # Most steps leave the record as it was (the same object): nothing to update then.
        unchanged = cached is not None and cached[0].execution is execution
        record = cached[1] if cached is not None and unchanged else execution.model_dump_json()
        # The cache holds what was committed (one process owns the file): when its length
        # agrees with the step, the history's key alone guards against a step that raced
        # this one (whether or not the step changes the record).
        known = cached is not None and cached[0].history_length == expected_length
        rows = [(execution_id, expected_length + i, e) for i, e in enumerate(encoded)]
        # A step's few rows go in one statement, which adds all of them or none: with the
        # record unchanged, the step is then one atomic write (no savepoint in a group commit).
        single = len(rows) <= _ROWS_PER_INSERT
        insert = _insert_rows(len(rows)) if single else _INSERT_ROW

        def conflict() -> ConflictError:  # (made only when raised: not for every step)
            return ConflictError(
                f"execution {execution_id}: its history no longer has {expected_length} "
                "events (or the execution does not exist)"
            )

        def op(conn: sqlite3.Connection) -> None:
            if not unchanged:
                cur = conn.execute(
                    "UPDATE executions SET status = ?, record = ? WHERE id = ?",
                    (execution.status.value, record, execution_id),
                )
                if cur.rowcount != 1:
                    raise conflict()
            if not known:
                length = conn.execute(
                    "SELECT COALESCE(MAX(position) + 1, 0) FROM history WHERE execution_id = ?",
                    (execution_id,),
                ).fetchone()[0]
                if length != expected_length:
                    raise conflict()
            try:
                if single:
                    conn.execute(insert, [value for row in rows for value in row])
                else:
                    conn.executemany(insert, rows)
            except sqlite3.IntegrityError:
                raise conflict() from None

        await self.db.write(op, atomic=unchanged and single)
        stored = StoredExecution(execution, expected_length + len(encoded))

        self.db.after_commit(lambda: self._remember(stored, record))
