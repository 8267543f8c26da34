"""The ``Service`` construct: one Eventual service on Lambda, SQS, DynamoDB, S3, EventBridge,
EventBridge Scheduler and API Gateway (DESIGN.md, the AWS column).

Every name, key schema and environment variable the runtime reads comes from
:mod:`eventual.aws_runtime.names`; the service's commands, tasks and subscriptions come from
its spec, read in a subprocess (synthesis never imports user handlers).
"""

# jsii's generated interfaces (IFunction, IRole, IRuleTarget...) are typing Protocols whose
# members pyright cannot match against the generated classes that implement them (a Function
# is an IFunction at run time); argument checks on CDK calls are off in this module only.
# pyright: reportArgumentType=false

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as apigw_auth
from aws_cdk import aws_apigatewayv2_integrations as apigw_integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from eventual.aws_runtime import names as n

from .bundling import Bundle, BundleOptions, build_bundle, no_bytecode_message
from .props import CommandProps, FunctionProps, SubscriptionProps, TaskProps, to_duration
from .spec import load_spec

_RUNTIMES = {
    "3.11": lambda_.Runtime.PYTHON_3_11,
    "3.12": lambda_.Runtime.PYTHON_3_12,
    "3.13": lambda_.Runtime.PYTHON_3_13,
}

# Defaults: (memory MB, timeout s). A command's timeout stays under API Gateway's 30 s; the
# orchestrator's and the timer's are a sixth of their queue's visibility timeout (AWS's advice
# for SQS event sources, so a batch is retried only after a real failure).
_ORCHESTRATOR = (512, n.EXECUTION_QUEUE_VISIBILITY_TIMEOUT // 6)
_TIMER = (256, n.TIMER_QUEUE_VISIBILITY_TIMEOUT // 6)
_COMMAND = (512, 29)
_SYSTEM = (512, 29)
_TASK = (512, 300)
_SUBSCRIPTION = (512, 60)
_LAMBDA_MAX_TIMEOUT = 900
_API_MAX_TIMEOUT = 30


class UnknownNameError(ValueError):
    """``commands``, ``tasks`` or ``subscriptions`` names something the service does not define."""


def _check_names(
    service: str, kind: str, given: Mapping[str, Any] | None, defined: Sequence[str]
) -> str | None:
    if not given:
        return None
    unknown = sorted(set(given) - set(defined))
    if not unknown:
        return None
    return (
        f"{kind}= names {', '.join(repr(u) for u in unknown)}, which service {service!r} does "
        f"not define; its {kind} are: {', '.join(sorted(defined)) or '(none)'}"
    )


def _allow(
    role: iam.IRole, sid: str, actions: Sequence[str], resources: Sequence[str], **kw: Any
) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(sid=sid, actions=list(actions), resources=list(resources), **kw)
    )


def _route_key(method: str, path: str) -> tuple[str, str]:
    return (method.upper(), path)


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
        architecture: lambda_.Architecture | None = None,
        iam_auth_commands: bool = False,
        cors: apigw.CorsPreflightOptions | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
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
        problems = [
            p
            for p in (
                _check_names(self.service_name, "commands", commands, list(self._commands_spec)),
                _check_names(self.service_name, "tasks", tasks, list(self._tasks_spec)),
                _check_names(
                    self.service_name, "subscriptions", subscriptions, list(self._subs_spec)
                ),
            )
            if p
        ]
        if problems:
            raise UnknownNameError("; ".join(problems))
        reserved = sorted(
            k
            for props in [environment or {}]
            + [p.environment for p in (commands or {}).values()]
            + [p.environment for p in (tasks or {}).values()]
            + [p.environment for p in (subscriptions or {}).values()]
            for k in props
            if k in _RESERVED_ENV
        )
        if reserved:
            raise ValueError(
                f"environment variables {', '.join(reserved)} are set by the construct for the "
                "runtime; give your settings other names"
            )
        self.stack = cdk.Stack.of(self)
        self.architecture = architecture or lambda_.Architecture.X86_64
        if python_version not in _RUNTIMES:
            raise ValueError(
                f"python_version {python_version!r} is not supported; use one of "
                f"{', '.join(_RUNTIMES)}"
            )
        self.runtime = _RUNTIMES[python_version]
        self.bundle: Bundle | None = None
        if code is None:
            arch = "arm64" if self.architecture.name == "arm64" else "x86_64"
            self.bundle = build_bundle(
                entry, python_version=python_version, architecture=arch, options=bundling
            )
            code = lambda_.Code.from_asset(str(self.bundle.path))
            if self.bundle.bytecode is None:
                cdk.Annotations.of(self).add_warning_v2(
                    "eventual-cdk:bundle-without-bytecode", no_bytecode_message(python_version)
                )
        self.code = code
        self._removal = removal_policy
        self._log_retention = log_retention
        self._environment = dict(environment or {})
        defaults = n.ServiceNames.for_service(self.service_name)

        # ------------------------------------------------------------ state
        self._build_tables(defaults, point_in_time_recovery)
        self.payload_bucket = s3.Bucket(
            self,
            "Payloads",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal_policy,
        )
        self._build_queues(max_receive_count)
        self.event_bus = eventbridge.EventBus(self, "Bus")
        self.execution_log_group = logs.LogGroup(
            self, "ExecutionLogs", retention=log_retention, removal_policy=removal_policy
        )
        self.schedule_group = scheduler.ScheduleGroup(
            self, "ScheduleGroup", removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            description=f"EventBridge Scheduler: {self.service_name}'s long timers to its queue",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": self.stack.account}},
            ),
        )
        _allow(self.scheduler_role, "TimerQueue", ["sqs:SendMessage"], [self.timer_queue.queue_arn])
        self.task_dlq = sqs.Queue(
            self,
            "TaskDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.subscription_dlq = sqs.Queue(
            self,
            "SubscriptionDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )

        # The names the runtime reads (tokens resolved at deploy time).
        self.names = replace(
            defaults,
            executions_table=self.executions_table.table_name,
            history_table=self.history_table.table_name,
            claims_table=self.claims_table.table_name,
            payload_bucket=self.payload_bucket.bucket_name,
            execution_queue=self.execution_queue.queue_name,
            timer_queue=self.timer_queue.queue_name,
            event_bus=self.event_bus.event_bus_name,
            schedule_group=self.schedule_group.schedule_group_name,
            log_group=self.execution_log_group.log_group_name,
            execution_queue_url=self.execution_queue.queue_url,
            timer_queue_url=self.timer_queue.queue_url,
            timer_queue_arn=self.timer_queue.queue_arn,
            scheduler_role_arn=self.scheduler_role.role_arn,
        )
        self.runtime_environment: dict[str, str] = {
            **self.names.environment(),
            n.ENV_SERVICE_ENTRY: entry,
            n.ENV_SERVICE_NAME: self.service_name,
        }

        # ------------------------------------------------------------ functions
        self.task_functions: dict[str, lambda_.Function] = {}
        for task_name, task_spec in self._tasks_spec.items():
            self.task_functions[task_name] = self._task_function(
                task_name, task_spec, (tasks or {}).get(task_name) or TaskProps()
            )
        self.orchestrator = self._function(
            "Orchestrator", "orchestrator", orchestrator or FunctionProps(), _ORCHESTRATOR
        )
        self.orchestrator.add_event_source(
            sources.SqsEventSource(
                self.execution_queue,
                batch_size=n.ORCHESTRATOR_BATCH_SIZE,
                report_batch_item_failures=True,
            )
        )
        self.timer_function = self._function("Timer", "timer", timer or FunctionProps(), _TIMER)
        self.timer_function.add_event_source(
            sources.SqsEventSource(self.timer_queue, batch_size=10, report_batch_item_failures=True)
        )
        self.system_function = self._function(
            "System", "system", system or FunctionProps(), _SYSTEM
        )
        self.api_function = self._function("Api", "command", api or FunctionProps(), _COMMAND)
        self.command_functions: dict[str, lambda_.Function] = {}
        for command_name, props in (commands or {}).items():
            self.command_functions[command_name] = self._function(
                f"Command{_pascal(command_name)}",
                "command",
                props,
                _COMMAND,
                max_timeout=_API_MAX_TIMEOUT,
                description=f"{self.service_name}: command {command_name}",
            )
        self.subscription_functions: dict[str, lambda_.Function] = {}
        self.subscription_rules: dict[str, eventbridge.Rule] = {}
        for sub_name, sub_spec in self._subs_spec.items():
            self._subscription(
                sub_name, sub_spec, (subscriptions or {}).get(sub_name) or SubscriptionProps()
            )
        self.functions: list[lambda_.Function] = [
            self.orchestrator,
            self.timer_function,
            self.system_function,
            self.api_function,
            *self.command_functions.values(),
            *self.task_functions.values(),
            *self.subscription_functions.values(),
        ]
        self._grant_runtime_permissions()

        # ------------------------------------------------------------ HTTP API
        self._build_api(iam_auth_commands, cors)

        # ------------------------------------------------------------ discovery
        self.api_url: str = self.stage.url
        self.discovery_parameter = ssm.StringParameter(
            self,
            "Discovery",
            parameter_name=n.service_parameter(self.service_name),
            description=f"Eventual service discovery record of {self.service_name}",
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
                }
            ),
        )
        cdk.CfnOutput(self, "ApiUrl", value=self.api_url, description="The service's HTTP API")
        cdk.CfnOutput(
            self, "EventBusArn", value=self.event_bus.event_bus_arn, description="The event bus"
        )
        self._suppress_nag_findings(python_version)

    # ---------------------------------------------------------------- state

    def _build_tables(self, defaults: n.ServiceNames, pitr: bool) -> None:
        """The three tables exactly as ``names.dynamodb_tables`` describes them."""
        built: dict[str, dynamodb.Table] = {}
        for table_def in n.dynamodb_tables(defaults):
            types = {
                a["AttributeName"]: a["AttributeType"] for a in table_def["AttributeDefinitions"]
            }

            def attr(name: str, types: dict[str, str] = types) -> dynamodb.Attribute:
                kind = {
                    "S": dynamodb.AttributeType.STRING,
                    "N": dynamodb.AttributeType.NUMBER,
                    "B": dynamodb.AttributeType.BINARY,
                }[types[name]]
                return dynamodb.Attribute(name=name, type=kind)

            keys = {k["KeyType"]: k["AttributeName"] for k in table_def["KeySchema"]}
            label = {
                defaults.executions_table: "Executions",
                defaults.history_table: "History",
                defaults.claims_table: "TaskClaims",
            }[table_def["TableName"]]
            table = dynamodb.Table(
                self,
                label,
                partition_key=attr(keys["HASH"]),
                sort_key=attr(keys["RANGE"]) if "RANGE" in keys else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=pitr
                ),
                removal_policy=self._removal,
                time_to_live_attribute=n.CLAIMS_TTL if label == "TaskClaims" else None,
            )
            for index in table_def.get("GlobalSecondaryIndexes", []):
                index_keys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
                projection = index["Projection"]
                table.add_global_secondary_index(
                    index_name=index["IndexName"],
                    partition_key=attr(index_keys["HASH"]),
                    sort_key=attr(index_keys["RANGE"]) if "RANGE" in index_keys else None,
                    projection_type=dynamodb.ProjectionType.INCLUDE
                    if projection["ProjectionType"] == "INCLUDE"
                    else dynamodb.ProjectionType.ALL,
                    non_key_attributes=projection.get("NonKeyAttributes"),
                )
            built[label] = table
        self.executions_table = built["Executions"]
        self.history_table = built["History"]
        self.claims_table = built["TaskClaims"]

    def _build_queues(self, max_receive_count: int) -> None:
        attrs = n.execution_queue_attributes()
        known = {
            "FifoQueue",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "VisibilityTimeout",
        }
        if set(attrs) - known:
            raise RuntimeError(
                "eventual.aws_runtime.names.execution_queue_attributes() has attributes this "
                f"construct does not know ({', '.join(sorted(set(attrs) - known))}): upgrade "
                "eventual-cdk together with eventual-aws-runtime"
            )
        fifo = attrs.get("FifoQueue") == "true"
        self.execution_dlq = sqs.Queue(
            self,
            "ExecutionDlq",
            fifo=fifo or None,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.execution_queue = sqs.Queue(
            self,
            "ExecutionQueue",
            fifo=fifo or None,
            content_based_deduplication=attrs.get("ContentBasedDeduplication") == "true",
            deduplication_scope={
                "messageGroup": sqs.DeduplicationScope.MESSAGE_GROUP,
                "queue": sqs.DeduplicationScope.QUEUE,
                None: None,
            }[attrs.get("DeduplicationScope")],
            fifo_throughput_limit={
                "perMessageGroupId": sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
                "perQueue": sqs.FifoThroughputLimit.PER_QUEUE,
                None: None,
            }[attrs.get("FifoThroughputLimit")],
            visibility_timeout=cdk.Duration.seconds(int(attrs["VisibilityTimeout"])),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.execution_dlq, max_receive_count=max_receive_count
            ),
        )
        timer_attrs = n.timer_queue_attributes()
        self.timer_dlq = sqs.Queue(
            self,
            "TimerDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        self.timer_queue = sqs.Queue(
            self,
            "TimerQueue",
            visibility_timeout=cdk.Duration.seconds(int(timer_attrs["VisibilityTimeout"])),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.timer_dlq, max_receive_count=max_receive_count
            ),
        )

    # ---------------------------------------------------------------- functions

    def _function(
        self,
        id: str,
        kind: str,
        props: FunctionProps,
        default: tuple[int, int],
        *,
        extra_env: Mapping[str, str] | None = None,
        function_name: str | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        max_timeout: int = _LAMBDA_MAX_TIMEOUT,
        description: str | None = None,
    ) -> lambda_.Function:
        scope = Construct(self, id)
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self.service_name}: the {id} function (Eventual)",
        )
        log_group = logs.LogGroup(
            scope, "Logs", retention=self._log_retention, removal_policy=self._removal
        )
        _allow(
            role,
            "OwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [log_group.log_group_arn],
        )
        timeout = to_duration(props.timeout) if props.timeout is not None else None
        seconds = timeout.to_seconds() if timeout is not None else default[1]
        if seconds > max_timeout:
            raise ValueError(
                f"{id}: timeout {seconds:g}s is over the {max_timeout}s this function allows"
                + (" (API Gateway's limit)" if max_timeout == _API_MAX_TIMEOUT else "")
            )
        env = {
            **self._environment,
            **dict(props.environment),
            **self.runtime_environment,
            **dict(extra_env or {}),
        }
        fn = lambda_.Function(
            scope,
            "Function",
            function_name=function_name,
            description=description or f"{self.service_name}: {kind} (Eventual)",
            runtime=self.runtime,
            architecture=self.architecture,
            code=self.code,
            handler=n.HANDLERS[kind],
            role=role,
            memory_size=props.memory_size or default[0],
            timeout=timeout or cdk.Duration.seconds(default[1]),
            environment=env,
            reserved_concurrent_executions=props.reserved_concurrency,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
        )
        return fn

    def _task_function(self, task_name: str, spec: dict[str, Any], props: TaskProps) -> Any:
        default_timeout = _TASK[1]
        if spec.get("timeout"):
            default_timeout = max(1, min(_LAMBDA_MAX_TIMEOUT, int(spec["timeout"] + 0.999)))
        fn = self._function(
            f"Task{_pascal(task_name)}",
            "task",
            props,
            (_TASK[0], default_timeout),
            extra_env={n.ENV_TASK: task_name},
            function_name=self.names.task_function(task_name),
            dead_letter_queue=self.task_dlq,
            description=f"{self.service_name}: task {task_name}",
        )
        if props.retry_attempts is not None or props.max_event_age is not None:
            fn.configure_async_invoke(
                retry_attempts=props.retry_attempts,
                max_event_age=to_duration(props.max_event_age)
                if props.max_event_age is not None
                else None,
            )
        return fn

    def _subscription(self, sub_name: str, spec: dict[str, Any], props: SubscriptionProps) -> None:
        fn = self._function(
            f"Subscription{_pascal(sub_name)}",
            "subscription",
            props,
            _SUBSCRIPTION,
            extra_env={n.ENV_SUBSCRIPTION: sub_name},
            dead_letter_queue=self.subscription_dlq,
            description=f"{self.service_name}: subscription {sub_name}",
        )
        rule = eventbridge.Rule(
            self,
            f"Rule{_pascal(sub_name)}",
            event_bus=self.event_bus,
            description=f"{self.service_name}: subscription {sub_name}",
            event_pattern=eventbridge.EventPattern(
                detail_type=n.subscription_event_pattern(spec["events"])["detail-type"]
            ),
            targets=[
                targets.LambdaFunction(
                    fn,
                    dead_letter_queue=self.subscription_dlq,
                    retry_attempts=props.retry_attempts,
                    max_event_age=to_duration(props.max_event_age)
                    if props.max_event_age is not None
                    else None,
                )
            ],
        )
        self.subscription_functions[sub_name] = fn
        self.subscription_rules[sub_name] = rule

    # ---------------------------------------------------------------- permissions

    def _grant_runtime_permissions(self) -> None:
        """Each function's role gets the actions its handler makes, on its resources only."""
        executions = self.executions_table.table_arn
        history = self.history_table.table_arn
        claims = self.claims_table.table_arn
        payloads = self.payload_bucket.arn_for_objects(n.PAYLOAD_KEY_PREFIX + "*")
        schedules = self.stack.format_arn(
            service="scheduler",
            resource="schedule",
            resource_name=f"{self.schedule_group.schedule_group_name}/*",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

        def client(role: iam.IRole) -> None:
            """What user code may do anywhere (start/get executions, signal, emit, complete
            tasks by token), and what sending to the queue or bus may need (large payloads
            go to the bucket)."""
            _allow(role, "Executions", ["dynamodb:GetItem", "dynamodb:PutItem"], [executions])
            _allow(role, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [claims])
            _allow(role, "ExecutionQueue", ["sqs:SendMessage"], [self.execution_queue.queue_arn])
            _allow(role, "Events", ["events:PutEvents"], [self.event_bus.event_bus_arn])
            _allow(role, "Payloads", ["s3:GetObject", "s3:PutObject"], [payloads])

        def schedule_timers(role: iam.IRole, actions: Sequence[str]) -> None:
            _allow(role, "TimerQueue", ["sqs:SendMessage"], [self.timer_queue.queue_arn])
            # Schedules are created per timer, named at run time: the group's schedules are
            # the narrowest resource.
            _allow(role, "Schedules", actions, [schedules])
            _allow(
                role,
                "PassSchedulerRole",
                ["iam:PassRole"],
                [self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
            )

        orchestrator = self.orchestrator.role
        assert orchestrator is not None
        _allow(
            orchestrator,
            "Executions",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            [executions],
        )
        _allow(
            orchestrator,
            "History",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
            [history],
        )
        _allow(
            orchestrator, "ExecutionQueue", ["sqs:SendMessage"], [self.execution_queue.queue_arn]
        )
        _allow(orchestrator, "Events", ["events:PutEvents"], [self.event_bus.event_bus_arn])
        _allow(orchestrator, "Payloads", ["s3:GetObject", "s3:PutObject"], [payloads])
        if self.task_functions:
            _allow(
                orchestrator,
                "InvokeTasks",
                ["lambda:InvokeFunction"],
                [fn.function_arn for fn in self.task_functions.values()],
            )
        schedule_timers(
            orchestrator,
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
        )
        _allow(
            orchestrator,
            "WorkflowLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [self.execution_log_group.log_group_arn],
        )

        timer = self.timer_function.role
        assert timer is not None
        _allow(timer, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [claims])
        _allow(timer, "ExecutionQueue", ["sqs:SendMessage"], [self.execution_queue.queue_arn])
        _allow(timer, "Payloads", ["s3:PutObject"], [payloads])
        schedule_timers(timer, ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"])

        for fn in self.task_functions.values():
            assert fn.role is not None
            client(fn.role)
            _allow(fn.role, "ClaimTask", ["dynamodb:PutItem"], [claims])
        for fn in [self.api_function, *self.command_functions.values()]:
            assert fn.role is not None
            client(fn.role)
        for fn in self.subscription_functions.values():
            assert fn.role is not None
            client(fn.role)

        system = self.system_function.role
        assert system is not None
        client(system)
        _allow(
            system,
            "ListExecutions",
            ["dynamodb:Query"],
            [
                f"{executions}/index/{n.EXECUTIONS_INDEX_BY_TIME}",
                f"{executions}/index/{n.EXECUTIONS_INDEX_BY_WORKFLOW}",
            ],
        )
        _allow(system, "History", ["dynamodb:Query", "dynamodb:GetItem"], [history])
        _allow(
            system,
            "WorkflowLogs",
            ["logs:FilterLogEvents"],
            [self.execution_log_group.log_group_arn],
        )

    # ---------------------------------------------------------------- HTTP API

    def _build_api(self, iam_auth_commands: bool, cors: apigw.CorsPreflightOptions | None) -> None:
        user_auth = apigw_auth.HttpIamAuthorizer() if iam_auth_commands else None
        default_integration = apigw_integrations.HttpLambdaIntegration(
            "ApiIntegration", self.api_function
        )
        self.http_api = apigw.HttpApi(
            self,
            "HttpApi",
            description=f"Eventual service {self.service_name}",
            create_default_stage=False,
            default_integration=default_integration,
            default_authorizer=user_auth,
            cors_preflight=cors,
        )
        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=self._log_retention, removal_policy=self._removal
        )
        self.stage = apigw.HttpStage(
            self,
            "Stage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
        )
        # Access logs (JSON, one line a request) through the stage's L1 resource.
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_log_group.log_group_arn,
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
            if command is None or command not in self.command_functions:
                return default_integration
            if command not in integrations:
                integrations[command] = apigw_integrations.HttpLambdaIntegration(
                    f"Command{_pascal(command)}", self.command_functions[command]
                )
            return integrations[command]

        self.routes: dict[tuple[str, str], list[apigw.HttpRoute]] = {}

        def add(method: str, path: str, integration: Any, authorizer: Any) -> None:
            key = _route_key(method, path)
            if key in self.routes:
                return
            http_method = apigw.HttpMethod[method.upper()]
            self.routes[key] = self.http_api.add_routes(
                path=path, methods=[http_method], integration=integration, authorizer=authorizer
            )

        add(
            "POST",
            n.SYSTEM_ROUTE_PREFIX + "{proxy+}",
            apigw_integrations.HttpLambdaIntegration("System", self.system_function),
            apigw_auth.HttpIamAuthorizer(),
        )
        for name, command in self._commands_spec.items():
            add("POST", command["rpc_path"], integration_for(name), user_auth)
            if command.get("path"):
                add(command["method"], command["path"], integration_for(name), user_auth)
        for route in self.spec["routes"]:
            add(route["method"], route["path"], default_integration, user_auth)
        self._iam_auth_commands = iam_auth_commands

    # ---------------------------------------------------------------- public API

    def _execute_api_arn(self, method: str, path: str) -> str:
        resource = re.sub(r"\{[^}]*\}", "*", path)
        return self.stack.format_arn(
            service="execute-api",
            resource=self.http_api.api_id,
            resource_name=f"{self.stage.stage_name}/{method.upper()}{resource}",
            arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
        )

    def grant_invoke_commands(self, grantee: iam.IGrantable) -> iam.Grant:
        """``execute-api:Invoke`` on every command route (RPC and REST) and ``api`` route:
        what a caller needs when the service was built with ``iam_auth_commands=True``."""
        arns = [
            self._execute_api_arn(method, path)
            for (method, path) in self.routes
            if not path.startswith(n.SYSTEM_ROUTE_PREFIX)
        ]
        grant = iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"], resource_arns=arns
        )
        if any("{" in path for _, path in self.routes) and isinstance(grantee, Construct):
            # A REST path parameter (``/orders/{id}``) is ``*`` in an execute-api ARN.
            NagSuppressions.add_resource_suppressions(
                grantee,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason=(
                            f"Invoking {self.service_name}'s REST routes: their path "
                            "parameters are '*' in the execute-api ARN (method and path fixed)."
                        ),
                        applies_to=[
                            RegexAppliesTo(
                                regex="/^Resource::arn:<AWS::Partition>:execute-api:[^:]*:[^:]*:"
                                "<[^>]+>\\/\\$default\\/[A-Z]+\\/.*\\*.*$/g"
                            )
                        ],
                    )
                ],
                apply_to_children=True,
            )
        return grant

    def grant_system_commands(self, grantee: iam.IGrantable, *commands: str) -> iam.Grant:
        """``execute-api:Invoke`` on the named system commands (``"startExecution"``...), or on
        all of them (the CLI's needs) when none is named."""
        arns = (
            [self._execute_api_arn("POST", n.SYSTEM_ROUTE_PREFIX + c) for c in commands]
            if commands
            else [self._execute_api_arn("POST", n.SYSTEM_ROUTE_PREFIX + "*")]
        )
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=["execute-api:Invoke"], resource_arns=arns
        )

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
        wanted = list(dict.fromkeys(events))
        if not wanted:
            raise ValueError("subscribe: give at least one event name")
        theirs = {e["name"] for e in service.spec["events"]}
        unknown = [e for e in wanted if e not in theirs]
        if unknown:
            raise UnknownNameError(
                f"service {service.service_name!r} defines no event "
                f"{', '.join(repr(u) for u in unknown)}; its events are: "
                f"{', '.join(sorted(theirs)) or '(none)'}"
            )
        ours = {e for s in self._subs_spec.values() for e in s["events"]}
        unheard = [e for e in wanted if e not in ours]
        if unheard:
            raise UnknownNameError(
                f"no subscription of service {self.service_name!r} listens to "
                f"{', '.join(repr(u) for u in unheard)}; its subscriptions listen to: "
                f"{', '.join(sorted(ours)) or '(none)'}"
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

    # ---------------------------------------------------------------- cdk-nag

    def _suppress_nag_findings(self, python_version: str) -> None:
        """The AwsSolutions findings this construct accepts, each with its reason (attached to
        the resources concerned, so they travel with the construct into any app)."""
        payload_prefix = re.escape(n.PAYLOAD_KEY_PREFIX)

        def suppress(construct: Construct, rule: str, reason: str, *applies: str) -> None:
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

        for fn in self.functions:
            assert fn.role is not None
            suppress(
                fn.role,
                "AwsSolutions-IAM5",
                "Payload objects are named by their content hash at run time; access is "
                f"limited to the bucket's {n.PAYLOAD_KEY_PREFIX} prefix.",
                f"/^Resource::<.*Payloads[A-Za-z0-9]*\\.Arn>\\/{payload_prefix}\\*$/g",
            )
            suppress(
                fn.role,
                "AwsSolutions-IAM5",
                "Timers are one-time schedules named at run time; access is limited to the "
                "service's own schedule group.",
                "/^Resource::arn:<AWS::Partition>:scheduler:[^:]*:[^:]*:schedule\\/[^\\/]+\\/\\*$/g",
            )
            suppress(
                fn,
                "AwsSolutions-L1",
                f"The functions run Python {python_version}, the version their bundle was "
                "built for (Service(python_version=...) picks another).",
            )
        suppress(
            self.payload_bucket,
            "AwsSolutions-S1",
            "The payload bucket is private to the service's functions (no public access, TLS "
            "only, SSE); server access logs would need a second bucket per service.",
        )
        for queue in (self.task_dlq, self.subscription_dlq):
            suppress(
                queue,
                "AwsSolutions-SQS3",
                "This queue is the dead-letter queue of Lambda asynchronous invocations and "
                "EventBridge targets, not an SQS redrive target.",
            )
        if not self._iam_auth_commands:
            routes = [
                r
                for key, rs in self.routes.items()
                for r in rs
                if not key[1].startswith(n.SYSTEM_ROUTE_PREFIX)
            ]
            default_route = self.http_api.node.try_find_child("DefaultRoute")
            if default_route is not None:
                resource = default_route.node.try_find_child("Resource")
                if isinstance(resource, Construct):
                    routes.append(resource)  # type: ignore[arg-type]
            for route in routes:
                suppress(
                    route,
                    "AwsSolutions-APIG4",
                    "User commands and routes are public by design: they authenticate in "
                    "middleware, or the service is built with iam_auth_commands=True. The "
                    "system routes require IAM.",
                )


_RESERVED_ENV = {
    n.ENV_SERVICE_NAME,
    n.ENV_SERVICE_ENTRY,
    n.ENV_TASK,
    n.ENV_SUBSCRIPTION,
    *n.ENV_OF_FIELD.values(),
}


def _pascal(name: str) -> str:
    parts = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p) or "X"


__all__ = ["Service", "UnknownNameError"]
