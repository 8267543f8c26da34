"""Start-up recovery of the SQLite runtime reads only what it needs: finished executions (their
history, claims and logs) cost it nothing. Measured in SQLite virtual-machine steps, which
machine load does not move (benchmarks/dev_startup.py measures the time at 100,000). And the
retention sweep: finished executions older than the period go, a running one never does."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from eventual.core import ExecutionStatus, task, workflow
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.runtime.sqlite.recovery import _scan_history
from eventual.core.service import load_service

pytestmark = pytest.mark.anyio

_started: list[int] = []


@task("startup.step")
async def startup_step(i: int) -> int:
    return i + 1


@task("startup.blocked")
async def startup_blocked(i: int) -> int:
    _started.append(i)
    await asyncio.Event().wait()
    return i


@workflow("startup.finishing")
async def startup_finishing(n: int) -> int:
    total = 0
    for i in range(n):
        total += await startup_step(i)
    return total


@workflow("startup.running")
async def startup_running(n: int) -> int:
    return await startup_blocked(n)


def _service():
    return load_service(sys.modules[__name__], module_only=True)


async def _build(path: Path, finished: int) -> None:
    """One running execution with its attempt outstanding, and ``finished`` finished ones."""
    _started.clear()
    async with SqliteRuntime(_service(), db_path=path) as rt:
        done = await rt.start_execution("startup.finishing", 3, execution_name="template")
        await rt.wait_for_execution(done)
        await rt.start_execution("startup.running", 1, execution_name="r")
        for _ in range(500):
            if _started:
                break
            await asyncio.sleep(0.01)
    conn = sqlite3.connect(path)
    clones = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    new_id = "'startup.finishing/c' || n.i"
    conn.execute(
        clones + "INSERT INTO executions (id, workflow, status, start_ts, history_length, "
        f"record, build) SELECT {new_id}, workflow, status, start_ts, history_length, record, "
        "build FROM executions, n WHERE id = ?",
        (finished, done),
    )
    for table, cols in (
        ("history", "position, event"),
        ("claims", "seq, attempt, run_id, claimed_at, last_heartbeat, details, done, timed_out"),
    ):
        conn.execute(
            clones + f"INSERT INTO {table} (execution_id, {cols}) SELECT {new_id}, {cols} "
            f"FROM {table}, n WHERE execution_id = ?",
            (finished, done),
        )
    conn.commit()
    conn.close()


def _recovery_steps(path: Path) -> tuple[int, list[str]]:
    conn = sqlite3.connect(path)
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    conn.set_progress_handler(count, 10)
    outstanding, _ = _scan_history(conn)
    conn.close()
    return steps[0], [r.execution_id for r in outstanding]


async def test_recovery_costs_the_same_with_many_finished_executions(tmp_path: Path) -> None:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    await _build(small, 1)
    await _build(large, 5_000)
    small_steps, small_found = _recovery_steps(small)
    large_steps, large_found = _recovery_steps(large)
    # Only the running execution's attempt is outstanding, in both.
    assert small_found == large_found == ["startup.running/r"]
    # 5,000 times the finished executions, about the same work (a scan of their history
    # would be thousands of times more).
    assert large_steps <= small_steps * 1.5 + 10, (small_steps, large_steps)
    # And the runtime starts on it and runs the interrupted attempt again.
    _started.clear()
    async with SqliteRuntime(_service(), db_path=large) as rt:
        for _ in range(500):
            if _started:
                break
            await asyncio.sleep(0.01)
        assert _started == [1]
        assert len((await rt.list_executions(limit=10))[0]) == 10


# ---------------------------------------------------------------- the retention sweep


async def test_the_sweep_removes_finished_executions_and_never_a_running_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dev.db"
    await _build(path, 250)  # 251 finished, one running (its attempt interrupted)
    _started.clear()
    async with SqliteRuntime(
        _service(), db_path=path, retention=timedelta(0), sweep_interval=0.05, sweep_batch=40
    ) as rt:
        for _ in range(500):  # polled with a deadline
            listed, _ = await rt.list_executions(limit=10)
            if len(listed) == 1 and _started:
                break
            await asyncio.sleep(0.01)
        listed, _ = await rt.list_executions(limit=10)
        assert [e.id for e in listed] == ["startup.running/r"]
        assert listed[0].status is ExecutionStatus.IN_PROGRESS
        assert len(await rt.get_history("startup.running/r")) >= 2
        assert _started == [1]  # its attempt ran again: the sweep did not touch it


async def test_no_retention_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "dev.db"
    await _build(path, 5)
    async with SqliteRuntime(_service(), db_path=path, retention=None) as rt:
        await asyncio.sleep(0)
        listed, _ = await rt.list_executions(limit=100)
        assert len(listed) == 7
