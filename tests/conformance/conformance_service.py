"""The service every runtime of the conformance suite runs: a few workflows, tasks, signals,
an event and its subscriptions, each there for one contract the suite checks.

It is a module of its own (not the test files) because the AWS harness loads the service by
its entry module's name, as a Lambda function would.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from eventual.core import (
    EventualError,
    HeartbeatTimeout,
    Timeout,
    async_result,
    condition,
    event,
    signal,
    subscription,
    task,
    workflow,
)

SERVICE_NAME = "conformance"

# What the tasks and subscriptions saw (every runtime under test runs them in this process).
seen: dict[str, list[Any]] = {"tokens": [], "cfFirst": [], "cfSecond": [], "cfOther": []}
# Subscription deliveries that fail once (by payload id) before they succeed.
flaky: set[str] = set()


def reset() -> None:
    for values in seen.values():
        values.clear()
    flaky.clear()


go = signal("cfGo", Any)


@workflow("cfEcho")
async def echo(value: Any) -> Any:
    return value


@workflow("cfFail")
async def fail(message: str) -> None:
    raise EventualError(message, name="CfFailure")


@workflow("cfCollect")
async def collect(count: int) -> list[Any]:
    """Collect ``count`` signals' payloads, in the order the execution received them."""
    received: list[Any] = []
    go.on_signal(received.append)
    await condition(lambda: len(received) >= count)
    return received


@workflow("cfSleeps")
async def sleeps(durations: list[float]) -> list[int]:
    """Sleep each duration in parallel; the indexes in the order the timers completed."""
    order: list[int] = []

    async def one(i: int, seconds: float) -> None:
        await asyncio.sleep(seconds)
        order.append(i)

    await asyncio.gather(*(one(i, s) for i, s in enumerate(durations)))
    return order


@workflow("cfCancelled")
async def cancelled(limit: float) -> list[Any]:
    """Wait for a signal with a timeout (cancelled when it arrives), then for another one."""
    try:
        first = await go.expect_signal(timeout=limit)
    except Timeout:
        return ["timed out"]
    return [first, await go.expect_signal()]


log = logging.getLogger("conformance.workflow")


@workflow("cfLogs")
async def logs(count: int) -> int:
    """Log a line, then ``count`` times: wait for a signal and log a line."""
    log.warning("line 0")
    for i in range(1, count + 1):
        await go.expect_signal()
        log.warning("line %d", i)
    return count


@task("cfStuck", timeout=timedelta(seconds=1))
async def stuck() -> str:
    return async_result(lambda token: None)


@task("cfBeating", heartbeat_timeout=timedelta(seconds=1))
async def beating() -> str:
    return async_result(seen["tokens"].append)


@workflow("cfTaskTimeouts")
async def task_timeouts(which: str) -> str:
    try:
        result = await (stuck() if which == "timeout" else beating())
    except HeartbeatTimeout:
        return "heartbeat timed out"
    except Timeout:
        return "timed out"
    return f"finished: {result}"


class Parcel(BaseModel):
    id: str


parcel = event("CfParcel", Parcel)
other = event("CfOther", Parcel)


def _deliver(subscription_name: str, e: Parcel) -> None:
    key = f"{subscription_name}:{e.id}"
    if e.id.startswith("flaky") and subscription_name == "cfFirst" and key not in flaky:
        flaky.add(key)
        raise RuntimeError(f"the first delivery of {e.id} to {subscription_name} fails")
    seen[subscription_name].append(e.id)


@subscription("cfFirst", events=[parcel])
async def first(e: Parcel) -> None:
    _deliver("cfFirst", e)


@subscription("cfSecond", events=[parcel])
async def second(e: Parcel) -> None:
    _deliver("cfSecond", e)


@subscription("cfOther", events=[other])
async def on_other(e: Parcel) -> None:
    _deliver("cfOther", e)


@workflow("cfEmit")
async def emit(ids: list[str]) -> str:
    await parcel.emit(*(Parcel(id=i) for i in ids))
    return "emitted"
