"""Workflow behaviour end to end on the in-memory runtime, driven by a virtual clock."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from eventual.core import (
    EventualError,
    ExecutionStatus,
    HeartbeatTimeout,
    RetryPolicy,
    Timeout,
    async_result,
    condition,
    event,
    heartbeat,
    now,
    random,
    send_task_success,
    signal,
    sleep,
    sleep_until,
    subscription,
    task,
    task_context,
    uuid4,
    workflow,
)
from eventual.core.runtime import InMemoryRuntime

pytestmark = pytest.mark.anyio


class Charge(BaseModel):
    charge_id: str
    amount: int


class CardDeclined(EventualError):
    pass


calls: list[str] = []


@task("charge")
async def charge(source: str, amount: int) -> Charge:
    calls.append(f"charge:{source}")
    if source == "declined":
        raise CardDeclined(f"card {source} declined")
    if source == "broken":
        raise ValueError("the card reader is on fire")
    return Charge(charge_id=f"ch-{source}", amount=amount)


@task("double")
async def double(n: int) -> int:
    return n * 2


@workflow("pay")
async def pay(source: str) -> str:
    c = await charge(source, 100)
    return f"{c.charge_id}:{c.amount}"


async def run(rt: InMemoryRuntime, wf: Any, input: Any, **kw: Any) -> Any:
    handle = await wf.start_execution(input, **kw)
    await rt.idle()
    return await handle.get_status()


async def test_task_result_is_typed_and_recorded(rt: InMemoryRuntime) -> None:
    status = await run(rt, pay, "visa")
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == "ch-visa:100"
    history = await rt.get_history(f"pay/{status.name}")
    assert [e.type for e in history] == [
        "WorkflowStarted",
        "TaskScheduled",
        "TaskSucceeded",
        "WorkflowSucceeded",
    ]
    assert history[1].args == ["visa", 100]
    assert history[2].result == {"charge_id": "ch-visa", "amount": 100}


async def test_user_error_subclass_is_raised_as_itself(rt: InMemoryRuntime) -> None:
    @workflow("catchDeclined")
    async def catch_declined(source: str) -> str:
        try:
            await charge(source, 1)
        except CardDeclined as e:
            return f"{type(e).__name__}/{e.name}/{e.message}"
        return "no error"

    rt.service.workflows["catchDeclined"] = catch_declined
    status = await run(rt, catch_declined, "declined")
    assert status.result == "CardDeclined/CardDeclined/card declined declined"


async def test_plain_exception_crosses_as_eventual_error(rt: InMemoryRuntime) -> None:
    status = await run(rt, pay, "broken")
    assert status.status is ExecutionStatus.FAILED
    assert status.error == "ValueError"
    assert status.message == "the card reader is on fire"


order: list[str] = []


@task("slow")
async def slow(name: str) -> str:
    order.append(name)
    return name.upper()


@workflow("parallel")
async def parallel(names: list[str]) -> list[str]:
    return list(await asyncio.gather(*(slow(n) for n in names)))


async def test_gather_schedules_tasks_in_parallel(rt: InMemoryRuntime) -> None:
    status = await run(rt, parallel, ["a", "b", "c"])
    assert status.result == ["A", "B", "C"]
    history = await rt.get_history(f"parallel/{status.name}")
    types = [e.type for e in history]
    # All three are scheduled in the first step, before any result comes back.
    assert types[:4] == ["WorkflowStarted", "TaskScheduled", "TaskScheduled", "TaskScheduled"]
    assert [e.seq for e in history if e.type == "TaskScheduled"] == [0, 1, 2]


@workflow("sleeper")
async def sleeper(mode: str) -> list[str]:
    start = now()
    marks = []
    if mode == "asyncio":
        await asyncio.sleep(10)
    elif mode == "timedelta":
        await sleep(timedelta(minutes=1))
    elif mode == "until":
        await sleep_until(start + timedelta(days=30))
    elif mode == "past":
        await sleep_until(start - timedelta(days=1))
    marks.append(str(now() - start))
    return marks


@pytest.mark.parametrize(
    ("mode", "delay"),
    [("asyncio", 10.0), ("timedelta", 60.0), ("until", 30 * 86400.0)],
)
async def test_sleep_completes_at_its_due_time_not_before(
    rt: InMemoryRuntime, mode: str, delay: float
) -> None:
    handle = await sleeper.start_execution(mode)
    await rt.advance(delay - 1)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await rt.advance(1)
    status = await handle.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == [str(timedelta(seconds=delay))]
    history = await rt.get_history(handle.execution_id)
    assert [e.type for e in history][1:3] == ["TimerScheduled", "TimerCompleted"]


async def test_sleep_until_the_past_completes_at_once(rt: InMemoryRuntime) -> None:
    status = await run(rt, sleeper, "past")
    assert status.status is ExecutionStatus.SUCCEEDED
    history = await rt.get_history(status.id)
    assert "TimerScheduled" not in [e.type for e in history]


@workflow("waitForTask")
async def wait_for_task(limit: float) -> str:
    try:
        return await asyncio.wait_for(approval_task(), limit)
    except TimeoutError:
        return "gave up"


tokens: list[str] = []


@task("approval")
async def approval_task() -> str:
    return async_result(tokens.append)


async def test_wait_for_times_out_over_a_task_and_late_result_is_ignored(
    rt: InMemoryRuntime,
) -> None:
    tokens.clear()
    handle = await wait_for_task.start_execution(30.0)
    await rt.advance(29)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    assert len(tokens) == 1
    await rt.advance(1)
    status = await handle.get_status()
    assert status.result == "gave up"
    # The task completes after the workflow stopped waiting: nothing breaks, nothing changes.
    await send_task_success(tokens[0], "approved")
    await rt.idle()
    assert (await handle.get_status()).result == "gave up"
    assert rt.errors == []


async def test_wait_for_returns_the_task_result_in_time(rt: InMemoryRuntime) -> None:
    tokens.clear()
    handle = await wait_for_task.start_execution(30.0)
    await rt.idle()
    await send_task_success(tokens[0], "approved")
    await rt.idle()
    assert (await handle.get_status()).result == "approved"
    history = await rt.get_history(handle.execution_id)
    # The timeout timer was cancelled: it never fires into the history.
    await rt.advance(3600)
    assert await rt.get_history(handle.execution_id) == history


go = signal("go", int)


@workflow("timeoutBlock")
async def timeout_block(limit: float) -> str:
    try:
        async with asyncio.timeout(limit):
            value = await go.expect_signal()
            return f"signal {value}"
    except TimeoutError:
        return "timed out"


async def test_asyncio_timeout_over_a_signal(rt: InMemoryRuntime) -> None:
    late = await timeout_block.start_execution(5.0, execution_name="late")
    early = await timeout_block.start_execution(5.0, execution_name="early")
    await rt.advance(2)
    await early.send_signal(go, 7)
    await rt.advance(3)
    assert (await early.get_status()).result == "signal 7"
    assert (await late.get_status()).result == "timed out"


@workflow("expect")
async def expect(limit: float) -> str:
    try:
        return f"got {await go.expect_signal(timeout=limit)}"
    except Timeout as e:
        return f"{e.name}: {e.message}"


async def test_expect_signal_raises_timeout(rt: InMemoryRuntime) -> None:
    handle = await expect.start_execution(60)
    await rt.advance(60)
    assert (await handle.get_status()).result == "Timeout: no signal 'go' arrived within 60s"


async def test_expect_signal_receives_the_payload(rt: InMemoryRuntime) -> None:
    handle = await expect.start_execution(60)
    await rt.advance(10)
    await go.send_signal(handle.execution_id, 42)
    await rt.idle()
    assert (await handle.get_status()).result == "got 42"


@workflow("handlers")
async def handlers(_: None) -> list[Any]:
    seen: list[Any] = []

    async def async_handler(v: int) -> None:
        seen.append(("async", v, await double(v)))

    h1 = go.on_signal(lambda v: seen.append(("sync", v)))
    go.on_signal(async_handler)
    await condition(lambda: len(seen) >= 2)
    h1.dispose()
    await condition(lambda: len(seen) >= 3)
    return seen


async def test_on_signal_sync_and_async_handlers_and_dispose(rt: InMemoryRuntime) -> None:
    handle = await handlers.start_execution(None)
    await rt.idle()
    await handle.send_signal(go, 1)
    await rt.idle()
    await handle.send_signal(go, 2)
    await rt.idle()
    status = await handle.get_status()
    assert status.result == [["sync", 1], ["async", 1, 2], ["async", 2, 4]]


@workflow("conditional")
async def conditional(limit: float) -> list[bool]:
    count = 0

    def bump(_: Any) -> None:
        nonlocal count
        count += 1

    go.on_signal(bump)
    first = await condition(lambda: count >= 2, timeout=limit)
    second = await condition(lambda: count >= 5, timeout=limit)
    return [first, second]


async def test_condition_rechecks_after_every_event_and_times_out(rt: InMemoryRuntime) -> None:
    handle = await conditional.start_execution(100)
    await rt.advance(1)
    await handle.send_signal(go, 0)
    await handle.send_signal(go, 0)
    await rt.advance(1)
    # The first condition is met at t=1; the second times out 100s after that.
    await rt.advance(98)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await rt.advance(2)
    assert (await handle.get_status()).result == [True, False]


async def test_signal_with_no_listener_is_dropped(rt: InMemoryRuntime) -> None:
    handle = await expect.start_execution(100)
    await rt.idle()
    other = signal("other")
    await other.send_signal(handle.execution_id, "ignored")
    await rt.advance(10)
    await handle.send_signal(go, 3)
    await rt.idle()
    assert (await handle.get_status()).result == "got 3"
    history = await rt.get_history(handle.execution_id)
    assert [e.signal for e in history if e.type == "SignalReceived"] == ["other", "go"]


@workflow("createTask")
async def create_task_wf(_: None) -> list[int]:
    first = asyncio.create_task(double(1))
    second = asyncio.create_task(double(2))
    await asyncio.sleep(5)
    return [await first, await second]


async def test_asyncio_create_task(rt: InMemoryRuntime) -> None:
    handle = await create_task_wf.start_execution(None)
    await rt.advance(5)
    assert (await handle.get_status()).result == [2, 4]


# ---------------------------------------------------------------- signals between workflows


@workflow("pinger")
async def pinger(target: str) -> str:
    await go.send_signal(target, 99)
    return "sent"


async def test_send_signal_from_a_workflow_is_recorded_and_delivered(rt: InMemoryRuntime) -> None:
    receiver = await expect.start_execution(1000)
    sender = await pinger.start_execution(receiver.execution_id)
    await rt.idle()
    assert (await receiver.get_status()).result == "got 99"
    history = await rt.get_history(sender.execution_id)
    sent = [e for e in history if e.type == "SignalSent"]
    assert len(sent) == 1
    assert (sent[0].execution_id, sent[0].signal, sent[0].payload) == (
        receiver.execution_id,
        "go",
        99,
    )


# ---------------------------------------------------------------- events


class Shipped(BaseModel):
    order_id: str


shipped = event("Shipped", Shipped)
received: list[Any] = []


@subscription("onShipped", events=[shipped])
async def on_shipped(e: Shipped) -> None:
    if e.order_id.startswith("flaky") and e not in received:
        received.append(e)
        raise RuntimeError("the first delivery fails")
    received.append(e)


@workflow("ship")
async def ship(order_id: str) -> None:
    await shipped.emit(Shipped(order_id=order_id), Shipped(order_id=order_id + "-b"))


async def test_emitted_events_are_recorded_and_reach_subscriptions(rt: InMemoryRuntime) -> None:
    received.clear()
    status = await run(rt, ship, "o1")
    assert status.status is ExecutionStatus.SUCCEEDED
    assert received == [Shipped(order_id="o1"), Shipped(order_id="o1-b")]
    history = await rt.get_history(status.id)
    emitted = [e for e in history if e.type == "EventsEmitted"]
    assert [ev.payload for ev in emitted[0].events] == [{"order_id": "o1"}, {"order_id": "o1-b"}]


async def test_a_failing_subscription_is_delivered_again(rt: InMemoryRuntime) -> None:
    received.clear()
    status = await run(rt, ship, "flaky")
    assert status.status is ExecutionStatus.SUCCEEDED
    # Each event: the failed delivery, then the retry (at once: virtual time stands still).
    assert sorted(e.order_id for e in received) == ["flaky", "flaky", "flaky-b", "flaky-b"]


# ---------------------------------------------------------------- child workflows


@workflow("child")
async def child(n: int) -> int:
    await asyncio.sleep(60)
    if n < 0:
        raise CardDeclined("negative")
    return n * 10


@workflow("parent")
async def parent(n: int) -> str:
    try:
        return f"child said {await child(n)}"
    except CardDeclined as e:
        return f"child failed: {e.message}"


async def test_child_workflow_result_and_failure(rt: InMemoryRuntime) -> None:
    ok = await parent.start_execution(4, execution_name="ok")
    bad = await parent.start_execution(-1, execution_name="bad")
    await rt.advance(60)
    assert (await ok.get_status()).result == "child said 40"
    assert (await bad.get_status()).result == "child failed: negative"
    executions, _ = await rt.list_executions(workflow="child")
    assert {e.parent.execution_id for e in executions if e.parent} == {"parent/ok", "parent/bad"}


@workflow("slowWorkflow", timeout=timedelta(hours=1))
async def slow_workflow(_: None) -> str:
    await asyncio.sleep(7200)
    return "done"


async def test_workflow_timeout_fails_with_workflow_timeout(rt: InMemoryRuntime) -> None:
    handle = await slow_workflow.start_execution(None)
    await rt.advance(3599)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await rt.advance(1)
    status = await handle.get_status()
    assert status.status is ExecutionStatus.FAILED
    assert status.error == "WorkflowTimeout"


async def test_start_execution_timeout_overrides(rt: InMemoryRuntime) -> None:
    handle = await slow_workflow.start_execution(None, timeout=timedelta(seconds=10))
    await rt.advance(10)
    assert (await handle.get_status()).error == "WorkflowTimeout"


# ---------------------------------------------------------------- task options


@task("stuck", timeout=timedelta(seconds=30))
async def stuck() -> str:
    return async_result(lambda token: None)


@task("beating", heartbeat_timeout=timedelta(seconds=10))
async def beating() -> str:
    return async_result(tokens.append)


@workflow("taskTimeouts")
async def task_timeouts(which: str) -> str:
    try:
        await (stuck() if which == "timeout" else beating())
    except HeartbeatTimeout as e:
        return f"heartbeat: {e.message}"
    except Timeout as e:
        return f"timeout: {e.message}"
    return "finished"


async def test_task_timeout_raises_timeout(rt: InMemoryRuntime) -> None:
    handle = await task_timeouts.start_execution("timeout")
    await rt.advance(29)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await rt.advance(1)
    assert (await handle.get_status()).result == "timeout: task 'stuck' did not complete within 30s"


async def test_heartbeat_timeout_raises_and_heartbeats_keep_it_alive(rt: InMemoryRuntime) -> None:
    from eventual.core import send_task_heartbeat

    tokens.clear()
    handle = await task_timeouts.start_execution("heartbeat")
    await rt.idle()
    for _ in range(5):
        await rt.advance(8)
        assert await send_task_heartbeat(tokens[0]) is False
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await rt.advance(10)
    assert (await handle.get_status()).result == (
        "heartbeat: task 'beating' sent no heartbeat within 10s"
    )
    # The task learns it was cancelled on its next heartbeat.
    assert await send_task_heartbeat(tokens[0]) is True


attempts: list[tuple[int, str]] = []


@task(
    "flaky",
    retry=RetryPolicy(
        max_attempts=4,
        initial_interval=timedelta(seconds=10),
        backoff_coefficient=3,
        non_retryable=[CardDeclined],
    ),
)
async def flaky(fail_times: int, error: str) -> str:
    ctx = task_context()
    attempts.append((ctx.attempt, str(now())))
    if ctx.attempt <= fail_times:
        if error == "declined":
            raise CardDeclined("no")
        raise ConnectionError("try again")
    return f"ok on attempt {ctx.attempt}"


@workflow("retrying")
async def retrying(args: list[Any]) -> str:
    try:
        return await flaky(args[0], args[1])
    except EventualError as e:
        return f"failed: {e.name}"


async def test_retry_backs_off_in_virtual_time_then_succeeds(rt: InMemoryRuntime) -> None:
    attempts.clear()
    handle = await retrying.start_execution([2, "connection"])
    await rt.idle()
    assert len(attempts) == 1
    await rt.advance(9)
    assert len(attempts) == 1
    await rt.advance(1)  # 10s after the first failure
    assert len(attempts) == 2
    await rt.advance(29)
    assert len(attempts) == 2
    await rt.advance(1)  # 30s after the second failure
    assert (await handle.get_status()).result == "ok on attempt 3"
    history = await rt.get_history(handle.execution_id)
    retries = [e for e in history if e.type == "TaskRetryScheduled"]
    assert [(r.attempt, r.error) for r in retries] == [
        (2, "ConnectionError"),
        (3, "ConnectionError"),
    ]


async def test_retry_gives_up_after_max_attempts(rt: InMemoryRuntime) -> None:
    attempts.clear()
    handle = await retrying.start_execution([10, "connection"])
    await rt.advance(10 + 30 + 90)
    assert (await handle.get_status()).result == "failed: ConnectionError"
    assert [a for a, _ in attempts] == [1, 2, 3, 4]


async def test_non_retryable_error_fails_at_once(rt: InMemoryRuntime) -> None:
    attempts.clear()
    status = await run(rt, retrying, [10, "declined"])
    assert status.result == "failed: CardDeclined"
    assert len(attempts) == 1


@task("beat")
async def beat() -> bool:
    return await heartbeat({"progress": 1})


@workflow("beatWorkflow")
async def beat_workflow(_: None) -> bool:
    return await beat()


async def test_heartbeat_from_a_running_task(rt: InMemoryRuntime) -> None:
    status = await run(rt, beat_workflow, None)
    assert status.result is False


# ---------------------------------------------------------------- determinism helpers


@workflow("randomness")
async def randomness(_: None) -> list[Any]:
    logging.getLogger("user.workflow").warning("drawing numbers")
    first = [random(), str(uuid4()), now().isoformat()]
    await asyncio.sleep(1)
    return [*first, random(), now().isoformat()]


async def test_now_random_uuid4_are_deterministic_and_logs_not_repeated_on_replay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sys
    from datetime import UTC, datetime

    from eventual.core._context import use_runtime
    from eventual.core.engine import WorkflowExecutor
    from eventual.core.runtime import VirtualClock
    from eventual.core.service import load_service

    service = load_service(sys.modules[__name__], module_only=True)
    results = []
    for name in ("a", "a", "b"):
        async with InMemoryRuntime(
            service, clock=VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))
        ) as r:
            with use_runtime(r):
                handle = await randomness.start_execution(None, execution_name=name)
                await r.advance(1)
                status = await handle.get_status()
                results.append(status.result)
                history = await r.get_history(handle.execution_id)
    assert results[0] == results[1]
    assert results[0] != results[2]
    assert results[0][2] == "2024-01-01T00:00:00+00:00"
    assert results[0][4] == "2024-01-01T00:00:01+00:00"
    # Replaying the finished history logs nothing; the live runs logged once each.
    assert len([r for r in caplog.records if r.getMessage() == "drawing numbers"]) == 3
    caplog.clear()
    replayed = WorkflowExecutor.replay(randomness, history)
    assert replayed.completion is not None and replayed.completion.result == results[2]
    assert [r for r in caplog.records if r.getMessage() == "drawing numbers"] == []


async def test_workflow_logs_reach_the_log_sink(rt: InMemoryRuntime) -> None:
    handle = await randomness.start_execution(None)
    await rt.advance(1)
    logs = await rt.get_logs(handle.execution_id)
    assert [(e.level, e.message) for _, e in logs] == [("WARNING", "drawing numbers")]


async def test_same_name_same_input_returns_running_execution(rt: InMemoryRuntime) -> None:
    from eventual.core import ExecutionAlreadyExists

    a = await expect.start_execution(10, execution_name="once")
    b = await expect.start_execution(10, execution_name="once")
    assert a.execution_id == b.execution_id == "expect/once"
    with pytest.raises(ExecutionAlreadyExists, match="different input"):
        await expect.start_execution(11, execution_name="once")
    await rt.idle()
    history = await rt.get_history("expect/once")
    assert [e.type for e in history].count("WorkflowStarted") == 1


@workflow("quickWithTimeout", timeout=timedelta(days=1))
async def quick_with_timeout(_: None) -> str:
    return "quick"


async def test_a_finished_workflow_leaves_no_timer_behind(rt: InMemoryRuntime) -> None:
    status = await run(rt, quick_with_timeout, None)
    assert status.result == "quick"
    assert len(rt.timer_scheduler) == 0


@workflow("impatient")
async def impatient(_: None) -> str:
    attempts.clear()
    try:
        return await asyncio.wait_for(flaky(10, "connection"), 5)
    except TimeoutError:
        await asyncio.sleep(1000)
        return f"gave up after {len(attempts)} attempt(s)"


async def test_no_retry_is_scheduled_for_a_task_nobody_waits_for(rt: InMemoryRuntime) -> None:
    handle = await impatient.start_execution(None)
    await rt.advance(1005)
    # The first retry was due at t=10, after wait_for gave up at t=5: it is not run.
    assert (await handle.get_status()).result == "gave up after 1 attempt(s)"


# A task whose handler starts an execution and waits for it: the runtime must run that
# execution while the handler still runs (the worker may take on work only once it is done).
@workflow("wfInnerDouble")
async def inner_double(n: int) -> int:
    return await double_it(n)


@task("wfDoubleIt")
async def double_it(n: int) -> int:
    return n * 2


@task("wfStartsAndWaits")
async def starts_and_waits(n: int) -> int:
    handle = await inner_double.start_execution(n)
    for _ in range(1000):
        status = await handle.get_status()
        if status.status is ExecutionStatus.SUCCEEDED:
            return status.result
        await asyncio.sleep(0)
    raise RuntimeError("the execution this task started never ran")


@workflow("wfOuterWaits")
async def outer_waits(n: int) -> int:
    return await starts_and_waits(n) + 1


async def test_task_that_waits_for_an_execution_it_started(rt: InMemoryRuntime) -> None:
    handle = await outer_waits.start_execution(20)
    await rt.idle()
    execution = await handle.get_status()
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.result == 41
