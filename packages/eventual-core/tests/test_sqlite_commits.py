"""The SQLite database layer: units of work, group commit, and when a unit commits alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from eventual.core.history import EmittedEvent, WorkflowStarted
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.runtime import ConflictError, TaskRequest, TimerRequest
from eventual.core.runtime.sqlite import (
    Database,
    DatabaseError,
    SqliteTaskDispatcher,
    open_ports,
)
from eventual.core.runtime.sqlite.transaction import _UNIT

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """An opened database of the runtime's schema, closed after the test."""
    database = Database(tmp_path / "dev.db")
    await database.open()
    try:
        yield database
    finally:
        await database.close()


# ---------------------------------------------------------------- transactions


async def test_unit_of_work_commits_everything_or_nothing(db: Database) -> None:
    ports = open_ports(db, run_id="test")
    dispatcher = cast(SqliteTaskDispatcher, ports.tasks)
    record = Execution(
        id="wf/1",
        workflow="wf",
        status=ExecutionStatus.IN_PROGRESS,
        start_time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    await ports.executions.create(record)
    started = WorkflowStarted(workflow="wf", execution_id="wf/1")
    request = TaskRequest("wf/1", "wf", 0, 1, "t", [1])
    timer = TimerRequest("wf/1|t", "wf/1", datetime(2024, 1, 2, tzinfo=UTC))

    # A step computed from a stale history length: nothing it wrote survives.
    with pytest.raises(ConflictError):
        async with ports.unit_of_work():
            await ports.tasks.dispatch(request)
            await ports.timers.schedule(timer)
            await ports.queue.enqueue("other/1", [started])
            await ports.executions.commit_step(
                "wf/1", expected_length=5, events=[started], execution=record
            )
    counts = await db.read(lambda c: [_count(c, t) for t in ("timers", "queue")])
    assert counts == [0, 0]
    assert await ports.executions.read_history("wf/1") == []
    assert not dispatcher.has_pending()  # dispatched only once the unit commits

    # Any error rolls back, and a nested block is a savepoint.
    with pytest.raises(RuntimeError, match="boom"):
        async with ports.unit_of_work():
            await ports.tasks.dispatch(request)
            raise RuntimeError("boom")
    async with ports.unit_of_work():
        await ports.timers.schedule(timer)
        with pytest.raises(RuntimeError, match="inner"):
            async with db.transaction():
                await ports.tasks.dispatch(request)
                raise RuntimeError("inner")
        # Reads inside the unit see its own writes; reads outside do not, yet.
        assert await db.read(lambda c: _count(c, "timers")) == 1
        assert await _count_outside(db, "timers") == 0
        await ports.executions.commit_step(
            "wf/1", expected_length=0, events=[started], execution=record
        )
    counts = await db.read(lambda c: [_count(c, t) for t in ("timers", "queue")])
    assert counts == [1, 0]
    assert await ports.executions.read_history("wf/1") == [started]
    stored = await ports.executions.get("wf/1")
    assert stored is not None and stored.history_length == 1
    assert not dispatcher.has_pending()  # both dispatches were rolled back

    # Outside a unit, a dispatch is handed to the workers at once.
    await ports.tasks.dispatch(request)
    assert dispatcher.take(10) == [request]


async def _count_outside(db: Database, table: str) -> int:
    # Other work (a task with a context of its own) reads committed data only.
    import contextvars

    ctx = contextvars.Context()
    return await asyncio.get_running_loop().create_task(
        db.read(lambda c: _count(c, table)), context=ctx
    )


def _count(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


async def test_database_uses_wal_and_the_chosen_synchronous_level(tmp_path: Path) -> None:
    db = Database(tmp_path / "dev.db", synchronous="FULL")
    await db.open()
    try:
        mode = await db.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        level = await db.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert (mode, level) == ("wal", 2)
    finally:
        await db.close()
    with pytest.raises(ValueError, match="not durable enough"):
        Database(tmp_path / "x.db", synchronous="OFF")


# ---------------------------------------------------------------- commits


async def test_units_in_one_turn_share_a_commit_and_return_once_it_is_on_disk(
    db: Database,
) -> None:
    path = db.path
    ports = open_ports(db, run_id="test")
    seen_after_return: list[int] = []

    async def unit(n: int) -> None:
        async with ports.unit_of_work():
            await ports.events.publish([EmittedEvent(name=f"e{n}", payload=n)])
            if n == 3:
                raise RuntimeError("unit 3 fails")
        # Back from the block: committed, as another connection sees.
        with sqlite3.connect(path) as other:
            names = {r[0] for r in other.execute("SELECT name FROM outbox")}
        seen_after_return.append(int(f"e{n}" in names))

    before = db.commits
    results = await asyncio.gather(*(unit(n) for n in range(6)), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType"] * 3 + ["RuntimeError"] + [
        "NoneType"
    ] * 2
    assert seen_after_return == [1] * 5
    assert db.commits - before == 1  # six units, one COMMIT
    names = await db.read(lambda c: sorted(r[0] for r in c.execute("SELECT name FROM outbox")))
    assert names == ["e0", "e1", "e2", "e4", "e5"]  # the failed unit alone rolled back


async def _atomic_units(db: Database, fail_after_write: int | None) -> list[str]:
    """Six units in one turn, each one atomic INSERT (unit 2's hits a duplicate key);
    ``fail_after_write``: that unit raises after its write went in. Their outcomes."""

    async def unit(n: int) -> None:
        async with db.transaction():
            key = 1 if n == 2 else n
            await db.write(lambda c: c.execute("INSERT INTO t VALUES (?)", (key,)), atomic=True)
            if n == fail_after_write:
                raise RuntimeError(f"unit {n} fails")

    results = await asyncio.gather(*(unit(n) for n in range(6)), return_exceptions=True)
    return [type(r).__name__ for r in results]


async def test_atomic_writes_in_a_group_need_no_savepoint_and_a_failure_after_one_loses_the_group(
    db: Database,
) -> None:
    await db.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
    statements: list[str] = []
    db._conn(write=True).set_trace_callback(statements.append)
    before = db.commits
    # A unit whose one write fails changed nothing: the others commit, together.
    outcomes = await _atomic_units(db, fail_after_write=None)
    assert outcomes == ["NoneType"] * 2 + ["IntegrityError"] + ["NoneType"] * 3
    assert db.commits - before == 1
    assert not any("SAVEPOINT" in s for s in statements)
    rows = await db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t ORDER BY k")])
    assert rows == [0, 1, 3, 4, 5]

    await db.write(lambda c: c.execute("DELETE FROM t"))
    # A unit that fails after its write (outside any savepoint): only the whole group's
    # transaction can undo it, so every unit that joined it is told its work is lost;
    # the units after it start a transaction of their own and commit.
    outcomes = await _atomic_units(db, fail_after_write=3)
    assert outcomes == ["DatabaseError"] * 2 + ["IntegrityError", "RuntimeError"] + ["NoneType"] * 2
    rows = await db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t ORDER BY k")])
    assert rows == [4, 5]


async def test_a_second_write_after_a_savepoint_free_first_is_kept_or_lost_with_the_group(
    db: Database,
) -> None:
    """A unit's first write was atomic (no savepoint); its second opens the savepoint. Kept,
    both commit with the group; should the unit fail after them, its first write is outside
    the savepoint, so the whole group's transaction goes and every unit in it is told."""
    await db.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)"))

    async def units(fail: int | None) -> list[str]:
        async def unit(n: int) -> None:
            async with db.transaction():
                await db.write(lambda c: c.execute("INSERT INTO t VALUES (?)", (n,)), atomic=True)
                await db.write(lambda c: c.execute("INSERT INTO t VALUES (?)", (n + 100,)))
                if n == fail:
                    raise RuntimeError(f"unit {n} fails")

        results = await asyncio.gather(*(unit(n) for n in range(6)), return_exceptions=True)
        return [type(r).__name__ for r in results]

    def rows() -> Any:
        return db.read(lambda c: [r[0] for r in c.execute("SELECT k FROM t ORDER BY k")])

    statements: list[str] = []
    db._conn(write=True).set_trace_callback(statements.append)
    before = db.commits
    assert await units(fail=None) == ["NoneType"] * 6
    assert db.commits - before == 1
    # The first unit opens the transaction; each of the other five, joining it, opens its
    # savepoint at its second write (none at its first).
    assert statements.count(f"SAVEPOINT {_UNIT}") == 5
    assert (
        statements.index(f"SAVEPOINT {_UNIT}") == statements.index("INSERT INTO t VALUES (1)") + 1
    )
    assert await rows() == [*range(6), *range(100, 106)]

    await db.write(lambda c: c.execute("DELETE FROM t"))
    assert await units(fail=3) == ["DatabaseError"] * 3 + ["RuntimeError"] + ["NoneType"] * 2
    assert await rows() == [4, 5, 104, 105]


async def test_a_unit_alone_on_the_loop_commits_at_once_and_one_among_others_waits_for_them(
    db: Database,
) -> None:
    """Group commit waits one turn of the event loop for other units to join; when nothing
    else is ready to run, none can, so the unit commits before its block returns, without
    the turn. Either way the block returns only once its work is on disk."""
    path = db.path
    ports = open_ports(db, run_id="test")

    def on_disk(name: str) -> bool:
        with sqlite3.connect(path) as other:
            return other.execute("SELECT 1 FROM outbox WHERE name = ?", (name,)).fetchone()

    commits, alone = db.commits, db.alone_commits
    async with ports.unit_of_work():
        await ports.events.publish([EmittedEvent(name="solo", payload=1)])
    assert on_disk("solo")
    assert (db.commits - commits, db.alone_commits - alone) == (1, 1)

    # Other work ready to run (here, a callback): the unit waits the turn for it.
    ran: list[str] = []
    asyncio.get_running_loop().call_soon(ran.append, "other work")
    commits, alone = db.commits, db.alone_commits
    async with ports.unit_of_work():
        await ports.events.publish([EmittedEvent(name="grouped", payload=2)])
    assert on_disk("grouped")
    assert ran == ["other work"]  # it ran before the COMMIT the unit waited for
    assert (db.commits - commits, db.alone_commits - alone) == (1, 0)


async def test_a_unit_alone_whose_commit_fails_is_rolled_back_and_says_so(
    db: Database,
) -> None:
    ports = open_ports(db, run_id="test")
    # A deferred foreign key fails at COMMIT only: the unit's COMMIT, made at once.
    writer = db._conn(write=True)
    writer.execute("PRAGMA foreign_keys = ON")  # (outside a transaction, or a no-op)
    await db.write(lambda c: c.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
    await db.write(
        lambda c: c.execute(
            "CREATE TABLE child (parent INTEGER REFERENCES parent(id) DEFERRABLE "
            "INITIALLY DEFERRED)"
        )
    )
    alone = db.alone_commits
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        async with ports.unit_of_work():
            await ports.events.publish([EmittedEvent(name="lost", payload=1)])
            await db.write(lambda c: c.execute("INSERT INTO child VALUES (999999)"))
    assert db.alone_commits == alone
    assert not writer.in_transaction  # rolled back, not left open
    names = await db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM outbox")])
    assert names == []
    # The database goes on: the next unit commits.
    async with ports.unit_of_work():
        await ports.events.publish([EmittedEvent(name="next", payload=2)])
    names = await db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM outbox")])
    assert names == ["next"]


async def test_threaded_a_group_commits_on_the_thread_while_the_loop_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``threaded=True`` only a group's COMMIT (the fsync under synchronous=FULL) leaves
    the event loop: while the thread is in it, reads and other coroutines run, a unit that
    starts meanwhile waits for the writer, and each block returns once its COMMIT is done."""
    db = Database(tmp_path / "dev.db", synchronous="FULL", threaded=True)
    await db.open()
    try:
        ports = open_ports(db, run_id="test")
        loop_thread = threading.get_ident()
        in_commit, release = threading.Event(), threading.Event()
        threads: list[str] = []
        commit = db._commit

        def slow_commit(conn: sqlite3.Connection) -> None:
            threads.append("loop" if threading.get_ident() == loop_thread else "thread")
            if len(threads) == 1:
                in_commit.set()
                release.wait(10)  # the disk is slow
            commit(conn)

        monkeypatch.setattr(db, "_commit", slow_commit)
        statements: list[str] = []
        db._conn(write=True).set_trace_callback(
            lambda sql: statements.append("loop" if threading.get_ident() == loop_thread else sql)
        )

        async def publish(name: str) -> None:
            async with ports.unit_of_work():
                await ports.events.publish([EmittedEvent(name=name, payload=1)])

        first = asyncio.create_task(publish("first"))
        assert await asyncio.to_thread(in_commit.wait, 10)
        # The thread is in the first COMMIT: the loop still reads, and a second unit waits.
        assert await db.read(lambda c: _count(c, "outbox")) == 0
        second = asyncio.create_task(publish("second"))
        for _ in range(10):  # turns of the loop: the second unit gets as far as it can
            await asyncio.sleep(0)
        assert not first.done() and not second.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 10)
        names = await db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM outbox")])
        assert names == ["first", "second"]
        assert threads == ["thread", "thread"]  # both COMMITs, on the thread
        # Every other statement on the writer ran on the loop's thread.
        assert statements and {s for s in statements if s != "loop"} <= {"COMMIT"}
    finally:
        await db.close()


async def test_threaded_a_group_commit_interrupted_before_its_commit_keeps_nothing(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "dev.db", synchronous="FULL", threaded=True)
    await db.open()
    try:
        ports = open_ports(db, run_id="test")

        async def publish(name: str) -> None:
            async with ports.unit_of_work():
                await ports.events.publish([EmittedEvent(name=name, payload=1)])

        unit = asyncio.create_task(publish("lost"))
        for _ in range(10):  # until the unit has ended and its group waits for the COMMIT
            await asyncio.sleep(0)
            if db._group_task is not None:
                break
        assert db._group_task is not None
        await asyncio.sleep(0)  # (the group's task under way, waiting for its turn)
        db._group_task.cancel()  # (the runtime stopping hard, say)
        async with asyncio.timeout(10):
            with pytest.raises(DatabaseError, match="commit interrupted"):
                await unit
            # Nothing of it was kept, and its transaction is not left open for the next one.
            await publish("kept")
        names = await db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM outbox")])
        assert names == ["kept"]
    finally:
        async with asyncio.timeout(10):  # (a group never told would hold close() for ever)
            await db.close()
