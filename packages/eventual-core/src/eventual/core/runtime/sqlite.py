"""The durable local runtime of ``eventual dev``: SQLite adapters for every port, and a driver
that runs the orchestrator, the task workers, event delivery and timers in one asyncio process.

Everything lives in one database file (default ``.eventual/dev.db``) in WAL mode. Writes are
serialised by an asyncio lock. Inside :meth:`Database.transaction` (what ``Ports.unit_of_work``
opens) every adapter write joins one atomic unit, and units that end in the same turn of the
event loop share one ``COMMIT`` (group commit; each waits for it before returning). An
orchestration step therefore commits its history events (whose ``TaskScheduled`` events are
the durable record of the task attempts it dispatches), the execution record, timers, signals to
other executions, published events, its logs and the deletion of the queue rows it consumed
atomically.

Statements run on the event loop by default: with ``synchronous=NORMAL`` in WAL mode a commit
appends to the WAL without waiting for the disk, so each takes a fraction of a millisecond,
less than handing it to a thread costs. With ``synchronous=FULL`` (an fsync per commit) they run
on one dedicated thread that owns the connections. See "The SQLite runtime" in the package
README for the tables, the pragmas and the crash analysis.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import dataclasses
import json
import logging
import os
import sqlite3
import sys
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from ..engine.executor import LogEntry
from ..history import (
    EmittedEvent,
    HistoryEvent,
    InputEvent,
    ParentRef,
    TaskScheduled,
    event_adapter,
    event_json,
)
from ..models import Execution, ExecutionStatus
from ..service import Service
from .ports import (
    ConflictError,
    Ports,
    StoredExecution,
    TaskClaim,
    TaskRequest,
    TimerRequest,
)
from .runtime import RealClock, Runtime

logger = logging.getLogger("eventual.runtime.sqlite")

T = TypeVar("T")

DEFAULT_DB_PATH = Path(".eventual") / "dev.db"
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    start_ts REAL NOT NULL,
    history_length INTEGER NOT NULL DEFAULT 0, -- not kept: the history table counts
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_start ON executions (start_ts DESC, id DESC);
CREATE TABLE IF NOT EXISTS history (
    execution_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (execution_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_execution ON queue (execution_id, id);
-- Schema 1 kept a row per dispatched task attempt; the history is that record now (its
-- pending attempts are found there on start), so a file of schema 1 loses the table.
DROP TABLE IF EXISTS tasks;
CREATE TABLE IF NOT EXISTS claims (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    last_heartbeat TEXT,
    details TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    timed_out INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, seq, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timer_id TEXT NOT NULL UNIQUE,
    execution_id TEXT NOT NULL,
    due REAL NOT NULL,
    request TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due, id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    logger TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_execution ON logs (execution_id, id);
"""


class DatabaseError(RuntimeError):
    """The database file cannot be used."""


class DatabaseLocked(DatabaseError):
    """Another process has the database open."""


# ---------------------------------------------------------------- the database


class _Transaction:
    """An open unit of work. Writes whose result nobody needs wait in ``pending`` and go to
    the database thread together with the next statement that needs one (or the COMMIT),
    in order, so the transaction behaves exactly as if each had run at once."""

    __slots__ = ("active", "begun", "depth", "flushes", "group", "hooks", "pending")

    def __init__(self, group: _Group | None = None) -> None:
        self.active = True
        self.begun = False
        self.group = group  # the open group commit this unit joins (as a savepoint)
        self.depth = 0
        self.flushes = 0
        self.hooks: list[Callable[[], None]] = []
        self.pending: list[Callable[[sqlite3.Connection], Any]] = []


class _Group:
    """A SQLite transaction that several units of work share (group commit). It opens when a
    unit ends without a COMMIT of its own; units that start before it commits join it, each
    as a savepoint (a unit that fails rolls back to its savepoint, leaving the others); it
    commits once, on the next turn of the event loop. Every unit in it waits for that COMMIT
    before its ``transaction()`` block returns, so nothing is reported done before it is on
    disk, and the after-commit hooks of all of them run, in order, after it."""

    __slots__ = ("done", "hooks", "waiters")

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.hooks: list[Callable[[], None]] = []
        # One future per waiting unit (cheaper than shielding ``done`` for each): a waiter
        # that is cancelled leaves the others and the commit alone.
        self.waiters: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        waiter = self.done.get_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    def settle(self, exc: Exception | None) -> None:
        """The COMMIT succeeded (``exc`` None) or failed: tell every unit in the group."""
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: waiters may all be gone
        for waiter in self.waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)


_UNIT = "eventual_unit"


def _begin(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # Left open by a writer that was cancelled while its BEGIN was running: its writes
        # are discarded, as its owner gave up on them.
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _rollback_unit(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute(f"ROLLBACK TO {_UNIT}")
        conn.execute(f"RELEASE {_UNIT}")


def _rollback_to(conn: sqlite3.Connection, name: str) -> None:
    if conn.in_transaction:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")


class _Checkpointer:
    """Copies the WAL back into the database file on a thread of its own, so that no commit
    pays for it. (SQLite's automatic checkpoint runs inside the COMMIT that crosses its
    threshold, and syncs the database file there.) Woken every ``every`` commits, and at least
    once a second; a passive checkpoint never blocks the writer."""

    def __init__(self, path: Path, *, every: int = 256) -> None:
        self.path = path
        self.every = every
        self.commits = 0
        self.runs = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, name="eventual-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        self.commits += 1
        if self.commits % self.every == 0:
            self._wake.set()

    def _run(self) -> None:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            while True:
                self._wake.wait(1.0)
                self._wake.clear()
                if self._stop:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error:  # busy or closing: the next round tries again
                    logger.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)


class Database:
    """One SQLite file, used by one process at a time (a lock file next to it says so).

    Two connections: the writer, on which every transaction runs, and a read-only connection
    that serves reads made outside a transaction, so they see committed data only (never the
    half of an open unit of work). Reads made inside a transaction use the writer and see its
    own writes. Statements run inline on the event loop, or with ``threaded=True`` on one
    dedicated thread that owns both connections.
    """

    def __init__(
        self, path: Path | str, *, synchronous: str = "NORMAL", threaded: bool = False
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(
                f"synchronous={synchronous!r} is not durable enough; use NORMAL, FULL or EXTRA"
            )
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self.threaded = threaded
        self._open_ = False
        self._executor: ThreadPoolExecutor | None = None
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._tx: contextvars.ContextVar[_Transaction | None] = contextvars.ContextVar(
            f"eventual_sqlite_tx_{id(self)}", default=None
        )
        self._lock_fd: int | None = None
        self.checkpointer: _Checkpointer | None = None
        self._group: _Group | None = None
        self._group_task: asyncio.Task[None] | None = None
        self.group_commit = True
        self.commits = 0

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock_file(self.path)
        except OSError as exc:
            raise DatabaseError(
                f"cannot open the database {self.path}: {exc.strerror or exc}; pass a path in "
                "a writable directory"
            ) from exc
        if self.threaded:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventual-sqlite")
        self._open_ = True
        try:
            await self._call(self._open)
        except sqlite3.Error as exc:
            await self.close()
            raise DatabaseError(
                f"cannot open the database {self.path}: {exc}; check that it is an Eventual "
                "database file and that its directory is writable"
            ) from exc
        except BaseException:
            await self.close()
            raise

    def _open(self) -> None:
        writer = sqlite3.connect(str(self.path), isolation_level=None)
        self._writer = writer
        writer.execute("PRAGMA busy_timeout = 5000")
        mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise DatabaseError(f"cannot put {self.path} in WAL mode (got {mode!r})")
        writer.execute(f"PRAGMA synchronous = {self.synchronous}")
        writer.execute("PRAGMA temp_store = MEMORY")
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread does it
        version = writer.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path} was written by a newer Eventual (schema {version}); upgrade "
                "eventual-core or use another database file"
            )
        # One script, one transaction: the tables and the schema version appear together.
        writer.executescript(
            f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )
        reader = sqlite3.connect(str(self.path), isolation_level=None)
        reader.execute("PRAGMA busy_timeout = 5000")
        reader.execute("PRAGMA query_only = ON")
        self._reader = reader
        self.checkpointer = _Checkpointer(self.path)

    async def close(self) -> None:
        # A group commit still open is committed first (its units are waiting for it).
        group = self._group
        if group is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(group.done)
        if self._group_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.shield(self._group_task)
        executor = self._executor
        if executor is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(executor.submit(self._close))
            executor.shutdown(wait=True)
            self._executor = None
        elif self._open_:
            self._close()
        self._open_ = False
        if self._lock_fd is not None:
            _unlock_file(self._lock_fd)
            self._lock_fd = None

    def _close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        for conn in (self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    _rollback(conn)
                conn.close()
        self._reader = self._writer = None

    # ------------------------------------------------------------ running statements

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._open_:
            raise RuntimeError(f"the database {self.path} is not open")
        if self._executor is None:
            return fn(*args)
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def in_transaction(self) -> bool:
        return self._current() is not None

    def _conn(self, *, write: bool) -> sqlite3.Connection:
        conn = self._writer if write else self._reader
        if conn is None:
            raise RuntimeError(f"the database {self.path} is not open")
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` (inline, or on the database thread); sees committed data
        (or, inside a transaction, that transaction's writes)."""
        tx = self._current()
        if tx is not None:
            return await self._in_tx(tx, fn)
        return await self._call(lambda: fn(self._conn(write=False)))

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in the current transaction, or in one of its own; returns
        its result."""
        tx = self._current()
        if tx is not None:
            return await self._in_tx(tx, fn)
        if not self.group_commit:
            async with self._lock:
                return await self._call(lambda: self._atomic(fn))
        async with self.transaction():
            tx = self._current()
            assert tx is not None
            return await self._in_tx(tx, fn)

    async def defer(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """A write whose result is not needed: inside a transaction it runs with the next
        statement that needs a result, or the COMMIT; outside, at once in its own."""
        tx = self._current()
        if tx is not None:
            tx.pending.append(fn)
            return
        await self.write(fn)

    def _current(self) -> _Transaction | None:
        tx = self._tx.get()
        return tx if tx is not None and tx.active else None

    async def _in_tx(self, tx: _Transaction, fn: Callable[[sqlite3.Connection], T]) -> T:
        ops, tx.pending = tx.pending, []
        begin = not tx.begun
        tx.begun = True
        tx.flushes += 1
        writer = self._conn(write=True)

        group = tx.group

        def work() -> T:
            if begin:
                if group is not None:
                    writer.execute(f"SAVEPOINT {_UNIT}")
                else:
                    _begin(writer)
            for op in ops:
                op(writer)
            return fn(writer)

        return await self._call(work)

    def _atomic(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn(write=True)
        _begin(conn)
        try:
            result = fn(conn)
        except BaseException:
            _rollback(conn)
            raise
        self._commit(conn)
        return result

    def _commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")
        self.commits += 1
        if self.checkpointer is not None:
            self.checkpointer.committed()

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the current transaction commits (at once outside one)."""
        tx = self._current()
        if tx is not None:
            tx.hooks.append(hook)
        else:
            hook()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[bool]:
        """One atomic unit: every write made inside joins it. Nested blocks are savepoints.
        Yields whether this block is the outermost one. Rolls back if the block raises.
        Returns once the unit is committed (units that end in the same turn of the event loop
        share one COMMIT: see :class:`_Group`)."""
        tx = self._current()
        if tx is not None:
            async with self._savepoint(tx):
                yield False
            return
        committed = False
        group: _Group | None = None
        async with self._lock:
            tx = _Transaction(self._group)
            token = self._tx.set(tx)
            try:
                yield True
                if tx.group is not None:
                    group = tx.group
                    if tx.begun or tx.pending:
                        await self._in_tx(tx, lambda conn: conn.execute(f"RELEASE {_UNIT}"))
                    group.hooks.extend(tx.hooks)
                elif tx.begun or tx.pending:
                    if self.group_commit:
                        # Leave the transaction open for the units of this turn; commit after.
                        await self._in_tx(tx, lambda conn: None)
                        group = self._group = _Group()
                        group.hooks.extend(tx.hooks)
                        loop = asyncio.get_running_loop()
                        if self._executor is None:
                            # Statements run inline: a plain callback on the next turn.
                            loop.call_soon(self._commit_inline, group)
                        else:
                            self._group_task = loop.create_task(
                                self._commit_group(group), name="eventual-sqlite-commit"
                            )
                    else:
                        await self._in_tx(tx, self._commit)
                committed = True
            except BaseException:
                if not committed and tx.begun:
                    # Queued behind anything still running on the thread; even if this await
                    # is interrupted, the rollback runs before any later statement.
                    with contextlib.suppress(BaseException):
                        if tx.group is not None:
                            await self._call(_rollback_unit, self._conn(write=True))
                        else:
                            await self._call(_rollback, self._conn(write=True))
                raise
            finally:
                tx.active = False
                self._tx.reset(token)
        if group is not None:
            await group.wait()
            return
        for hook in tx.hooks:
            hook()

    def _commit_inline(self, group: _Group) -> None:
        if self._lock.locked():  # a unit is under way (it joins): commit after it
            asyncio.get_running_loop().call_soon(self._commit_inline, group)
            return
        self._group = None
        try:
            self._commit(self._conn(write=True))
        except Exception as exc:
            with contextlib.suppress(Exception):
                _rollback(self._conn(write=True))
            group.settle(exc)
            return
        self._finish_group(group)

    def _finish_group(self, group: _Group) -> None:
        # The hooks first (they only schedule work): a unit that resumes after its commit
        # then finds what they started already queued behind it.
        for hook in group.hooks:
            try:
                hook()
            except Exception:
                logger.exception("an after-commit hook failed")
        group.settle(None)

    async def _commit_group(self, group: _Group) -> None:
        await asyncio.sleep(0)  # let the units that are ready this turn join
        try:
            async with self._lock:
                self._group = None
                await self._call(self._commit, self._conn(write=True))
        except BaseException as exc:
            self._group = None
            with contextlib.suppress(BaseException):
                await self._call(_rollback, self._conn(write=True))
            if not group.done.done():
                group.settle(
                    exc
                    if isinstance(exc, Exception)
                    else DatabaseError(f"commit interrupted: {exc!r}")
                )
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            if self._group_task is asyncio.current_task():
                self._group_task = None
        self._finish_group(group)

    @asynccontextmanager
    async def _savepoint(self, tx: _Transaction) -> AsyncIterator[None]:
        tx.depth += 1
        name = f"eventual_sp{tx.depth}"
        mark, flushes, hooks = len(tx.pending), tx.flushes, len(tx.hooks)
        tx.pending.append(lambda conn: conn.execute(f"SAVEPOINT {name}"))
        try:
            yield
        except BaseException:
            del tx.hooks[hooks:]
            if tx.flushes == flushes:
                del tx.pending[mark:]  # nothing reached the database yet
            else:
                await self._in_tx(tx, lambda conn: _rollback_to(conn, name))
            raise
        else:
            tx.pending.append(lambda conn: conn.execute(f"RELEASE {name}"))
        finally:
            tx.depth -= 1


def _lock_file(path: Path) -> int:
    lock_path = f"{path}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held by another process
        os.close(fd)
        raise DatabaseLocked(
            f"{path} is in use by another Eventual process (is `eventual dev` already "
            "running?); stop that process or pass another database path"
        ) from None
    return fd


def _unlock_file(fd: int) -> None:
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


# The history event types that end a task attempt, as the body of an SQL ``IN (...)`` list.
_TASK_RESULTS = "'TaskSucceeded', 'TaskFailed', 'TaskTimedOut', 'TaskHeartbeatTimedOut'"

# A claim: its row in ``claims``, or else the attempt's result in the history (an attempt this
# process ran to a result writes no claim row; the time it was claimed is not kept, and a
# finished claim does not need it).
_SELECT_CLAIM = (
    "SELECT claimed_at, last_heartbeat, details, done, timed_out FROM claims "
    "WHERE execution_id = ? AND seq = ? AND attempt = ? "
    "UNION ALL SELECT '1970-01-01T00:00:00+00:00', NULL, NULL, 1, 0 FROM history "
    f"WHERE execution_id = ? AND json_extract(event, '$.type') IN ({_TASK_RESULTS}) "
    "AND json_extract(event, '$.seq') = ? AND json_extract(event, '$.attempt') = ? LIMIT 1"
)

# An execution's record and its history's length (the history table is the one count).
_SELECT_STORED = (
    "SELECT record, (SELECT COALESCE(MAX(position) + 1, 0) FROM history "
    "WHERE execution_id = executions.id) FROM executions WHERE id = ?"
)

# ---------------------------------------------------------------- serialisation


def _ts(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _event_json(event: HistoryEvent | InputEvent) -> str:
    return event_json(event).decode()


def _event_from(text: str) -> Any:
    return event_adapter.validate_json(text)


def _timer_json(timer: TimerRequest) -> str:
    return json.dumps(
        {
            "timer_id": timer.timer_id,
            "execution_id": timer.execution_id,
            "due": _ts(timer.due),
            "event": event_adapter.dump_python(timer.event, mode="json")
            if timer.event is not None
            else None,
            "heartbeat": list(timer.heartbeat) if timer.heartbeat is not None else None,
        }
    )


def _timer_from(text: str) -> TimerRequest:
    data = json.loads(text)
    heartbeat = data.get("heartbeat")
    return TimerRequest(
        timer_id=data["timer_id"],
        execution_id=data["execution_id"],
        due=datetime.fromisoformat(data["due"]),
        event=cast(InputEvent, event_adapter.validate_python(data["event"]))
        if data["event"] is not None
        else None,
        heartbeat=(int(heartbeat[0]), int(heartbeat[1]), float(heartbeat[2]))
        if heartbeat is not None
        else None,
    )


# ---------------------------------------------------------------- hooks the driver sets


class _Hooks:
    """What the adapters tell the driver once their writes commit."""

    def queue_changed(self, execution_id: str) -> None:
        pass

    def tasks_changed(self) -> None:
        pass

    def timers_changed(self) -> None:
        pass

    def outbox_changed(self) -> None:
        pass

    def execution_finished(self, execution_id: str) -> None:
        pass


# ---------------------------------------------------------------- adapters


class SqliteExecutionStore:
    """Execution records and histories. The records this process committed or read are kept in
    a small cache (one process owns the file, so it sees every write): an orchestration step
    then reads nothing but its queued events, and an unchanged record is not encoded again."""

    def __init__(
        self, db: Database, hooks: _Hooks | None = None, *, cache_size: int = 1024
    ) -> None:
        self.db = db
        self.hooks = hooks or _Hooks()
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
                "(id, workflow, status, start_ts, history_length, record) VALUES (?,?,?,?,0,?)",
                (
                    execution.id,
                    execution.workflow,
                    execution.status.value,
                    execution.start_time.timestamp(),
                    record,
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
    ) -> tuple[list[Execution], str | None]:
        where: list[str] = []
        params: list[Any] = []
        if workflow is not None:
            where.append("workflow = ?")
            params.append(workflow)
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
            where.append("(start_ts < ? OR (start_ts = ? AND id < ?))")
            params.extend([start_ts, start_ts, last_id])
        sql = "SELECT record, start_ts, id FROM executions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY start_ts DESC, id DESC LIMIT ?"
        params.append(limit + 1)
        rows = await self.db.read(lambda conn: conn.execute(sql, params).fetchall())
        page = rows[:limit]
        token = None
        if len(rows) > limit and page:
            last = page[-1]
            token = base64.urlsafe_b64encode(json.dumps([last[1], last[2]]).encode()).decode()
        return [Execution.model_validate_json(r[0]) for r in page], token

    async def read_history(self, execution_id: str) -> list[HistoryEvent]:
        if not self.db.in_transaction():
            cached = self._cache.get(execution_id)
            if cached is not None and cached[0].history_length == 0:
                return []  # a new execution (the cache holds what was committed)
        rows = await self.db.read(
            lambda conn: conn.execute(
                "SELECT event FROM history WHERE execution_id = ? ORDER BY position",
                (execution_id,),
            ).fetchall()
        )
        return [_event_from(r[0]) for r in rows]

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
        # The cache holds what was committed (one process owns the file): when it agrees
        # with the step, the history's key alone guards against a step that raced this one.
        known = unchanged and cached is not None and cached[0].history_length == expected_length
        rows = [(execution_id, expected_length + i, e) for i, e in enumerate(encoded)]

        def op(conn: sqlite3.Connection) -> None:
            conflict = ConflictError(
                f"execution {execution_id}: its history no longer has {expected_length} "
                "events (or the execution does not exist)"
            )
            if not unchanged:
                cur = conn.execute(
                    "UPDATE executions SET status = ?, record = ? WHERE id = ?",
                    (execution.status.value, record, execution_id),
                )
                if cur.rowcount != 1:
                    raise conflict
            if not known:
                length = conn.execute(
                    "SELECT COALESCE(MAX(position) + 1, 0) FROM history WHERE execution_id = ?",
                    (execution_id,),
                ).fetchone()[0]
                if length != expected_length:
                    raise conflict
            try:
                conn.executemany(
                    "INSERT INTO history (execution_id, position, event) VALUES (?,?,?)", rows
                )
            except sqlite3.IntegrityError:
                raise conflict from None

        await self.db.write(op)
        stored = StoredExecution(execution, expected_length + len(encoded))

        finished = execution.status is not ExecutionStatus.IN_PROGRESS

        def committed() -> None:
            self._remember(stored, record)
            if finished:
                self.hooks.execution_finished(execution_id)

        self.db.after_commit(committed)


class SqliteTaskDispatcher:
    """The task attempts this process dispatched, in memory, in dispatch order; the driver's
    worker pool takes them. Nothing is written for them: the step that dispatches an attempt
    records its ``TaskScheduled`` event in the same transaction, and the history is what makes
    the attempt durable. On start the driver finds the attempts a previous process left
    without a result (:func:`_outstanding_attempts`) and restores them here."""

    def __init__(self, db: Database, hooks: _Hooks | None = None) -> None:
        self.db = db
        self.hooks = hooks or _Hooks()
        self._pending: deque[TaskRequest] = deque()

    async def dispatch(self, request: TaskRequest) -> None:
        def committed() -> None:
            self._pending.append(request)
            self.hooks.tasks_changed()

        self.db.after_commit(committed)

    def restore(self, requests: Sequence[TaskRequest]) -> None:
        """Attempts found outstanding on start: dispatched again."""
        self._pending.extend(requests)

    def take(self, limit: int) -> list[TaskRequest]:
        """Up to ``limit`` attempts, oldest dispatch first (they leave the queue)."""
        pending = self._pending
        return [pending.popleft() for _ in range(min(limit, len(pending)))]

    def has_pending(self) -> bool:
        return bool(self._pending)


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

    async def claim(self, execution_id: str, seq: int, attempt: int, now: datetime) -> bool:
        # No read: every attempt this process runs was dispatched by a step of this process,
        # or found outstanding on start, which means it has no claim row.
        key = (execution_id, seq, attempt)
        if key in self._running:
            return False
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


# ---------------------------------------------------------------- ports


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


# ---------------------------------------------------------------- recovery


def _outstanding_attempts(conn: sqlite3.Connection) -> list[TaskRequest]:
    """The task attempts a previous process dispatched and never finished: ``TaskScheduled``
    in the history of an execution in progress, with no result in its history or its queue,
    and no claim row (one is written for an attempt left waiting for its token, and for one
    finished by a timeout or by token). In dispatch order within each execution."""
    scheduled: dict[tuple[str, int, int], TaskRequest] = {}
    finished: set[tuple[str, int, int]] = set()
    rows = conn.execute(
        "SELECT h.execution_id, e.workflow, h.event FROM history h "
        "JOIN executions e ON e.id = h.execution_id WHERE e.status = 'IN_PROGRESS' AND "
        f"json_extract(h.event, '$.type') IN ('TaskScheduled', {_TASK_RESULTS}) "
        "ORDER BY h.execution_id, h.position"
    ).fetchall()
    queued = conn.execute(
        "SELECT execution_id, NULL, event FROM queue "
        f"WHERE json_extract(event, '$.type') IN ({_TASK_RESULTS})"
    ).fetchall()
    for execution_id, workflow, text in [*rows, *queued]:
        event = _event_from(text)
        key = (execution_id, event.seq, event.attempt)
        if isinstance(event, TaskScheduled):
            scheduled[key] = TaskRequest(
                execution_id,
                workflow,
                event.seq,
                event.attempt,
                event.name,
                event.args,
                event.timeout,
                event.heartbeat_timeout,
            )
        else:
            finished.add(key)
    claimed = conn.execute(
        "SELECT c.execution_id, c.seq, c.attempt FROM claims c "
        "JOIN executions e ON e.id = c.execution_id WHERE e.status = 'IN_PROGRESS'"
    ).fetchall()
    finished.update(tuple(r) for r in claimed)
    return [request for key, request in scheduled.items() if key not in finished]


# ---------------------------------------------------------------- the runtime


class _DriverHooks(_Hooks):
    def __init__(self) -> None:
        self.runtime: SqliteRuntime | None = None

    def queue_changed(self, execution_id: str) -> None:
        if self.runtime is not None:
            self.runtime._queue_changed(execution_id)

    def tasks_changed(self) -> None:
        if self.runtime is not None:
            self.runtime._tasks_committed()

    def timers_changed(self) -> None:
        if self.runtime is not None:
            self.runtime._timers_wake.set()

    def outbox_changed(self) -> None:
        if self.runtime is not None:
            self.runtime._outbox_wake.set()

    def execution_finished(self, execution_id: str) -> None:
        if self.runtime is not None:
            self.runtime._pulse_executions()


class SqliteRuntime(Runtime):
    """The durable runtime of ``eventual dev``: ``async with SqliteRuntime(service,
    db_path=...) as rt``.

    On entry it opens (or creates) the database, recovers what a previous process left (task
    attempts that never delivered a result run again, queued events are delivered, timers
    re-armed, those already due fire at once) and starts the workers: one orchestrator per
    execution with queued events (in order), a task worker pool of ``max_concurrent_tasks``,
    event delivery to subscriptions and the timer scheduler on the real clock. On exit it
    cancels the work in flight (it runs again on the next start) and closes the database.

    With ``workers=False`` nothing runs: the runtime only reads and writes the database (to
    inspect it, or to queue work for the next process that runs it).
    """

    def __init__(
        self,
        service: Service,
        *,
        db_path: Path | str | None = None,
        max_concurrent_tasks: int = 32,
        max_concurrent_deliveries: int = 16,
        synchronous: str = "NORMAL",
        threaded: bool | None = None,
        workers: bool = True,
        cache_size: int = 1024,
        batch_size: int = 100,
    ) -> None:
        if max_concurrent_tasks < 1 or max_concurrent_deliveries < 1:
            raise ValueError("max_concurrent_tasks and max_concurrent_deliveries must be >= 1")
        self.db_path = Path(db_path) if db_path is not None else DEFAULT_DB_PATH
        if threaded is None:
            # NORMAL commits do not wait for the disk (no fsync): statements take a fraction
            # of a millisecond and run inline. FULL and EXTRA fsync every commit: a thread.
            threaded = synchronous.upper() != "NORMAL"
        self.db = Database(self.db_path, synchronous=synchronous, threaded=threaded)
        self.run_id = uuid.uuid4().hex
        self._hooks = _DriverHooks()
        ports = open_ports(self.db, run_id=self.run_id, hooks=self._hooks)
        super().__init__(service, ports, clock=RealClock(), cache_size=cache_size)
        self.sqlite_ports = ports
        self.max_concurrent_tasks = max_concurrent_tasks
        self.max_concurrent_deliveries = max_concurrent_deliveries
        self.batch_size = batch_size
        self.workers = workers
        self.errors: list[BaseException] = []
        self._started = False
        self._closing = False
        self._context = contextvars.Context()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one it was started on
        self._work: set[asyncio.Task[Any]] = set()
        self._pumps: list[asyncio.Task[None]] = []
        self._consumers: dict[str, asyncio.Task[Any]] = {}
        self._dirty: set[str] = set()
        # Executions whose queue table may hold rows (the rest need no read), and the task
        # results handed over in memory (see _Handoff), by execution.
        self._queued: set[str] = set()
        self._inbox: dict[str, list[_Handoff]] = {}
        # The task attempts running in this process's worker pool.
        self._running_attempts: set[tuple[str, int, int]] = set()
        self._tasks_wake = asyncio.Event()
        self._timers_wake = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._scanning = 0
        self._deliveries = 0
        self._outbox_cursor = 0
        self._firing: set[int] = set()
        self._next_due: float | None = None
        self._pulse = asyncio.Event()
        self._execution_pulse = asyncio.Event()
        self._service_generation = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SqliteRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("this SqliteRuntime was already started")
        self._started = True
        await self.db.open()
        try:
            await self._recover()
        except BaseException:
            await self.db.close()
            raise
        self._hooks.runtime = self
        if not self.workers:
            return
        for wake in (self._tasks_wake, self._timers_wake, self._outbox_wake):
            wake.set()
        self._pumps = [
            self._create_task(self._pump(self._tasks_wake, self._scan_tasks), "tasks"),
            self._create_task(self._pump(self._outbox_wake, self._scan_outbox), "events"),
            self._create_task(self._timer_pump(), "timers"),
        ]
        for execution_id in await self.sqlite_ports_queue.executions_with_events():
            self._queue_changed(execution_id)

    async def stop(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._hooks.runtime = None
        tasks = [*self._pumps, *self._work]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.clear_cache()
        await self.db.close()

    async def _recover(self) -> None:
        """Make what a previous process left runnable again: the task attempts it dispatched
        and never finished are dispatched again (queued events and timers need nothing: their
        rows are still there)."""
        outstanding = await self.db.read(_outstanding_attempts)
        if outstanding:
            logger.info("%d task attempt(s) interrupted by a stop will run again", len(outstanding))
            cast(SqliteTaskDispatcher, self.ports.tasks).restore(outstanding)

    @property
    def sqlite_ports_queue(self) -> SqliteExecutionQueue:
        return cast(SqliteExecutionQueue, self.ports.queue)

    def replace_service(self, service: Service) -> None:
        """Swap the service's handlers (``--reload``): keep the database and every execution;
        the next step of each execution replays its history against the new code."""
        self.service = service
        self._service_generation += 1
        self.clear_cache()

    # ------------------------------------------------------------ atomic client operations

    async def start_execution(
        self,
        workflow: str,
        input: Any,
        *,
        execution_name: str | None = None,
        timeout: timedelta | None = None,
        execution_id: str | None = None,
        parent: ParentRef | None = None,
    ) -> str:
        # The record and its WorkflowStarted event are written in one transaction.
        async with self.db.transaction():
            return await super().start_execution(
                workflow,
                input,
                execution_name=execution_name,
                timeout=timeout,
                execution_id=execution_id,
                parent=parent,
            )

    async def send_task_success(self, token: str, result: Any = None) -> None:
        async with self.db.transaction():
            await super().send_task_success(token, result)

    async def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        async with self.db.transaction():
            await super().send_task_failure(token, error, message)

    # ------------------------------------------------------------ waiting

    def _pulse_now(self) -> None:
        pulse, self._pulse = self._pulse, asyncio.Event()
        pulse.set()

    def _pulse_executions(self) -> None:
        pulse, self._execution_pulse = self._execution_pulse, asyncio.Event()
        pulse.set()

    def _quiet(self) -> bool:
        if self._work or self._consumers or self._scanning:
            return False
        if self._tasks_wake.is_set() or self._outbox_wake.is_set() or self._timers_wake.is_set():
            return False
        due = self._next_due
        return due is None or due > self.clock.now().timestamp()

    async def idle(self) -> None:
        """Wait until no work is queued or running: no queued events, no task running or
        waiting for a worker, no event being delivered, no timer due (future timers and tasks
        waiting for an asynchronous completion aside)."""
        if not self.workers:
            return
        while True:
            if self._quiet():
                await asyncio.sleep(0)
                if self._quiet():
                    return
            pulse = self._pulse
            if self._next_due is not None and not (self._work or self._consumers):
                # Only a timer is about to fall due: wake up when it has.
                delay = max(0.0, self._next_due - self.clock.now().timestamp()) + 0.001
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pulse.wait(), delay)
            else:
                await pulse.wait()

    async def wait_for_execution(self, execution_id: str, *, timeout: float = 30.0) -> Execution:
        """Wait until an execution is no longer in progress; ``TimeoutError`` after
        ``timeout`` seconds."""

        async def done() -> Execution:
            while True:
                pulse = self._execution_pulse
                execution = await self.get_execution(execution_id)
                if execution.status is not ExecutionStatus.IN_PROGRESS:
                    return execution
                await pulse.wait()

        return await asyncio.wait_for(done(), timeout)

    # ------------------------------------------------------------ spawning work

    def _create_task(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        # A clean context: work never inherits a caller's transaction or use_runtime().
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.create_task(coro, name=f"eventual-sqlite-{name}", context=self._context.copy())

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self._create_task(self._guard(coro, name), name)
        self._work.add(task)
        task.add_done_callback(lambda done: self._work_done(done, coro))
        return task

    def _work_done(self, task: asyncio.Task[Any], coro: Coroutine[Any, Any, Any]) -> None:
        # Closing is a no-op for a coroutine that ran; one cancelled before it started is
        # discarded quietly.
        coro.close()
        self._work.discard(task)
        self._pulse_now()

    async def _guard(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("runtime work failed: %s", name)
            self.errors.append(exc)

    async def _pump(
        self, wake: asyncio.Event, scan: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        while True:
            await wake.wait()
            wake.clear()
            self._scanning += 1
            try:
                await scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("runtime scan failed")
                self.errors.append(exc)
            finally:
                self._scanning -= 1
                self._pulse_now()

    # ------------------------------------------------------------ the orchestrator

    def _queue_changed(self, execution_id: str) -> None:
        self._queued.add(execution_id)
        self._wake_consumer(execution_id)

    def _wake_consumer(self, execution_id: str) -> None:
        if self._closing or not self.workers:
            return
        if execution_id in self._consumers:
            self._dirty.add(execution_id)
            return
        self._consumers[execution_id] = self._spawn(
            self._consume(execution_id), f"orchestrate {execution_id}"
        )

    async def _consume(self, execution_id: str) -> None:
        queue = self.sqlite_ports_queue
        try:
            while True:
                self._dirty.discard(execution_id)
                batch: list[QueuedEvent] = []
                if execution_id in self._queued:
                    # Discarded before the read: a row committed after it marks it again.
                    self._queued.discard(execution_id)
                    batch = await queue.peek(execution_id, self.batch_size)
                    if len(batch) == self.batch_size:
                        self._queued.add(execution_id)
                handoffs = tuple(self._inbox.pop(execution_id, ()))
                if not batch and not handoffs:
                    if execution_id in self._dirty:
                        continue
                    return
                row_ids = tuple(q.row_id for q in batch)
                consuming = _Consuming(self.db, row_ids, [False], handoffs)
                generation = self._service_generation
                token = _consuming.set(consuming)
                try:
                    await self.orchestrate(
                        execution_id, [q.event for q in batch] + [h.event for h in handoffs]
                    )
                except BaseException:
                    if handoffs and not consuming.deleted[0]:
                        # Kept for the next try, like the queued rows (a stop loses them:
                        # their attempts run again on the next start).
                        self._inbox[execution_id] = [*handoffs, *self._inbox.get(execution_id, ())]
                    raise
                finally:
                    _consuming.reset(token)
                if generation != self._service_generation:
                    self._evict(execution_id)  # built with the handlers that were replaced
                if not consuming.deleted[0]:
                    # Nothing was committed (the events were all stale): drop them now. A
                    # crash before this line redelivers them and they are dropped again.
                    async with self.db.transaction():
                        await queue.delete(row_ids)
                        _settle_handoffs(self.sqlite_ports, handoffs)
                if not (consuming.deleted[0] and self.db.group_commit):
                    # Inline statements never suspend: let other work run between batches.
                    # (A group commit suspended the step until the COMMIT, which ran the
                    # work it started first: often a task whose result is here already.)
                    await asyncio.sleep(0)
        finally:
            # On an unexpected error the events stay queued: they are retried on the
            # execution's next event or on the next start.
            self._consumers.pop(execution_id, None)

    # ------------------------------------------------------------ task workers

    async def _scan_tasks(self) -> None:
        free = self.max_concurrent_tasks - len(self._running_attempts)
        if free <= 0:
            return  # a finishing task wakes the pump again
        self._start_tasks(cast(SqliteTaskDispatcher, self.ports.tasks).take(free), free)

    def _tasks_committed(self) -> None:
        """Task attempts were dispatched (their step committed): start them at once while
        workers are free (no turn of the pump); else the pump starts them as workers free up."""
        if self._closing or not self.workers:
            return
        free = self.max_concurrent_tasks - len(self._running_attempts)
        if free <= 0:
            return  # a finishing task wakes the pump
        self._start_tasks(cast(SqliteTaskDispatcher, self.ports.tasks).take(free), free)

    def _start_tasks(self, taken: list[TaskRequest], free: int) -> None:
        for request in taken:
            key = (request.execution_id, request.seq, request.attempt)
            if key in self._running_attempts:
                continue  # already running here (dispatched twice): once is enough
            self._running_attempts.add(key)
            self._spawn(self._work_task(key, request), f"task {request.name}")
        if len(taken) == free:
            self._tasks_wake.set()

    async def _work_task(self, key: tuple[str, int, int], request: TaskRequest) -> None:
        try:
            if await self.run_task(request):
                # No result yet: the task completes later by its token. Its claim row is the
                # "do not run again" mark a restart looks for.
                async with self.db.transaction():
                    await cast(SqliteClaimStore, self.ports.claims).keep(
                        request.execution_id, request.seq, request.attempt
                    )
        finally:
            self._running_attempts.discard(key)
            # A worker is free: wake the pump only if attempts are waiting for one.
            if cast(SqliteTaskDispatcher, self.ports.tasks).has_pending():
                self._tasks_wake.set()

    async def deliver_task_result(self, request: TaskRequest, event: InputEvent) -> None:
        key = (request.execution_id, request.seq, request.attempt)
        claim = None
        if key in self._running_attempts and not self._closing:
            claim = cast(SqliteClaimStore, self.ports.claims).finish_running(key)
        if claim is None:
            await super().deliver_task_result(request, event)
            return
        # Straight to the orchestrator: no queue row, no commit of its own (see _Handoff).
        self._inbox.setdefault(request.execution_id, []).append(_Handoff(claim, event))
        self._wake_consumer(request.execution_id)

    # ------------------------------------------------------------ event delivery

    async def _scan_outbox(self) -> None:
        free = self.max_concurrent_deliveries - self._deliveries
        if free <= 0:
            return
        bus = cast(SqliteEventBus, self.ports.events)
        rows = await bus.take(self._outbox_cursor, free)
        for row_id, event in rows:
            self._outbox_cursor = max(self._outbox_cursor, row_id)
            self._deliveries += 1
            self._spawn(self._deliver(row_id, event), f"deliver {event.name}")
        if len(rows) == free:
            self._outbox_wake.set()

    async def _deliver(self, row_id: int, event: EmittedEvent) -> None:
        try:
            try:
                # At least once: a failing subscription is retried (with backoff) before the
                # row goes; a crash meanwhile delivers the event again.
                await self.deliver_event_retrying(event, asyncio.sleep)
            finally:
                await cast(SqliteEventBus, self.ports.events).delete(row_id)
        finally:
            self._deliveries -= 1
            self._outbox_wake.set()

    # ------------------------------------------------------------ timers

    async def _timer_pump(self) -> None:
        timers = cast(SqliteTimerScheduler, self.ports.timers)
        while True:
            self._timers_wake.clear()
            self._scanning += 1
            try:
                now = self.clock.now().timestamp()
                for row_id, timer in await timers.due(now):
                    if row_id not in self._firing:
                        self._firing.add(row_id)
                        self._spawn(self._fire(row_id, timer), f"timer {timer.timer_id}")
                self._next_due = await timers.next_due(now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.exception("timer scan failed")
                self.errors.append(exc)
                self._next_due = self.clock.now().timestamp() + 1.0
            finally:
                self._scanning -= 1
                self._pulse_now()
            due = self._next_due
            wait = None if due is None else max(0.0, due - self.clock.now().timestamp())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timers_wake.wait(), wait)

    async def _fire(self, row_id: int, timer: TimerRequest) -> None:
        timers = cast(SqliteTimerScheduler, self.ports.timers)
        try:
            # Firing is one transaction: the timer row goes with the event it delivers (or
            # the heartbeat check it reschedules).
            async with self.db.transaction():
                await timers.delete_row(row_id)
                await self.fire_timer(timer)
        finally:
            self._firing.discard(row_id)
