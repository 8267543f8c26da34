"""The service the AWS end-to-end tests deploy into moto."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from eventual.core import (
    EventualError,
    HeartbeatTimeout,
    RetryPolicy,
    Timeout,
    api,
    async_result,
    command,
    event,
    heartbeat,
    signal,
    sleep,
    subscription,
    task,
    task_context,
    workflow,
)
from eventual.core.http.api import Request, Response

SERVICE_NAME = "e2e"

# What the tasks and subscriptions saw (the harness runs them in this process).
seen: dict[str, list[Any]] = {"tokens": [], "subscribed": [], "attempts": []}


class Charge(BaseModel):
    charge_id: str
    amount: int


@task("charge")
async def charge(source: str, amount: int) -> Charge:
    if source == "declined":
        raise EventualError(f"card {source} declined", name="CardDeclined")
    return Charge(charge_id=f"ch-{source}", amount=amount)


@task("double")
async def double(n: int) -> int:
    return n * 2


@workflow("pay")
async def pay(source: str) -> str:
    c = await charge(source, 100)
    return f"{c.charge_id}:{c.amount}"


@workflow("fanout")
async def fanout(n: int) -> list[int]:
    return list(await asyncio.gather(*(double(i) for i in range(n))))


@workflow("steps")
async def steps(n: int) -> int:
    total = 0
    for i in range(n):
        total += await double(i)
    return total


@workflow("sleeper")
async def sleeper(seconds: int) -> str:
    logging.getLogger("e2e.sleeper").warning("sleeping %s seconds", seconds)
    await sleep(timedelta(seconds=seconds))
    return f"slept {seconds}"


go = signal("go", str)


@workflow("waiter")
async def waiter(limit: float) -> str:
    try:
        return f"got {await go.expect_signal(timeout=limit)}"
    except Timeout as e:
        return f"Timeout: {e.message}"


class Shipped(BaseModel):
    order_id: str


shipped = event("Shipped", Shipped)


@subscription("onShipped", events=[shipped])
async def on_shipped(e: Shipped) -> None:
    if e.order_id.startswith("flaky-") and f"failed:{e.order_id}" not in seen["subscribed"]:
        seen["subscribed"].append(f"failed:{e.order_id}")
        raise RuntimeError(f"{e.order_id}: the first delivery fails")
    seen["subscribed"].append(e.order_id)


@workflow("shipper")
async def shipper(order_id: str) -> str:
    await shipped.emit(Shipped(order_id=order_id))
    return "shipped"


@workflow("parent")
async def parent(n: int) -> int:
    results = await asyncio.gather(*(steps(i) for i in (n, n + 1)))
    return sum(results)


@workflow("slow", timeout=timedelta(minutes=30))
async def slow(_: None) -> str:
    await sleep(timedelta(hours=2))
    return "never"


@task("approval", timeout=timedelta(hours=1))
async def approval(order_id: str) -> str:
    return async_result(seen["tokens"].append)


@workflow("approve")
async def approve(order_id: str) -> str:
    try:
        return await approval(order_id)
    except Timeout as e:
        return f"timeout: {e.message}"


@task("beating", heartbeat_timeout=timedelta(seconds=10))
async def beating() -> str:
    return async_result(seen["tokens"].append)


@workflow("beater")
async def beater(_: None) -> str:
    try:
        return await beating()
    except HeartbeatTimeout as e:
        return f"heartbeat: {e.message}"


@task("beat")
async def beat() -> bool:
    return await heartbeat({"progress": 1})


@workflow("beatInTask")
async def beat_in_task(_: None) -> bool:
    return await beat()


@task(
    "flaky",
    retry=RetryPolicy(
        max_attempts=4, initial_interval=timedelta(seconds=10), backoff_coefficient=3
    ),
)
async def flaky(fail_times: int) -> str:
    attempt = task_context().attempt
    seen["attempts"].append(attempt)
    if attempt <= fail_times:
        raise ConnectionError("try again")
    return f"ok on attempt {attempt}"


@workflow("retrying")
async def retrying(fail_times: int) -> str:
    try:
        return await flaky(fail_times)
    except EventualError as e:
        return f"failed: {e.name}"


class Order(BaseModel):
    id: str
    source: str


@command
async def place_order(order: Order) -> str:
    execution = await pay.start_execution(order.source, execution_name=order.id)
    return execution.execution_id


@api.get("/hello/{name}")
async def hello(request: Request) -> Response:
    return Response(f"hello {request.params['name']}")


@api.post("/echo-bytes")
async def echo_bytes(request: Request) -> Response:
    data = await request.body()
    return Response(bytes(reversed(data)), headers={"content-type": "application/octet-stream"})
