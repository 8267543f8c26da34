"""The example order service (see the README): ``eventual dev apps/order-service``."""

from .service import (
    CardDeclined,
    Charge,
    Order,
    OrderEvent,
    OrderRecord,
    OutOfStock,
    cancel_signal,
    charge_back,
    charge_credit_card,
    dispatch_order,
    get_order,
    hello,
    on_order,
    order_event,
    process_order,
    send_invoice,
)

SERVICE_NAME = "order-service"

__all__ = [
    "SERVICE_NAME",
    "CardDeclined",
    "Charge",
    "Order",
    "OrderEvent",
    "OrderRecord",
    "OutOfStock",
    "cancel_signal",
    "charge_back",
    "charge_credit_card",
    "dispatch_order",
    "get_order",
    "hello",
    "on_order",
    "order_event",
    "process_order",
    "send_invoice",
]
