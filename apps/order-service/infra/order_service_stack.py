"""The order service's stack: the example service, deployed by ``eventual.cdk.Service``."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from eventual.cdk import CommandProps, Service, SubscriptionProps, TaskProps


class OrderServiceStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.service = Service(
            self,
            "OrderService",
            entry="order_service",
            # The example's order store is a SQLite file: on Lambda the only writable place is
            # /tmp (one file per container; a real service would use a table).
            environment={"ORDER_SERVICE_DB": "/tmp/orders.db"},
            commands={"sendInvoice": CommandProps(memory_size=256)},
            tasks={"chargeCreditCard": TaskProps(timeout=60, retry_attempts=2)},
            subscriptions={"onOrder": SubscriptionProps(retry_attempts=10)},
            # An example app: deleting the stack deletes its data too.
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
