"""End to end: `eventual dev --no-reload` on the order service in a subprocess, over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from openapi_spec_validator import validate
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import DevServerProcess, wait_for

APP = Path(__file__).resolve().parents[1]


def order(id: str, **kw: object) -> dict[str, object]:
    return {"id": id, "source": "visa-4242", "amount": 1500, **kw}


def test_orders_over_http_and_the_cli(tmp_path: Path, order_db: Path) -> None:
    env = {"ORDER_SERVICE_DB": str(order_db)}
    server = DevServerProcess(str(APP), tmp_path, env=env)
    with server:
        base = server.url
        log = server.log()
        for line in (
            "command       getOrder      POST /rpc/getOrder, GET /orders/{id}",
            "command       sendInvoice",
            "route         GET /hello    1 middleware",
            "workflow      processOrder  timeout 30d",
            "subscription  onOrder       on Order",
        ):
            assert line in log, log

        # An order invoiced over RPC is charged, waits for the warehouse, is dispatched.
        r = httpx.post(f"{base}/rpc/sendInvoice", json=order("o1", dispatch_after=0.3))
        assert (r.status_code, r.json()) == (200, "processOrder/o1")
        done = server.wait_finished("processOrder/o1")
        assert (done["status"], done["result"]) == ("SUCCEEDED", "dispatched")
        record = wait_for(
            lambda: (lambda b: b if b["notified"] else None)(httpx.get(f"{base}/orders/o1").json()),
            timeout=15,
        )
        assert record["status"] == "dispatched" and record["tracking"] == "track_o1"

        # Another is started with the CLI and cancelled with a signal while it waits.
        runner = CliRunner()
        started = runner.invoke(
            app,
            ["--url", base, "start", "processOrder", json.dumps(order("o2", dispatch_after=600)),
             "--name", "o2"],
        )  # fmt: skip
        assert started.exit_code == 0, started.output
        assert "Started processOrder/o2" in started.stdout
        wait_for(
            lambda: httpx.get(f"{base}/orders/o2").json().get("status") == "charged", timeout=15
        )
        sent = runner.invoke(
            app, ["--url", base, "signal", "processOrder/o2", "cancel", "wrong size"]
        )
        assert sent.exit_code == 0, sent.output
        cancelled = server.wait_finished("processOrder/o2")
        assert cancelled["result"] == "cancelled"
        assert httpx.get(f"{base}/orders/o2").json()["status"] == "charged back"

        history = runner.invoke(app, ["--url", base, "history", "processOrder/o2", "--json"])
        events = json.loads(history.stdout)
        assert [e["type"] for e in events] == [
            "WorkflowStarted",
            "TaskScheduled",
            "TaskSucceeded",
            "TimerScheduled",
            "SignalReceived",
            "TaskScheduled",
            "TaskSucceeded",
            "WorkflowSucceeded",
        ]
        assert events[4]["payload"] == "wrong size"
        assert events[5]["name"] == "chargeBack"
        table = runner.invoke(app, ["--url", base, "history", "processOrder/o2"])
        assert "cancel" in table.stdout and "chargeBack" in table.stdout

        # The authenticated route.
        denied = httpx.get(f"{base}/hello")
        assert denied.status_code == 401
        assert denied.json()["error"] == "Unauthorized"
        hello = httpx.get(f"{base}/hello", headers={"Authorization": "Bearer ada"})
        assert (hello.status_code, hello.json()) == (200, {"message": "hello ada"})
        assert httpx.get(f"{base}/orders/none").status_code == 404
        doc = httpx.get(f"{base}/openapi.json").json()
        validate(doc)
        assert {"/rpc/sendInvoice", "/orders/{id}", "/hello"} <= set(doc["paths"])

    # A restart keeps the executions (the dev database) and the orders (the store).
    assert server.process is not None and server.process.returncode == 0
    with server:
        listed = server.system("listExecutions", {"workflowName": "processOrder"})
        assert {e["id"]: e["status"] for e in listed["executions"]} == {
            "processOrder/o1": "SUCCEEDED",
            "processOrder/o2": "SUCCEEDED",
        }
        assert httpx.get(f"{server.url}/orders/o1").json()["status"] == "dispatched"
