"""The order-service example (apps/order-service) end to end on the AWS runtime."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _recorded import recorded

from eventual.aws_runtime.testing import AwsHarness

APP = Path(__file__).resolve().parents[3] / "apps" / "order-service" / "src"


@pytest.fixture
def orders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsHarness]:
    if not (APP / "order_service").is_dir():
        pytest.skip("apps/order-service is not in this checkout")
    monkeypatch.syspath_prepend(str(APP))
    monkeypatch.setenv("ORDER_SERVICE_DB", str(tmp_path / "orders.db"))
    with AwsHarness("order_service") as aws:
        yield aws
    for name in [m for m in sys.modules if m == "order_service" or m.startswith("order_service.")]:
        del sys.modules[name]


def test_an_order_is_charged_dispatched_and_announced(orders: AwsHarness) -> None:
    body = {"id": "o1", "source": "visa-4242", "amount": 500, "items": ["book"]}
    response = orders.http("POST", "/rpc/sendInvoice", body=body)
    assert response["statusCode"] == 200, response
    execution_id = json.loads(response["body"])
    orders.advance(2)
    execution = orders.execution(execution_id)
    assert execution["status"] == "SUCCEEDED", execution
    types = [e["type"] for e in recorded(orders, execution_id)]
    assert types.count("TaskSucceeded") == 2 and "EventsEmitted" in types
    record = json.loads(orders.http("GET", "/orders/o1")["body"])
    assert (record["status"], record["notified"]) == ("dispatched", True)
    # The 30-day workflow timeout was a schedule; it was deleted when the order finished.
    scheduler = orders.admin.client("scheduler")
    assert scheduler.list_schedules(GroupName=orders.names.schedule_group)["Schedules"] == []
    assert orders.requests[("scheduler", "CreateSchedule")] >= 1
