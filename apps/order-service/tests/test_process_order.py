"""processOrder's logic on a virtual clock (eventual.testing.TestEnvironment)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from order_service import (
    Charge,
    Order,
    OrderEvent,
    cancel_signal,
    charge_credit_card,
    dispatch_order,
    order_event,
    process_order,
    store,
)

from eventual.core import ExecutionStatus
from eventual.testing import TestEnvironment

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)


def order(id: str = "o1", **kw: object) -> Order:
    return Order.model_validate({"id": id, "source": "visa-4242", "amount": 1200, **kw})


async def test_an_order_is_charged_then_dispatched_after_the_warehouse_wait() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        execution = await env.start_execution(
            process_order, order(dispatch_after=60), execution_name="o1"
        )
        # Charged at once, then waiting on the warehouse timer.
        assert (await execution.get_status()).status is ExecutionStatus.IN_PROGRESS
        assert (await store.get_order("o1") or {})["status"] == "charged"
        await env.tick(59)
        assert (await execution.get_status()).status is ExecutionStatus.IN_PROGRESS
        await env.tick(1)
        status = await execution.get_status()
        assert status.status is ExecutionStatus.SUCCEEDED
        assert status.result == "dispatched"
        row = await store.get_order("o1")
        assert row is not None
        assert (row["status"], row["tracking"], row["notified"]) == (
            "dispatched",
            "track_o1",
            True,
        )
        types = [e.type for e in await execution.get_history()]
        assert types == [
            "WorkflowStarted",
            "TaskScheduled",
            "TaskSucceeded",
            "TimerScheduled",
            "TimerCompleted",
            "TaskScheduled",
            "TaskSucceeded",
            "EventsEmitted",
            "WorkflowSucceeded",
        ]


async def test_cancel_signal_stops_an_in_flight_order_and_charges_back() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        dispatched = env.mock_task(dispatch_order)
        dispatched.succeed("never")
        execution = await env.start_execution(process_order, order(dispatch_after=3600))
        await env.tick(10)
        await env.send_signal(execution, cancel_signal, "changed my mind")
        status = await execution.get_status()
        assert status.status is ExecutionStatus.SUCCEEDED
        assert status.result == "cancelled"
        row = await store.get_order("o1")
        assert row is not None
        assert row["status"] == "charged back"
        assert row["note"] == "cancelled: changed my mind (ch_o1)"
        assert dispatched.calls == []
        names = [e.name for e in await execution.get_history() if e.type == "TaskScheduled"]
        assert names == ["chargeCreditCard", "chargeBack"]


async def test_a_failed_dispatch_is_charged_back() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        execution = await env.start_execution(
            process_order, order(items=["book", "out-of-stock-lamp"], dispatch_after=1)
        )
        await env.tick(1)
        status = await execution.get_status()
        assert status.result == "charged back"
        row = await store.get_order("o1")
        assert row is not None and row["status"] == "charged back"
        assert "cannot dispatch out-of-stock-lamp" in row["note"]


async def test_a_declined_card_fails_the_order_without_dispatch() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        execution = await env.start_execution(process_order, order(source="declined-visa"))
        status = await execution.get_status()
        assert status.status is ExecutionStatus.FAILED
        assert status.error == "CardDeclined"
        assert status.message == "the card declined-visa was declined"


async def test_charge_mock_and_order_event_reaches_a_test_subscriber() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        charge = env.mock_task(charge_credit_card).succeed(Charge(charge_id="ch_mock", amount=5))
        seen: list[OrderEvent] = []
        env.subscribe_events([order_event], seen.append)
        execution = await env.start_execution(process_order, order("o9", dispatch_after=0))
        await env.tick(1)
        assert (await execution.get_status()).result == "dispatched"
        assert [e.order_id for e in seen] == ["o9"]
        history = await execution.get_history()
        charge_back_calls = [e for e in history if getattr(e, "name", None) == "chargeBack"]
        assert charge_back_calls == []
        assert charge.calls == [("o9", "visa-4242", 1200)]


async def test_send_invoice_starts_process_order_named_after_the_order() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        execution_id = await env.invoke("sendInvoice", order("inv-1", dispatch_after=5))
        assert execution_id == "processOrder/inv-1"
        # Invoicing the same order again returns the same execution.
        again = await env.invoke("sendInvoice", order("inv-1", dispatch_after=5))
        assert again == execution_id
        await env.tick(5)
        assert (await env.get_execution(execution_id)).result == "dispatched"
        record = await env.invoke("getOrder", {"id": "inv-1"})
        assert record.status == "dispatched"
        assert record.notified is True


async def test_hello_needs_a_bearer_token_and_get_order_is_rest() -> None:
    async with TestEnvironment("order_service", start=START) as env:
        denied = await env.http("GET", "/hello")
        assert denied.status == 401
        assert denied.json_body()["error"] == "Unauthorized"
        assert denied.headers["www-authenticate"] == "Bearer"
        ok = await env.http("GET", "/hello", headers={"Authorization": "Bearer alice"})
        assert (ok.status, ok.json_body()) == (200, {"message": "hello alice"})
        missing = await env.http("GET", "/orders/nope")
        assert missing.status == 404
        assert missing.json_body() == {"error": "OrderNotFound", "message": "no order 'nope'"}
