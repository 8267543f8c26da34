"""Time semantics: what moves the clock, what a tick costs, how sleeps fire."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from eventual.core import ExecutionStatus, now, sleep, sleep_until, task, workflow
from eventual.core.history import TimerCompleted
from eventual.testing import TestEnvironment

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)


@task("quick")
async def quick(x: int) -> int:
    return x + 1


@workflow("oneTask")
async def one_task(x: int) -> int:
    return await quick(x)


@workflow("sleeper")
async def sleeper(seconds: float) -> str:
    before = now()
    await asyncio.sleep(seconds)
    return f"{before.isoformat()} -> {now().isoformat()}"


@workflow("sleepUntil")
async def sleep_until_wf(when: datetime) -> str:
    await sleep_until(when)
    return now().isoformat()


@workflow("clockReader")
async def clock_reader(_: None) -> list[str]:
    seen = [now().isoformat()]
    await quick(1)
    seen.append(now().isoformat())
    await sleep(timedelta(hours=1))
    seen.append(now().isoformat())
    await sleep(90)
    seen.append(now().isoformat())
    return seen


async def test_nothing_moves_until_the_test_moves_it(env: TestEnvironment) -> None:
    assert env.time == START
    handle = await env.start_execution(sleeper, 5)
    assert env.time == START
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    assert env.time == START


async def test_a_task_that_returns_at_once_completes_without_a_tick(env: TestEnvironment) -> None:
    handle = await env.start_execution(one_task, 41)
    status = await handle.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == 42
    assert env.time == START  # no time passed


async def test_a_ten_second_sleep_completes_at_its_due_time_not_a_tick_before(
    env: TestEnvironment,
) -> None:
    handle = await env.start_execution(sleeper, 10)
    for _ in range(9):
        await env.tick()
        assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    assert env.time == START + timedelta(seconds=9)
    await env.tick()
    status = await handle.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == f"{START.isoformat()} -> {(START + timedelta(seconds=10)).isoformat()}"
    assert status.end_time == START + timedelta(seconds=10)


async def test_a_big_tick_fires_the_timer_at_its_due_time(env: TestEnvironment) -> None:
    handle = await env.start_execution(sleeper, 10)
    await env.tick(3600)
    status = await handle.get_status()
    # The workflow woke at its due time, not at the end of the tick.
    assert status.result.endswith((START + timedelta(seconds=10)).isoformat())
    assert env.time == START + timedelta(hours=1)
    history = await handle.get_history()
    fired = [e for e in history if isinstance(e, TimerCompleted)]
    assert [e.timestamp for e in fired] == [START + timedelta(seconds=10)]


async def test_tick_takes_a_timedelta_and_rejects_negative_time(env: TestEnvironment) -> None:
    await env.tick(timedelta(minutes=2))
    assert env.time == START + timedelta(minutes=2)
    with pytest.raises(ValueError, match="forward"):
        await env.tick(-1)


async def test_tick_until_moves_to_the_time_and_a_past_time_does_nothing(
    env: TestEnvironment,
) -> None:
    handle = await env.start_execution(sleeper, 60)
    await env.tick_until(START + timedelta(seconds=59))
    assert env.time == START + timedelta(seconds=59)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick_until(START)  # in the past: nothing happens
    assert env.time == START + timedelta(seconds=59)
    await env.tick_until(START + timedelta(seconds=60))
    assert (await handle.get_status()).status is ExecutionStatus.SUCCEEDED
    with pytest.raises(ValueError, match="timezone-aware"):
        await env.tick_until(datetime(2030, 1, 1))


async def test_absolute_sleep_and_a_sleep_until_the_past(env: TestEnvironment) -> None:
    future = await env.start_execution(sleep_until_wf, START + timedelta(days=3))
    past = await env.start_execution(sleep_until_wf, START - timedelta(days=3))
    # A time in the past completes at once, without a tick.
    past_status = await past.get_status()
    assert past_status.status is ExecutionStatus.SUCCEEDED
    assert past_status.result == START.isoformat()
    await env.tick(timedelta(days=3) - timedelta(seconds=1))
    assert (await future.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.tick(1)
    status = await future.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == (START + timedelta(days=3)).isoformat()


async def test_the_time_a_workflow_sees_through_now(env: TestEnvironment) -> None:
    await env.tick(30)
    handle = await env.start_execution(clock_reader, None)
    await env.tick(timedelta(days=1))
    status = await handle.get_status()
    t0 = START + timedelta(seconds=30)
    assert status.result == [
        t0.isoformat(),
        t0.isoformat(),  # the task completed at the same virtual instant
        (t0 + timedelta(hours=1)).isoformat(),
        (t0 + timedelta(hours=1, seconds=90)).isoformat(),
    ]


async def test_the_cost_of_a_tick_does_not_depend_on_the_time_it_covers(
    env: TestEnvironment,
) -> None:
    async def cost(seconds: float, executions: int = 50) -> tuple[float, dict[str, int]]:
        await env.reset()
        for i in range(executions):
            await env.start_execution(sleeper, seconds, execution_name=f"s{i}")
        t0 = time.process_time()
        await env.tick(seconds)
        elapsed = time.process_time() - t0
        listed = await env.client.list_executions(statuses=[ExecutionStatus.SUCCEEDED])
        assert len(listed) == executions
        return elapsed, dict(env.runtime.stats)

    await cost(1)  # warm up
    second_runs = [await cost(1) for _ in range(3)]
    year_runs = [await cost(365 * 86400) for _ in range(3)]
    # The same work either way: as many orchestration steps...
    assert {str(stats) for _, stats in second_runs + year_runs} == {str(second_runs[0][1])}
    # ...and about the same time (a generous bound that stepping through the seconds of a
    # year could never meet).
    one_second = min(t for t, _ in second_runs)
    one_year = min(t for t, _ in year_runs)
    assert one_year < one_second * 10, (one_second, one_year)


async def test_two_environments_have_independent_clocks() -> None:
    import sys

    module = sys.modules[__name__]
    async with (
        TestEnvironment(module, module_only=True, start=START) as a,
        TestEnvironment(module, module_only=True, start=START + timedelta(days=100)) as b,
    ):
        ha = await a.start_execution(sleeper, 10)
        hb = await b.start_execution(sleeper, 10)
        await a.tick(10)
        assert a.time == START + timedelta(seconds=10)
        assert b.time == START + timedelta(days=100)
        assert (await ha.get_status()).status is ExecutionStatus.SUCCEEDED
        assert (await hb.get_status()).status is ExecutionStatus.IN_PROGRESS
        # Each environment only sees its own executions.
        assert [e.id for e in await a.client.list_executions()] == [ha.execution_id]
        await b.tick(10)
        assert (await hb.get_status()).status is ExecutionStatus.SUCCEEDED
        assert a.time == START + timedelta(seconds=10)


async def test_naive_start_time_is_refused() -> None:
    import sys

    with pytest.raises(ValueError, match="timezone-aware"):
        TestEnvironment(sys.modules[__name__], module_only=True, start=datetime(2024, 1, 1))


async def test_using_a_closed_environment_says_how_to_open_it() -> None:
    import sys

    env = TestEnvironment(sys.modules[__name__], module_only=True)
    with pytest.raises(RuntimeError, match="async with"):
        await env.tick()


@task("stampTask")
async def stamp_task() -> datetime:
    return now()


@workflow("stamper")
async def stamper(_: None) -> list[datetime]:
    await asyncio.sleep(5)
    return [now(), await stamp_task()]


async def test_tasks_and_the_test_body_see_virtual_time_through_now(env: TestEnvironment) -> None:
    assert now() == START
    await env.tick(60)
    assert now() == START + timedelta(seconds=60)
    handle = await env.start_execution(stamper, None)
    await env.tick(5)
    assert (await handle.get_status()).result == [START + timedelta(seconds=65)] * 2


async def test_the_default_start_time() -> None:
    import sys

    from eventual.testing import DEFAULT_START

    async with TestEnvironment(sys.modules[__name__], module_only=True) as env:
        assert env.time == DEFAULT_START == datetime(2024, 1, 1, tzinfo=UTC)
