"""A service run under SqliteRuntime in a subprocess that test_sqlite_crash.py kills with
SIGKILL at random moments: ``python sqlite_crash_app.py DB COUNT BATCHES``. The workflow uses
tasks, timers, a signal, a child workflow and an event whose subscription writes to a side
database (``$CRASH_EVENTS_DB``).

Each run (re)starts BATCHES batches of COUNT executions and sends each its signal (both
idempotent: same names, same inputs, same signal ids), prints ``READY`` once it is serving and
``DONE`` once every execution has finished. The test passes one more batch on every run, so
each run has fresh work in flight when it is killed, however fast the machine is.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

from eventual.core import condition, event, signal, sleep, subscription, task, uuid4, workflow
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service

go = signal("crashGo", int)
EVENTS_DB = os.environ.get("CRASH_EVENTS_DB", "crash-events.db")


@task("crashAdd")
async def add(a: int, b: int) -> int:
    await asyncio.sleep(random.uniform(0, 0.02))
    return a + b


@task("crashMul")
async def mul(a: int, b: int) -> int:
    await asyncio.sleep(random.uniform(0, 0.02))
    return a * b


finished = event("crashFinished")


@subscription("crashRecord", events=[finished])
async def record(payload: dict[str, Any]) -> None:
    """Note each event in a side database (at least once: the same row may come twice)."""
    with sqlite3.connect(EVENTS_DB) as db:
        db.execute("CREATE TABLE IF NOT EXISTS seen (n INTEGER, execution TEXT)")
        db.execute("INSERT INTO seen VALUES (?, ?)", (payload["n"], payload["execution"]))


@workflow("crashChild")
async def child(a: int) -> int:
    await asyncio.sleep(0.05)
    return await mul(a, 3)


@workflow("crashFlow")
async def flow(n: int) -> int:
    got: list[int] = []
    go.on_signal(got.append)
    a = await add(n, 1)
    await asyncio.sleep(0.2)
    b, c = await asyncio.gather(mul(a, 2), add(a, 3))
    d = await child(a)
    await condition(lambda: bool(got))
    await sleep(0.05)
    await finished.emit({"n": n, "execution": uuid4().hex})
    return await add(b + c + d, got[0])


def expected(n: int) -> int:
    a = n + 1
    return 2 * a + (a + 3) + 3 * a + 100 * n


async def main(db: Path, count: int, batches: int) -> None:
    service = load_service(sys.modules[__name__], module_only=True, name="crash")
    names = [(f"b{b}e{i}", i) for b in reversed(range(batches)) for i in range(count)]
    async with SqliteRuntime(service, db_path=db, max_concurrent_tasks=8) as rt:
        print("READY", flush=True)
        for name, i in names:  # the newest batch first: it is the one not yet started
            execution_id = await rt.start_execution("crashFlow", i, execution_name=name)
            await rt.send_signal(execution_id, "crashGo", 100 * i, signal_id=f"go-{name}")
        for name, _ in names:
            await rt.wait_for_execution(f"crashFlow/{name}", timeout=60)
        await rt.idle()  # and every published event delivered to the subscription
        print("DONE", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
