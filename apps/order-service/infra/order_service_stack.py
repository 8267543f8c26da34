"""The order service's stack: the example service, deployed by ``eventual.cdk.Service``, and
the DynamoDB table its order store uses on AWS (``order_service/store.py``)."""

# jsii's generated interfaces (IGrantable...) are typing Protocols that pyright cannot match
# against the generated classes implementing them (a Function is an IGrantable at run time).
# pyright: reportArgumentType=false

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from eventual.cdk import CommandProps, FunctionProps, Service, SubscriptionProps, TaskProps

TABLE_ENV = "ORDER_SERVICE_TABLE"
"""Names the orders table to the functions that use it (``order_service.store.TABLE_ENV``)."""

# What touches the order store, and how (see service.py): every write is an UpdateItem (an
# upsert), the one read a GetItem.
STORE_WRITERS = {
    "tasks": ("chargeCreditCard", "dispatchOrder", "chargeBack"),
    "subscriptions": ("onOrder",),
    "commands": ("sendInvoice",),
}
STORE_READERS = {"commands": ("getOrder",)}

REMOVAL_POLICY = cdk.RemovalPolicy.DESTROY
"""An example app: deleting the stack deletes its data too."""


class OrderServiceStack(cdk.Stack):
    def __init__(self, scope: Construct, id: str, **kwargs: Any) -> None:
        super().__init__(scope, id, **kwargs)
        self.service = Service(
            self,
            "OrderService",
            entry="order_service",
            # What each function's code calls of eventual's client (calls=), so that each
            # role is granted only that: sendInvoice starts processOrder; processOrder emits
            # its event; the tasks, the subscription and the other commands call nothing.
            api=FunctionProps(calls=[]),
            orchestrator=FunctionProps(calls=["emit"]),
            commands={"sendInvoice": CommandProps(memory_size=256, calls=["start_execution"])},
            tasks={
                "chargeCreditCard": TaskProps(timeout=60, retry_attempts=2, calls=[]),
                "dispatchOrder": TaskProps(calls=[]),
                "chargeBack": TaskProps(calls=[]),
            },
            subscriptions={"onOrder": SubscriptionProps(retry_attempts=10, calls=[])},
            removal_policy=REMOVAL_POLICY,
        )
        # The orders (one item per order id), like the construct's own tables: on demand,
        # AWS-managed encryption, point-in-time recovery.
        self.orders_table = dynamodb.Table(
            self,
            "Orders",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=REMOVAL_POLICY,
        )
        self.store_writers = self._functions(STORE_WRITERS)
        self.store_readers = self._functions(STORE_READERS)
        for fn in self.store_writers:
            self.orders_table.grant(fn, "dynamodb:UpdateItem")
        for fn in self.store_readers:
            self.orders_table.grant(fn, "dynamodb:GetItem")
        for fn in dict.fromkeys([*self.store_writers, *self.store_readers]):
            fn.add_environment(TABLE_ENV, self.orders_table.table_name)

    def _functions(self, names: dict[str, tuple[str, ...]]) -> list[lambda_.Function]:
        """The functions that run the named tasks, subscriptions and commands (a command
        without its own function is served by the shared API function)."""
        service = self.service
        commands = {c["name"] for c in service.spec["commands"]}
        unknown = sorted(set(names.get("commands", ())) - commands)
        if unknown:
            raise ValueError(f"the service defines no command {', '.join(unknown)}")
        found = [service.task_functions[t] for t in names.get("tasks", ())]
        found += [service.subscription_functions[s] for s in names.get("subscriptions", ())]
        found += [
            service.command_functions.get(c, service.api_function)
            for c in names.get("commands", ())
        ]
        return found
