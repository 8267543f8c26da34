"""`eventual dev` killed with SIGKILL five times during 200 executions loses nothing and does
nothing twice that a history records once.

The real CLI serves tests/fixtures/crash_service (tasks, timers, a signal, a child workflow and
an event to a subscription) on one SQLite file. Every run adds a batch of 40 executions, half
started by a user command and half by the system command (each start sent twice at once),
and sends their signals, all over HTTP from 8 threads. A SIGKILL lands at a random moment (a
delay from a seeded RNG, printed with the seed) after the run's first acknowledged start of a
slow execution, while requests are arriving, tasks and timers running, children starting and
events being delivered; after each kill the database says that executions were unfinished. A
last run sends what was never acknowledged and waits; then every execution has its exact
result, every history is sound, and every emitted event reached the subscription (at least
once; the test prints how many came twice).

Reproduce a run's delays with ``CRASH_SEED=<seed> uv run pytest <this file>``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventual.cli.testing import DevServerProcess, wait_for
from eventual.client import Retry, ServiceUnreachable, SyncEventualClient
from eventual.core import ExecutionStatus
from eventual.core.history import ChildWorkflowScheduled, EventsEmitted, HistoryEvent
from eventual.core.history_checks import history_problems
from eventual.core.models import Execution
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import Service

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

BATCHES = KILLS = 5
COUNT = 40  # executions per batch: 200 parents (and 200 children) in all
# The kill falls at most this long after the first acknowledged start of a slow parent of the
# run's new batch. Three parents in four are slow: they sleep crash_service.PAUSE (1.5 s) on a
# durable timer, so that one at least is still running when the kill lands. Every 4th sleeps
# 0.1 s and gets its signal at once: some finish and emit events around the kill.
MAX_KILL_DELAY = 1.2
DONE_TIMEOUT = 90.0
SENDERS = 8  # client threads sending requests at once


def expected(n: int) -> int:
    """What crashParent(n) returns: its signal carries 100 * n."""
    a = n + 1
    return 2 * a + (a + 3) + 3 * a + 100 * n


def name_of(n: int) -> str:
    return f"b{n // COUNT}e{n % COUNT}"


class Driver:
    """Sends every start and signal not yet acknowledged, from SENDERS threads. Both are
    idempotent (same execution name and input; the same signal id): every start is sent twice
    at once, and a request the kill cut short is simply sent again by the next run."""

    def __init__(self, server: DevServerProcess) -> None:
        self.server = server
        self.started: set[int] = set()
        self.signalled: set[int] = set()

    def start(self, http: httpx.Client, client: SyncEventualClient, n: int) -> None:
        if n % 2 == 0:  # a user command that calls crashParent.start_execution
            r = http.post("/rpc/startParent", json={"n": n, "name": name_of(n)})
            r.raise_for_status()
            assert r.json() == f"crashParent/{name_of(n)}"
        else:  # the system command, through the Python client
            execution = client.start_execution("crashParent", n, execution_name=name_of(n))
            assert execution.execution_id == f"crashParent/{name_of(n)}"
        self.started.add(n)

    def signal(self, client: SyncEventualClient, n: int) -> None:
        client.send_signal(f"crashParent/{name_of(n)}", "crashGo", 100 * n, signal_id=f"go-{n}")
        self.signalled.add(n)

    def run(self, batches: int, on_slow_start: Callable[[], None], stop: threading.Event) -> str:
        """Send the pending requests of the first ``batches`` batches, the newest batch first
        (on every run but the last it is the one never sent); how it ended, for the log.
        ``on_slow_start`` is called after each acknowledged start of a slow parent of the
        newest batch."""
        order = [b * COUNT + i for b in reversed(range(batches)) for i in range(COUNT)]
        newest = set(range((batches - 1) * COUNT, batches * COUNT))
        # No retries inside a run: a refused connection means the kill landed.
        client = SyncEventualClient(self.server.url, retry=Retry(attempts=1), timeout=30)
        http = httpx.Client(base_url=self.server.url, timeout=30)

        def start(n: int) -> None:
            if stop.is_set():
                return
            if n not in self.started:
                self.start(http, client, n)
                if n in newest and n % 4:
                    on_slow_start()  # running for 1.5 s at least
            if n % 4 == 0 and n not in self.signalled:  # quick: it finishes during the run
                self.signal(client, n)

        def signal(n: int) -> None:
            if not stop.is_set() and n in self.started and n not in self.signalled:
                self.signal(client, n)

        try:
            with ThreadPoolExecutor(SENDERS) as pool:
                for future in [pool.submit(start, n) for n in order for _ in range(2)]:
                    future.result()
                for future in [pool.submit(signal, n) for n in order]:
                    future.result()
            return "stopped" if stop.is_set() else "all sent"
        except (httpx.TransportError, ServiceUnreachable) as exc:
            return f"cut short ({type(exc).__name__})"
        finally:
            client.close()
            http.close()


async def census(db: Path) -> Counter[str]:
    """What the database holds (the server is dead): executions by workflow and status."""
    async with SqliteRuntime(Service("census", []), db_path=db, workers=False) as rt:
        executions, _ = await rt.list_executions(limit=1000)
    return Counter(f"{e.workflow} {e.status.value}" for e in executions)


def seen_deliveries(events_db: Path) -> Counter[tuple[int, str]]:
    if not events_db.exists():
        return Counter()
    with sqlite3.connect(events_db, timeout=30) as db:
        try:
            return Counter(db.execute("SELECT n, token FROM seen"))
        except sqlite3.OperationalError:  # the subscription has not created its table yet
            return Counter()


def test_dev_server_sigkilled_five_times_loses_nothing(
    tmp_path: Path, fixture_env: dict[str, str]
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.randrange(1_000_000))
    rng = random.Random(seed)
    delays = [round(rng.uniform(0.0, MAX_KILL_DELAY), 3) for _ in range(KILLS)]
    print(f"seed {seed}: kill delays {delays} s after each run's first slow start")
    db = tmp_path / "dev.db"
    events_db = tmp_path / "events.db"
    server = DevServerProcess(
        "crash_service",
        tmp_path,
        db=db,
        env={**fixture_env, "CRASH_EVENTS_DB": str(events_db)},
        extra_args=["--no-access-log"],
    )
    driver = Driver(server)
    timers: list[threading.Timer] = []
    arming = threading.Lock()
    try:
        for run, delay in enumerate(delays, start=1):
            server.start()
            stop = threading.Event()
            killers: list[threading.Timer] = []

            def crash(stop: threading.Event = stop) -> None:
                stop.set()
                server.kill()

            def arm(delay: float = delay, killers: list[threading.Timer] = killers) -> None:
                with arming:  # called from the sender threads
                    if not killers:
                        killers.append(threading.Timer(delay, crash))
                        timers.append(killers[0])
                        killers[0].start()

            how = driver.run(run, arm, stop)
            assert killers, f"seed {seed}: run {run} acknowledged no slow start of its batch"
            killers[0].join()
            assert server.process is not None and server.process.returncode == -9
            counts = asyncio.run(census(db))
            print(f"kill {run} ({delay} s): requests {how}; the database holds {dict(counts)}")
            assert counts["crashParent IN_PROGRESS"] > 0, (
                f"seed {seed}: kill {run} landed when no execution was running: {counts}"
            )

        server.start()
        assert driver.run(BATCHES, lambda: None, threading.Event()) == "all sent"
        assert driver.started == driver.signalled == set(range(BATCHES * COUNT))
        with SyncEventualClient(server.url, timeout=30) as client:
            parents = wait_all_done(client, server, seed)
            check_executions(client, parents, seed, events_db)
        assert server.stop() == 0, server.log()[-3000:]
        # No worker of the runtime failed along the way (it logs each failure with a trace).
        assert "Traceback" not in server.log(), server.log()
    finally:
        for timer in timers:
            timer.cancel()
        server.kill()


def wait_all_done(
    client: SyncEventualClient, server: DevServerProcess, seed: int
) -> list[Execution]:
    def done() -> list[Execution] | None:
        listed = list(client.list_executions(workflow="crashParent", max_results=1000))
        if len(listed) == BATCHES * COUNT and all(
            e.status is not ExecutionStatus.IN_PROGRESS for e in listed
        ):
            return listed
        return None

    return wait_for(
        done,
        timeout=DONE_TIMEOUT,
        interval=0.25,
        message=lambda: f"every execution to finish (seed {seed}); log:\n{server.log()[-3000:]}",
    )


def check_executions(
    client: SyncEventualClient, parents: list[Execution], seed: int, events_db: Path
) -> None:
    children = {c.id: c for c in client.list_executions(workflow="crashChild", max_results=1000)}
    assert len(children) == BATCHES * COUNT, f"seed {seed}"
    emitted: dict[str, int] = {}
    kids: set[str] = set()
    for execution in parents:
        n = execution.input
        assert isinstance(n, int) and execution.id == f"crashParent/{name_of(n)}"
        where = f"seed {seed}, {execution.id}"
        assert execution.status is ExecutionStatus.SUCCEEDED, (where, execution)
        assert execution.result == expected(n), (where, execution)

        history = client.get_execution_history(execution.id)
        assert history_problems(history) == [], (where, history)
        types = Counter(e.type for e in history)
        scheduled = Counter(e.seq for e in history if e.type == "TaskScheduled")
        succeeded = Counter(e.seq for e in history if e.type == "TaskSucceeded")
        assert len(scheduled) == 4 and succeeded == scheduled, (where, history)  # each once
        for kind in (
            "SignalReceived",
            "TimerScheduled",
            "TimerCompleted",
            "ChildWorkflowScheduled",
            "ChildWorkflowSucceeded",
            "EventsEmitted",
            "WorkflowSucceeded",
        ):
            assert types[kind] == 1, (where, kind, history)

        call = only(history, ChildWorkflowScheduled)
        kid = children[call.execution_id]
        kids.add(kid.id)
        assert kid.status is ExecutionStatus.SUCCEEDED and kid.result == 3 * (n + 1), (where, kid)
        assert kid.parent is not None, (where, kid)
        assert (kid.parent.execution_id, kid.parent.seq) == (execution.id, call.seq), where
        kid_history = client.get_execution_history(kid.id)
        assert history_problems(kid_history) == [], (where, kid_history)

        (payload,) = [e.payload for e in only(history, EventsEmitted).events]
        assert payload["n"] == n, (where, payload)
        emitted[payload["token"]] = n

    assert kids == set(children), f"seed {seed}: children no parent started"
    assert len(emitted) == BATCHES * COUNT, f"seed {seed}: two parents emitted one token"

    # Delivery is at least once (DESIGN.md): every recorded event reaches the subscription,
    # nothing else does, and a kill between a delivery and its acknowledgement repeats it.
    want = Counter({(n, token): 1 for token, n in emitted.items()})

    def delivered() -> Counter[tuple[int, str]] | None:
        seen = seen_deliveries(events_db)
        return seen if set(seen) >= set(want) else None

    seen = wait_for(
        delivered,
        timeout=30,
        interval=0.2,
        message=lambda: (
            f"the subscription to see every event (seed {seed}): "
            f"{len(set(want) - set(seen_deliveries(events_db)))} missing"
        ),
    )
    assert set(seen) == set(want), f"seed {seed}: events nobody emitted: {set(seen) - set(want)}"
    again = sum(1 for count in seen.values() if count > 1)
    extra = sum(seen.values()) - len(want)
    print(f"{len(want)} events delivered: {again} more than once ({extra} extra deliveries)")


def only(history: list[HistoryEvent], kind: type[Any]) -> Any:
    (event,) = [e for e in history if isinstance(e, kind)]
    return event
