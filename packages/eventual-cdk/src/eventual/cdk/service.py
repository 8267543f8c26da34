"""The ``Service`` construct: one Eventual service on Lambda, SQS, DynamoDB, S3, EventBridge,
EventBridge Scheduler and API Gateway (DESIGN.md, the AWS column).

Every name, key schema and environment variable the runtime reads comes from
:mod:`eventual.aws_runtime.names`; the service's commands, tasks and subscriptions come from
its spec, read in a subprocess (synthesis never imports user handlers). The construct composes
its parts: :mod:`.config` (defaults and argument checks), :mod:`.state` (tables, bucket, queues,
bus, schedules), :mod:`.functions`, :mod:`.permissions`, :mod:`.http_api` and :mod:`.nag`.
"""

# jsii's generated interfaces (IFunction, IRole, IRuleTarget...) are typing Protocols whose
# members pyright cannot match against the generated classes that implement them (a Function
# is an IFunction at run time); argument checks on CDK calls are off in this module only.
# pyright: reportArgumentType=false

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from eventual.aws_runtime import names as n
from eventual.core.service import BUILD_ENV

from . import config, nag
from .bundling import Bundle, BundleOptions, build_bundle, no_bytecode_message
from .config import UnknownNameError
from .functions import FunctionFactory, announce_bundle, build_functions
from .http_api import build_api
from .permissions import grant_runtime_permissions
from .props import CommandProps, FunctionProps, SubscriptionProps, TaskProps
from .spec import load_spec
from .state import build_state


class Service(Construct):
    """An Eventual service deployed to AWS.

    ``Service(scope, id, *, entry, name=None, commands=None, tasks=None, subscriptions=None,
    environment=None, ...)``; see the package README for every option and what gets created.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        entry: str,
        name: str | None = None,
        commands: Mapping[str, CommandProps] | None = None,
        tasks: Mapping[str, TaskProps] | None = None,
        subscriptions: Mapping[str, SubscriptionProps] | None = None,
        environment: Mapping[str, str] | None = None,
        api: FunctionProps | None = None,
        orchestrator: FunctionProps | None = None,
        system: FunctionProps | None = None,
        timer: FunctionProps | None = None,
        code: lambda_.Code | None = None,
        bundling: BundleOptions | None = None,
        python_version: str = "3.11",
        architecture: lambda_.Architecture | str | None = None,
        iam_auth_commands: bool = False,
        cors: apigw.CorsPreflightOptions | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        retention: cdk.Duration | int = n.RETENTION_DAYS,
        point_in_time_recovery: bool = True,
        max_receive_count: int = 10,
    ) -> None:
        super().__init__(scope, id)
        bundling = bundling or BundleOptions()
        self.entry = entry
        self.spec: dict[str, Any] = load_spec(entry, python=bundling.python)
        self.service_name: str = name or self.spec["name"]
        self._commands_spec = {c["name"]: c for c in self.spec["commands"]}
        self._tasks_spec = {t["name"]: t for t in self.spec["tasks"]}
        self._subs_spec = {s["name"]: s for s in self.spec["subscriptions"]}
        config.check_names(
            self.service_name,
            commands=commands,
            tasks=tasks,
            subscriptions=subscriptions,
            defined_commands=list(self._commands_spec),
            defined_tasks=list(self._tasks_spec),
            defined_subscriptions=list(self._subs_spec),
        )
        self.calls = config.function_calls(
            api=api,
            orchestrator=orchestrator,
            timer=timer,
            system=system,
            commands=commands or {},
            tasks=tasks or {},
            subscriptions=subscriptions or {},
        )
        config.check_environment(
            [environment or {}],
            [p.environment for p in (commands or {}).values()]
            + [p.environment for p in (tasks or {}).values()]
            + [p.environment for p in (subscriptions or {}).values()],
        )
        # A Duration of whole days, or the days as a number.
        self.retention_days = config.check_retention(
            int(retention.to_days()) if isinstance(retention, cdk.Duration) else retention
        )
        self.stack = cdk.Stack.of(self)
        self.architecture, arch = config.lambda_architecture(architecture)
        self.runtime = config.lambda_runtime(python_version)
        self.build: str | None = config.service_build(self.spec, environment or {})
        self.bundle: Bundle | None = None
        if code is None:
            self.bundle = build_bundle(
                entry, python_version=python_version, architecture=arch, options=bundling
            )
            code = lambda_.Code.from_asset(str(self.bundle.path))
            if self.bundle.bytecode is None:
                cdk.Annotations.of(self).add_warning_v2(
                    "eventual-cdk:bundle-without-bytecode", no_bytecode_message(python_version)
                )
        self.code = code
        defaults = n.ServiceNames.for_service(self.service_name)

        # ------------------------------------------------------------ state
        state = build_state(
            self,
            service_name=self.service_name,
            defaults=defaults,
            point_in_time_recovery=point_in_time_recovery,
            removal_policy=removal_policy,
            log_retention=log_retention,
            retention_days=self.retention_days,
            max_receive_count=max_receive_count,
        )
        self.executions_table = state.executions_table
        self.history_table = state.history_table
        self.claims_table = state.claims_table
        self.payload_bucket = state.payload_bucket
        self.execution_dlq = state.execution_dlq
        self.execution_queue = state.execution_queue
        self.timer_dlq = state.timer_dlq
        self.timer_queue = state.timer_queue
        self.event_bus = state.event_bus
        self.execution_log_group = state.execution_log_group
        self.schedule_group = state.schedule_group
        self.scheduler_role = state.scheduler_role
        self.task_dlq = state.task_dlq
        # The names the runtime reads (tokens resolved at deploy time).
        self.names = state.runtime_names(defaults)
        self.runtime_environment: dict[str, str] = {
            **self.names.environment(),
            n.ENV_SERVICE_ENTRY: entry,
            n.ENV_SERVICE_NAME: self.service_name,
            n.RETENTION_DAYS_ENV: str(self.retention_days),
            # Every function of the deploy reports the same build, and none computes it.
            **({BUILD_ENV: self.build} if self.build else {}),
        }

        # ------------------------------------------------------------ functions
        functions = build_functions(
            FunctionFactory(
                scope=self,
                service_name=self.service_name,
                runtime=self.runtime,
                architecture=self.architecture,
                code=self.code,
                environment=dict(environment or {}),
                runtime_environment=self.runtime_environment,
                log_retention=log_retention,
                removal_policy=removal_policy,
            ),
            state=state,
            names=self.names,
            tasks_spec=self._tasks_spec,
            subscriptions_spec=self._subs_spec,
            commands=commands or {},
            tasks=tasks or {},
            subscriptions=subscriptions or {},
            orchestrator=orchestrator,
            timer=timer,
            system=system,
            api=api,
            max_receive_count=max_receive_count,
            workflows=bool(self.spec["workflows"]),
        )
        self.task_functions: dict[str, lambda_.Function] = functions.tasks
        # None for a service without workflows (nothing would ever send them a message).
        self.orchestrator: lambda_.Function | None = functions.orchestrator
        self.timer_function: lambda_.Function | None = functions.timer
        self.system_function = functions.system
        self.api_function = functions.api
        self.command_functions: dict[str, lambda_.Function] = functions.commands
        self.subscription_functions: dict[str, lambda_.Function] = functions.subscriptions
        self.subscription_rules: dict[str, eventbridge.Rule] = functions.subscription_rules
        # Each subscription's own dead-letter queue (its function's and its rule target's).
        self.subscription_dlqs: dict[str, sqs.Queue] = functions.subscription_dlqs
        self.functions: list[lambda_.Function] = functions.all()
        if self.bundle is not None:
            announce_bundle(self, self.service_name, self.bundle, functions)
        grant_runtime_permissions(
            state.runtime_arns(self.stack),
            orchestrator=self.orchestrator,
            timer=self.timer_function,
            system=self.system_function,
            tasks=list(self.task_functions.values()),
            clients=[
                self.api_function,
                *self.command_functions.values(),
                *self.subscription_functions.values(),
            ],
            spec=self.spec,
            calls=self.calls,
        )

        # ------------------------------------------------------------ HTTP API
        self._api = build_api(
            self,
            service_name=self.service_name,
            api_function=self.api_function,
            system_function=self.system_function,
            command_functions=self.command_functions,
            commands_spec=self._commands_spec,
            routes_spec=self.spec["routes"],
            iam_auth_commands=iam_auth_commands,
            cors=cors,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.http_api = self._api.http_api
        self.access_log_group = self._api.access_log_group
        self.stage = self._api.stage
        self.routes: dict[tuple[str, str], list[apigw.HttpRoute]] = self._api.routes

        # ------------------------------------------------------------ discovery
        self.api_url: str = self.stage.url
        self.discovery_parameter = ssm.StringParameter(
            self,
            "Discovery",
            parameter_name=n.service_parameter(self.service_name),
            description=f"Eventual service discovery record of {self.service_name}",
            # Standard (free) while the record fits 4 KB; advanced past it (its dead-letter
            # queues grow with the subscriptions).
            tier=ssm.ParameterTier.INTELLIGENT_TIERING,
            string_value=self.stack.to_json_string(
                {
                    "version": n.SERVICE_RECORD_VERSION,
                    "service": self.service_name,
                    "apiUrl": self.api_url,
                    "eventBusArn": self.event_bus.event_bus_arn,
                    "eventBusName": self.event_bus.event_bus_name,
                    "region": self.stack.region,
                    "account": self.stack.account,
                    "logGroup": self.execution_log_group.log_group_name,
                    "stack": self.stack.stack_name,
                    "deadLetters": self._dead_letter_record(),
                }
            ),
        )
        cdk.CfnOutput(self, "ApiUrl", value=self.api_url, description="The service's HTTP API")
        cdk.CfnOutput(
            self, "EventBusArn", value=self.event_bus.event_bus_arn, description="The event bus"
        )
        nag.suppress_findings(
            python_version=python_version,
            functions=self.functions,
            payload_bucket=self.payload_bucket,
            dead_letter_queues=[self.task_dlq, *self.subscription_dlqs.values()],
            public_routes=[] if iam_auth_commands else self._api.public_routes(),
        )

    def _dead_letter_record(self) -> list[dict[str, Any]]:
        """The discovery record's ``deadLetters``: each dead-letter queue and where
        ``eventual dlq redrive`` sends its messages back."""
        return n.dead_letter_record(
            executions=(self.execution_dlq.queue_url, self.execution_queue.queue_url),
            timers=(self.timer_dlq.queue_url, self.timer_queue.queue_url),
            tasks=(
                (
                    self.task_dlq.queue_url,
                    {t: f.function_name for t, f in self.task_functions.items()},
                )
                if self.task_functions
                else None
            ),
            subscriptions={
                name: (queue.queue_url, self.subscription_functions[name].function_name)
                for name, queue in self.subscription_dlqs.items()
            },
        )

    # ---------------------------------------------------------------- public API

    def grant_invoke_commands(self, grantee: iam.IGrantable) -> iam.Grant:
        """``execute-api:Invoke`` on every command route (RPC and REST) and ``api`` route:
        what a caller needs when the service was built with ``iam_auth_commands=True``."""
        return self._api.grant_invoke_commands(grantee)

    def grant_system_commands(self, grantee: iam.IGrantable, *commands: str) -> iam.Grant:
        """``execute-api:Invoke`` on the named system commands (``"startExecution"``...), or on
        all of them (the CLI's needs) when none is named."""
        return self._api.grant_system_commands(grantee, commands)

    def grant_start_execution(self, grantee: iam.IGrantable) -> iam.Grant:
        """Lets ``grantee`` start workflows (``POST /rpc/_system/startExecution``, SigV4)."""
        return self.grant_system_commands(grantee, "startExecution")

    def grant_emit_events(self, grantee: iam.IGrantable) -> iam.Grant:
        """``events:PutEvents`` on the service's bus (what its subscriptions listen to)."""
        return self.event_bus.grant_put_events_to(grantee)

    def subscribe(
        self, scope: Construct, id: str, *, service: Service, events: Sequence[str]
    ) -> eventbridge.Rule:
        """Forward ``events`` emitted by ``service`` to this service's bus, where this
        service's subscriptions to them run. Every event must be one ``service`` defines and
        one of this service's subscriptions listens to."""
        wanted = config.check_subscribed_events(
            events,
            producer=service.service_name,
            produced=[e["name"] for e in service.spec["events"]],
            consumer=self.service_name,
            heard=[e for s in self._subs_spec.values() for e in s["events"]],
        )
        pattern = n.forward_event_pattern(service.service_name, wanted)
        rule = eventbridge.Rule(
            scope,
            id,
            event_bus=service.event_bus,
            description=f"{service.service_name} events to {self.service_name}",
            event_pattern=eventbridge.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"]
            ),
            targets=[targets.EventBus(self.event_bus)],
        )
        # A payload too large for EventBridge spills to the producer's bucket, and the event
        # names it: the subscriptions that hear these events may read it there.
        for sub_name, fn in self.subscription_functions.items():
            if set(self._subs_spec[sub_name]["events"]) & set(wanted):
                fn.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["s3:GetObject"],
                        resources=[
                            service.payload_bucket.arn_for_objects(n.PAYLOAD_KEY_PREFIX + "*")
                        ],
                    )
                )
        return rule


__all__ = ["Service", "UnknownNameError"]
