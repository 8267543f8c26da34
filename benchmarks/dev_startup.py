"""Start-up of ``eventual dev`` on a database full of finished executions.

Builds two databases in a temporary directory: one with only a running execution (the
baseline) and one with the same running execution plus N finished ones (100,000 by default;
each with its history, task claim and log lines, cloned in SQL from a real run). Then starts a
``SqliteRuntime`` on each, alternately, and prints the best start-up time of each and their
ratio (full / baseline; the goal is at most 1.5: start-up reads only what it needs, not every
finished execution). Only the ratio is claimed: absolute times are this machine's.

    uv run python benchmarks/dev_startup.py [--finished 100000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from eventual.core import ExecutionStatus, task, workflow
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service


@task("bench.step")
async def step(i: int) -> int:
    return i + 1


_started: list[asyncio.Event] = []  # set when the running execution's task attempt runs


@task("bench.blocked")
async def blocked(i: int) -> int:
    for started in _started:
        started.set()
    await asyncio.Event().wait()
    return i


@workflow("bench.finishing")
async def finishing(n: int) -> int:
    total = 0
    for i in range(n):
        total += await step(i)
    return total


@workflow("bench.running")
async def running(n: int) -> int:
    return await blocked(n)


def _service():
    return load_service(sys.modules[__name__], module_only=True)


async def build(path: Path, finished: int) -> None:
    """A database with one running execution (its task attempt outstanding) and ``finished``
    finished ones, cloned from one real finished execution."""
    _started[:] = [asyncio.Event()]
    async with SqliteRuntime(_service(), db_path=path) as rt:
        done = await rt.start_execution("bench.finishing", 3, execution_name="template")
        await rt.wait_for_execution(done)
        await rt.start_execution("bench.running", 1, execution_name="r")
        await asyncio.wait_for(_started[0].wait(), 30)  # stop() interrupts the attempt
    if not finished:
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM history WHERE execution_id = ?", (done,))
        conn.execute("DELETE FROM claims WHERE execution_id = ?", (done,))
        conn.execute("DELETE FROM logs WHERE execution_id = ?", (done,))
        conn.execute("DELETE FROM executions WHERE id = ?", (done,))
        conn.commit()
        conn.close()
        return
    conn = sqlite3.connect(path)
    clones = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    new_id = "'bench.finishing/c' || n.i"
    conn.execute(
        clones + f"INSERT INTO executions (id, workflow, status, start_ts, history_length, "
        f"record, build) SELECT {new_id}, workflow, status, start_ts - n.i, history_length, "
        f"replace(record, ?, {new_id}), build FROM executions, n WHERE id = ?",
        (finished - 1, done, done),
    )
    for table, cols in (
        ("history", "position, event"),
        ("claims", "seq, attempt, run_id, claimed_at, last_heartbeat, details, done, timed_out"),
        ("logs", "workflow, timestamp, level, logger, message"),
    ):
        conn.execute(
            clones + f"INSERT INTO {table} (execution_id, {cols}) SELECT {new_id}, {cols} "
            f"FROM {table}, n WHERE execution_id = ?",
            (finished - 1, done),
        )
    conn.commit()
    conn.close()


async def start_once(path: Path) -> float:
    t0 = time.perf_counter()
    rt = SqliteRuntime(_service(), db_path=path)
    await rt.start()
    elapsed = time.perf_counter() - t0
    await rt.stop()
    return elapsed


async def main(finished: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        empty, full = Path(tmp) / "empty.db", Path(tmp) / "full.db"
        await build(empty, 0)
        t0 = time.perf_counter()
        await build(full, finished)
        print(f"built {finished:,} finished executions in {time.perf_counter() - t0:.1f} s")
        conn = sqlite3.connect(full)
        counts = dict(conn.execute("SELECT status, COUNT(*) FROM executions GROUP BY status"))
        conn.close()
        assert counts.get(ExecutionStatus.IN_PROGRESS.value) == 1, counts
        times: dict[Path, list[float]] = {empty: [], full: []}
        for _ in range(rounds):
            for path in (empty, full):
                times[path].append(await start_once(path))
        ratio = min(times[full]) / min(times[empty])
        median = statistics.median(times[full]) / statistics.median(times[empty])
        print(
            f"start-up, {finished:,} finished executions / baseline: {ratio:.2f}x best, "
            f"{median:.2f}x median ({rounds} rounds)"
        )
        return ratio


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--finished", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.finished, args.rounds))
