"""Tasks under TestEnvironment: real and mocked, parallel, retried, timed out."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel

from eventual.core import (
    EventualError,
    ExecutionStatus,
    HeartbeatTimeout,
    RetryPolicy,
    Timeout,
    task,
    task_context,
    workflow,
)
from eventual.core.history import TaskRetryScheduled, TaskScheduled
from eventual.testing import TestEnvironment

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)


class Charge(BaseModel):
    charge_id: str
    amount: int


class EnvCardDeclined(EventualError):
    pass


real_calls: list[str] = []


@task("charge")
async def charge(source: str, amount: int) -> Charge:
    real_calls.append(source)
    return Charge(charge_id=f"real-{source}", amount=amount)


@workflow("pay")
async def pay(source: str) -> str:
    try:
        c = await charge(source, 100)
    except EnvCardDeclined as e:
        return f"declined: {e.message}"
    except EventualError as e:
        return f"failed: {e.name}: {e.message}"
    return f"{c.charge_id}:{c.amount}"


@workflow("payTwice")
async def pay_twice(source: str) -> list[str]:
    out = []
    for _ in range(3):
        try:
            c = await charge(source, 1)
            out.append(c.charge_id)
        except EventualError as e:
            out.append(f"{type(e).__name__}:{e.name}")
    return out


@task("square")
async def square(n: int) -> int:
    return n * n


@workflow("squares")
async def squares(n: int) -> list[int]:
    return list(await asyncio.gather(*(square(i) for i in range(n))))


attempts: list[int] = []


@task(
    "flaky",
    retry=RetryPolicy(
        max_attempts=4, initial_interval=timedelta(seconds=10), backoff_coefficient=3
    ),
)
async def flaky(succeed_on: int) -> str:
    attempt = task_context().attempt
    attempts.append(attempt)
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"ok on {attempt}"


@workflow("retrying")
async def retrying(succeed_on: int) -> str:
    try:
        return await flaky(succeed_on)
    except EventualError as e:
        return f"gave up: {e.name}: {e.message}"


@task("slow", timeout=timedelta(seconds=30))
async def slow() -> str:
    return "real slow"


@task("beating", heartbeat_timeout=timedelta(seconds=10))
async def beating() -> str:
    return "real beating"


@workflow("timeouts")
async def timeouts(which: str) -> str:
    try:
        if which == "slow":
            return await slow()
        return await beating()
    except HeartbeatTimeout as e:
        return f"heartbeat timeout: {e.message}"
    except Timeout as e:
        return f"timeout: {e.message}"


async def result_of(env: TestEnvironment, wf: object, input: object) -> object:
    handle = await env.start_execution(wf, input)  # type: ignore[arg-type]
    status = await handle.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED, status
    return status.result


async def test_unmocked_tasks_run_for_real(env: TestEnvironment) -> None:
    real_calls.clear()
    assert await result_of(env, pay, "visa") == "real-visa:100"
    assert real_calls == ["visa"]


async def test_succeed_with_a_value(env: TestEnvironment) -> None:
    real_calls.clear()
    mock = env.mock_task(charge).succeed(Charge(charge_id="mocked", amount=7))
    assert await result_of(env, pay, "visa") == "mocked:7"
    assert await result_of(env, pay, "amex") == "mocked:7"
    assert real_calls == []
    assert mock.calls == [("visa", 100), ("amex", 100)]


async def test_invoke_a_function_sync_or_async(env: TestEnvironment) -> None:
    env.mock_task(charge).invoke(lambda source, amount: Charge(charge_id=source[::-1], amount=2))
    assert await result_of(env, pay, "visa") == "asiv:2"

    async def fake(source: str, amount: int) -> Charge:
        await asyncio.sleep(0)
        return Charge(charge_id=f"async-{source}", amount=amount * 3)

    env.mock_task(charge).invoke(fake)
    assert await result_of(env, pay, "visa") == "async-visa:300"


async def test_fail_with_a_custom_error_class(env: TestEnvironment) -> None:
    env.mock_task(charge).fail(EnvCardDeclined("insufficient funds"))
    assert await result_of(env, pay, "visa") == "declined: insufficient funds"
    env.mock_task("charge").fail(EnvCardDeclined, "stolen card")
    assert await result_of(env, pay, "visa") == "declined: stolen card"


async def test_fail_with_a_builtin_error_or_a_name(env: TestEnvironment) -> None:
    env.mock_task(charge).fail(ValueError("bad amount"))
    assert await result_of(env, pay, "visa") == "failed: ValueError: bad amount"
    env.mock_task(charge).fail("GatewayDown", "try later")
    assert await result_of(env, pay, "visa") == "failed: GatewayDown: try later"


async def test_a_failing_real_task_fails_the_call(env: TestEnvironment) -> None:
    async def broken(source: str, amount: int) -> Charge:
        raise KeyError(source)

    env.mock_task(charge).invoke(broken)
    assert await result_of(env, pay, "visa") == "failed: KeyError: 'visa'"


async def test_once_resolutions_come_first_in_order_then_the_standing_one(
    env: TestEnvironment,
) -> None:
    real_calls.clear()
    (
        env.mock_task(charge)
        .succeed(Charge(charge_id="always", amount=0))
        .fail_once(EnvCardDeclined("first"))
        .succeed_once(Charge(charge_id="second", amount=0))
    )
    assert await result_of(env, pay_twice, "visa") == [
        "EnvCardDeclined:EnvCardDeclined",
        "second",
        "always",
    ]
    assert real_calls == []


async def test_once_resolutions_then_the_real_task(env: TestEnvironment) -> None:
    real_calls.clear()
    env.mock_task(charge).fail_once("Nope").invoke_real_once().succeed_once(
        Charge(charge_id="third", amount=0)
    )
    assert await result_of(env, pay_twice, "visa") == [
        "EventualError:Nope",
        "real-visa",
        "third",
    ]
    # After the once-resolutions, with no standing one, the real task runs.
    assert await result_of(env, pay, "mc") == "real-mc:100"
    assert real_calls == ["visa", "mc"]


async def test_invoke_real_as_standing_resolution_and_clear(env: TestEnvironment) -> None:
    mock = env.mock_task(charge).succeed_once(Charge(charge_id="m", amount=1)).invoke_real()
    assert await result_of(env, pay_twice, "v") == ["m", "real-v", "real-v"]
    mock.succeed(Charge(charge_id="x", amount=1))
    mock.clear()
    assert await result_of(env, pay, "v") == "real-v:100"
    env.mock_task(charge).succeed(Charge(charge_id="y", amount=1))
    env.clear_mocks()
    assert await result_of(env, pay, "v") == "real-v:100"


async def test_mocking_an_unknown_task_lists_the_known_ones(env: TestEnvironment) -> None:
    with pytest.raises(EventualError, match=r"no task .nope.*charge"):
        env.mock_task("nope")


async def test_parallel_tasks(env: TestEnvironment) -> None:
    assert await result_of(env, squares, 5) == [0, 1, 4, 9, 16]
    env.mock_task(square).invoke(lambda n: -n)
    handle = await env.start_execution(squares, 4)
    assert (await handle.get_status()).result == [0, -1, -2, -3]
    history = await handle.get_history()
    scheduled = [e for e in history if isinstance(e, TaskScheduled)]
    # All four were scheduled in one step, before any result came back.
    assert [e.seq for e in scheduled] == [0, 1, 2, 3]
    assert history.index(scheduled[-1]) < min(
        i for i, e in enumerate(history) if e.type == "TaskSucceeded"
    )


async def test_retries_with_backoff_in_virtual_time(env: TestEnvironment) -> None:
    attempts.clear()
    handle = await env.start_execution(retrying, 3)
    assert attempts == [1]
    await env.tick(9)
    assert attempts == [1]
    await env.tick(1)  # 10s after the first failure
    assert attempts == [1, 2]
    await env.tick(29)
    assert attempts == [1, 2]
    await env.tick(1)  # 30s (10 * 3) after the second failure
    assert attempts == [1, 2, 3]
    status = await handle.get_status()
    assert status.result == "ok on 3"
    assert status.end_time == START + timedelta(seconds=40)
    retries = [e for e in await handle.get_history() if isinstance(e, TaskRetryScheduled)]
    assert [(e.attempt, e.until) for e in retries] == [
        (2, START + timedelta(seconds=10)),
        (3, START + timedelta(seconds=40)),
    ]


async def test_retries_are_exhausted(env: TestEnvironment) -> None:
    attempts.clear()
    handle = await env.start_execution(retrying, 99)
    await env.tick(10 + 30 + 90 - 1)
    assert attempts == [1, 2, 3]
    await env.tick(1)
    assert attempts == [1, 2, 3, 4]
    status = await handle.get_status()
    assert status.result == "gave up: ConnectionError: attempt 4 failed"


async def test_mocks_apply_to_every_attempt(env: TestEnvironment) -> None:
    env.mock_task(flaky).fail_once("Flaky").timeout_once().succeed("mocked")
    handle = await env.start_execution(retrying, 1)
    await env.tick(10)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(30)
    assert (await handle.get_status()).result == "mocked"


async def test_a_task_timeout_in_virtual_time(env: TestEnvironment) -> None:
    env.mock_task(slow).async_result()  # never completes by itself
    handle = await env.start_execution(timeouts, "slow")
    await env.tick(29)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)
    status = await handle.get_status()
    assert status.result == "timeout: task 'slow' did not complete within 30s"


async def test_timeout_mock(env: TestEnvironment) -> None:
    env.mock_task(slow).timeout()
    assert await result_of(env, timeouts, "slow") == (
        "timeout: task 'slow' did not complete within 30s"
    )


async def test_heartbeat_timeout_mock(env: TestEnvironment) -> None:
    env.mock_task(beating).heartbeat_timeout()
    assert await result_of(env, timeouts, "beating") == (
        "heartbeat timeout: task 'beating' sent no heartbeat within 10s"
    )


async def test_heartbeats_keep_a_task_alive_until_they_stop(env: TestEnvironment) -> None:
    mock = env.mock_task(beating).async_result()
    handle = await env.start_execution(timeouts, "beating")
    (token,) = mock.tokens
    for _ in range(3):
        await env.tick(8)
        assert await env.send_task_heartbeat(token, {"progress": 1}) is False
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(9)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)  # 10s after the last heartbeat
    status = await handle.get_status()
    assert status.result == "heartbeat timeout: task 'beating' sent no heartbeat within 10s"
    assert status.end_time == START + timedelta(seconds=34)
    # The task learns on its next heartbeat that it was cancelled.
    assert await env.send_task_heartbeat(token) is True


eager_attempts: list[int] = []


@task("eager", retry=RetryPolicy(max_attempts=3, initial_interval=timedelta(0)))
async def eager() -> int:
    attempt = task_context().attempt
    eager_attempts.append(attempt)
    if attempt < 3:
        raise RuntimeError("not yet")
    return attempt


@workflow("eagerRetry")
async def eager_retry(_: None) -> int:
    return await eager()


async def test_a_zero_backoff_retry_needs_no_tick(env: TestEnvironment) -> None:
    """Timers due at the current instant fire as part of the action."""
    eager_attempts.clear()
    handle = await env.start_execution(eager_retry, None)
    assert (await handle.get_status()).result == 3
    assert eager_attempts == [1, 2, 3]
    assert env.time == START


# ---------------------------------------------------------------- a task that never returns

_never_returns_started: list[int] = []


@task("envNeverReturns", timeout=timedelta(minutes=5))
async def env_never_returns(n: int) -> int:
    _never_returns_started.append(n)
    await asyncio.Event().wait()  # nothing ever sets it
    return n


@workflow("envWaitsForever")
async def env_waits_forever(n: int) -> str:
    try:
        await env_never_returns(n)
    except Timeout:
        return "timed out"
    return "returned"


async def test_a_task_that_never_returns_times_out_on_the_virtual_clock() -> None:
    _never_returns_started.clear()
    async with TestEnvironment(
        entry=__name__, module_only=True, start=START, task_grace=0.05
    ) as env:
        # start_execution settles without waiting for the handler forever.
        execution = await env.start_execution(env_waits_forever, 1)
        assert _never_returns_started == [1]
        await env.tick(60)  # before the timeout: still waiting, and tick returned
        assert (await execution.get_status()).status is ExecutionStatus.IN_PROGRESS
        await env.tick(5 * 60)  # past the 5-minute timeout
        status = await execution.get_status()
        assert status.status is ExecutionStatus.SUCCEEDED
        assert status.result == "timed out"
