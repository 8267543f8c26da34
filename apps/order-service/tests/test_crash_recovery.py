"""`eventual dev` survives kill -9: 100 orders, SIGKILL at random moments at least three
times, a restart, and every order ends as it should with every task recorded once."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from eventual.cli.testing import DevServerProcess, wait_for
from eventual.core.history import TaskScheduled, TaskSucceeded
from eventual.core.wire import events_from_wire

APP = Path(__file__).resolve().parents[1]
ORDERS = 100
KILLS = 3


def plan(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Every 4th order waits for the warehouse for 10 minutes and is cancelled by a signal;
    the others are dispatched after a short timer (some fall due while the server is down)."""
    orders: dict[str, dict[str, Any]] = {}
    for i in range(ORDERS):
        cancel = i % 4 == 0
        orders[f"k{i}"] = {
            "id": f"k{i}",
            "source": "visa-4242",
            "amount": 100 + i,
            "dispatch_after": 600 if cancel else round(rng.uniform(0.2, 3.0), 2),
        }
    return orders


def test_kill_9_loses_nothing(tmp_path: Path, order_db: Path) -> None:
    rng = random.Random(20241129)
    orders = plan(rng)
    to_cancel = {oid for oid, o in orders.items() if o["dispatch_after"] == 600}
    started: set[str] = set()
    signalled: set[str] = set()
    server = DevServerProcess(
        str(APP), tmp_path, env={"ORDER_SERVICE_DB": str(order_db)}, extra_args=["--no-access-log"]
    )

    def drive(http: httpx.Client, stop: threading.Event) -> None:
        """Send every start and cancel not yet acknowledged; both are idempotent (same
        execution name and input; the same signal id), so a retry after a crash is safe."""
        for oid, o in orders.items():
            if stop.is_set():
                return
            if oid not in started:
                r = http.post(
                    "/rpc/_system/startExecution",
                    json={"workflow": "processOrder", "input": o, "executionName": oid},
                )
                r.raise_for_status()
                started.add(oid)
            if oid in to_cancel and oid not in signalled:
                r = http.post(
                    "/rpc/_system/sendSignal",
                    json={
                        "executionId": f"processOrder/{oid}",
                        "signalId": "cancel",
                        "payload": "crash test",
                        "id": f"cancel-{oid}",
                    },
                )
                r.raise_for_status()
                signalled.add(oid)

    try:
        kills = 0
        while kills < KILLS:
            server.start()
            stop = threading.Event()

            # Kill at a random moment: while requests are arriving, while tasks run, or
            # while timers are pending.
            def crash(stop: threading.Event = stop) -> None:
                stop.set()
                server.kill()

            killer = threading.Timer(rng.uniform(0.3, 2.5), crash)
            killer.start()
            try:
                with httpx.Client(base_url=server.url, timeout=10) as http:
                    drive(http, stop)
            except httpx.HTTPError:
                pass  # the kill landed mid-request; the request is retried after the restart
            killer.join()
            assert server.process is not None and server.process.returncode == -9
            kills += 1

        server.start()
        with httpx.Client(base_url=server.url, timeout=10) as http:
            drive(http, threading.Event())
        assert started == set(orders) and signalled == to_cancel

        def all_done() -> list[dict[str, Any]] | None:
            listed = server.system(
                "listExecutions", {"workflowName": "processOrder", "maxResults": 1000}
            )["executions"]
            if len(listed) == ORDERS and all(e["status"] != "IN_PROGRESS" for e in listed):
                return listed
            return None

        executions = wait_for(
            all_done,
            timeout=120,
            interval=0.5,
            message=lambda: f"all orders; log:\n{server.log()[-3000:]}",
        )
        results = {e["id"].split("/", 1)[1]: (e["status"], e.get("result")) for e in executions}
        for oid in orders:
            expected = "cancelled" if oid in to_cancel else "dispatched"
            assert results[oid] == ("SUCCEEDED", expected), oid

        for oid in orders:
            # The history arrives in the TypeScript client's wire shape; decode it into
            # our typed events (what the Python client does) to count kinds.
            events = events_from_wire(
                server.system("getExecutionHistory", {"executionId": f"processOrder/{oid}"})[
                    "events"
                ]
            )
            kinds = [e.type for e in events]
            scheduled = [e.seq for e in events if isinstance(e, TaskScheduled)]
            succeeded = Counter(e.seq for e in events if isinstance(e, TaskSucceeded))
            assert scheduled and len(scheduled) == len(set(scheduled)), (oid, events)
            assert all(succeeded[seq] == 1 for seq in scheduled), (oid, events)
            assert set(succeeded) == set(scheduled), (oid, events)
            assert kinds.count("WorkflowStarted") == 1
            assert kinds[-1] == "WorkflowSucceeded"
            if oid in to_cancel:
                assert kinds.count("SignalReceived") == 1

        # The store the tasks wrote to agrees (its writes are idempotent upserts).
        for oid in orders:
            row = httpx.get(f"{server.url}/orders/{oid}").json()
            assert row["status"] == ("charged back" if oid in to_cancel else "dispatched"), row
    finally:
        server.kill()
