"""A second service for the component's tests: it bills each order the order service emits
(its ``Order`` events, forwarded from the order service's bus), and has no workflow."""

from __future__ import annotations

from pydantic import BaseModel

from eventual.core import command, event, subscription

SERVICE_NAME = "billing-service"


class OrderEvent(BaseModel):
    order_id: str


order_event = event("Order", OrderEvent)
billed: list[str] = []


@subscription("billOrder", events=[order_event])
async def bill_order(e: OrderEvent) -> None:
    billed.append(e.order_id)


@command("billed")
async def list_billed() -> list[str]:
    return list(billed)
