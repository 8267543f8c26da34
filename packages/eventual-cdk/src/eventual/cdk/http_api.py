"""The service's HTTP API: the API Gateway HTTP API with its ``$default`` stage and JSON access
logs, the routes of the commands, ``api`` routes and system commands, and the grants to invoke
them (``execute-api:Invoke`` on their ARNs)."""

# jsii's generated interfaces (IFunction, IGrantable...) are typing Protocols whose members
# pyright cannot match against the generated classes that implement them; argument checks are
# off in this module.
# pyright: reportArgumentType=false

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as apigw_auth
from aws_cdk import aws_apigatewayv2_integrations as apigw_integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from eventual.aws_runtime import names as n

from .config import pascal
from .nag import suppress_route_parameter_wildcards


def _route_key(method: str, path: str) -> tuple[str, str]:
    return (method.upper(), path)


@dataclass(frozen=True)
class HttpApi:
    """The API :func:`build_api` made; ``routes`` by ``(METHOD, path)``."""

    service_name: str
    http_api: apigw.HttpApi
    access_log_group: logs.LogGroup
    stage: apigw.HttpStage
    routes: dict[tuple[str, str], list[apigw.HttpRoute]]

    def public_routes(self) -> list[Construct]:
        """The routes of user commands and ``api`` routes, the ``$default`` route included
        (not the system routes)."""
        routes: list[Construct] = [
            r
            for key, rs in self.routes.items()
            for r in rs
            if not key[1].startswith(n.SYSTEM_ROUTE_PREFIX)
        ]
        default_route = self.http_api.node.try_find_child("DefaultRoute")
        if default_route is not None:
            resource = default_route.node.try_find_child("Resource")
            if isinstance(resource, Construct):
                routes.append(resource)
        return routes

    def execute_api_arn(self, method: str, path: str) -> str:
        """The ARN that ``execute-api:Invoke`` on ``method path`` names (path parameters are
        ``*``)."""
        resource = re.sub(r"\{[^}]*\}", "*", path)
        return cdk.Stack.of(self.http_api).format_arn(
            service="execute-api",
            resource=self.http_api.api_id,
            resource_name=f"{self.stage.stage_name}/{method.upper()}{resource}",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def grant_invoke_commands(self, grantee: iam.IGrantable) -> iam.Grant:
        """``execute-api:Invoke`` on every route but the system ones."""
        arns = [
            self.execute_api_arn(method, path)
            for (method, path) in self.routes
            if not path.startswith(n.SYSTEM_ROUTE_PREFIX)
        ]
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"], resource_arns=arns
        )
        if any("{" in path for _, path in self.routes) and isinstance(grantee, Construct):
            # A REST path parameter (``/orders/{id}``) is ``*`` in an execute-api ARN.
            suppress_route_parameter_wildcards(grantee, self.service_name)
        return grant

    def grant_system_commands(self, grantee: iam.IGrantable, commands: Sequence[str]) -> iam.Grant:
        """``execute-api:Invoke`` on the named system commands, or on all of them."""
        arns = (
            [self.execute_api_arn("POST", n.SYSTEM_ROUTE_PREFIX + c) for c in commands]
            if commands
            else [self.execute_api_arn("POST", n.SYSTEM_ROUTE_PREFIX + "*")]
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"], resource_arns=arns
        )


def build_api(
    scope: Construct,
    *,
    service_name: str,
    api_function: lambda_.Function,
    system_function: lambda_.Function,
    command_functions: Mapping[str, lambda_.Function],
    commands_spec: Mapping[str, Mapping[str, Any]],
    routes_spec: Sequence[Mapping[str, Any]],
    iam_auth_commands: bool,
    cors: apigw.CorsPreflightOptions | None,
    log_retention: logs.RetentionDays,
    removal_policy: cdk.RemovalPolicy,
) -> HttpApi:
    """The HTTP API, children of ``scope``: the API function takes every route (and the
    ``$default`` one) but the system routes, with IAM auth, and the commands with their own
    function; user routes need IAM auth too if ``iam_auth_commands``."""
    user_auth = apigw_auth.HttpIamAuthorizer() if iam_auth_commands else None
    default_integration = apigw_integrations.HttpLambdaIntegration("ApiIntegration", api_function)
    http_api = apigw.HttpApi(
        scope,
        "HttpApi",
        description=f"Eventual service {service_name}",
        create_default_stage=False,
        default_integration=default_integration,
        default_authorizer=user_auth,
        cors_preflight=cors,
    )
    access_log_group = logs.LogGroup(
        scope, "AccessLogs", retention=log_retention, removal_policy=removal_policy
    )
    stage = apigw.HttpStage(
        scope,
        "Stage",
        http_api=http_api,
        stage_name="$default",
        auto_deploy=True,
    )
    # Access logs (JSON, one line a request) through the stage's L1 resource.
    cfn_stage = stage.node.default_child
    assert isinstance(cfn_stage, apigw.CfnStage)
    cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
        destination_arn=access_log_group.log_group_arn,
        format=apigw_v1.AccessLogFormat.json_with_standard_fields(
            caller=False,
            http_method=True,
            ip=True,
            protocol=True,
            request_time=True,
            resource_path=True,
            response_length=True,
            status=True,
            user=False,
        ).to_string(),
    )
    integrations: dict[str, apigw_integrations.HttpLambdaIntegration] = {}

    def integration_for(command: str | None) -> apigw_integrations.HttpLambdaIntegration:
        if command is None or command not in command_functions:
            return default_integration
        if command not in integrations:
            integrations[command] = apigw_integrations.HttpLambdaIntegration(
                f"Command{pascal(command)}", command_functions[command]
            )
        return integrations[command]

    routes: dict[tuple[str, str], list[apigw.HttpRoute]] = {}

    def add(method: str, path: str, integration: Any, authorizer: Any) -> None:
        key = _route_key(method, path)
        if key in routes:
            return
        http_method = apigw.HttpMethod[method.upper()]
        routes[key] = http_api.add_routes(
            path=path, methods=[http_method], integration=integration, authorizer=authorizer
        )

    add(
        "POST",
        n.SYSTEM_ROUTE_PREFIX + "{proxy+}",
        apigw_integrations.HttpLambdaIntegration("System", system_function),
        apigw_auth.HttpIamAuthorizer(),
    )
    for name, command in commands_spec.items():
        add("POST", command["rpc_path"], integration_for(name), user_auth)
        if command.get("path"):
            add(command["method"], command["path"], integration_for(name), user_auth)
    for route in routes_spec:
        add(route["method"], route["path"], default_integration, user_auth)
    return HttpApi(
        service_name=service_name,
        http_api=http_api,
        access_log_group=access_log_group,
        stage=stage,
        routes=routes,
    )
