"""``cdk synth`` / ``cdk deploy`` entry point (see README.md)."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks
from order_service_stack import OrderServiceStack

app = cdk.App()
OrderServiceStack(
    app,
    app.node.try_get_context("stack") or "OrderService",
    env=cdk.Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    ),
)
if str(app.node.try_get_context("nag")).lower() in ("1", "true", "yes"):
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
app.synth()
