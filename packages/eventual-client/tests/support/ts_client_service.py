"""The service the real TypeScript client drives (``test_ts_client.py``, and the AWS runtime's
``test_ts_client_aws.py``): one workflow that records a task, a retried task, a timer, a
child workflow, an asynchronous task completed by token, a signal received and sent, and
events emitted."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pydantic import BaseModel

from eventual.core import (
    RetryPolicy,
    async_result,
    command,
    event,
    signal,
    subscription,
    task,
    workflow,
)

logger = logging.getLogger("ts_client_service")


class Order(BaseModel):
    id: str
    amount: int


go = signal("go", str)
notify = signal("notify", str)
shipped = event("Shipped", dict)
TOKENS: dict[str, str] = {}
ATTEMPTS: dict[str, int] = {}
SHIPPED: list[dict] = []


@task("charge")
async def charge(amount: int) -> dict:
    return {"charged": amount}


@task("flaky", retry=RetryPolicy(max_attempts=2, initial_interval=timedelta(seconds=0.2)))
async def flaky(order_id: str) -> str:
    ATTEMPTS[order_id] = ATTEMPTS.get(order_id, 0) + 1
    if ATTEMPTS[order_id] == 1:
        raise RuntimeError("the first attempt fails")
    return f"attempt {ATTEMPTS[order_id]}"


@task("approval")
async def approval(order_id: str) -> str:
    def register(token: str) -> None:
        TOKENS[order_id] = token

    return async_result(register)


@workflow("double")
async def double(n: int) -> int:
    return n * 2


@workflow("listener")
async def listener(name: str) -> str:
    return await notify.expect_signal(timeout=600)


@workflow("order")
async def order(o: Order) -> dict:
    logger.warning("ordering %s", o.id)
    charged = await charge(o.amount)
    retried = await flaky(o.id)
    await asyncio.sleep(0.5)
    doubled = await double(o.amount)
    approved = await approval(o.id)
    note = await go.expect_signal(timeout=600)
    await notify.send_signal(f"listener/{o.id}", f"{o.id} shipped")
    await shipped.emit({"id": o.id})
    return {
        "charged": charged["charged"],
        "retried": retried,
        "doubled": doubled,
        "approved": approved,
        "note": note,
    }


@command("pendingToken")
async def pending_token(order_id: str) -> str | None:
    return TOKENS.get(order_id)


@subscription("onShipped", events=[shipped])
async def on_shipped(payload: dict) -> None:
    SHIPPED.append(payload)
