"""The SQLite runtime across stops and restarts, its transactions, and --reload's swap."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eventual.core import ExecutionStatus, async_result, signal, task, task_context, workflow
from eventual.core._context import use_runtime
from eventual.core.history import TaskSucceeded
from eventual.core.models import Execution
from eventual.core.runtime.ports import encode_token
from eventual.core.runtime.runtime import started_event
from eventual.core.runtime.sqlite import (
    SCHEMA_VERSION,
    Database,
    DatabaseError,
    DatabaseLocked,
    SqliteRuntime,
    _outstanding_attempts,
)
from eventual.core.runtime.sqlite.recovery import _unstarted
from eventual.core.service import Service, load_service

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def service() -> Service:
    return load_service(sys.modules[__name__], module_only=True, name="restart")


def runtime(service: Service, db: Path, **kw: Any) -> SqliteRuntime:
    return SqliteRuntime(service, db_path=db, **kw)


async def until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll ``predicate`` (sync or async) until it is true, failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def assert_clean(history: list[Any]) -> None:
    ids = [e.id for e in history]
    assert len(ids) == len(set(ids)), ids
    scheduled = {e.seq for e in history if e.type == "TaskScheduled"}
    succeeded = [e.seq for e in history if e.type == "TaskSucceeded"]
    assert sorted(succeeded) == sorted(scheduled)


# ---------------------------------------------------------------- definitions

calls: list[str] = []


@task("rsAdd")
async def add(a: int, b: int) -> int:
    calls.append(f"add:{task_context().execution_id}")
    return a + b


@workflow("rsSleepy")
async def sleepy(seconds: float) -> int:
    first = await add(1, 2)
    await asyncio.sleep(seconds)
    return await add(first, 10)


go = signal("rsGo", int)


@workflow("rsWaiter")
async def waiter(_: None) -> int:
    return await go.expect_signal() * 2


blocking: list[int] = []


@task("rsBlocking")
async def blocking_task() -> str:
    blocking.append(task_context().attempt)
    if len(blocking) == 1:
        await asyncio.Event().wait()  # never returns: the process "dies" while it runs
    return f"ran {len(blocking)} times"


@workflow("rsInterrupted")
async def interrupted(_: None) -> str:
    return await blocking_task()


tokens: list[str] = []


@task("rsAsync")
async def async_task() -> str:
    return async_result(tokens.append)


@workflow("rsAsyncWf")
async def async_wf(_: None) -> str:
    return await async_task()


# ---------------------------------------------------------------- restarts


async def test_execution_resumes_after_restart(service: Service, tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    calls.clear()
    async with runtime(service, db) as rt, asyncio.timeout(10):
        with use_runtime(rt):
            handle = await sleepy.start_execution(0.3, execution_name="a")
        await until(lambda: len(calls) == 1)
        await rt.idle()
        assert (await rt.get_execution("rsSleepy/a")).status is ExecutionStatus.IN_PROGRESS
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution(handle.execution_id, timeout=10)
        assert (done.status, done.result) == (ExecutionStatus.SUCCEEDED, 13)
        assert_clean(await rt.get_history(handle.execution_id))
    assert len(calls) == 2


async def test_timer_that_fell_due_while_down_fires_at_once(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db) as rt:
        with use_runtime(rt):
            await sleepy.start_execution(0.2, execution_name="t")
        await until(lambda: _has(rt, "rsSleepy/t", "TimerScheduled"))
        history = await rt.get_history("rsSleepy/t")
    due = next(e.until for e in history if e.type == "TimerScheduled")
    # The timer falls due while nothing runs.
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.01)
    assert datetime.now(UTC) > due
    restarted = datetime.now(UTC)
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution("rsSleepy/t", timeout=5)
        assert done.result == 13
        history = await rt.get_history("rsSleepy/t")
    fired = next(e for e in history if e.type == "TimerCompleted")
    assert fired.timestamp >= restarted


async def _has(rt: SqliteRuntime, execution_id: str, kind: str) -> bool:
    if await rt.ports.executions.get(execution_id) is None:
        return False
    return kind in [e.type for e in await rt.get_history(execution_id)]


async def test_queued_start_and_signal_are_delivered_by_the_next_process(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db) as rt:
        await rt.start_execution("rsWaiter", None, execution_name="w")
        await until(lambda: _has(rt, "rsWaiter/w", "WorkflowStarted"))
    # A runtime without workers only writes: the start and the signal stay queued.
    async with runtime(service, db, workers=False) as rt:
        await rt.start_execution("rsWaiter", None, execution_name="queued")
        await rt.send_signal("rsWaiter/w", "rsGo", 21, signal_id="s1")
        await rt.idle()
        assert [e.type for e in await rt.get_history("rsWaiter/w")] == ["WorkflowStarted"]
        assert await rt.get_history("rsWaiter/queued") == []
    async with runtime(service, db) as rt:
        assert (await rt.wait_for_execution("rsWaiter/w", timeout=5)).result == 42
        await rt.send_signal("rsWaiter/queued", "rsGo", 1)
        assert (await rt.wait_for_execution("rsWaiter/queued", timeout=5)).result == 2


async def test_a_start_never_stepped_is_rebuilt_from_its_record_ahead_of_its_signal(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    statements: list[str] = []
    async with runtime(service, db, workers=False) as rt:
        rt.db._conn(write=True).set_trace_callback(statements.append)
        await rt.start_execution("rsWaiter", None, execution_name="early")
        # Signalled before its first step: the signal is a queued row, the start is not.
        await rt.send_signal("rsWaiter/early", "rsGo", 5, signal_id="s-early")
        # A file of an earlier version queued its starts as rows: such a start is left to
        # its row (not rebuilt a second time).
        await rt.start_execution("rsWaiter", None, execution_name="legacy")
        legacy = await rt.get_execution("rsWaiter/legacy")
        await rt.ports.queue.enqueue("rsWaiter/legacy", [started_event(legacy)])
        unstarted = [e.id for e in await rt.db.read(_unstarted)]
    queued = [s for s in statements if s.startswith("INSERT INTO queue")]
    assert len(queued) == 2 and "SignalReceived" in queued[0] and "rsWaiter/legacy" in queued[1]
    assert unstarted == ["rsWaiter/early"]
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution("rsWaiter/early", timeout=5)
        history = [e.type for e in await rt.get_history("rsWaiter/early")]
        await rt.send_signal("rsWaiter/legacy", "rsGo", 1)
        assert (await rt.wait_for_execution("rsWaiter/legacy", timeout=5)).result == 2
        legacy_history = [e.type for e in await rt.get_history("rsWaiter/legacy")]
        assert rt.errors == []
    assert done.result == 10
    assert history[:2] == ["WorkflowStarted", "SignalReceived"]
    assert legacy_history.count("WorkflowStarted") == 1


async def test_task_interrupted_by_a_stop_runs_again_and_succeeds_once(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    blocking.clear()
    async with runtime(service, db) as rt:
        await rt.start_execution("rsInterrupted", None, execution_name="i")
        await until(lambda: len(blocking) == 1)
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution("rsInterrupted/i", timeout=5)
        assert done.result == "ran 2 times"
        history = await rt.get_history("rsInterrupted/i")
    assert blocking == [1, 1]  # the same attempt, run again
    assert [e.type for e in history].count("TaskSucceeded") == 1
    assert_clean(history)


async def test_task_waiting_for_its_token_is_not_run_again(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    tokens.clear()
    async with runtime(service, db) as rt:
        await rt.start_execution("rsAsyncWf", None, execution_name="x")
        await until(lambda: len(tokens) == 1)
        await rt.idle()
    async with runtime(service, db) as rt:
        await rt.idle()
        assert len(tokens) == 1
        await rt.send_task_success(tokens[0], "approved")
        assert (await rt.wait_for_execution("rsAsyncWf/x", timeout=5)).result == "approved"


async def test_a_second_process_cannot_open_the_database(service: Service, tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db):
        with pytest.raises(DatabaseLocked, match="in use by another Eventual process"):
            async with runtime(service, db):
                pass
    async with runtime(service, db):  # released on exit
        pass


# ---------------------------------------------------------------- --reload


def make_service(module_name: str, greeting: str) -> Service:
    """A one-workflow service defined in its own throwaway module."""
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    source = f"""
from eventual.core import signal, task, workflow

go = signal("rlGo", int)

@task("rlGreet")
async def greet(name: str) -> str:
    return "{greeting} " + name

@workflow("rlWorkflow")
async def wf(name: str) -> str:
    await go.expect_signal()
    return await greet(name)
"""
    exec(compile(source, module_name, "exec"), module.__dict__)
    return load_service(module, module_only=True, name="reload")


async def test_replace_service_swaps_handlers_and_keeps_executions(tmp_path: Path) -> None:
    v1 = make_service("sqlite_reload_v1", "hello")
    v2 = make_service("sqlite_reload_v2", "bonjour")
    async with runtime(v1, tmp_path / "dev.db") as rt:
        await rt.start_execution("rlWorkflow", "ann", execution_name="r")
        await until(lambda: _has(rt, "rlWorkflow/r", "WorkflowStarted"))
        await rt.idle()
        rt.replace_service(v2)
        await rt.send_signal("rlWorkflow/r", "rlGo", 1)
        done = await rt.wait_for_execution("rlWorkflow/r", timeout=5)
        assert done.result == "bonjour ann"
        assert rt.errors == []


def make_family(module_name: str, child_body: str) -> Service:
    module = types.ModuleType(module_name)
    sys.modules[module_name] = module
    source = f"""
import asyncio
from eventual.core import EventualError, signal, task, workflow

poke = signal("fmPoke")

@task("fmStep")
async def step() -> str:
    return "step"

@workflow("fmChild")
async def child(_: None) -> str:
{child_body}
    return "child done"

@workflow("fmParent")
async def parent(_: None) -> str:
    try:
        return await child(None)
    except EventualError as e:
        return f"child failed: {{e.name}}"
"""
    exec(compile(source, module_name, "exec"), module.__dict__)
    return load_service(module, module_only=True, name="family")


async def test_a_child_that_no_longer_replays_fails_and_its_parent_hears_of_it(
    tmp_path: Path,
) -> None:
    v1 = make_family("sqlite_family_v1", "    await asyncio.sleep(30)")
    v2 = make_family("sqlite_family_v2", "    await step()")
    async with runtime(v1, tmp_path / "dev.db") as rt:
        await rt.start_execution("fmParent", None, execution_name="p")
        await until(lambda: _has(rt, "fmChild/fmParent.p.0", "TimerScheduled"))
        rt.replace_service(v2)
        # The child's next event replays it against code that now calls a task first.
        await rt.send_signal("fmChild/fmParent.p.0", "fmPoke", None)
        child = await rt.wait_for_execution("fmChild/fmParent.p.0", timeout=5)
        assert child.error == "DeterminismError"
        parent = await rt.wait_for_execution("fmParent/p", timeout=5)
        assert parent.result == "child failed: DeterminismError"
        assert rt.errors == []


async def test_unusable_database_files_fail_with_a_clear_error(
    service: Service, tmp_path: Path
) -> None:
    newer = tmp_path / "newer.db"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(DatabaseError, match="written by a newer Eventual"):
        async with runtime(service, newer):
            pass
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DatabaseError, match=r"cannot open the database .*junk\.db"):
        async with runtime(service, junk):
            pass
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(DatabaseError, match="writable directory"):
        async with runtime(service, blocked / "dev.db"):
            pass


# ---------------------------------------------------------------- hand-overs, checkpoints


rerun: list[int] = []


@task("rsCounted")
async def counted() -> str:
    rerun.append(task_context().attempt)
    return "counted"


@workflow("rsCountedWf")
async def counted_wf(_: None) -> str:
    return await counted()


async def test_task_results_go_straight_to_the_orchestrator(
    service: Service, tmp_path: Path
) -> None:
    rerun.clear()
    statements: list[str] = []
    async with runtime(service, tmp_path / "dev.db") as rt:
        writer = rt.db._conn(write=True)
        writer.set_trace_callback(statements.append)
        await rt.start_execution("rsCountedWf", None, execution_name="a")
        assert (await rt.wait_for_execution("rsCountedWf/a", timeout=5)).result == "counted"
        writer.set_trace_callback(None)
        left = await rt.db.read(
            lambda c: c.execute(
                "SELECT (SELECT COUNT(*) FROM claims), (SELECT COUNT(*) FROM queue)"
            ).fetchone()
        )
        claim = await rt.ports.claims.get("rsCountedWf/a", 0, 1)
        token = encode_token("rsCountedWf/a", 0, 1)
        # The finished claim answers like one in its own row: done, and its token still names
        # a task that was started (a late completion by token is accepted and dropped).
        assert await rt.send_task_heartbeat(token) is False
        await rt.send_task_success(token, "late")
        await rt.idle()
        history = await rt.get_history("rsCountedWf/a")
        still = await rt.ports.claims.get("rsCountedWf/a", 0, 1)
    # Neither the start nor the task's result went through the queue (the record made the
    # start durable; the result had no row and no commit of its own). Neither the dispatch
    # nor the finished claim wrote a row: the history records both.
    assert not any(s.startswith("INSERT INTO queue") for s in statements)
    assert not any(s.startswith("INSERT OR REPLACE INTO claims") for s in statements)
    assert not any("tasks" in s for s in statements)
    assert left == (0, 0)
    assert claim is not None and claim.done and not claim.timed_out
    assert still == claim
    assert [e.type for e in history].count("TaskSucceeded") == 1
    assert rerun == [1]


async def _die_before_applying_the_result(rt: SqliteRuntime, name: str) -> None:
    """Start rsCountedWf/``name``; its task's result is handed over, and the process "dies"
    (hangs) before the step that applies it commits."""
    orchestrate = rt.orchestrate
    dying = asyncio.Event()

    async def orchestrate_or_die(execution_id: str, events: Any) -> None:
        if any(isinstance(e, TaskSucceeded) for e in events):
            dying.set()
            await asyncio.Event().wait()
        await orchestrate(execution_id, events)

    rt.orchestrate = orchestrate_or_die  # type: ignore[method-assign]
    await rt.start_execution("rsCountedWf", None, execution_name=name)
    await asyncio.wait_for(dying.wait(), 5)


async def test_a_result_handed_over_but_never_applied_runs_its_attempt_again(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    rerun.clear()
    async with runtime(service, db) as rt:
        await _die_before_applying_the_result(rt, "b")
        # Nothing durable says the attempt ran: the history has its TaskScheduled and no
        # result, and no queue row holds one: a start finds it outstanding.
        outstanding = await rt.db.read(_outstanding_attempts)
        assert [(r.execution_id, r.seq, r.attempt) for r in outstanding] == [
            ("rsCountedWf/b", 0, 1)
        ]
        assert await rt.db.read(lambda c: c.execute("SELECT COUNT(*) FROM queue").fetchone()) == (
            0,
        )
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution("rsCountedWf/b", timeout=5)
        history = await rt.get_history("rsCountedWf/b")
    assert done.result == "counted"
    assert rerun == [1, 1]  # the same attempt, run again
    assert_clean(history)


async def test_the_wal_is_checkpointed_off_the_commit_path(tmp_path: Path) -> None:
    db = Database(tmp_path / "dev.db")
    await db.open()
    try:
        auto = await db.write(lambda c: c.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        assert auto == 0  # no COMMIT runs a checkpoint
        checkpointer = db.checkpointer
        assert checkpointer is not None
        db.group_commit = False  # one commit per write, to cross the threshold
        for i in range(checkpointer.every + 1):
            await db.write(
                lambda c, i=i: c.execute(
                    "INSERT INTO outbox (name, payload) VALUES (?, ?)", (f"e{i}", "1")
                )
            )
        await until(lambda: checkpointer.runs >= 1)
        busy, log, done = await db.read(
            lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        )
        assert busy == 0 and log == done  # everything is back in the database file
    finally:
        await db.close()


async def test_the_wal_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    """A passive checkpoint never catches up with steady writes, so SQLite would never start
    the WAL again: past its limit the checkpointer restarts it, and the file stays near it."""
    limit = 256 * 1024
    db = Database(tmp_path / "dev.db", wal_limit=limit)
    await db.open()
    try:
        checkpointer = db.checkpointer
        assert checkpointer is not None
        db.group_commit = False
        body = "x" * 2000  # a page or more a commit: past the limit within ~60 commits
        peak = 0
        for i in range(40 * checkpointer.every):
            await db.write(
                lambda c, i=i: c.execute(
                    "INSERT INTO outbox (name, payload) VALUES (?, ?)", (f"e{i}", body)
                )
            )
            peak = max(peak, checkpointer._wal_size())
        # Without the restarts the WAL holds every commit: 40 x 256 commits of a page or more.
        written = 40 * checkpointer.every * 4096
        assert checkpointer.restarts >= 1
        assert peak < written / 4, (peak, written)
        rows = await db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0])
        assert rows == 40 * checkpointer.every  # nothing lost on the way
    finally:
        await db.close()
    writer = sqlite3.connect(tmp_path / "dev.db")
    assert writer.execute("SELECT count(*) FROM outbox").fetchone()[0] == 40 * 256
    writer.close()


async def test_the_wal_stays_bounded_when_the_checkpoint_thread_falls_behind(
    tmp_path: Path,
) -> None:
    """A busy machine may starve the checkpointer's thread; the writer's own look at the
    WAL's size every ``every`` commits still starts it again, so the bound does not depend
    on the thread's pace (here the thread is stopped outright)."""
    limit = 256 * 1024
    db = Database(tmp_path / "dev.db", wal_limit=limit)
    await db.open()
    try:
        checkpointer = db.checkpointer
        assert checkpointer is not None
        checkpointer.stop()  # no passive checkpoints, no restart marked by the thread
        db.group_commit = False
        body = "x" * 2000
        peak = 0
        commits = 20 * checkpointer.every
        for i in range(commits):
            await db.write(
                lambda c, i=i: c.execute(
                    "INSERT INTO outbox (name, payload) VALUES (?, ?)", (f"e{i}", body)
                )
            )
            peak = max(peak, checkpointer._wal_size())
        assert checkpointer.runs == 0
        assert checkpointer.restarts >= 5
        # Twice the limit, plus what the commits between two looks add (up to four WAL frames
        # of a page each: the row, its overflow and the indexes); the commits wrote 60 MB.
        assert peak < 2 * limit + 4 * checkpointer.every * (4096 + 24), peak
        rows = await db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0])
        assert rows == commits
    finally:
        await db.close()


async def test_a_schema_1_file_loses_its_tasks_table_and_keeps_its_attempts(
    service: Service, tmp_path: Path
) -> None:
    """Schema 1 kept a row per dispatched attempt; schema 2 finds them in the history."""
    db = tmp_path / "dev.db"
    rerun.clear()
    async with runtime(service, db) as rt:
        await _die_before_applying_the_result(rt, "old")
    # What schema 1 left: its version, and the attempt's pending dispatch row.
    conn = sqlite3.connect(db)
    conn.executescript(
        "CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT, "
        "seq INTEGER, attempt INTEGER, request TEXT, state TEXT DEFAULT 'pending');"
        "INSERT INTO tasks (execution_id, seq, attempt, request) "
        "VALUES ('rsCountedWf/old', 0, 1, '{}'); PRAGMA user_version = 1;"
    )
    conn.close()
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution("rsCountedWf/old", timeout=5)
        tables = await rt.db.read(
            lambda c: c.execute("SELECT name FROM sqlite_master WHERE name = 'tasks'").fetchall()
        )
        version = await rt.db.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
    assert done.result == "counted"
    assert rerun == [1, 1]
    assert tables == []
    assert version == SCHEMA_VERSION


async def test_a_schema_2_file_gains_the_build_column_and_keeps_its_executions(
    service: Service, tmp_path: Path
) -> None:
    """Schema 3 records each execution's build; a dev database of schema 2 gets the column on
    open, its old executions listed without a build and new ones with theirs."""
    db = tmp_path / "dev.db"
    rerun.clear()
    async with runtime(service, db) as rt:
        await _die_before_applying_the_result(rt, "old")
    # What schema 2 left: the executions table without the column, records without a build.
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, record FROM executions").fetchall()
    conn.executescript(
        "CREATE TABLE executions2 (id TEXT PRIMARY KEY, workflow TEXT NOT NULL, "
        "status TEXT NOT NULL, start_ts REAL NOT NULL, history_length INTEGER NOT NULL "
        "DEFAULT 0, record TEXT NOT NULL);"
        "INSERT INTO executions2 SELECT id, workflow, status, start_ts, history_length, record "
        "FROM executions; DROP TABLE executions; ALTER TABLE executions2 RENAME TO executions;"
        "PRAGMA user_version = 2;"
    )
    for execution_id, record in rows:
        old = Execution.model_validate_json(record).model_copy(update={"build": None})
        conn.execute(
            "UPDATE executions SET record = ? WHERE id = ?", (old.model_dump_json(), execution_id)
        )
    conn.commit()
    conn.close()
    async with runtime(service, db) as rt:
        done = await rt.wait_for_execution("rsCountedWf/old", timeout=5)
        new_id = await rt.start_execution("rsCountedWf", None, execution_name="new")
        await rt.wait_for_execution(new_id, timeout=5)
        version = await rt.db.read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        listed = {e.id: e.build for e in (await rt.list_executions())[0]}
        of_build, _ = await rt.list_executions(build=service.build)
    assert done.result == "counted" and done.build is None
    assert version == SCHEMA_VERSION == 3
    assert listed == {"rsCountedWf/old": None, "rsCountedWf/new": service.build}
    assert [e.id for e in of_build] == ["rsCountedWf/new"]
