"""kill -9 at random moments loses nothing and does nothing twice that the history records once.

Runs tests/sqlite_crash_app.py (a workflow with tasks, timers, a signal, a child workflow and an
event to a subscription) in a subprocess on one database file, SIGKILLs it five times at random
moments while work is in flight (each run adds a batch of 40 executions: 200 parents and 200
children in all), restarts it, and finally checks every execution, every history and that
every emitted event reached the subscription.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from eventual.core import ExecutionStatus
from eventual.core.history_checks import history_problems
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import Service

APP = Path(__file__).with_name("sqlite_crash_app.py")
COUNT = 40  # executions per batch; every run adds a batch, so a run always has work in flight
KILLS = 5

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")


def expected(n: int) -> int:
    a = n + 1
    return 2 * a + (a + 3) + 3 * a + 100 * n


def events_db(db: Path) -> Path:
    return db.with_name("events.db")


def spawn(db: Path, out: Path, batches: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CRASH_EVENTS_DB": str(events_db(db))}
    with out.open("wb") as stdout:
        return subprocess.Popen(
            [sys.executable, str(APP), str(db), str(COUNT), str(batches)],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
        )


def wait_for_output(proc: subprocess.Popen[bytes], out: Path, marker: str, timeout: float) -> bool:
    """Poll the child's output for ``marker``; False if the child exited without it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in out.read_text(errors="replace"):
            return True
        if proc.poll() is not None:
            return marker in out.read_text(errors="replace")
        time.sleep(0.01)
    raise AssertionError(f"no {marker!r} within {timeout}s:\n{out.read_text(errors='replace')}")


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)
    kills = 0
    runs = 0
    while kills < KILLS:
        runs += 1
        assert runs <= 12, f"could not kill the app mid-work {KILLS} times (seed {seed})"
        out = tmp_path / f"run{runs}.log"
        proc = spawn(db, out, runs)
        try:
            assert wait_for_output(proc, out, "READY", 30), out.read_text(errors="replace")
            time.sleep(rng.uniform(0.02, 0.3))
            finished = "DONE" in out.read_text(errors="replace") or proc.poll() is not None
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            if not finished:
                kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    out = tmp_path / "final.log"
    proc = spawn(db, out, runs)
    try:
        assert wait_for_output(proc, out, "DONE", 60), out.read_text(errors="replace")
        assert proc.wait(30) == 0, out.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)

    import asyncio

    asyncio.run(check(db, seed, runs))
    print(f"{kills} SIGKILLs mid-work in {runs} runs (seed {seed}), then a clean run")


async def check(db: Path, seed: int, batches: int) -> None:
    async with SqliteRuntime(Service("check", []), db_path=db, workers=False) as rt:
        executions, _ = await rt.list_executions(workflow="crashFlow", limit=1000)
        assert len(executions) == COUNT * batches, f"seed {seed}"
        for execution in executions:
            n = execution.input
            assert execution.status is ExecutionStatus.SUCCEEDED, (seed, execution)
            assert execution.result == expected(n), (seed, execution)
            history = await rt.get_history(execution.id)
            assert history_problems(history) == [], (seed, execution.id, history)
            scheduled = sorted(e.seq for e in history if e.type == "TaskScheduled")
            succeeded = Counter(e.seq for e in history if e.type == "TaskSucceeded")
            assert scheduled == [0, 2, 3, 7], (seed, execution.id, history)
            assert succeeded == Counter(scheduled), (seed, execution.id, history)
            assert [e.type for e in history].count("SignalReceived") == 1
            types = [e.type for e in history]
            assert types.count("ChildWorkflowScheduled") == 1, (seed, execution.id)
            assert types.count("ChildWorkflowSucceeded") == 1, (seed, execution.id)
            assert types.count("EventsEmitted") == 1, (seed, execution.id)
        children, _ = await rt.list_executions(workflow="crashChild", limit=1000)
        assert len(children) == COUNT * batches, f"seed {seed}"
        assert all(c.status is ExecutionStatus.SUCCEEDED for c in children), f"seed {seed}"
        for c in children:
            assert history_problems(await rt.get_history(c.id)) == [], (seed, c.id)
    # Every emitted event reached the subscription, at least once, with the recorded payload.
    with sqlite3.connect(events_db(db)) as side:
        seen = Counter(execution for _, execution in side.execute("SELECT n, execution FROM seen"))
    emitted = set()
    async with SqliteRuntime(Service("check", []), db_path=db, workers=False) as rt:
        for execution in executions:
            for e in await rt.get_history(execution.id):
                if e.type == "EventsEmitted":
                    emitted.add(e.events[0].payload["execution"])
    assert emitted and emitted <= set(seen), f"seed {seed}: events lost"
