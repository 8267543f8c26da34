"""A second service for the construct's tests: it subscribes to the order service's
``Order`` events (forwarded from the order service's bus) and serves one command."""

from __future__ import annotations

from pydantic import BaseModel

from eventual.core import command, event, subscription

SERVICE_NAME = "shipping-service"


class OrderEvent(BaseModel):
    order_id: str
    tracking: str


order_event = event("Order", OrderEvent)
shipped: list[str] = []


@subscription("shipOrder", events=[order_event])
async def ship_order(e: OrderEvent) -> None:
    shipped.append(e.order_id)


@command("shipped")
async def list_shipped() -> list[str]:
    return list(shipped)
