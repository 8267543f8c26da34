"""The task claim store of the SQLite runtime: claims of running attempts in memory, rows for
those that outlive the process, and the query that reads a claim (its row, or the attempt's
result in the history)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..ports import TaskClaim, TaskRequest
from .codec import _dt, _ts
from .database import Database

# The history event types that end a task attempt, as the body of an SQL ``IN (...)`` list.
_TASK_RESULTS = "'TaskSucceeded', 'TaskFailed', 'TaskTimedOut', 'TaskHeartbeatTimedOut'"

# A claim: its row in ``claims``, or else the attempt's result in the history (an attempt this
# process ran to a result writes no claim row; the time it was claimed is not kept, and a
# finished claim does not need it).
_SELECT_CLAIM = (
    "SELECT claimed_at, last_heartbeat, details, done, timed_out FROM claims "
    "WHERE execution_id = ? AND seq = ? AND attempt = ? "
    "UNION ALL SELECT '1970-01-01T00:00:00+00:00', NULL, NULL, 1, 0 FROM history "
    "WHERE execution_id = ? AND CASE WHEN json_valid(event) THEN "
    f"json_extract(event, '$.type') IN ({_TASK_RESULTS}) "
    "AND json_extract(event, '$.seq') = ? AND json_extract(event, '$.attempt') = ? END LIMIT 1"
)


class SqliteClaimStore:
    """Task claims. A claim this process makes stays in memory while its attempt runs: a
    crash loses it, and the attempt runs again on the next start, so writing it up front would
    only cost a commit per task. An attempt that runs to a result here never gets a row: its
    result in the history is its finished claim. A row is written when the attempt is left
    waiting for a completion by token (:meth:`keep`), so that it outlives the process, or when it
    finishes otherwise (a timeout, a completion by token), with the event that says so."""

    def __init__(self, db: Database, run_id: str) -> None:
        self.db = db
        self.run_id = run_id
        self._running: dict[tuple[str, int, int], TaskClaim] = {}
        # Attempts this process dispatched (a committed step's, or found outstanding on
        # start) and has not claimed yet: they have neither a claim row nor a result.
        self._expected: set[tuple[str, int, int]] = set()

    def expect(self, request: TaskRequest) -> None:
        """An attempt the dispatcher has just queued: its claim needs no read."""
        self._expected.add((request.execution_id, request.seq, request.attempt))

    async def claim(self, execution_id: str, seq: int, attempt: int, now: datetime) -> bool:
        key = (execution_id, seq, attempt)
        if key in self._running:
            return False
        if key in self._expected:
            # Dispatched here (the usual case): known unclaimed, no read.
            self._expected.discard(key)
        elif await self.get(execution_id, seq, attempt) is not None:
            return False  # claimed before (a row) or finished (its result in the history)
        self._running[key] = TaskClaim(execution_id, seq, attempt, claimed_at=now)
        return True

    async def get(self, execution_id: str, seq: int, attempt: int) -> TaskClaim | None:
        running = self._running.get((execution_id, seq, attempt))
        if running is not None:
            return running
        key = (execution_id, seq, attempt)
        row = await self.db.read(lambda conn: conn.execute(_SELECT_CLAIM, key + key).fetchone())
        return self._claim(execution_id, seq, attempt, row)

    @staticmethod
    def _claim(execution_id: str, seq: int, attempt: int, row: Any) -> TaskClaim | None:
        if row is None:
            return None
        claimed_at = _dt(row[0])
        assert claimed_at is not None
        return TaskClaim(
            execution_id,
            seq,
            attempt,
            claimed_at=claimed_at,
            last_heartbeat=_dt(row[1]),
            heartbeat_details=json.loads(row[2]) if row[2] is not None else None,
            done=bool(row[3]),
            timed_out=bool(row[4]),
        )

    def _write(self, claim: TaskClaim, *, replace: bool) -> Callable[[sqlite3.Connection], Any]:
        values = (
            claim.execution_id,
            claim.seq,
            claim.attempt,
            self.run_id,
            _ts(claim.claimed_at),
            _ts(claim.last_heartbeat) if claim.last_heartbeat is not None else None,
            json.dumps(claim.heartbeat_details, default=str)
            if claim.heartbeat_details is not None
            else None,
            int(claim.done),
            int(claim.timed_out),
        )
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        return lambda conn: conn.execute(
            f"{verb} INTO claims (execution_id, seq, attempt, run_id, claimed_at, "
            "last_heartbeat, details, done, timed_out) VALUES (?,?,?,?,?,?,?,?,?)",
            values,
        )

    async def heartbeat(
        self, execution_id: str, seq: int, attempt: int, now: datetime, details: Any = None
    ) -> TaskClaim | None:
        key = (execution_id, seq, attempt)
        running = self._running.get(key)
        if running is not None:
            # Lost with the process on a crash, like the attempt itself (it runs again).
            updated = dataclasses.replace(running, last_heartbeat=now, heartbeat_details=details)
            self._running[key] = updated
            return updated
        encoded = json.dumps(details, default=str) if details is not None else None

        def op(conn: sqlite3.Connection) -> Any:
            conn.execute(
                "UPDATE claims SET last_heartbeat = ?, details = ? "
                "WHERE execution_id = ? AND seq = ? AND attempt = ?",
                (_ts(now), encoded, *key),
            )
            return conn.execute(_SELECT_CLAIM, key + key).fetchone()

        return self._claim(*key, await self.db.write(op))

    async def finish(
        self, execution_id: str, seq: int, attempt: int, *, timed_out: bool = False
    ) -> bool:
        key = (execution_id, seq, attempt)
        running = self._running.get(key)
        if running is not None:
            if running.done:
                return False
            done = running.finished(timed_out=timed_out)
            self._running[key] = done
            # Joins the caller's transaction (the one enqueueing the result); the memory copy
            # goes once the row is committed.
            await self.db.defer(self._write(done, replace=True))
            self.db.after_commit(lambda: self._forget(key, done))
            return True
        cur = await self.db.write(
            lambda conn: conn.execute(
                "UPDATE claims SET done = 1, timed_out = ? "
                "WHERE execution_id = ? AND seq = ? AND attempt = ? AND done = 0",
                (int(timed_out), execution_id, seq, attempt),
            )
        )
        return cur.rowcount == 1

    def finish_running(self, key: tuple[str, int, int]) -> TaskClaim | None:
        """Mark a running claim of this process done in memory only; the caller writes it
        (:meth:`settle`) in the transaction that applies the attempt's result. None if the
        claim is not running here or already finished (e.g. timed out)."""
        running = self._running.get(key)
        if running is None or running.done:
            return None
        done = running.finished()
        self._running[key] = done
        return done

    def settle(self, claims: Sequence[TaskClaim]) -> None:
        """Finished claims whose results the current transaction records in the history (their
        record: see :data:`_SELECT_CLAIM`): forget them once it commits."""
        for claim in claims:
            key = (claim.execution_id, claim.seq, claim.attempt)
            self.db.after_commit(lambda key=key, claim=claim: self._forget(key, claim))

    async def keep(self, execution_id: str, seq: int, attempt: int) -> None:
        """Write a running claim to the database: its attempt completes later, by token,
        possibly after this process is gone. (Not if it already finished meanwhile.)"""
        key = (execution_id, seq, attempt)
        running = self._running.get(key)
        if running is None or running.done:
            return
        await self.db.defer(self._write(running, replace=False))
        self.db.after_commit(lambda: self._forget(key, running))

    def _forget(self, key: tuple[str, int, int], claim: TaskClaim) -> None:
        # Only the copy that was written: a heartbeat or a finish since then keeps its own.
        if self._running.get(key) is claim:
            del self._running[key]
