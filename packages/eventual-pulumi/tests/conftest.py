"""The order-service example and a second service (``billing_service``, subscribing to its
events), deployed once per session under Pulumi's mocks: no Pulumi CLI, no AWS."""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pulumi
import pytest

with warnings.catch_warnings():
    # pulumi-aws warns on import about its own deprecated modules.
    warnings.simplefilter("ignore", DeprecationWarning)
    import pulumi_aws  # noqa: F401

from eventual.pulumi.testing import Declared, Deployment, run_program

SERVICES = Path(__file__).parent / "services"
# The spec subprocess must find the test service too.
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(SERVICES), *filter(None, [os.environ.get("PYTHONPATH")])]
)
sys.path.insert(0, str(SERVICES))


# What apps/order-service/infra gives its construct (order_service_stack.py).
def order_service_props() -> dict[str, Any]:
    from eventual.pulumi import CommandProps, SubscriptionProps, TaskProps

    return {
        "entry": "order_service",
        "commands": {"sendInvoice": CommandProps(memory_size=256)},
        "tasks": {"chargeCreditCard": TaskProps(timeout=60, retry_attempts=2)},
        "subscriptions": {"onOrder": SubscriptionProps(retry_attempts=10)},
    }


def no_code() -> pulumi.Archive:
    """Code for functions that are never run (the bundler has its own tests)."""
    return pulumi.AssetArchive({"README": pulumi.StringAsset("not a real bundle\n")})


@pytest.fixture(scope="session")
def deployed() -> Deployment:
    import pulumi_aws as aws

    from eventual.pulumi import Service

    def program() -> dict[str, Any]:
        orders = Service("orders", code=no_code(), **order_service_props())
        billing = Service("billing", entry="billing_service", code=no_code())
        rule = billing.subscribe("billing-orders", service=orders, events=["Order"])
        caller = aws.iam.Role(
            "caller",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
        orders.grant_start_execution("caller-start", caller)
        orders.grant_emit_events("caller-emit", caller)
        return {"orders": orders, "billing": billing, "rule": rule}

    return run_program(program)


def policy(resource: Declared) -> dict[str, Any]:
    return json.loads(resource.inputs["policy"])


def statements_by_sid(resource: Declared) -> dict[str | None, dict[str, Any]]:
    return {s.get("Sid"): s for s in policy(resource)["Statement"]}
