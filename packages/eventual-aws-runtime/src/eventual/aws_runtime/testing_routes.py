"""The HTTP API of deployed stacks: each route (method, path, authorization) with the function
its integration targets, read back from the moto server (``GetApis``, ``GetRoutes``,
``GetIntegrations``) and, where moto's CloudFormation created no ``AWS::ApiGatewayV2``
resources, from the deployed template (each integration's target resolved against the
stack's physical ids). Test support only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .testing_deploy import DeployedStack
from .testing_lambda import HarnessError, LambdaFunction


@dataclass
class Route:
    api_id: str
    method: str  # "POST", or "ANY"/"$default"
    path: str
    function: LambdaFunction
    authorization: str
    route_key: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route_key == "$default":
            return {}
        if self.method not in (method, "ANY"):
            return None
        params: dict[str, str] = {}
        want = self.path.strip("/").split("/")
        got = path.strip("/").split("/")
        for i, part in enumerate(want):
            if part.startswith("{") and part.endswith("+}"):
                params[part[1:-2]] = "/".join(got[i:])
                return params if len(got) > i else None
            if i >= len(got):
                return None
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = unquote(got[i])
            elif part != got[i]:
                return None
        return params if len(want) == len(got) else None


def read_routes(
    api: Any, stacks: Iterable[DeployedStack], function: Callable[[str], LambdaFunction]
) -> list[Route]:
    """Every route of the APIs on the server (``api``: an ``apigatewayv2`` client) and in the
    templates of ``stacks``, most specific first (``$default`` last); ``function`` finds a
    deployed function by name or ARN."""
    routes: list[Route] = []
    for a in api.get_apis()["Items"]:
        integrations = {
            i["IntegrationId"]: i for i in api.get_integrations(ApiId=a["ApiId"])["Items"]
        }
        for r in api.get_routes(ApiId=a["ApiId"])["Items"]:
            target = r.get("Target", "")
            integration = integrations[target.split("/", 1)[1]]
            uri = integration["IntegrationUri"]
            found = re.search(r"(arn:aws:lambda:[^/]+?:function:[^/:]+)", uri)
            if found is None:
                raise HarnessError(f"route {r['RouteKey']}: integration {uri} is no function")
            method, _, path = r["RouteKey"].partition(" ")
            routes.append(
                Route(
                    api_id=a["ApiId"],
                    method=method,
                    path=path,
                    function=function(found.group(1)),
                    authorization=r.get("AuthorizationType", "NONE"),
                    route_key=r["RouteKey"],
                )
            )
    for stack in stacks:
        routes += template_routes(stack, function)
    routes.sort(key=lambda r: (r.route_key == "$default", "{" in r.path, -len(r.path)))
    return routes


def template_routes(stack: DeployedStack, function: Callable[[str], LambdaFunction]) -> list[Route]:
    """moto's CloudFormation creates no ``AWS::ApiGatewayV2`` resources: the routes and their
    integrations are read from the deployed template (the function each integration targets
    is resolved against the stack's physical ids)."""
    resources = stack.template["Resources"]
    resolver = stack.resolver()
    routes: list[Route] = []
    for logical, r in resources.items():
        if r["Type"] != "AWS::ApiGatewayV2::Route" or logical in stack.physical:
            continue
        props = r["Properties"]
        integration_id = _first_ref(props.get("Target"))
        if integration_id is None:
            raise HarnessError(f"route {logical} has no integration target")
        uri = resolver.resolve(resources[integration_id]["Properties"]["IntegrationUri"])
        method, _, path = props["RouteKey"].partition(" ")
        routes.append(
            Route(
                api_id=str(_first_ref(props["ApiId"])),
                method=method,
                path=path,
                function=function(uri),
                authorization=props.get("AuthorizationType", "NONE"),
                route_key=props["RouteKey"],
            )
        )
    return routes


def _first_ref(value: Any) -> str | None:
    """The first ``{"Ref": id}`` inside a CloudFormation expression."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        for v in value.values():
            found = _first_ref(v)
            if found is not None:
                return found
    if isinstance(value, list):
        for v in value:
            found = _first_ref(v)
            if found is not None:
                return found
    return None


__all__ = ["Route", "read_routes", "template_routes"]
