"""The cdk-nag AwsSolutions findings the ``Service`` construct accepts, each with its reason,
attached to the resources concerned (so they travel with the construct into any app)."""

# jsii's generated interfaces (IRole, IPrincipal...) are typing Protocols whose members pyright
# cannot match against the generated classes that implement them; argument checks are off here.
# pyright: reportArgumentType=false

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from eventual.aws_runtime import names as n

# The region and the account in a resource ARN as cdk-nag prints it: literal in a stack with
# an environment, the pseudo parameters' tokens (which hold ':') in an environment-agnostic one.
_REGION = r"(?:<AWS::Region>|[^:<>]*)"
_ACCOUNT = r"(?:<AWS::AccountId>|[^:<>]*)"


def _suppress(construct: Construct, rule: str, reason: str, *applies: str) -> None:
    NagSuppressions.add_resource_suppressions(
        construct,
        [
            NagPackSuppression(
                id=rule,
                reason=reason,
                applies_to=[RegexAppliesTo(regex=a) for a in applies] or None,
            )
        ],
        apply_to_children=True,
    )


def suppress_findings(
    *,
    python_version: str,
    functions: Sequence[lambda_.Function],
    payload_bucket: Construct,
    dead_letter_queues: Sequence[Construct],
    public_routes: Sequence[Construct],
) -> None:
    """The service's accepted findings: the wildcards of its functions' roles (payload objects,
    timer schedules), its runtime version, its bucket's access logs, its dead-letter queues, and
    its ``public_routes`` (user commands and routes without IAM auth)."""
    payload_prefix = re.escape(n.PAYLOAD_KEY_PREFIX)
    for fn in functions:
        assert fn.role is not None
        _suppress(
            fn.role,
            "AwsSolutions-IAM5",
            "Payload objects are named by their content hash at run time; access is "
            f"limited to the bucket's {n.PAYLOAD_KEY_PREFIX} prefix.",
            f"/^Resource::<.*Payloads[A-Za-z0-9]*\\.Arn>\\/{payload_prefix}\\*$/g",
        )
        _suppress(
            fn.role,
            "AwsSolutions-IAM5",
            "Timers are one-time schedules named at run time; access is limited to the "
            "service's own schedule group.",
            f"/^Resource::arn:<AWS::Partition>:scheduler:{_REGION}:{_ACCOUNT}:"
            "schedule\\/[^\\/]+\\/\\*$/g",
        )
        _suppress(
            fn,
            "AwsSolutions-L1",
            f"The functions run Python {python_version}, the version their bundle was "
            "built for (Service(python_version=...) picks another).",
        )
    _suppress(
        payload_bucket,
        "AwsSolutions-S1",
        "The payload bucket is private to the service's functions (no public access, TLS "
        "only, SSE); server access logs would need a second bucket per service.",
    )
    for queue in dead_letter_queues:
        _suppress(
            queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of Lambda asynchronous invocations and "
            "EventBridge targets, not an SQS redrive target.",
        )
    for route in public_routes:
        _suppress(
            route,
            "AwsSolutions-APIG4",
            "User commands and routes are public by design: they authenticate in "
            "middleware, or the service is built with iam_auth_commands=True. The "
            "system routes require IAM.",
        )


def suppress_route_parameter_wildcards(grantee: Construct, service_name: str) -> None:
    """A grant to invoke REST routes: a path parameter (``/orders/{id}``) is ``*`` in an
    execute-api ARN."""
    NagSuppressions.add_resource_suppressions(
        grantee,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason=(
                    f"Invoking {service_name}'s REST routes: their path "
                    "parameters are '*' in the execute-api ARN (method and path fixed)."
                ),
                applies_to=[
                    RegexAppliesTo(
                        regex="/^Resource::arn:<AWS::Partition>:execute-api:"
                        f"{_REGION}:{_ACCOUNT}:"
                        "<[^>]+>\\/\\$default\\/[A-Z]+\\/.*\\*.*$/g"
                    )
                ],
            )
        ],
        apply_to_children=True,
    )
