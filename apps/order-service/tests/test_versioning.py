"""Deploying a changed processOrder while orders are in flight (docs/versioning.md).

The change: a failed dispatch used to be charged back as "dispatch failed: ..."; now an order
the warehouse cannot fill is charged back as "out of stock: ...". The reason is an argument of
the chargeBack task, so the service puts it behind ``patched("out-of-stock-reason")``.

Each test starts orders on the code before the change (``process_order_before_the_patch``, a
copy of the workflow as it was), deploys new code with ``TestEnvironment.replace_service`` and
looks at what a user sees: results, the recorded chargeBack calls, the builds. The exported
histories in tests/histories/ (recorded before the patch, and one with it) are replayed against
the patched code, as CI does before a deploy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from order_service import (
    SERVICE_NAME,
    Order,
    OrderEvent,
    cancel_signal,
    charge_back,
    charge_credit_card,
    dispatch_order,
    order_event,
    process_order,
    store,
)

from eventual.core import (
    DeterminismError,
    EventualError,
    ExecutionStatus,
    Service,
    condition,
    load_service,
    workflow,
)
from eventual.core.history import (
    PatchMarked,
    TaskScheduled,
    WorkflowFailed,
    WorkflowSucceeded,
    parse_history,
)
from eventual.testing import TestEnvironment, replay

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)
HISTORIES = Path(__file__).parent / "histories"
OLD_REASON = "dispatch failed: cannot dispatch out-of-stock-lamp"
NEW_REASON = "out of stock: cannot dispatch out-of-stock-lamp"


# ---------------------------------------------------------------- the two other versions


@workflow("processOrder", timeout=timedelta(days=30))
async def process_order_before_the_patch(order: Order) -> str:
    """processOrder as it was deployed before the change (its logging left out)."""
    cancelled: list[str] = []

    def on_cancel(reason: str | None) -> None:
        cancelled.append(reason or "cancelled by the customer")

    cancel_signal.on_signal(on_cancel)
    charge = await charge_credit_card(order.id, order.source, order.amount)
    await condition(lambda: bool(cancelled), timeout=order.dispatch_after)
    if cancelled:
        await charge_back(order.id, charge.charge_id, f"cancelled: {cancelled[0]}")
        return "cancelled"
    try:
        tracking = await dispatch_order(order)
    except EventualError as exc:
        await charge_back(order.id, charge.charge_id, f"dispatch failed: {exc.message}")
        return "charged back"
    await order_event.emit(OrderEvent(order_id=order.id, tracking=tracking))
    return "dispatched"


@workflow("processOrder", timeout=timedelta(days=30))
async def process_order_without_the_patch(order: Order) -> str:
    """The same change made the wrong way: the new reason, with no ``patched()``."""
    cancelled: list[str] = []

    def on_cancel(reason: str | None) -> None:
        cancelled.append(reason or "cancelled by the customer")

    cancel_signal.on_signal(on_cancel)
    charge = await charge_credit_card(order.id, order.source, order.amount)
    await condition(lambda: bool(cancelled), timeout=order.dispatch_after)
    if cancelled:
        await charge_back(order.id, charge.charge_id, f"cancelled: {cancelled[0]}")
        return "cancelled"
    try:
        tracking = await dispatch_order(order)
    except EventualError as exc:
        await charge_back(order.id, charge.charge_id, f"out of stock: {exc.message}")
        return "charged back"
    await order_event.emit(OrderEvent(order_id=order.id, tracking=tracking))
    return "dispatched"


def order_service_with(wf: Any) -> Service:
    """The order service with another processOrder: one deploy of it. Its build is the
    package version plus a hash of its workflow's code, so each version has its own."""
    today = load_service("order_service")
    return Service(
        SERVICE_NAME,
        [
            wf,
            *today.tasks.values(),
            *today.commands.values(),
            *today.routes,
            *today.signals.values(),
            *today.events.values(),
            *today.subscriptions.values(),
        ],
        entry=today.entry,
    )


@pytest.fixture(autouse=True)
def builds_from_the_code(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No EVENTUAL_BUILD from the outside: every version's build comes from its code."""
    monkeypatch.delenv("EVENTUAL_BUILD", raising=False)
    yield


def out_of_stock(id: str, dispatch_after: float) -> Order:
    return Order.model_validate(
        {
            "id": id,
            "source": "visa-4242",
            "amount": 1200,
            "items": ["book", "out-of-stock-lamp"],
            "dispatch_after": dispatch_after,
        }
    )


async def charge_back_reasons(env: TestEnvironment, execution_id: str) -> list[str]:
    """The reason of every chargeBack call the execution recorded."""
    history = await env.client.get_execution_history(execution_id)
    return [e.args[2] for e in history if isinstance(e, TaskScheduled) and e.name == "chargeBack"]


async def patch_markers(env: TestEnvironment, execution_id: str) -> list[tuple[int, str]]:
    history = await env.client.get_execution_history(execution_id)
    return [(e.seq, e.patch) for e in history if isinstance(e, PatchMarked)]


async def start_on_the_old_code(env: TestEnvironment) -> tuple[str, str, str]:
    """Two orders on the old code: "refunding" failed its dispatch and waits for the payment
    provider to confirm its charge back (recorded with the old reason); "waiting" is still
    waiting for the warehouse, before the change. Returns their ids and the token that
    completes the pending charge back."""
    refunds = env.mock_task(charge_back).async_result_once()  # the first waits; others run
    refunding = await env.start_execution(
        process_order, out_of_stock("refunding", 1), execution_name="refunding"
    )
    waiting = await env.start_execution(
        process_order, out_of_stock("waiting", 3600), execution_name="waiting"
    )
    await env.tick(1)
    assert await charge_back_reasons(env, refunding.execution_id) == [OLD_REASON]
    assert (await refunding.get_status()).status is ExecutionStatus.IN_PROGRESS
    (token,) = refunds.tokens
    return refunding.execution_id, waiting.execution_id, token


# ---------------------------------------------------------------- deploys


async def test_a_patched_deploy_keeps_old_orders_on_the_old_branch() -> None:
    old_code = order_service_with(process_order_before_the_patch)
    async with TestEnvironment(old_code, start=START) as env:
        refunding, waiting, refund_token = await start_on_the_old_code(env)

        new_code = await env.replace_service("order_service")  # the deploy
        assert new_code.build != old_code.build
        # Still running on the old build: not yet the time to deprecate the patch.
        running_old = await env.client.list_executions(
            build=old_code.build, statuses=["IN_PROGRESS"]
        )
        assert sorted(e.id for e in running_old) == [refunding, waiting]
        new = await env.start_execution(process_order, out_of_stock("new", 1), execution_name="new")
        await env.tick(1)
        # The provider confirms the refund asked for before the deploy: "refunding" replays on
        # the new code, where patched() is False for it (its history has the old call at that
        # seq), and finishes on the old branch.
        await env.send_task_success(refund_token, None)
        await env.tick(3600)  # "waiting" gets to the change on the new code

        for execution_id in (refunding, waiting, new.execution_id):
            status = await env.get_execution(execution_id)
            assert (status.status, status.result) == (ExecutionStatus.SUCCEEDED, "charged back")
        assert await charge_back_reasons(env, refunding) == [OLD_REASON]
        assert await patch_markers(env, refunding) == []
        # An old execution that had not reached the change takes the new branch, like a new one.
        for execution_id in (waiting, new.execution_id):
            assert await charge_back_reasons(env, execution_id) == [NEW_REASON]
            assert await patch_markers(env, execution_id) == [(3, "out-of-stock-reason")]
        row = await store.get_order("new")
        assert row is not None and row["note"] == f"{NEW_REASON} (ch_new)"

        # Which build each order started on: what to check before deprecating the patch.
        on_old = await env.client.list_executions(build=old_code.build)
        assert sorted(e.id for e in on_old) == [refunding, waiting]
        on_new = await env.client.list_executions(build=new_code.build)
        assert [e.id for e in on_new] == [new.execution_id]
        running_old = await env.client.list_executions(
            build=old_code.build, statuses=["IN_PROGRESS"]
        )
        assert list(running_old) == []  # drained: deprecate_patch() may replace the `if` now


async def test_the_change_without_the_patch_fails_the_old_orders_with_a_readable_error() -> None:
    async with TestEnvironment(order_service_with(process_order_before_the_patch)) as env:
        refunding, waiting, refund_token = await start_on_the_old_code(env)

        await env.replace_service(order_service_with(process_order_without_the_patch))
        await env.send_task_success(refund_token, None)
        status = await env.get_execution(refunding)
        assert (status.id, status.workflow) == ("processOrder/refunding", "processOrder")
        assert status.status is ExecutionStatus.FAILED
        assert status.error == "DeterminismError"
        assert status.message == (
            "seq 3: the history records task 'chargeBack' with arguments "
            '["refunding","ch_refunding","dispatch failed: cannot dispatch out-of-stock-lamp"], '
            "but the code did task 'chargeBack' with arguments "
            '["refunding","ch_refunding","out of stock: cannot dispatch out-of-stock-lamp"]'
        )
        # An execution that had not got to the change is not hurt: it runs the new code live.
        await env.tick(3600)
        assert (await env.get_execution(waiting)).result == "charged back"
        assert await charge_back_reasons(env, waiting) == [NEW_REASON]


# ---------------------------------------------------------------- replaying exported histories


def exported(name: str) -> dict[str, Any]:
    return json.loads((HISTORIES / f"{name}.json").read_text())


def assert_replays_to_its_outcome(wf: Any, data: dict[str, Any]) -> None:
    recorded = parse_history(data)[-1]
    outcome = replay(wf, data)  # raises DeterminismError where the code diverges
    if isinstance(recorded, WorkflowSucceeded):
        assert outcome.succeeded and outcome.result == recorded.result
    else:
        assert isinstance(recorded, WorkflowFailed)
        assert (outcome.error, outcome.message) == (recorded.error, recorded.message)


BEFORE_THE_PATCH = ["cancelled", "declined", "dispatched", "out-of-stock"]


@pytest.mark.parametrize("name", BEFORE_THE_PATCH)
def test_histories_exported_before_the_patch_replay_on_the_patched_code(name: str) -> None:
    data = exported(name)
    assert "PatchMarked" not in [e["type"] for e in data["events"]]
    assert_replays_to_its_outcome(process_order, data)


def test_the_out_of_stock_history_holds_the_old_call_the_patch_keeps() -> None:
    data = exported("out-of-stock")
    (call,) = [e for e in data["events"] if e.get("name") == "chargeBack"]
    assert (call["seq"], call["args"][2]) == (3, OLD_REASON)
    # Without the patch, CI stops the deploy here, naming the seq and both calls.
    with pytest.raises(DeterminismError) as failed:
        replay(process_order_without_the_patch, data)
    assert str(failed.value) == (
        "seq 3: the history records task 'chargeBack' with arguments "
        '["out-of-stock","ch_out-of-stock","dispatch failed: cannot dispatch out-of-stock-lamp"]'
        ", but the code did task 'chargeBack' with arguments "
        '["out-of-stock","ch_out-of-stock","out of stock: cannot dispatch out-of-stock-lamp"]'
    )
    assert failed.value.seq == 3  # what `eventual replay` prints: at seq 3: recorded ...
    # The other histories never took the changed path: they replay on either version.
    for name in ("cancelled", "declined", "dispatched"):
        assert_replays_to_its_outcome(process_order_without_the_patch, exported(name))


def test_a_history_recorded_with_the_patch_replays_on_the_patched_code() -> None:
    data = exported("out-of-stock-patched")
    markers = [(e["seq"], e["patch"]) for e in data["events"] if e["type"] == "PatchMarked"]
    assert markers == [(3, "out-of-stock-reason")]
    (call,) = [e for e in data["events"] if e.get("name") == "chargeBack"]
    assert call["args"][2] == "out of stock: cannot dispatch out-of-stock-lamp"
    assert_replays_to_its_outcome(process_order, data)
    # Code from before the patch cannot replay it: rolling back is a change too.
    with pytest.raises(DeterminismError, match="seq 3: the history records patch marker"):
        replay(process_order_before_the_patch, data)
