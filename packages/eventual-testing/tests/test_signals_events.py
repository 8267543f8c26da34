"""Signals, events, subscriptions and child workflows under TestEnvironment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from eventual.core import (
    EventualError,
    ExecutionStatus,
    Timeout,
    condition,
    event,
    signal,
    subscription,
    task,
    workflow,
)
from eventual.testing import TestEnvironment

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- signals

approve = signal("approve", str)
add = signal("add", int)
done = signal("done")
ping = signal("ping", str)
pong = signal("pong", str)


@workflow("approval")
async def approval(seconds: int) -> str:
    """Waits for approval, racing a sleep."""
    approved: list[str] = []
    approve.on_signal(approved.append)
    if await condition(lambda: bool(approved), timeout=seconds):
        return f"approved by {approved[0]}"
    return "expired"


@workflow("sleepRace")
async def sleep_race(seconds: int) -> str:
    sleeper = asyncio.create_task(asyncio.sleep(seconds))
    waiter = asyncio.create_task(approve.expect_signal())
    finished, pending = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
    for p in pending:
        p.cancel()
    if waiter in finished:
        return f"signal {waiter.result()}"
    return "slept"


@workflow("adder")
async def adder(_: None) -> int:
    total = 0

    def on_add(n: int) -> None:
        nonlocal total
        total += n

    handle = add.on_signal(on_add)
    await done.expect_signal()
    handle.dispose()  # later adds are ignored
    await done.expect_signal()
    return total


@workflow("expecting")
async def expecting(timeout: int) -> str:
    try:
        who = await approve.expect_signal(timeout=timeout)
    except Timeout as e:
        return f"timeout: {e.message}"
    return f"got {who}"


@workflow("pinger")
async def pinger(target: str) -> str:
    await ping.send_signal(target, "hello")
    reply = await pong.expect_signal(timeout=60)
    return f"pinger got {reply}"


@workflow("ponger")
async def ponger(pinger_id: str) -> str:
    msg = await ping.expect_signal()
    await pong.send_signal(pinger_id, msg.upper())
    return f"ponger got {msg}"


async def test_a_signal_wins_the_race_with_a_sleep(env: TestEnvironment) -> None:
    handle = await env.start_execution(sleep_race, 100)
    await env.tick(50)
    await env.send_signal(handle, approve, "alice")
    status = await handle.get_status()
    assert status.result == "signal alice"
    assert status.end_time == env.time


async def test_the_sleep_wins_when_no_signal_comes(env: TestEnvironment) -> None:
    handle = await env.start_execution(sleep_race, 100)
    await env.tick(99)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)
    assert (await handle.get_status()).result == "slept"
    # A signal after the end changes nothing.
    await env.send_signal(handle.execution_id, "approve", "late")
    assert (await handle.get_status()).result == "slept"


async def test_condition_with_on_signal_and_a_timeout(env: TestEnvironment) -> None:
    approved = await env.start_execution(approval, 60)
    expired = await env.start_execution(approval, 60)
    await env.tick(59)
    await approved.send_signal(approve, "bob")  # the handle's own send_signal
    assert (await approved.get_status()).result == "approved by bob"
    await env.tick(1)
    assert (await expired.get_status()).result == "expired"


async def test_on_signal_until_dispose(env: TestEnvironment) -> None:
    handle = await env.start_execution(adder, None)
    for n in (1, 2, 3):
        await env.send_signal(handle, add, n)
    await env.send_signal(handle, done)
    await env.send_signal(handle, add, 100)  # after dispose(): ignored
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.send_signal(handle, "done")
    assert (await handle.get_status()).result == 6


async def test_expect_signal_and_its_timeout(env: TestEnvironment) -> None:
    got = await env.start_execution(expecting, 30)
    timed_out = await env.start_execution(expecting, 30)
    await env.send_signal(got, approve, "carol")
    assert (await got.get_status()).result == "got carol"
    await env.tick(29)
    assert (await timed_out.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)
    assert (
        await timed_out.get_status()
    ).result == "timeout: no signal 'approve' arrived within 30s"


async def test_workflows_signal_each_other(env: TestEnvironment) -> None:
    b = await env.start_execution(ponger, "pinger/p1", execution_name="p2")
    a = await env.start_execution(pinger, b.execution_id, execution_name="p1")
    # Both complete at the current instant: no tick needed.
    assert (await a.get_status()).result == "pinger got HELLO"
    assert (await b.get_status()).result == "ponger got hello"


# ---------------------------------------------------------------- events


class OrderPlaced(BaseModel):
    order_id: str
    amount: int


order_placed = event("OrderPlaced", OrderPlaced)
audit = event("Audit")
received: list[str] = []


@task("placeOrder")
async def place_order(order_id: str) -> None:
    await order_placed.emit(OrderPlaced(order_id=order_id, amount=5))


@workflow("ordering")
async def ordering(order_id: str) -> str:
    await place_order(order_id)
    await audit.emit({"who": "workflow", "order": order_id})
    return "ok"


@subscription("recordOrders", events=[order_placed])
async def record_orders(e: OrderPlaced) -> None:
    received.append(f"sub:{e.order_id}:{e.amount}")
    await audit.emit({"who": "subscription", "order": e.order_id})


async def test_events_reach_service_and_test_subscriptions(env: TestEnvironment) -> None:
    received.clear()
    seen: list[Any] = []
    audits: list[Any] = []
    env.subscribe_events([order_placed], seen.append)

    async def on_audit(payload: Any) -> None:
        audits.append(payload)

    env.subscribe_events(["Audit"], on_audit)
    handle = await env.start_execution(ordering, "o1")
    assert (await handle.get_status()).result == "ok"
    assert received == ["sub:o1:5"]
    assert seen == [OrderPlaced(order_id="o1", amount=5)]  # typed by the event's schema
    assert sorted(a["who"] for a in audits) == ["subscription", "workflow"]


async def test_emit_event_from_the_test(env: TestEnvironment) -> None:
    received.clear()
    seen: list[OrderPlaced] = []
    sub = env.subscribe_events([order_placed], seen.append)
    await env.emit_event(order_placed, OrderPlaced(order_id="a", amount=1))
    await env.emit_event("OrderPlaced", {"order_id": "b", "amount": 2})
    assert received == ["sub:a:1", "sub:b:2"]
    assert [o.order_id for o in seen] == ["a", "b"]
    sub.dispose()
    await env.emit_event(order_placed, OrderPlaced(order_id="c", amount=3))
    assert [o.order_id for o in seen] == ["a", "b"]
    assert received[-1] == "sub:c:3"


async def test_service_subscriptions_switch_off_and_on(env: TestEnvironment) -> None:
    received.clear()
    seen: list[OrderPlaced] = []
    env.subscribe_events([order_placed], seen.append)
    env.disable_service_subscriptions()
    await env.emit_event(order_placed, OrderPlaced(order_id="quiet", amount=1))
    assert received == []
    assert [o.order_id for o in seen] == ["quiet"]  # test subscriptions still hear it
    env.enable_service_subscriptions()
    await env.emit_event(order_placed, OrderPlaced(order_id="loud", amount=1))
    assert received == ["sub:loud:1"]


async def test_a_failing_test_subscription_fails_the_action(env: TestEnvironment) -> None:
    def boom(payload: Any) -> None:
        raise AssertionError(f"unexpected {payload}")

    sub = env.subscribe_events([audit], boom)
    with pytest.raises(AssertionError, match="unexpected"):
        await env.emit_event(audit, {"x": 1})
    sub.dispose()
    env.runtime.errors.clear()


async def test_a_test_subscription_can_drive_the_environment(env: TestEnvironment) -> None:
    """A handler may act on the environment (it runs inside the runtime's work)."""
    handle = await env.start_execution(expecting, 60)

    async def forward(payload: Any) -> None:
        await env.send_signal(handle, approve, payload["who"])

    env.subscribe_events([audit], forward)
    await env.emit_event(audit, {"who": "dave"})
    assert (await handle.get_status()).result == "got dave"


# ---------------------------------------------------------------- child workflows


class EnvChildFailed(EventualError):
    pass


@workflow("child")
async def child(n: int) -> int:
    await asyncio.sleep(n)
    if n < 0:
        raise EnvChildFailed(f"negative {n}")
    return n * 10


@workflow("slowChild")
async def slow_child(_: None) -> str:
    await asyncio.sleep(3600)
    return "finally"


@workflow("parent")
async def parent(ns: list[int]) -> list[str]:
    out: list[str] = []
    for n in ns:
        try:
            out.append(str(await child(n)))
        except EnvChildFailed as e:
            out.append(f"child failed: {e.message}")
    return out


@workflow("impatientParent")
async def impatient_parent(seconds: int) -> str:
    try:
        return await asyncio.wait_for(slow_child(None), timeout=seconds)
    except TimeoutError:
        return "gave up on the child"


@workflow("boundedChild", timeout=timedelta(minutes=5))
async def bounded_child(_: None) -> str:
    await asyncio.sleep(3600)
    return "never"


@workflow("boundedParent")
async def bounded_parent(_: None) -> str:
    try:
        return await bounded_child(None)
    except EventualError as e:
        return f"{type(e).__name__}: {e.message}"


async def test_child_workflows_succeed_and_fail(env: TestEnvironment) -> None:
    handle = await env.start_execution(parent, [1, 0, -1])
    await env.tick(1)
    status = await handle.get_status()
    assert status.result == ["10", "0", "child failed: negative -1"]
    children = await env.client.list_executions(workflow=child)
    assert sorted(e.status for e in children) == [
        ExecutionStatus.FAILED,
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.SUCCEEDED,
    ]
    assert all(
        e.parent is not None and e.parent.execution_id == handle.execution_id for e in children
    )


async def test_waiting_on_a_child_times_out(env: TestEnvironment) -> None:
    handle = await env.start_execution(impatient_parent, 60)
    await env.tick(59)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)
    assert (await handle.get_status()).result == "gave up on the child"


async def test_a_workflow_timeout(env: TestEnvironment) -> None:
    handle = await env.start_execution(slow_child, None, timeout=timedelta(minutes=10))
    await env.tick(timedelta(minutes=10))
    status = await handle.get_status()
    assert status.status is ExecutionStatus.FAILED
    assert status.error == "WorkflowTimeout"
    assert status.end_time == env.time


async def test_a_child_workflow_timeout_fails_the_call_in_the_parent(env: TestEnvironment) -> None:
    handle = await env.start_execution(bounded_parent, None)
    await env.tick(timedelta(minutes=5) - timedelta(seconds=1))
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)
    assert (await handle.get_status()).result == (
        "WorkflowTimeout: workflow 'boundedChild' did not complete in time"
    )


async def test_moving_time_from_a_handler_is_refused(env: TestEnvironment) -> None:
    async def impatient(payload: Any) -> None:
        await env.tick(5)

    env.subscribe_events([audit], impatient)
    with pytest.raises(RuntimeError, match="move time from the test"):
        await env.emit_event(audit, {})
    assert env.time == START
    env.runtime.errors.clear()
