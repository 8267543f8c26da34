"""Workflow behaviour end to end on the SQLite runtime, on the real clock (short waits)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from eventual.core import (
    EventualError,
    ExecutionAlreadyExists,
    ExecutionStatus,
    HeartbeatTimeout,
    RetryPolicy,
    Timeout,
    async_result,
    condition,
    event,
    signal,
    subscription,
    task,
    task_context,
    workflow,
)
from eventual.core._context import use_runtime
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["inline", "threaded"])
async def srt(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[SqliteRuntime]:
    """A runtime running its statements on the event loop, or on a database thread."""
    service = load_service(sys.modules[__name__], module_only=True, name="test")
    threaded = request.param == "threaded"
    async with SqliteRuntime(service, db_path=tmp_path / "dev.db", threaded=threaded) as rt:
        with use_runtime(rt):
            yield rt
        assert rt.errors == []


async def finish(rt: SqliteRuntime, handle: Any, timeout: float = 10.0) -> Any:
    await rt.wait_for_execution(handle.execution_id, timeout=timeout)
    return await handle.get_status()


# ---------------------------------------------------------------- tasks


class Charge(BaseModel):
    charge_id: str
    amount: int


class SqlCardDeclined(EventualError):
    pass


@task("sqlCharge")
async def charge(source: str, amount: int) -> Charge:
    if source == "declined":
        raise SqlCardDeclined(f"card {source} declined")
    if source == "broken":
        raise ValueError("the card reader is on fire")
    return Charge(charge_id=f"ch-{source}", amount=amount)


@workflow("sqlPay")
async def pay(source: str) -> str:
    try:
        c = await charge(source, 100)
    except SqlCardDeclined as e:
        return f"{type(e).__name__}: {e.message}"
    return f"{c.charge_id}:{c.amount}"


async def test_task_result_is_typed_and_recorded(srt: SqliteRuntime) -> None:
    status = await finish(srt, await pay.start_execution("visa"))
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == "ch-visa:100"
    history = await srt.get_history(status.id)
    assert [e.type for e in history] == [
        "WorkflowStarted",
        "TaskScheduled",
        "TaskSucceeded",
        "WorkflowSucceeded",
    ]
    assert history[1].args == ["visa", 100]
    assert history[2].result == {"charge_id": "ch-visa", "amount": 100}


async def test_executions_run_one_after_another_commit_every_step_alone(
    tmp_path: Path,
) -> None:
    """A caller that starts an execution, waits for its end, then starts the next: nothing
    else is ready on the loop at any of their commits (the orchestrator whose step ended the
    first is gone before its caller resumes), so each start and each step commits at once,
    without waiting a turn of the loop for a group to form. Three commits an execution: its
    start, its task's scheduling, its end."""
    service = load_service(sys.modules[__name__], module_only=True, name="test")
    async with SqliteRuntime(service, db_path=tmp_path / "dev.db", threaded=False) as rt:
        with use_runtime(rt):
            assert (await finish(rt, await pay.start_execution("visa"))).result == "ch-visa:100"
            db = rt.db
            commits, alone = db.commits, db.alone_commits
            for source in ("amex", "mastercard", "discover"):
                status = await finish(rt, await pay.start_execution(source))
                assert status.result == f"ch-{source}:100"
            assert (db.commits - commits, db.alone_commits - alone) == (9, 9)
        assert rt.errors == []


async def test_an_attempt_that_ran_to_a_result_is_never_claimed_again(
    srt: SqliteRuntime,
) -> None:
    # Claimed unread when this process dispatched it; any other attempt's claim reads what
    # the database has: a claim row, or (an attempt that ran to a result here) its result.
    status = await finish(srt, await pay.start_execution("visa", execution_name="once"))
    seq = (await srt.get_history(status.id))[1].seq
    now = srt.now()
    assert await srt.ports.claims.claim(status.id, seq, 1, now) is False
    assert await srt.ports.claims.claim(status.id, seq, 2, now) is True  # another attempt
    assert await srt.ports.claims.claim(status.id, seq, 2, now) is False


async def test_task_errors_cross_as_eventual_errors(srt: SqliteRuntime) -> None:
    declined = await finish(srt, await pay.start_execution("declined"))
    assert declined.result == "SqlCardDeclined: card declined declined"
    broken = await finish(srt, await pay.start_execution("broken"))
    assert broken.status is ExecutionStatus.FAILED
    assert (broken.error, broken.message) == ("ValueError", "the card reader is on fire")


@task("sqlUpper")
async def upper(name: str) -> str:
    await asyncio.sleep(0.01)
    return name.upper()


@workflow("sqlParallel")
async def parallel(names: list[str]) -> list[str]:
    return list(await asyncio.gather(*(upper(n) for n in names)))


async def test_gather_schedules_tasks_in_parallel(srt: SqliteRuntime) -> None:
    status = await finish(srt, await parallel.start_execution(["a", "b", "c"]))
    assert status.result == ["A", "B", "C"]
    history = await srt.get_history(status.id)
    types = [e.type for e in history]
    assert types[:4] == ["WorkflowStarted", "TaskScheduled", "TaskScheduled", "TaskScheduled"]
    assert sorted(e.seq for e in history if e.type == "TaskSucceeded") == [0, 1, 2]


# ---------------------------------------------------------------- time


@workflow("sqlSleeper")
async def sleeper(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "woke"


async def test_sleep_completes_at_its_due_time_not_before(srt: SqliteRuntime) -> None:
    started = time.monotonic()
    # Long enough that a busy machine reaches the check below before the timer is due.
    handle = await sleeper.start_execution(1.5)
    await srt.idle()  # only the future timer is left
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    status = await finish(srt, handle)
    assert status.result == "woke"
    assert time.monotonic() - started >= 1.5
    history = await srt.get_history(handle.execution_id)
    assert [e.type for e in history][1:3] == ["TimerScheduled", "TimerCompleted"]
    assert history[2].timestamp >= history[1].until


tokens: list[str] = []


@task("sqlApproval")
async def approval() -> str:
    return async_result(tokens.append)


@workflow("sqlWaitFor")
async def wait_for_task(limit: float) -> str:
    try:
        return await asyncio.wait_for(approval(), limit)
    except TimeoutError:
        return "gave up"


async def test_async_task_completes_by_token(srt: SqliteRuntime) -> None:
    tokens.clear()
    handle = await wait_for_task.start_execution(30.0)
    await srt.idle()
    assert len(tokens) == 1
    await srt.send_task_success(tokens[0], "approved")
    assert (await finish(srt, handle)).result == "approved"


async def test_wait_for_times_out_and_late_result_is_ignored(srt: SqliteRuntime) -> None:
    tokens.clear()
    handle = await wait_for_task.start_execution(0.2)
    assert (await finish(srt, handle)).result == "gave up"
    history = await srt.get_history(handle.execution_id)
    await srt.send_task_success(tokens[0], "approved")
    await srt.idle()
    assert (await handle.get_status()).result == "gave up"
    assert await srt.get_history(handle.execution_id) == history


# ---------------------------------------------------------------- signals


go = signal("sqlGo", int)


@workflow("sqlExpect")
async def expect(limit: float) -> str:
    try:
        return f"got {await go.expect_signal(timeout=limit)}"
    except Timeout as e:
        return f"{e.name}: {e.message}"


async def test_expect_signal_receives_the_payload_or_times_out(srt: SqliteRuntime) -> None:
    waiting = await expect.start_execution(30, execution_name="waiting")
    late = await expect.start_execution(0.2, execution_name="late")
    await srt.idle()
    await waiting.send_signal(go, 42)
    assert (await finish(srt, waiting)).result == "got 42"
    assert (await finish(srt, late)).result == "Timeout: no signal 'sqlGo' arrived within 0.2s"


@task("sqlDouble")
async def double(n: int) -> int:
    return n * 2


@workflow("sqlHandlers")
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


async def test_on_signal_handlers_and_dispose(srt: SqliteRuntime) -> None:
    handle = await handlers.start_execution(None)
    await srt.idle()
    await handle.send_signal(go, 1)
    await srt.idle()
    await handle.send_signal(go, 2)
    status = await finish(srt, handle)
    assert status.result == [["sync", 1], ["async", 1, 2], ["async", 2, 4]]


@workflow("sqlPinger")
async def pinger(target: str) -> str:
    await go.send_signal(target, 99)
    return "sent"


async def test_signal_between_workflows(srt: SqliteRuntime) -> None:
    receiver = await expect.start_execution(30)
    sender = await pinger.start_execution(receiver.execution_id)
    assert (await finish(srt, receiver)).result == "got 99"
    assert (await finish(srt, sender)).result == "sent"


# ---------------------------------------------------------------- events


class Shipped(BaseModel):
    order_id: str


shipped = event("SqlShipped", Shipped)
received: list[Any] = []


@subscription("sqlOnShipped", events=[shipped])
async def on_shipped(e: Shipped) -> None:
    received.append(e)


@workflow("sqlShip")
async def ship(order_id: str) -> None:
    await shipped.emit(Shipped(order_id=order_id), Shipped(order_id=order_id + "-b"))


async def test_emitted_events_reach_subscriptions(srt: SqliteRuntime) -> None:
    received.clear()
    status = await finish(srt, await ship.start_execution("o1"))
    assert status.status is ExecutionStatus.SUCCEEDED
    await srt.idle()
    assert sorted(e.order_id for e in received) == ["o1", "o1-b"]
    await srt.emit_events("SqlShipped", [{"order_id": "direct"}])
    await srt.idle()
    assert received[-1] == Shipped(order_id="direct")


flaky_seen: list[str] = []


@subscription("sqlFlakyOnShipped", events=[shipped])
async def flaky_on_shipped(e: Shipped) -> None:
    if e.order_id.startswith("flaky"):
        flaky_seen.append(e.order_id)
        if len(flaky_seen) < 3:
            raise RuntimeError(f"delivery {len(flaky_seen)} of {e.order_id} fails")


async def test_a_failing_subscription_is_retried_alone_until_it_succeeds(
    srt: SqliteRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    received.clear()
    flaky_seen.clear()
    await srt.emit_events("SqlShipped", [{"order_id": "flaky-1"}])
    await srt.idle()
    assert flaky_seen == ["flaky-1"] * 3  # two failures, then delivered
    assert received == [Shipped(order_id="flaky-1")]  # the other subscription ran once
    assert "gave up" not in caplog.text


async def test_a_subscription_that_keeps_failing_is_given_up_and_logged(
    srt: SqliteRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    flaky_seen.clear()
    srt.subscription_attempts = 2
    await srt.emit_events("SqlShipped", [{"order_id": "flaky-2"}])
    await srt.idle()
    assert flaky_seen == ["flaky-2"] * 2
    assert "gave up delivering event SqlShipped to sqlFlakyOnShipped after 2 attempts" in (
        caplog.text
    )
    remaining = await srt.db.read(lambda c: c.execute("SELECT COUNT(*) FROM outbox").fetchone())
    assert remaining == (0,)


# ---------------------------------------------------------------- children and timeouts


@workflow("sqlChild")
async def child(n: int) -> int:
    await asyncio.sleep(0.05)
    if n < 0:
        raise SqlCardDeclined("negative")
    return n * 10


@workflow("sqlParent")
async def parent(n: int) -> str:
    try:
        return f"child said {await child(n)}"
    except SqlCardDeclined as e:
        return f"child failed: {e.message}"


async def test_child_workflow_result_and_failure(srt: SqliteRuntime) -> None:
    ok = await parent.start_execution(4, execution_name="ok")
    bad = await parent.start_execution(-1, execution_name="bad")
    assert (await finish(srt, ok)).result == "child said 40"
    assert (await finish(srt, bad)).result == "child failed: negative"
    executions, _ = await srt.list_executions(workflow="sqlChild")
    assert {e.parent.execution_id for e in executions if e.parent} == {
        "sqlParent/ok",
        "sqlParent/bad",
    }


async def test_workflow_timeout(srt: SqliteRuntime) -> None:
    handle = await sleeper.start_execution(60.0, timeout=timedelta(seconds=0.2))
    status = await finish(srt, handle)
    assert (status.status, status.error) == (ExecutionStatus.FAILED, "WorkflowTimeout")


@task("sqlStuck", timeout=timedelta(seconds=0.2))
async def stuck() -> str:
    return async_result(lambda token: None)


@task("sqlBeating", heartbeat_timeout=timedelta(seconds=0.2))
async def beating() -> str:
    return async_result(tokens.append)


@workflow("sqlTaskTimeouts")
async def task_timeouts(which: str) -> str:
    try:
        await (stuck() if which == "timeout" else beating())
    except HeartbeatTimeout as e:
        return f"heartbeat: {e.message}"
    except Timeout as e:
        return f"timeout: {e.message}"
    return "finished"


async def test_task_timeout_and_heartbeat_timeout(srt: SqliteRuntime) -> None:
    tokens.clear()
    timed = await task_timeouts.start_execution("timeout")
    beat = await task_timeouts.start_execution("heartbeat")
    assert (
        await finish(srt, timed)
    ).result == "timeout: task 'sqlStuck' did not complete within 0.2s"
    assert (await finish(srt, beat)).result == (
        "heartbeat: task 'sqlBeating' sent no heartbeat within 0.2s"
    )
    # The task learns it was cancelled on its next heartbeat.
    assert await srt.send_task_heartbeat(tokens[0]) is True


hung: list[str] = []


@task("sqlHung", timeout=timedelta(seconds=0.2))
async def hung_task() -> str:
    hung.append("started")
    try:
        await asyncio.Event().wait()  # never finishes on its own
    except asyncio.CancelledError:
        hung.append("cancelled")
        raise
    return "never"


@workflow("sqlHungWf")
async def hung_wf(_: None) -> str:
    try:
        return await hung_task()
    except Timeout as e:
        return f"timeout: {e.message}"


async def test_a_task_that_times_out_is_cancelled(srt: SqliteRuntime) -> None:
    hung.clear()
    handle = await hung_wf.start_execution(None)
    assert (await finish(srt, handle)).result == (
        "timeout: task 'sqlHung' did not complete within 0.2s"
    )
    await asyncio.wait_for(srt.idle(), 5)  # the attempt no longer runs: the runtime goes idle
    assert hung == ["started", "cancelled"]
    assert srt.errors == []


async def test_heartbeats_keep_a_task_alive(srt: SqliteRuntime) -> None:
    tokens.clear()
    handle = await task_timeouts.start_execution("heartbeat")
    await srt.idle()
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # beat for longer than the heartbeat timeout
        assert await srt.send_task_heartbeat(tokens[0]) is False
        await asyncio.sleep(0.05)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await srt.send_task_success(tokens[0], "ok")
    assert (await finish(srt, handle)).result == "finished"


attempts: list[int] = []


@task(
    "sqlFlaky",
    retry=RetryPolicy(max_attempts=4, initial_interval=timedelta(seconds=0.05)),
)
async def flaky(fail_times: int) -> str:
    attempts.append(task_context().attempt)
    if task_context().attempt <= fail_times:
        raise ConnectionError("try again")
    return f"ok on attempt {task_context().attempt}"


@workflow("sqlRetrying")
async def retrying(fail_times: int) -> str:
    try:
        return await flaky(fail_times)
    except EventualError as e:
        return f"failed: {e.name}"


async def test_retry_then_succeed_or_give_up(srt: SqliteRuntime) -> None:
    attempts.clear()
    ok = await finish(srt, await retrying.start_execution(2))
    assert ok.result == "ok on attempt 3"
    retries = [e for e in await srt.get_history(ok.id) if e.type == "TaskRetryScheduled"]
    assert [(r.attempt, r.error) for r in retries] == [
        (2, "ConnectionError"),
        (3, "ConnectionError"),
    ]
    attempts.clear()
    failed = await finish(srt, await retrying.start_execution(10))
    assert failed.result == "failed: ConnectionError"
    assert attempts == [1, 2, 3, 4]


# ---------------------------------------------------------------- records, logs, listing


@workflow("sqlLogging")
async def logging_wf(n: int) -> int:
    logging.getLogger("user.workflow").warning("step %s", n)
    await asyncio.sleep(0.01)
    return n


async def test_workflow_logs_reach_the_log_sink(srt: SqliteRuntime) -> None:
    handle = await logging_wf.start_execution(7)
    await finish(srt, handle)
    logs = await srt.get_logs(handle.execution_id)
    assert [(e.level, e.message) for _, e in logs] == [("WARNING", "step 7")]
    assert [eid for eid, _ in await srt.get_logs(workflow="sqlLogging")] == [handle.execution_id]


async def test_same_name_same_input_returns_the_execution(srt: SqliteRuntime) -> None:
    a = await expect.start_execution(10, execution_name="once")
    b = await expect.start_execution(10, execution_name="once")
    assert a.execution_id == b.execution_id == "sqlExpect/once"
    with pytest.raises(ExecutionAlreadyExists, match="different input"):
        await expect.start_execution(11, execution_name="once")
    await srt.idle()
    history = await srt.get_history("sqlExpect/once")
    assert [e.type for e in history].count("WorkflowStarted") == 1


async def test_list_executions_filters_and_pages(srt: SqliteRuntime) -> None:
    for i in range(5):
        await finish(srt, await logging_wf.start_execution(i, execution_name=f"n{i}"))
    waiting = await expect.start_execution(30)
    page, token = await srt.list_executions(workflow="sqlLogging", limit=2)
    seen = [e.id for e in page]
    while token is not None:
        page, token = await srt.list_executions(workflow="sqlLogging", limit=2, next_token=token)
        seen.extend(e.id for e in page)
    assert sorted(seen) == [f"sqlLogging/n{i}" for i in range(5)]
    assert len(set(seen)) == 5
    running, _ = await srt.list_executions(statuses=[ExecutionStatus.IN_PROGRESS])
    assert [e.id for e in running] == [waiting.execution_id]
    done, _ = await srt.list_executions(statuses=[ExecutionStatus.SUCCEEDED])
    assert len(done) == 5
