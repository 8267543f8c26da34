"""Running a Pulumi program in-process, without the Pulumi CLI or an AWS account
(``pulumi.runtime.set_mocks``), and reading back what it declared::

    from eventual.pulumi.testing import run_program

    deployment = run_program(lambda: Service("orders", entry="order_service", code=...))
    deployment.one("aws:dynamodb/table:Table", "orders-Executions").inputs["hashKey"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Declared:
    """One resource the program declared: its type token, name and resolved inputs."""

    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    state: dict[str, Any]


@dataclass
class Deployment:
    resources: list[Declared] = field(default_factory=list)
    result: Any = None

    def of_type(self, type: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type]

    def one(self, type: str, name: str) -> Declared:
        found = [r for r in self.resources if r.type == type and r.name == name]
        if len(found) != 1:
            names = sorted(r.name for r in self.of_type(type))
            raise KeyError(f"{len(found)} {type} named {name!r}; there are: {names}")
        return found[0]

    def by_arn(self, arn: str) -> Declared:
        """The resource whose (mock) ARN is ``arn``."""
        for r in self.resources:
            if r.state.get("arn") == arn:
                return r
        raise KeyError(arn)


_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a special value (a secret)


def _plain(value: Any) -> Any:
    """``value`` with secrets unwrapped (a mock sees a secret input as a marked dict)."""
    if isinstance(value, dict):
        if _SIG in value and "value" in value:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _state(type: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """What the mock provider answers: the inputs, a name, and ARNs and URLs that name the
    resource (``arn:aws:{service}:{region}:{account}:{type}/{name}``)."""
    service = type.split(":")[1].split("/")[0]
    physical = inputs.get("name") or (
        f"{inputs['namePrefix']}0000.fifo" if inputs.get("namePrefix") else f"{name}-0000"
    )
    arn = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{type.split(':')[-1].lower()}/{name}"
    state = {**inputs, "name": physical, "arn": arn}
    if type == "aws:sqs/queue:Queue":
        state["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
    if type == "aws:s3/bucket:Bucket":
        state["bucket"] = physical
    if type == "aws:apigatewayv2/api:Api":
        state["apiEndpoint"] = f"https://{name}.execute-api.{REGION}.amazonaws.com"
        state["executionArn"] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{name}"
    if type == "aws:scheduler/scheduleGroup:ScheduleGroup":
        state["arn"] = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{physical}"
    return state


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = _plain(dict(args.inputs))
        state = _state(args.typ, args.name, inputs)
        resource_id = f"{args.name}-id"
        self.deployment.resources.append(Declared(args.typ, args.name, inputs, resource_id, state))
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:root",
                "userId": "u",
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION}, []
        return {}, []


def run_program(
    program: Callable[[], Any], *, project: str = "project", stack: str = "test"
) -> Deployment:
    """Run ``program`` under mocks and wait for every resource it declares.

    Pulumi's runtime works on the thread's current event loop (``asyncio.get_event_loop``):
    each run gets a fresh one, closed afterwards, so a loop another test closed or unset (as
    ``asyncio.run`` and anyio leave it) is never used."""
    import asyncio

    deployment = Deployment()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        pulumi.runtime.set_mocks(_Mocks(deployment), project=project, stack=stack, preview=False)

        @pulumi.runtime.test
        def run() -> Any:
            deployment.result = program()
            return pulumi.Output.from_input(None)

        run()
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return deployment
