"""The service the client tests call (and the typing tests check calls against)."""

from __future__ import annotations

import asyncio
import logging

from pydantic import BaseModel

from eventual.core import (
    CommandContext,
    HttpError,
    async_result,
    command,
    event,
    signal,
    subscription,
    task,
    workflow,
)

logger = logging.getLogger("client_example_service")


class Order(BaseModel):
    id: str
    amount: int


class Invoice(BaseModel):
    order_id: str
    total: int
    note: str = ""


@command
async def send_invoice(order: Order) -> Invoice:
    return Invoice(order_id=order.id, total=order.amount * 2)


@command("getGreeting")
async def greet(name: str, context: CommandContext) -> str:
    return f"hello {name} from {context.service_name}"


@command
async def ping() -> str:
    return "pong"


@command
async def add_all(numbers: list[int]) -> int:
    return sum(numbers)


@command
async def conflict(order_id: str) -> str:
    raise HttpError(409, f"order {order_id} is already invoiced", name="AlreadyInvoiced")


@command
async def explode(order_id: str) -> str:
    raise ValueError(f"cannot explode {order_id}")


@command
async def slow(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


# ---------------------------------------------------------------- workflows


approve = signal("approve", str)
order_placed = event("OrderPlaced", Order)
RECEIVED: list[Order] = []
TOKENS: dict[str, str] = {}


@workflow("processOrder")
async def process_order(order: Order) -> Invoice:
    logger.warning("processing order %s", order.id)
    note = await approve.expect_signal(timeout=600)
    return Invoice(order_id=order.id, total=order.amount, note=note)


@task("waitForHuman")
async def wait_for_human(order_id: str) -> str:
    def register(token: str) -> None:
        TOKENS[order_id] = token

    return async_result(register)


@workflow("humanApproval")
async def human_approval(order_id: str) -> str:
    return await wait_for_human(order_id)


@subscription("onOrderPlaced", events=[order_placed])
async def on_order_placed(order: Order) -> None:
    RECEIVED.append(order)
