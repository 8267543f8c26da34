"""Signals on the SQLite runtime: handed to the step that applies them and acknowledged once
that step has committed (one commit, no queue row), queued as a row when that cannot be."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from eventual.core import ExecutionStatus, signal, task, workflow
from eventual.core.errors import StorageUnavailable
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service

pytestmark = pytest.mark.anyio

go = signal("sgGo", str)


@task("sgEcho")
async def echo(value: str) -> str:
    return f"echo:{value}"


@workflow("sgWait")
async def wait_for_go(_: None) -> str:
    value = await go.expect_signal(timeout=60)
    return await echo(value)


def runtime_of(tmp_path: Path, *, threaded: bool = False) -> SqliteRuntime:
    """The test service on a runtime of its own (short storage backoff)."""
    service = load_service(sys.modules[__name__], module_only=True, name="signals")
    return SqliteRuntime(
        service,
        db_path=tmp_path / "dev.db",
        threaded=threaded,
        retry_delay=0.02,
        max_retry_delay=0.1,
    )


@pytest.fixture(params=["inline", "threaded"])
async def srt(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SqliteRuntime]:
    async with runtime_of(tmp_path, threaded=request.param == "threaded") as rt:
        yield rt


def on_disk(db: Path, sql: str, *args: Any) -> Any:
    """What another connection reads from the file: only what was committed."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()


def signals_recorded(rt: SqliteRuntime, execution_id: str) -> int:
    return on_disk(
        rt.db_path,
        "SELECT count(*) FROM history WHERE execution_id = ? AND event LIKE ?",
        execution_id,
        '%"SignalReceived"%',
    )


def queued(rt: SqliteRuntime) -> int:
    return on_disk(rt.db_path, "SELECT count(*) FROM queue")


async def parked(rt: SqliteRuntime, name: str) -> str:
    """Start sgWait/``name`` and wait until it waits for its signal."""
    execution_id = await rt.start_execution("sgWait", None, execution_name=name)
    deadline = time.monotonic() + 5
    while len(await rt.get_history(execution_id)) < 2:  # started, then the signal's timer
        assert time.monotonic() < deadline, "the execution never parked"
        await asyncio.sleep(0.01)
    await rt.idle()
    return execution_id


async def trace(rt: SqliteRuntime) -> list[str]:
    """The statements the runtime's writer runs from now on (set on its thread, if any)."""
    statements: list[str] = []
    db = rt.db
    writer = db._conn(write=True)  # pyright: ignore[reportPrivateUsage]
    await db._call(lambda: writer.set_trace_callback(statements.append))  # pyright: ignore[reportPrivateUsage]
    return statements


async def test_an_acknowledged_signal_is_in_the_history_and_took_one_commit(
    srt: SqliteRuntime,
) -> None:
    execution_id = await parked(srt, "a")
    statements = await trace(srt)
    await srt.send_signal(execution_id, "sgGo", "hello")
    # Once send_signal returns, the signal is on disk, in the history: the step that applied
    # it committed it (and scheduled the task it led to), with no queue row on the way.
    assert signals_recorded(srt, execution_id) == 1
    assert queued(srt) == 0
    assert not any(s.startswith("INSERT INTO queue") for s in statements)
    assert sum(s == "COMMIT" for s in statements) == 1
    done = await srt.wait_for_execution(execution_id, timeout=5)
    assert (done.status, done.result) == (ExecutionStatus.SUCCEEDED, "echo:hello")
    assert srt.errors == []


async def test_signals_sent_at_once_to_many_executions_are_all_applied(
    srt: SqliteRuntime,
) -> None:
    ids = [await srt.start_execution("sgWait", None, execution_name=f"m{i}") for i in range(50)]
    await srt.idle()
    await asyncio.gather(*(srt.send_signal(e, "sgGo", e[-3:]) for e in ids))
    for execution_id in ids:
        assert signals_recorded(srt, execution_id) == 1
        done = await srt.wait_for_execution(execution_id, timeout=5)
        assert done.result == f"echo:{execution_id[-3:]}"
    assert srt.errors == []


async def test_a_signal_whose_step_cannot_be_recorded_is_queued_and_applied_later(
    tmp_path: Path, full_disk: Callable[[SqliteRuntime], Any]
) -> None:
    async with runtime_of(tmp_path) as rt:
        execution_id = await parked(rt, "b")
        full = full_disk(rt)
        full.failing = "INSERT INTO history"  # the step cannot commit; a queue row can
        await rt.send_signal(execution_id, "sgGo", "later")
        # Acknowledged because its sender queued it when the step failed: nothing is lost.
        assert queued(rt) == 1
        assert signals_recorded(rt, execution_id) == 0
        assert (await rt.get_execution(execution_id)).status is ExecutionStatus.IN_PROGRESS
        full.failing = None
        done = await rt.wait_for_execution(execution_id, timeout=5)
        assert done.result == "echo:later"
        assert signals_recorded(rt, execution_id) == 1
        assert queued(rt) == 0
        assert rt.errors == []


async def test_a_signal_nothing_can_record_fails_and_leaves_nothing_behind(
    tmp_path: Path, full_disk: Callable[[SqliteRuntime], Any]
) -> None:
    async with runtime_of(tmp_path) as rt:
        execution_id = await parked(rt, "c")
        full = full_disk(rt)
        full.failing = "INSERT"
        with pytest.raises(StorageUnavailable, match="the disk is full"):
            await rt.send_signal(execution_id, "sgGo", "lost")
        assert queued(rt) == 0
        assert signals_recorded(rt, execution_id) == 0
        full.failing = None
        await rt.idle()
        assert (await rt.get_execution(execution_id)).status is ExecutionStatus.IN_PROGRESS
        await rt.send_signal(execution_id, "sgGo", "again")  # the caller's retry
        done = await rt.wait_for_execution(execution_id, timeout=5)
        assert done.result == "echo:again"
        assert signals_recorded(rt, execution_id) == 1
        assert rt.errors == []


async def test_a_signal_sent_inside_a_transaction_is_queued_with_it(srt: SqliteRuntime) -> None:
    execution_id = await parked(srt, "d")
    statements = await trace(srt)
    # The step could not commit before the caller's transaction does: the row commits with it.
    async with srt.db.transaction():
        await srt.send_signal(execution_id, "sgGo", "in-tx")
    assert sum(s.startswith("INSERT INTO queue") for s in statements) == 1
    done = await srt.wait_for_execution(execution_id, timeout=5)
    assert done.result == "echo:in-tx"
    assert srt.errors == []


async def test_a_signal_to_a_finished_execution_is_acknowledged_and_dropped(
    srt: SqliteRuntime,
) -> None:
    execution_id = await parked(srt, "e")
    await srt.send_signal(execution_id, "sgGo", "first")
    await srt.wait_for_execution(execution_id, timeout=5)
    length = len(await srt.get_history(execution_id))
    await asyncio.wait_for(srt.send_signal(execution_id, "sgGo", "late"), 5)
    await srt.idle()
    assert len(await srt.get_history(execution_id)) == length
    assert queued(srt) == 0
    assert srt.errors == []


async def test_a_sender_that_gives_up_waiting_does_not_lose_the_signal(
    srt: SqliteRuntime,
) -> None:
    execution_id = await parked(srt, "f")
    orchestrate = srt.orchestrate
    gate = asyncio.Event()

    async def held(execution_id: str, events: Any) -> None:
        await gate.wait()
        await orchestrate(execution_id, events)

    srt.orchestrate = held  # type: ignore[method-assign]
    sender = asyncio.ensure_future(srt.send_signal(execution_id, "sgGo", "abandoned"))
    await asyncio.sleep(0.05)
    sender.cancel()  # a client that disconnected: it was never told the signal was kept
    with pytest.raises(asyncio.CancelledError):
        await sender
    gate.set()
    done = await srt.wait_for_execution(execution_id, timeout=5)
    assert done.result == "echo:abandoned"  # applied all the same, once
    assert signals_recorded(srt, execution_id) == 1
    assert srt.errors == []


async def test_wait_for_execution_is_woken_by_its_own_end_only(srt: SqliteRuntime) -> None:
    """A wait is woken by the commit that ends its execution, not by other executions'
    ends; it answers a finished execution at once, raises TimeoutError after its timeout,
    and leaves no waiter behind either way."""
    await srt.start_execution("sgWait", None, execution_name="a")
    await srt.start_execution("sgWait", None, execution_name="b")
    await srt.idle()
    with pytest.raises(TimeoutError):
        await srt.wait_for_execution("sgWait/a", timeout=0.05)
    assert srt.waiting == 0

    waiting = asyncio.create_task(srt.wait_for_execution("sgWait/a", timeout=10))
    await asyncio.sleep(0.01)
    assert srt.waiting == 1
    await srt.send_signal("sgWait/b", "sgGo", "for b")
    done_b = await srt.wait_for_execution("sgWait/b", timeout=10)
    assert done_b.result == "echo:for b"
    await asyncio.sleep(0.01)
    assert not waiting.done()  # b's end is not a's
    await srt.send_signal("sgWait/a", "sgGo", "for a")
    done_a = await asyncio.wait_for(waiting, 10)
    assert (done_a.status, done_a.result) == (ExecutionStatus.SUCCEEDED, "echo:for a")
    assert srt.waiting == 0
    again = await srt.wait_for_execution("sgWait/a", timeout=0)  # finished: no wait at all
    assert again.result == "echo:for a" and srt.waiting == 0
