"""Exhausted resources on the SQLite runtime (issue 21, item 2): the database file read-only,
the disk full, the database locked by another process, a corrupted history row.

Each test asserts what a user sees: the error's text (the file and the fix), the HTTP 503 of
the request that hit it (and that it recorded nothing), the executions recorded before it
kept, the damaged execution FAILED with a readable reason while the others go on, and the
runtime resuming by itself once the cause is removed, without a restart. Where SQLite can be
made to fail for real it is (``PRAGMA max_page_count`` for a full disk, a second process in
``BEGIN EXCLUSIVE`` for the lock, a connection SQLite opened read-only); an
``OperationalError`` injected at the connection stands for a disk that really is full.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from eventual.core import ExecutionStatus, event, signal, subscription, task, workflow
from eventual.core.errors import HistoryCorrupted, StorageUnavailable
from eventual.core.http.api import Request
from eventual.core.http.handler import HttpHandler
from eventual.core.runtime.sqlite import DatabaseError, SqliteRuntime
from eventual.core.service import Service, load_service

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# ---------------------------------------------------------------- the service

# The task of ``resBig`` waits for the test to open this gate, so that its (large) result
# reaches the database exactly when the test wants it to.
GATE: dict[str, asyncio.Event] = {}

done = signal("resGo", str)


@task("resSlow")
async def slow(size: int) -> str:
    GATE["started"].set()
    await GATE["open"].wait()
    return "y" * size


@workflow("resBig")
async def big(size: int) -> int:
    return len(await slow(size))


@workflow("resWait")
async def wait_for_go(name: str) -> str:
    value = await done.expect_signal(timeout=60)
    return f"{name[:10]}:{value}"


ping = event("resPing")


@subscription("resOnPing", events=[ping])
async def on_ping(payload: dict[str, Any]) -> None:
    await GATE["open"].wait()
    await wait_for_go.start_execution("z" * payload["size"], execution_name=payload["name"])


@pytest.fixture
def service() -> Iterator[Service]:
    GATE.clear()
    GATE.update(started=asyncio.Event(), open=asyncio.Event())
    yield load_service(sys.modules[__name__], module_only=True, name="resources")


def runtime(service: Service, db: Path, **kw: Any) -> SqliteRuntime:
    options: dict[str, Any] = {"lock_timeout": 0.2, "retry_delay": 0.02, "max_retry_delay": 0.1}
    return SqliteRuntime(service, db_path=db, **{**options, **kw})


@pytest.fixture(params=["inline", "threaded"])
def threaded(request: pytest.FixtureRequest) -> bool:
    return request.param == "threaded"


# ---------------------------------------------------------------- helpers


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def system(handler: HttpHandler, name: str, body: Any) -> tuple[int, Any, dict[str, str]]:
    """A system command through the HTTP layer the dev server uses: (status, JSON, headers)."""
    request = Request(
        "POST", f"http://dev/rpc/_system/{name}", body=json.dumps(body).encode(), headers={}
    )
    response = await handler.handle(request)
    data = json.loads(response.body) if response.body else None
    return response.status, data, dict(response.headers)


def start_body(name: str, input: Any, workflow: str = "resWait") -> dict[str, Any]:
    return {"workflow": workflow, "input": input, "executionName": name}


async def on_writer(rt: SqliteRuntime, sql: str) -> list[Any]:
    """Run ``sql`` on the runtime's own writer connection (on its thread, if it has one)."""
    db = rt.db
    return await db._call(lambda: db._conn(write=True).execute(sql).fetchall())  # pyright: ignore[reportPrivateUsage]


async def exists(rt: SqliteRuntime, execution_id: str) -> bool:
    return await rt.ports.executions.get(execution_id) is not None


async def started(rt: SqliteRuntime, execution_id: str) -> bool:
    """The execution's first step is recorded (it is waiting for something)."""
    return await exists(rt, execution_id) and len(await rt.get_history(execution_id)) > 0


async def recorded_before(rt: SqliteRuntime, handler: HttpHandler) -> None:
    """An execution recorded before the fault (it waits for a signal), and one whose task is
    running, its result held back by the gate."""
    status, _, _ = await system(handler, "startExecution", start_body("before", "early"))
    assert status == 200
    await rt.start_execution("resBig", 200_000, execution_name="big")
    await until(lambda: started(rt, "resWait/before"))
    await asyncio.wait_for(GATE["started"].wait(), 5)


async def resumes(rt: SqliteRuntime, handler: HttpHandler, retried: dict[str, Any]) -> None:
    """After the cause is removed: the held-back step is recorded, the request that got a 503
    succeeds when made again, the execution recorded before goes on; nothing crashed."""
    big_done = await rt.wait_for_execution("resBig/big", timeout=5)
    assert (big_done.status, big_done.result) == (ExecutionStatus.SUCCEEDED, 200_000)
    status, data, _ = await system(handler, "startExecution", retried)
    assert status == 200, data
    await rt.send_signal("resWait/before", "resGo", "now")
    before = await rt.wait_for_execution("resWait/before", timeout=5)
    assert (before.status, before.result) == (ExecutionStatus.SUCCEEDED, "early:now")
    assert rt.errors == []


# ---------------------------------------------------------------- the disk full


async def test_disk_full_for_real_503_then_resumes_once_there_is_room(
    service: Service, tmp_path: Path, threaded: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventual.runtime.sqlite")
    db = tmp_path / "dev.db"
    async with runtime(service, db, threaded=threaded) as rt:
        handler = HttpHandler(service, rt)
        await recorded_before(rt, handler)
        # The database may not grow by one page: SQLite raises SQLITE_FULL, as on a full disk.
        pages = (await on_writer(rt, "PRAGMA page_count"))[0][0]
        await on_writer(rt, f"PRAGMA max_page_count = {pages}")

        during = start_body("during", "x" * 100_000)
        status, data, headers = await system(handler, "startExecution", during)
        assert status == 503
        assert data["error"] == "StorageUnavailable"
        message = data["message"]
        assert message.startswith(f"cannot write to the database {db}: the disk is full")
        assert "free disk space on /" in message
        assert "work already accepted resumes by itself" in message
        assert headers["retry-after"] == "1"
        assert not await exists(rt, "resWait/during")  # nothing recorded
        # Reads go on.
        status, data, _ = await system(handler, "getExecution", "resWait/before")
        assert (status, data["status"]) == (200, "IN_PROGRESS")

        # The task's 200 KB result cannot be recorded either: the step waits and tries again.
        failures = rt.db.failures
        GATE["open"].set()
        await until(lambda: rt.db.failures >= failures + 3)
        assert (await rt.get_execution("resBig/big")).status is ExecutionStatus.IN_PROGRESS
        warnings = [r for r in caplog.records if "the disk is full" in r.getMessage()]
        assert len(warnings) == 1  # logged once per outage, not once per retry

        await on_writer(rt, "PRAGMA max_page_count = 1073741823")  # room again
        await resumes(rt, handler, during)
        assert "is usable again" in caplog.text


async def test_disk_full_injected_accepted_signal_is_applied_once_there_is_room(
    service: Service, tmp_path: Path, full_disk: Callable[[SqliteRuntime], Any]
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db) as rt:
        handler = HttpHandler(service, rt)
        await recorded_before(rt, handler)
        full = full_disk(rt)

        full.failing = "INSERT"
        other = start_body("other", "o")
        status, data, _ = await system(handler, "startExecution", other)
        assert status == 503
        assert data["message"].startswith(f"cannot write to the database {db}: the disk is full")
        assert not await exists(rt, "resWait/other")

        # The history alone cannot grow: a signal is accepted (queued), its step is not.
        full.failing = "INSERT INTO history"
        await rt.send_signal("resWait/before", "resGo", "queued")
        failures = rt.db.failures
        await until(lambda: rt.db.failures >= failures + 3)
        assert (await rt.get_execution("resWait/before")).status is ExecutionStatus.IN_PROGRESS

        full.failing = None
        before = await rt.wait_for_execution("resWait/before", timeout=5)
        assert (before.status, before.result) == (ExecutionStatus.SUCCEEDED, "early:queued")
        GATE["open"].set()
        assert (await rt.wait_for_execution("resBig/big", timeout=5)).result == 200_000
        status, _, _ = await system(handler, "startExecution", other)
        assert status == 200
        assert rt.errors == []


async def test_disk_full_in_a_shared_commit_reports_no_unit_done_that_was_lost(
    service: Service, tmp_path: Path
) -> None:
    """SQLite rolls back the whole transaction on SQLITE_FULL: the units that joined the same
    group commit before the one that failed lost their writes too, and must be told so."""
    async with runtime(service, tmp_path / "dev.db") as rt:
        await rt.start_execution("resWait", "warm", execution_name="warm")
        await until(lambda: started(rt, "resWait/warm"))
        pages = (await on_writer(rt, "PRAGMA page_count"))[0][0]
        await on_writer(rt, f"PRAGMA max_page_count = {pages}")
        inputs = {"a": "small", "b": "x" * 100_000, "c": "small"}
        outcomes = await asyncio.gather(
            *(rt.start_execution("resWait", v, execution_name=k) for k, v in inputs.items()),
            return_exceptions=True,
        )
        for name, outcome in zip(inputs, outcomes, strict=True):
            recorded = await exists(rt, f"resWait/{name}")
            assert recorded == (not isinstance(outcome, BaseException)), (name, outcome)
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, StorageUnavailable), outcome
        # "a" shared the transaction "b" lost; "c" came after, in one of its own.
        assert [isinstance(o, StorageUnavailable) for o in outcomes] == [True, True, False]
        await on_writer(rt, "PRAGMA max_page_count = 1073741823")
        await rt.start_execution("resWait", "small", execution_name="a")
        assert rt.errors == []


async def test_a_subscription_whose_write_met_a_full_disk_runs_again_once_there_is_room(
    service: Service, tmp_path: Path
) -> None:
    async with runtime(service, tmp_path / "dev.db") as rt:
        rt.subscription_attempts = 1  # a failure of its own would not be tried again
        await rt.emit_events("resPing", [{"name": "fromEvent", "size": 100_000}])
        pages = (await on_writer(rt, "PRAGMA page_count"))[0][0]
        await on_writer(rt, f"PRAGMA max_page_count = {pages}")
        failures = rt.db.failures
        GATE["open"].set()  # the subscription starts an execution: its write cannot be kept
        await until(lambda: rt.db.failures >= failures + 3)
        assert not await exists(rt, "resWait/fromEvent")
        await on_writer(rt, "PRAGMA max_page_count = 1073741823")
        await until(lambda: exists(rt, "resWait/fromEvent"))
        await rt.idle()
        assert rt.errors == []


# ---------------------------------------------------------------- the file read-only


@pytest.fixture
def read_only(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """While ``["on"]``, SQLite opens the database read-only, as it does a file it may not
    write (it opens such a file read-only instead of failing). Running as root, a chmod would
    not stop SQLite from writing; this does, with SQLite's own SQLITE_READONLY."""
    state = {"on": False}
    connect = sqlite3.connect

    def opening(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if state["on"] and not kwargs.get("uri"):
            return connect(f"file:{database}?mode=ro", *args, uri=True, **kwargs)
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", opening)
    return state


async def test_read_only_while_running_503_then_resumes_once_writable(
    service: Service, tmp_path: Path, threaded: bool, read_only: dict[str, bool]
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db, threaded=threaded) as rt:
        handler = HttpHandler(service, rt)
        await recorded_before(rt, handler)
        # The file turns read-only under the running server: its writes fail with SQLite's
        # SQLITE_READONLY, and so does every connection opened to it until it is writable.
        read_only["on"] = True
        await on_writer(rt, "PRAGMA query_only = ON")

        during = start_body("during", "d")
        status, data, _ = await system(handler, "startExecution", during)
        assert status == 503
        assert data["message"] == (
            f"cannot write to the database {db}: it is read-only; make it writable (work "
            "already accepted resumes by itself)"
        )
        assert not await exists(rt, "resWait/during")
        status, data, _ = await system(handler, "getExecution", "resWait/before")
        assert (status, data["status"]) == (200, "IN_PROGRESS")
        failures = rt.db.failures
        GATE["open"].set()
        await until(lambda: rt.db.failures >= failures + 3)
        assert (await rt.get_execution("resBig/big")).status is ExecutionStatus.IN_PROGRESS

        read_only["on"] = False  # writable again: the next try opens it anew, for writing
        await resumes(rt, handler, during)


async def test_read_only_file_at_start_says_make_it_writable(
    service: Service, tmp_path: Path, read_only: dict[str, bool]
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db) as rt:
        await rt.start_execution("resWait", "kept", execution_name="kept")
        await until(lambda: started(rt, "resWait/kept"))
    if os.geteuid() == 0:
        read_only["on"] = True  # root writes any file: SQLite must be told
    else:
        db.chmod(0o444)
    try:
        with pytest.raises(DatabaseError) as raised:
            async with runtime(service, db):
                pass
    finally:
        db.chmod(0o644)
        read_only["on"] = False
    assert str(raised.value) == (
        f"cannot write to the database {db}: it is read-only; make it writable (then start again)"
    )
    async with runtime(service, db) as rt:  # writable again: everything is there
        assert (await rt.get_execution("resWait/kept")).status is ExecutionStatus.IN_PROGRESS


# ---------------------------------------------------------------- locked by another process

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


@pytest.fixture
def holder() -> Iterator[Any]:
    """``holder(path)``: a second process that holds an exclusive transaction on the database
    until ``.release()``."""
    started: list[subprocess.Popen[str]] = []

    class Holder:
        def __init__(self, path: Path) -> None:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _HOLDER, str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            started.append(self.process)
            assert self.process.stdout is not None
            assert self.process.stdout.readline().strip() == "locked"
            self.pid = self.process.pid

        def release(self) -> None:
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            assert self.process.wait(timeout=10) == 0

    yield Holder
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_locked_by_another_process_503_then_resumes_once_it_lets_go(
    service: Service, tmp_path: Path, threaded: bool, holder: Any
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db, threaded=threaded) as rt:
        handler = HttpHandler(service, rt)
        await recorded_before(rt, handler)
        other = await asyncio.to_thread(holder, db)  # (the loop commits meanwhile)

        during = start_body("during", "d")
        write = asyncio.create_task(system(handler, "startExecution", during))
        await asyncio.sleep(0.05)
        # While the write waits for the lock, the server answers reads at once.
        t0 = time.monotonic()
        status, data, _ = await system(handler, "getExecution", "resWait/before")
        assert (status, data["status"]) == (200, "IN_PROGRESS")
        assert time.monotonic() - t0 < 0.1 and not write.done()
        status, data, _ = await write
        assert status == 503
        message = data["message"]
        assert message.startswith(f"another process (pid {other.pid}: {sys.executable} -c")
        assert message.endswith(
            f"holds the lock on the database {db}; stop it or end its transaction (work "
            "already accepted resumes by itself)"
        )
        assert not await exists(rt, "resWait/during")

        failures = rt.db.failures
        GATE["open"].set()
        await until(lambda: rt.db.failures >= failures + 2)
        assert (await rt.get_execution("resBig/big")).status is ExecutionStatus.IN_PROGRESS

        other.release()
        await resumes(rt, handler, during)


async def test_locked_at_start_names_the_process(
    service: Service, tmp_path: Path, holder: Any
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db):
        pass
    other = holder(db)
    with pytest.raises(DatabaseError) as raised:
        async with runtime(service, db):
            pass
    assert str(raised.value).startswith(f"another process (pid {other.pid}: ")
    assert str(raised.value).endswith(
        f"holds the lock on the database {db}; stop it or end its transaction (then start again)"
    )
    other.release()
    async with runtime(service, db):
        pass


# ---------------------------------------------------------------- a corrupted history row

# What a damaged row may hold, as SQL: invalid JSON, text that is not UTF-8, bytes, and JSON
# that is no history event.
DAMAGE = {
    "invalid-json": ("""'{"type": "WorkflowStarted", "timest'""", "Invalid JSON: EOF"),
    "not-utf8": ("CAST(x'7b22ff227d' AS TEXT)", "it is not UTF-8 text"),
    "bytes": ("x'00ff00ff'", "it is not UTF-8 text"),
    "not-an-event": ("""'{"type": "Nope"}'""", "does not match any of the expected tags"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
async def test_corrupted_history_row_fails_that_execution_readably_others_go_on(
    service: Service, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "dev.db"
    value, reason = DAMAGE[damage]
    async with runtime(service, db) as rt:
        handler = HttpHandler(service, rt)
        for name in ("victim", "healthy"):
            await rt.start_execution("resWait", name, execution_name=name)
            await until(lambda name=name: started(rt, f"resWait/{name}"))
        await rt.db.write(
            lambda conn: conn.execute(
                f"UPDATE history SET event = {value} WHERE execution_id = ? AND position = 0",
                ("resWait/victim",),
            )
        )
        rt.clear_cache()  # as after a restart or a reload: the next step replays the history
        await rt.send_signal("resWait/victim", "resGo", "v")
        await rt.send_signal("resWait/healthy", "resGo", "h")

        victim = await rt.wait_for_execution("resWait/victim", timeout=5)
        assert (victim.status, victim.error) == (ExecutionStatus.FAILED, "HistoryCorrupted")
        assert victim.message is not None
        assert victim.message.startswith(
            f"the history of execution 'resWait/victim' is corrupted at position 0 in {db} ("
        )
        assert reason in victim.message
        assert victim.message.endswith(
            "it cannot be replayed, so the execution fails: start it again to redo its work"
        )
        healthy = await rt.wait_for_execution("resWait/healthy", timeout=5)
        assert (healthy.status, healthy.result) == (ExecutionStatus.SUCCEEDED, "healthy:h")

        status, data, _ = await system(handler, "getExecution", "resWait/victim")
        assert (status, data["status"]) == (200, "FAILED")
        with pytest.raises(HistoryCorrupted) as raised:
            await rt.get_history("resWait/victim")
        assert (raised.value.execution_id, raised.value.position) == ("resWait/victim", 0)
        assert rt.errors == []
        assert "execution resWait/victim failed: the history of execution" in caplog.text


async def test_corrupted_history_row_found_on_restart_does_not_stop_the_rest(
    service: Service, tmp_path: Path
) -> None:
    db = tmp_path / "dev.db"
    async with runtime(service, db) as rt:
        for name in ("victim", "healthy"):
            await rt.start_execution("resWait", name, execution_name=name)
            await until(lambda name=name: started(rt, f"resWait/{name}"))
        await rt.start_execution("resBig", 10, execution_name="big")
        await asyncio.wait_for(GATE["started"].wait(), 5)
    # Stopped with a task attempt outstanding; then a row is damaged on disk.
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE history SET event = '{not json' WHERE execution_id = ? AND position = 0",
        ("resWait/victim",),
    )
    conn.commit()
    conn.close()

    GATE["open"].set()
    async with runtime(service, db) as rt:
        # Failed on start, though nothing was queued for it.
        victim = await rt.get_execution("resWait/victim")
        assert (victim.status, victim.error) == (ExecutionStatus.FAILED, "HistoryCorrupted")
        assert victim.message is not None and "at position 0" in victim.message
        # The interrupted attempt ran again; the healthy execution goes on.
        assert (await rt.wait_for_execution("resBig/big", timeout=5)).result == 10
        await rt.send_signal("resWait/healthy", "resGo", "h")
        assert (await rt.wait_for_execution("resWait/healthy", timeout=5)).result == "healthy:h"
        assert rt.errors == []
