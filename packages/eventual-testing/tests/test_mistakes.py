"""A test's mistakes with the environment: each is refused with an error that says what is
wrong and what would be right, as the same request over HTTP is (never accepted silently,
never an error from deep inside the library)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from eventual.core import EventualError, InvalidInput, event, signal, workflow
from eventual.core.errors import ServiceError
from eventual.testing import TestEnvironment

pytestmark = pytest.mark.anyio

go = signal("mGo", str)
happened = event("mHappened", str)


@workflow("mWaiter")
async def waiter(_: None) -> str:
    return await go.expect_signal()


async def test_a_signal_the_service_does_not_declare_is_refused(env: TestEnvironment) -> None:
    ex = await env.start_execution(waiter, None)
    with pytest.raises(ServiceError, match=r"has no signal 'nosuch'; it defines: mGo"):
        await env.send_signal(ex, "nosuch", "x")
    with pytest.raises(ServiceError, match=r"has no signal 'nosuch'"):
        await env.client.send_signal(ex, "nosuch", "x")
    await env.send_signal(ex, "mGo", "yes")  # a declared name still works, as a string too
    assert (await ex.get_status()).result == "yes"


async def test_an_event_the_service_does_not_declare_is_refused(env: TestEnvironment) -> None:
    with pytest.raises(ServiceError, match=r"has no event 'NoEvent'; it defines: mHappened"):
        await env.emit_event("NoEvent", "x")
    with pytest.raises(ServiceError, match=r"has no event 'NoEvent'"):
        await env.client.emit_events("NoEvent", "x")
    await env.emit_event("mHappened", "x")  # declared: published


@pytest.mark.parametrize("timeout", [-1, 0, math.nan, math.inf, 10**12, timedelta(seconds=-5)])
async def test_an_execution_timeout_out_of_range_is_refused(
    env: TestEnvironment, timeout: object
) -> None:
    with pytest.raises(InvalidInput, match="a timeout is more than 0 and at most 3153600000"):
        await env.start_execution(waiter, None, timeout=timeout)  # type: ignore[arg-type]
    assert (await env.client.list_executions()).executions == []  # nothing was started


async def test_an_execution_timeout_that_is_not_a_duration_is_a_type_error(
    env: TestEnvironment,
) -> None:
    with pytest.raises(TypeError, match="a duration is a timedelta or a number of seconds"):
        await env.start_execution(waiter, None, timeout="60")  # type: ignore[arg-type]


async def test_the_runtime_itself_refuses_a_timeout_out_of_range(env: TestEnvironment) -> None:
    """Whoever calls the runtime (a handler, the HTTP layer, a test) gets the same check."""
    with pytest.raises(InvalidInput, match="more than 0"):
        await env.runtime.start_execution("mWaiter", None, timeout=timedelta(seconds=-1))
    assert isinstance(InvalidInput("x"), EventualError)


@pytest.mark.parametrize(
    ("amount", "error", "message"),
    [
        (math.nan, ValueError, r"moves time forward by 0 seconds or more; got nan"),
        (-1, ValueError, r"moves time forward by 0 seconds or more; got -1"),
        (math.inf, ValueError, r"tick\(inf\) would move the clock past what a datetime holds"),
        (10**12, ValueError, r"would move the clock past what a datetime holds \(the year 9999"),
        ("10", TypeError, r"a duration is a timedelta or a number of seconds, got str '10'"),
        (True, TypeError, r"got bool True"),
        (None, TypeError, r"tick\(\) takes a number of seconds or a timedelta, got None"),
    ],
)
async def test_tick_refuses_what_is_not_a_forward_duration(
    env: TestEnvironment, amount: object, error: type[Exception], message: str
) -> None:
    before = env.time
    with pytest.raises(error, match=message):
        await env.tick(amount)  # type: ignore[arg-type]
    assert env.time == before  # the clock did not move
    await env.tick(timedelta(minutes=1))  # and still works
    assert env.time == before + timedelta(minutes=1)
