"""One synthesis for the whole suite (synthesis is slow): the order-service example with real
bundling, a second service subscribing to its events, a caller role with the grants, and the
AwsSolutions cdk-nag pack over the app."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Node 20 is what this machine has; jsii warns about it on every import otherwise.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

SERVICES = Path(__file__).parent / "services"
# The spec (and bundle resolution) subprocesses must find the test service too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SERVICES), *filter(None, [os.environ.get("PYTHONPATH")])]
)
sys.path.insert(0, str(SERVICES))

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Synth:
    app: Any
    assembly: Any
    outdir: Path
    orders_stack: Any
    shipping_stack: Any
    orders: Any  # eventual.cdk.Service
    shipping: Any
    caller: Any  # iam.Role with the grants
    forward_rule: Any
    cache_dir: Path

    def template(self, stack: Any) -> dict[str, Any]:
        return json.loads((self.outdir / stack.template_file).read_text())


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    import aws_cdk as cdk
    from aws_cdk import aws_apigatewayv2 as apigw
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_lambda as lambda_
    from cdk_nag import AwsSolutionsChecks

    from eventual.cdk import BundleOptions, CommandProps, Service, SubscriptionProps, TaskProps

    outdir = tmp_path_factory.mktemp("cdk.out")
    cache_dir = tmp_path_factory.mktemp("bundle-cache")
    placeholder = tmp_path_factory.mktemp("placeholder-code")
    (placeholder / "README").write_text("not a real bundle: the shipping service is never run\n")

    app = cdk.App(outdir=str(outdir))
    env = cdk.Environment(account=ACCOUNT, region=REGION)
    orders_stack = cdk.Stack(app, "Orders", env=env)
    orders = Service(
        orders_stack,
        "OrderService",
        entry="order_service",
        environment={"ORDER_SERVICE_DB": "/tmp/orders.db"},
        commands={"getOrder": CommandProps(memory_size=256, reserved_concurrency=5)},
        tasks={
            "chargeCreditCard": TaskProps(
                memory_size=1024, timeout=30, retry_attempts=1, environment={"PSP": "test"}
            )
        },
        subscriptions={"onOrder": SubscriptionProps(retry_attempts=3)},
        bundling=BundleOptions(cache_dir=cache_dir),
    )
    caller = iam.Role(orders_stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    orders.grant_start_execution(caller)
    orders.grant_emit_events(caller)
    orders.grant_invoke_commands(caller)

    shipping_stack = cdk.Stack(app, "Shipping", env=env)
    shipping = Service(
        shipping_stack,
        "ShippingService",
        entry="shipping_service",
        code=lambda_.Code.from_asset(str(placeholder)),
        removal_policy=cdk.RemovalPolicy.DESTROY,
        # The options the order service leaves off: IAM on user commands, and CORS.
        iam_auth_commands=True,
        cors=apigw.CorsPreflightOptions(
            allow_origins=["https://shop.example.com"],
            allow_methods=[apigw.CorsHttpMethod.POST, apigw.CorsHttpMethod.GET],
            allow_headers=["content-type", "authorization"],
            max_age=cdk.Duration.minutes(10),
        ),
        # A retention period other than the default (30 days).
        retention=cdk.Duration.days(7),
    )
    forward_rule = shipping.subscribe(
        shipping_stack, "FromOrders", service=orders, events=["Order"]
    )

    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    assembly = app.synth()
    return Synth(
        app=app,
        assembly=assembly,
        outdir=outdir,
        orders_stack=orders_stack,
        shipping_stack=shipping_stack,
        orders=orders,
        shipping=shipping,
        caller=caller,
        forward_rule=forward_rule,
        cache_dir=cache_dir,
    )


@pytest.fixture(scope="session")
def orders_template(synth: Synth) -> dict[str, Any]:
    return synth.template(synth.orders_stack)


@pytest.fixture(scope="session")
def shipping_template(synth: Synth) -> dict[str, Any]:
    return synth.template(synth.shipping_stack)
