"""The database of the SQLite runtime: one file, its two connections, the lock file that keeps
other processes out, the schema it is opened with, and the running of transactions (units of
work, their savepoints, and the group commit that units ending in the same turn of the event
loop share; their parts are in ``transaction.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_thread
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ...errors import StorageUnavailable
from .checkpoint import WAL_LIMIT, _Checkpointer
from .resources import AT_OPEN, storage_error
from .schema import _ADDED_COLUMNS, _SCHEMA, SCHEMA_VERSION
from .transaction import (
    _UNIT,
    _begin,
    _Group,
    _nothing,
    _nothing_ready,
    _release_unit,
    _rollback,
    _rollback_to,
    _rollback_unit,
    _Transaction,
)

logger = logging.getLogger("eventual.runtime.sqlite")

T = TypeVar("T")


class DatabaseError(RuntimeError):
    """The database file cannot be used."""


class DatabaseLocked(DatabaseError):
    """Another process has the database open."""


class _Busy(Exception):
    """Another process holds the database's write lock, and the statement that found it out
    had done nothing yet: it can simply run again (see :meth:`Database._patiently`)."""

    def __init__(self, error: sqlite3.Error) -> None:
        super().__init__(str(error))
        self.error = error


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return (code & 0xFF) in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED
    return "database is locked" in str(exc)


def _patient(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` (a read, or a write that begins a transaction) with SQLITE_BUSY raised as
    :class:`_Busy`."""

    def run() -> T:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise _Busy(exc) from exc
            raise

    return run


# How long a statement waits for a lock another process holds before it raises SQLITE_BUSY
# (and :meth:`Database._patiently` sleeps and tries again): short, as it blocks the loop.
_BUSY_MS = 10


class Database:
    """One SQLite file, used by one process at a time (a lock file next to it says so).

    Two connections: the writer, on which every transaction runs, and a read-only connection
    that serves reads made outside a transaction, so they see committed data only (never the
    half of an open unit of work). Reads made inside a transaction use the writer and see its
    own writes. Statements run inline on the event loop. With ``threaded=True`` a group's
    ``COMMIT`` (the statement that waits for the disk's fsync under ``synchronous=FULL``) runs
    on one dedicated thread instead, and the event loop goes on meanwhile; the lock that every
    unit holds keeps the writer the thread's alone until that ``COMMIT`` returns.

    When the file runs out of something (it is read-only, the disk is full, another process
    holds its lock, ...) the statement raises :class:`StorageUnavailable`, whose message names
    the file and the fix, and nothing of its unit of work is kept. A write that finds the lock
    taken waits for it up to ``lock_timeout`` seconds first, without blocking the event loop.
    ``unavailable`` is the last such error until a commit succeeds again; ``failures`` counts
    them; :meth:`wait_available` waits for the next successful commit after one.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        synchronous: str = "NORMAL",
        threaded: bool = False,
        lock_timeout: float = 5.0,
        wal_limit: int = WAL_LIMIT,
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
        # Commits of a unit made at once, nothing else being ready to join it (see _end).
        self.alone_commits = 0
        self.lock_timeout = lock_timeout
        self.wal_limit = wal_limit
        self.failures = 0
        self.unavailable: StorageUnavailable | None = None
        self._available = asyncio.Event()
        self._reopen = False  # the writer found the file read-only: open it anew

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self.path.is_dir():
            raise DatabaseError(
                f"cannot open the database {self.path}: it is a folder; pass the path of a "
                f"file, such as {self.path / 'dev.db'}"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock_file(self.path)
        except OSError as exc:
            file = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
            why = f"{file} is a file, not a folder" if file else exc.strerror or exc
            raise DatabaseError(
                f"cannot open the database {self.path}: {why}; pass a path in a writable directory"
            ) from exc
        if self.threaded:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eventual-sqlite")
        self._open_ = True
        try:
            await self._call(self._open)
        except BaseException:
            await self.close()
            raise

    def _open(self) -> None:
        try:
            self._connect()
        except sqlite3.Error as exc:
            # Read-only, locked, disk full...: say so, and how to fix it (raised as one error
            # here, so that _call does not take it for a failure of a running database).
            opening = storage_error(exc, self.path, then=AT_OPEN)
            if opening is not None and opening.reason != "damaged":
                raise DatabaseError(opening.message) from exc
            raise DatabaseError(
                f"cannot open the database {self.path}: {exc}; check that it is an Eventual "
                "database file and that its directory is writable"
            ) from exc

    def _connect_writer(self, busy_ms: int) -> sqlite3.Connection:
        # (Used from the event loop's thread and, for a threaded group's COMMIT, from the
        # database thread: never from both at once, see _commit_group.)
        writer = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        writer.execute(f"PRAGMA busy_timeout = {busy_ms}")
        mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            writer.close()
            raise DatabaseError(f"cannot put {self.path} in WAL mode (got {mode!r})")
        writer.execute(f"PRAGMA synchronous = {self.synchronous}")
        writer.execute("PRAGMA temp_store = MEMORY")
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread does it
        writer.execute(f"PRAGMA journal_size_limit = {self.wal_limit}")
        return writer

    def _reconnect_writer(self) -> sqlite3.Connection:
        """A new writer connection, for one that found the file read-only: SQLite opened the
        file read-only then, and keeps it so, even once the file is writable again."""
        old = self._conn(write=True)
        if old.in_transaction:
            return old
        writer = self._connect_writer(_BUSY_MS)
        old.close()
        self._writer = writer
        self._reopen = False
        return writer

    def _connect(self) -> None:
        # Opening waits for a lock another process holds (blocking: nothing runs yet); later
        # statements find it at once, and wait for it without blocking (see _patiently).
        writer = self._connect_writer(int(self.lock_timeout * 1000))
        self._writer = writer
        version = writer.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{self.path} was written by a newer Eventual (schema {version}); upgrade "
                "eventual-core or use another database file"
            )
        # The tables of an older file gain the columns added since (in the same transaction
        # as the rest: the tables, their columns and the schema version appear together).
        migrations = ""
        if version < SCHEMA_VERSION:
            for (table, column), definition in _ADDED_COLUMNS.items():
                columns = {row[1] for row in writer.execute(f"PRAGMA table_info({table})")}
                if columns and column not in columns:
                    migrations += f"ALTER TABLE {table} ADD COLUMN {column} {definition};\n"
        writer.executescript(
            f"BEGIN IMMEDIATE;\n{migrations}{_SCHEMA}\n"
            f"PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )
        reader = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        reader.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        reader.execute("PRAGMA query_only = ON")
        self._reader = reader
        writer.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
        self.checkpointer = _Checkpointer(self.path, wal_limit=self.wal_limit)

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
        """``fn(*args)`` on the database thread (inline without one). Returns, even when the
        await is cancelled, only once the thread is done with it: until then the connection
        it uses is not free."""
        if self._executor is None:
            return self._inline(fn, *args)
        if not self._open_:
            raise RuntimeError(f"the database {self.path} is not open")
        done = self._executor.submit(fn, *args)
        try:
            return await asyncio.shield(asyncio.wrap_future(done))
        except sqlite3.Error as exc:
            self._raise_translated(exc)
        finally:
            if not done.done():
                wait_for_thread([done])  # cancelled meanwhile (at most one COMMIT's wait)

    def _inline(self, fn: Callable[..., T], *args: Any) -> T:
        """A statement inline (every one but a threaded group's COMMIT): ``_call``'s errors,
        without a coroutine of its own (the hot path awaits nothing here)."""
        if not self._open_:
            raise RuntimeError(f"the database {self.path} is not open")
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            self._raise_translated(exc)

    def _raise_translated(self, exc: sqlite3.Error) -> NoReturn:
        """Raise ``exc`` as the user sees it: :class:`StorageUnavailable` when it is about the
        file's resources (see :meth:`_unavailable`), else as it is."""
        unavailable = self._unavailable(exc)
        if unavailable is None:
            raise exc
        raise unavailable from exc

    async def _patiently(self, fn: Callable[[], T]) -> T:
        """``_call(fn)``, and again while another process holds the lock (``fn`` raises
        :class:`_Busy` before it has done anything: see :func:`_patient`), for up to
        ``lock_timeout`` seconds; then :class:`StorageUnavailable`. The waits are sleeps:
        the event loop (the HTTP server, the reads) goes on meanwhile."""
        try:
            return self._inline(fn)
        except _Busy as first:
            busy = first
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lock_timeout
        delay = 0.005
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)
            try:
                return self._inline(fn)
            except _Busy as again:
                busy = again
        unavailable = self._unavailable(busy.error)
        assert unavailable is not None
        raise unavailable from busy.error

    def _unavailable(self, exc: sqlite3.Error) -> StorageUnavailable | None:
        """What a sqlite3 error means for the user, if it is about the file's resources (and
        then it is counted, and logged once per outage)."""
        unavailable = storage_error(exc, self.path)
        if unavailable is None:
            return None
        self.failures += 1
        if unavailable.reason in ("read-only", "cannot-open"):
            self._reopen = True
        if self.unavailable is None:
            logger.warning("%s", unavailable.message)
        self.unavailable = unavailable
        return unavailable

    def _usable(self) -> None:
        """A commit succeeded: if the database was failing, it is usable again."""
        if self.unavailable is not None:
            logger.info("the database %s is usable again; resuming", self.path)
            self.unavailable = None
            available, self._available = self._available, asyncio.Event()
            available.set()

    async def wait_available(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the next commit that succeeds after a failure
        (what retries of the work that hit :class:`StorageUnavailable` wait for)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):  # (not wait_for: it may swallow a cancel)
                await self._available.wait()

    def _lost(self) -> Exception:
        """The error for a unit whose transaction SQLite rolled back on an earlier error."""
        if self.unavailable is not None:
            u = self.unavailable
            return StorageUnavailable(u.message, path=u.path, reason=u.reason)
        return DatabaseError(
            f"a write to the database {self.path} failed and SQLite rolled back its "
            "transaction; retry"
        )

    def in_transaction(self) -> bool:
        return self._current() is not None

    def _conn(self, *, write: bool) -> sqlite3.Connection:
        conn = self._writer if write else self._reader
        if conn is None:
            raise RuntimeError(f"the database {self.path} is not open")
        return conn

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)``; sees committed data (or, inside a transaction, that
        transaction's writes)."""
        tx = self._current()
        if tx is not None:
            return await self._in_tx(tx, fn)
        return await self._patiently(_patient(lambda: fn(self._conn(write=False))))

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, atomic: bool = False) -> T:
        """Run ``fn(connection)`` in the current transaction, or in one of its own; returns
        its result.

        ``atomic``: ``fn`` changes the database by one statement at most (it may read before
        it), so when it fails it has changed nothing (SQLite backs a failed statement out on
        its own). The first write of a unit that joins a group commit then needs no savepoint
        around it; should the unit fail after it, the whole group's transaction is rolled
        back and every unit in it told so (as when SQLite itself rolls it back)."""
        tx = self._current()
        if tx is not None:
            return await self._in_tx(tx, fn, atomic)
        if not self.group_commit:
            async with self._lock:
                result = await self._patiently(lambda: self._atomic(fn))
                self._usable()
                return result
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

    async def _in_tx(
        self, tx: _Transaction, fn: Callable[[sqlite3.Connection], T], atomic: bool = False
    ) -> T:
        ops, tx.pending = tx.pending, []
        begin = not tx.begun
        tx.begun = True
        tx.flushes += 1
        writer = self._conn(write=True)

        group = tx.group
        if begin and group is not None and group.failed is not None:
            raise self._lost()

        def work() -> T:
            nonlocal writer
            if begin and group is None:
                if self._reopen:
                    writer = self._reconnect_writer()
                try:
                    _begin(writer)
                except sqlite3.OperationalError as exc:
                    if _is_busy(exc):
                        raise _Busy(exc) from exc  # nothing done yet: run it again
                    raise
            elif not writer.in_transaction:
                # The group's transaction is gone, or this unit's was rolled back under it by
                # an error it caught: never autocommit the rest.
                raise self._lost()
            elif group is not None and not tx.savepoint:
                if begin and atomic and not ops:
                    # One statement that changes all or nothing: no savepoint for it.
                    result = fn(writer)
                    tx.bare_write = True
                    return result
                # The unit's first write, or a write after a first one made without it.
                writer.execute(f"SAVEPOINT {_UNIT}")
                tx.savepoint = True
            for op in ops:
                op(writer)
            return fn(writer)

        if begin and group is None:
            return await self._patiently(work)
        return self._inline(work)

    def _atomic(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._reconnect_writer() if self._reopen else self._conn(write=True)
        try:
            _begin(conn)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise _Busy(exc) from exc
            raise
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
        checkpointer = self.checkpointer
        if checkpointer is not None:
            checkpointer.committed()
            if checkpointer.restart_due:
                checkpointer.restart(conn)

    def after_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` once the current transaction commits (at once outside one)."""
        tx = self._current()
        if tx is not None:
            tx.hooks.append(hook)
        else:
            hook()

    def transaction(self) -> _Block:
        """One atomic unit: every write made inside joins it. Nested blocks are savepoints.
        ``async with db.transaction() as outermost`` says whether this block is the outermost
        one. Rolls back if the block raises. Returns once the unit is committed (units that
        end in the same turn of the event loop share one COMMIT: see :class:`_Group`)."""
        return _Block(self)

    async def _end(self, tx: _Transaction) -> _Group | None:
        """The outermost block of ``tx`` ended without an error: release its savepoint in the
        open group, or commit it (leaving its transaction open for the group of this turn,
        with group commit); the group to wait for, if any. On an error, rolls back first."""
        try:
            group: _Group | None = None
            if tx.group is not None:
                group = tx.group
                # (A unit whose one write needed no savepoint has nothing to release; were
                # the group's transaction gone under it, the group fails, and with it this.)
                if tx.pending or tx.savepoint:
                    await self._in_tx(tx, _release_unit)
                group.hooks.extend(tx.hooks)
            elif tx.begun or tx.pending:
                if self.group_commit:
                    # Leave the transaction open for the units of this turn; commit after.
                    # (Only writes still pending, or a transaction gone under the unit, need
                    # a trip through _in_tx: it flushes the first and raises for the second.)
                    if tx.pending or not self._conn(write=True).in_transaction:
                        await self._in_tx(tx, _nothing)
                    if self._executor is None and _nothing_ready():
                        # No other work is ready to run before the next turn of the loop,
                        # so no unit could join a group: commit now, without the turn.
                        self._inline(self._commit, self._conn(write=True))
                        self.alone_commits += 1
                        self._usable()
                        return None
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
                    self._usable()
            return group
        except BaseException as exc:
            await self._abandon(tx, exc)
            raise

    async def _abandon(self, tx: _Transaction, exc: BaseException) -> None:
        """Undo what the outermost block of ``tx`` wrote, as it failed with ``exc``."""
        if not tx.begun:
            return
        # (Inline, under the unit's lock: before any later statement.)
        with contextlib.suppress(BaseException):
            writer = self._conn(write=True)
            if tx.group is not None:
                if tx.bare_write:
                    # A write of the unit is outside any savepoint: only the whole group's
                    # transaction can undo it.
                    self._inline(_rollback, writer)
                    self._lose(tx.group, exc)
                elif not tx.savepoint:
                    # Its one write failed and changed nothing, unless SQLite rolled the whole
                    # transaction back on its error.
                    if not writer.in_transaction:
                        self._lose(tx.group, exc)
                elif not self._inline(_rollback_unit, writer):
                    self._lose(tx.group, exc)
            else:
                self._inline(_rollback, writer)

    def _lose(self, group: _Group, exc: BaseException) -> None:
        """SQLite rolled the group's whole transaction back on the error that failed one of
        its units: every unit in it fails (none is reported done), and the next unit starts a
        transaction of its own."""
        if group.failed is None:
            group.failed = exc if isinstance(exc, Exception) else self._lost()
        if self._group is group:
            self._group = None

    def _commit_inline(self, group: _Group) -> None:
        if self._lock.locked():  # a unit is under way (it joins): commit after it
            asyncio.get_running_loop().call_soon(self._commit_inline, group)
            return
        if group.failed is not None:
            group.settle(self._lost())  # its transaction is gone: nothing to commit
            return
        if self._group is group:
            self._group = None
        try:
            self._commit(self._conn(write=True))
        except Exception as exc:
            with contextlib.suppress(Exception):
                _rollback(self._conn(write=True))
            failure: Exception = exc
            if isinstance(exc, sqlite3.Error):
                failure = self._unavailable(exc) or exc
            group.settle(failure)
            return
        self._finish_group(group)

    def _finish_group(self, group: _Group) -> None:
        self._usable()
        # The hooks first (they only schedule work): a unit that resumes after its commit
        # then finds what they started already queued behind it.
        for hook in group.hooks:
            try:
                hook()
            except Exception:
                logger.exception("an after-commit hook failed")
        group.settle(None)

    async def _commit_group(self, group: _Group) -> None:
        """(Threaded.) The group's COMMIT on the database thread, under the lock: no unit
        runs a statement on the writer until the thread is done with it."""
        try:
            await asyncio.sleep(0)  # let the units that are ready this turn join
            async with self._lock:
                if group.failed is not None:
                    group.settle(self._lost())  # its transaction is gone: nothing to commit
                    return
                if self._group is group:
                    self._group = None
                await self._call(self._commit, self._conn(write=True))
        except BaseException as exc:
            # (The COMMIT failed, or the group was interrupted, even before its turn: its
            # units are told. _call returns only once the thread is done with the writer, so
            # the transaction left open is rolled back here, inline.)
            if self._group is group:
                self._group = None
            with contextlib.suppress(BaseException):
                self._inline(_rollback, self._conn(write=True))
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


class _Block:
    """The ``async with`` block of :meth:`Database.transaction` (a class, not a generator:
    one is made for every step). The outermost block holds the database's lock from its
    start to its end and owns the transaction; a nested block is a savepoint in it."""

    __slots__ = ("_db", "_flushes", "_hooks", "_mark", "_name", "_token", "_tx")

    def __init__(self, db: Database) -> None:
        self._db = db
        self._tx: _Transaction | None = None
        self._token: contextvars.Token[_Transaction | None] | None = None

    async def __aenter__(self) -> bool:
        db = self._db
        tx = db._current()
        if tx is not None:  # nested: a savepoint, which reaches SQLite with the next statement
            self._tx = tx
            tx.depth += 1
            name = self._name = f"eventual_sp{tx.depth}"
            self._mark, self._flushes, self._hooks = len(tx.pending), tx.flushes, len(tx.hooks)
            tx.pending.append(lambda conn: conn.execute(f"SAVEPOINT {name}"))
            return False
        await db._lock.acquire()
        tx = self._tx = _Transaction(db._group)
        self._token = db._tx.set(tx)
        return True

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        db, tx = self._db, self._tx
        assert tx is not None
        token = self._token
        if token is None:
            await self._leave_savepoint(db, tx, exc)
            return
        group: _Group | None = None
        try:
            if exc is None:
                group = await db._end(tx)
            else:
                await db._abandon(tx, exc)
        finally:
            tx.active = False
            db._tx.reset(token)
            db._lock.release()
        if exc is not None:
            return  # (the block's error goes on)
        if group is not None:
            await group.wait()
            return
        for hook in tx.hooks:
            hook()

    async def _leave_savepoint(
        self, db: Database, tx: _Transaction, exc: BaseException | None
    ) -> None:
        name = self._name
        try:
            if exc is None:
                tx.pending.append(lambda conn: conn.execute(f"RELEASE {name}"))
                return
            del tx.hooks[self._hooks :]
            if tx.flushes == self._flushes:
                del tx.pending[self._mark :]  # nothing reached the database yet
            else:
                await db._in_tx(tx, lambda conn: _rollback_to(conn, name))
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
