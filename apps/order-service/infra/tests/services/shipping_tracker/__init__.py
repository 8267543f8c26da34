"""A second service for the deploy test: it subscribes to the order service's ``Order`` events
(forwarded from the order service's bus by ``Service.subscribe``) and remembers them."""

from __future__ import annotations

from pydantic import BaseModel

from eventual.core import command, event, subscription

SERVICE_NAME = "shipping-tracker"


class OrderEvent(BaseModel):
    order_id: str
    tracking: str


order_event = event("Order", OrderEvent)
tracked: dict[str, str] = {}


@subscription("trackOrder", events=[order_event])
async def track_order(e: OrderEvent) -> None:
    tracked[e.order_id] = e.tracking


@command("tracked")
async def list_tracked() -> dict[str, str]:
    return dict(tracked)
