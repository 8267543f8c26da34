"""The ``Service`` component: one Eventual service on Lambda, SQS, DynamoDB, S3, EventBridge,
EventBridge Scheduler and API Gateway, as the CDK construct deploys it (DESIGN.md, the AWS
column).

Names, key schemas, queue attributes and environment variables come from
:mod:`eventual.aws_runtime.names`; the configuration model, its checks, the spec reader, the
runtime's IAM statements and the Lambda bundler from :mod:`eventual.aws_runtime.infra`, the
modules the CDK construct uses too. Each child resource is named ``{name}-{Path}``, where
``Path`` is the CDK construct's path inside its ``Service`` (``orders-Executions``,
``orders-TaskChargeCreditCard-Function``), so the two deployments read alike.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi_aws as aws

import pulumi
from eventual.aws_runtime import names as n
from eventual.aws_runtime.handlers import FUNCTION_ENVIRONMENT
from eventual.aws_runtime.infra import config
from eventual.aws_runtime.infra import permissions as perms
from eventual.aws_runtime.infra.bundling import Bundle, BundleOptions, build_bundle
from eventual.aws_runtime.infra.config import UnknownNameError, pascal
from eventual.aws_runtime.infra.props import (
    CommandProps,
    FunctionProps,
    SubscriptionProps,
    TaskProps,
    seconds_of,
)
from eventual.aws_runtime.infra.spec import load_spec
from eventual.core.service import BUILD_ENV

TYPE = "eventual:aws:Service"
LOGGER = "eventual.pulumi"

ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "protocol": "$context.protocol",
        "responseLength": "$context.responseLength",
    },
    separators=(",", ":"),
)
"""The stage's access log line: the fields of the CDK construct's JSON access log."""

DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def _policy(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _assume(service: str, conditions: Mapping[str, Any] | None = None) -> pulumi.Output[str]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if conditions:
        statement["Condition"] = conditions
    return _policy([statement])


def _deny_insecure(action: str, resources: Sequence[Any]) -> dict[str, Any]:
    return {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": action,
        "Resource": resources[0] if len(resources) == 1 else list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@dataclass
class LambdaFunction:
    """One function of the service with what comes with it: its role, log group and the
    statements its role's inline policy holds (written once the component is built)."""

    id: str
    kind: str
    function: aws.lambda_.Function
    role: aws.iam.Role
    log_group: aws.cloudwatch.LogGroup
    statements: list[dict[str, Any]]


class Service(pulumi.ComponentResource):
    """An Eventual service deployed to AWS by Pulumi.

    ``Service(name, *, entry, service_name=None, commands=None, tasks=None,
    subscriptions=None, environment=None, ...)``: the same arguments as ``eventual.cdk.Service``
    (see the package README for each and for what differs).
    """

    def __init__(
        self,
        name: str,
        *,
        entry: str,
        service_name: str | None = None,
        commands: Mapping[str, CommandProps] | None = None,
        tasks: Mapping[str, TaskProps] | None = None,
        subscriptions: Mapping[str, SubscriptionProps] | None = None,
        environment: Mapping[str, str] | None = None,
        api: FunctionProps | None = None,
        orchestrator: FunctionProps | None = None,
        system: FunctionProps | None = None,
        timer: FunctionProps | None = None,
        code: pulumi.Archive | None = None,
        bundling: BundleOptions | None = None,
        python_version: str = "3.11",
        architecture: str = "x86_64",
        iam_auth_commands: bool = False,
        cors: aws.apigatewayv2.ApiCorsConfigurationArgs | None = None,
        retain_on_delete: bool = True,
        log_retention_days: int = 30,
        retention: int = n.RETENTION_DAYS,
        point_in_time_recovery: bool = True,
        max_receive_count: int = n.DEFAULT_MAX_RECEIVE_COUNT,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self._name = name
        bundling = bundling or BundleOptions()
        self.entry = entry
        self.spec: dict[str, Any] = load_spec(entry, python=bundling.python)
        self.service_name: str = service_name or self.spec["name"]
        self._commands_spec = {c["name"]: c for c in self.spec["commands"]}
        self._tasks_spec = {t["name"]: t for t in self.spec["tasks"]}
        self._subs_spec = {s["name"]: s for s in self.spec["subscriptions"]}
        commands = dict(commands or {})
        tasks = dict(tasks or {})
        subscriptions = dict(subscriptions or {})
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
            commands=commands,
            tasks=tasks,
            subscriptions=subscriptions,
        )
        config.check_environment(
            [environment or {}],
            [p.environment for p in commands.values()]
            + [p.environment for p in tasks.values()]
            + [p.environment for p in subscriptions.values()],
        )
        self.architecture = config.check_architecture(architecture)
        self.runtime = "python" + config.check_python_version(python_version)
        self.build: str | None = config.service_build(self.spec, environment or {})
        self._environment = dict(environment or {})
        self._retain = retain_on_delete
        self._log_retention_days = log_retention_days
        self.retention_days = config.check_retention(retention)
        self.bundle: Bundle | None = None
        if code is None:
            self.bundle = build_bundle(
                entry,
                python_version=python_version,
                architecture=self.architecture,
                options=bundling,
            )
            code = pulumi.FileArchive(str(self.bundle.path))
        self.code = code
        self._child = pulumi.ResourceOptions(parent=self)
        self._kept = pulumi.ResourceOptions(parent=self, retain_on_delete=retain_on_delete)
        defaults = n.ServiceNames.for_service(self.service_name)
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        self.account: pulumi.Output[str] = identity.account_id
        self.region: pulumi.Output[str] = aws.get_region_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).region

        self._build_state(defaults, point_in_time_recovery, max_receive_count)
        self.runtime_environment: dict[str, Any] = {
            n.ENV_SERVICE_NAME: self.service_name,
            n.RETENTION_DAYS_ENV: str(self.retention_days),
            n.ENV_EXECUTIONS_TABLE: self.executions_table.name,
            n.ENV_HISTORY_TABLE: self.history_table.name,
            n.ENV_CLAIMS_TABLE: self.claims_table.name,
            n.ENV_PAYLOAD_BUCKET: self.payload_bucket.bucket,
            n.ENV_EXECUTION_QUEUE_URL: self.execution_queue.url,
            n.ENV_TIMER_QUEUE_URL: self.timer_queue.url,
            n.ENV_TIMER_QUEUE_ARN: self.timer_queue.arn,
            n.ENV_EVENT_BUS: self.event_bus.name,
            n.ENV_SCHEDULE_GROUP: self.schedule_group.name,
            n.ENV_SCHEDULER_ROLE_ARN: self.scheduler_role.arn,
            n.ENV_LOG_GROUP: self.execution_log_group.name,
            n.ENV_TASK_FUNCTION_PREFIX: defaults.task_function_prefix,
            n.ENV_SERVICE_ENTRY: entry,
            **({BUILD_ENV: self.build} if self.build else {}),
        }
        missing = set(n.ENV_OF_FIELD.values()) - set(self.runtime_environment)
        if missing:
            raise RuntimeError(
                f"eventual.aws_runtime.names reads {', '.join(sorted(missing))}, which this "
                "component does not set: upgrade eventual-pulumi together with "
                "eventual-aws-runtime"
            )

        self._functions: list[LambdaFunction] = []
        self._build_functions(
            defaults,
            commands=commands,
            tasks=tasks,
            subscriptions=subscriptions,
            orchestrator=orchestrator,
            timer=timer,
            system=system,
            api=api,
            max_receive_count=max_receive_count,
        )
        if self.bundle is not None:
            kinds: dict[str, int] = {}
            for fn in self._functions:
                kinds[fn.kind] = kinds.get(fn.kind, 0) + 1
            served = ", ".join(k if c == 1 else f"{k} x{c}" for k, c in kinds.items())
            line = (
                f"Lambda asset of {self.service_name}: {self.bundle.summary()}; the code of "
                f"its {len(self._functions)} functions: {served}"
            )
            logging.getLogger(LOGGER).info(line)
            pulumi.log.info(line, resource=self)
        self._grant_runtime_permissions()
        self._build_api(iam_auth_commands, cors)
        self._build_discovery()
        self.register_outputs({"api_url": self.api_url, "event_bus_arn": self.event_bus.arn})

    # ---------------------------------------------------------------- state

    def _n(self, *path: str) -> str:
        return "-".join([self._name, *path])

    def _log_group(self, *path: str) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            self._n(*path), retention_in_days=self._log_retention_days, opts=self._kept
        )

    def _queue(
        self,
        id: str,
        *,
        dlq: aws.sqs.Queue | None = None,
        max_receive_count: int = 0,
        fifo: bool = False,
        **kw: Any,
    ) -> aws.sqs.Queue:
        """A queue (SQS-managed encryption, TLS only); without ``dlq`` a dead-letter queue
        kept 14 days."""
        if fifo:
            # The provider adds ``.fifo`` to a generated name.
            kw.setdefault("name_prefix", f"{self._name}-{id}-")
        if dlq is None:
            kw.setdefault("message_retention_seconds", DLQ_RETENTION_SECONDS)
        else:
            kw["redrive_policy"] = pulumi.Output.json_dumps(
                {"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max_receive_count}
            )
        queue = aws.sqs.Queue(
            self._n(id),
            fifo_queue=fifo or None,
            sqs_managed_sse_enabled=True,
            opts=self._child,
            **kw,
        )
        self._queue_policies[id] = [_deny_insecure("sqs:*", [queue.arn])]
        return queue

    def _build_state(self, defaults: n.ServiceNames, pitr: bool, max_receive_count: int) -> None:
        self._queue_policies: dict[str, list[dict[str, Any]]] = {}
        self._queues: dict[str, aws.sqs.Queue] = {}
        labels = {
            defaults.executions_table: "Executions",
            defaults.history_table: "History",
            defaults.claims_table: "TaskClaims",
        }
        tables: dict[str, aws.dynamodb.Table] = {}
        for table_def in n.dynamodb_tables(defaults):
            label = labels[table_def["TableName"]]
            keys = {k["KeyType"]: k["AttributeName"] for k in table_def["KeySchema"]}
            indexes = []
            for index in table_def.get("GlobalSecondaryIndexes", []):
                projection = index["Projection"]
                indexes.append(
                    aws.dynamodb.TableGlobalSecondaryIndexArgs(
                        name=index["IndexName"],
                        key_schemas=[
                            aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                                attribute_name=k["AttributeName"], key_type=k["KeyType"]
                            )
                            for k in index["KeySchema"]
                        ],
                        projection_type=projection["ProjectionType"],
                        non_key_attributes=projection.get("NonKeyAttributes"),
                    )
                )
            tables[label] = aws.dynamodb.Table(
                self._n(label),
                attributes=[
                    aws.dynamodb.TableAttributeArgs(
                        name=a["AttributeName"], type=a["AttributeType"]
                    )
                    for a in table_def["AttributeDefinitions"]
                ],
                hash_key=keys["HASH"],
                range_key=keys.get("RANGE"),
                billing_mode="PAY_PER_REQUEST",
                server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True),
                point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=pitr),
                # Claims expire by themselves; executions and history once finished (the
                # stores set the attribute on a finished execution's items only).
                ttl=aws.dynamodb.TableTtlArgs(
                    attribute_name=n.CLAIMS_TTL if label == "TaskClaims" else n.RETENTION_TTL,
                    enabled=True,
                ),
                global_secondary_indexes=indexes or None,
                opts=self._kept,
            )
        self.executions_table = tables["Executions"]
        self.history_table = tables["History"]
        self.claims_table = tables["TaskClaims"]

        self.payload_bucket = aws.s3.Bucket(self._n("Payloads"), opts=self._kept)
        bucket_child = pulumi.ResourceOptions(parent=self.payload_bucket)
        aws.s3.BucketServerSideEncryptionConfiguration(
            self._n("Payloads", "Encryption"),
            bucket=self.payload_bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    )
                )
            ],
            opts=bucket_child,
        )
        aws.s3.BucketPublicAccessBlock(
            self._n("Payloads", "PublicAccessBlock"),
            bucket=self.payload_bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=bucket_child,
        )
        aws.s3.BucketOwnershipControls(
            self._n("Payloads", "OwnershipControls"),
            bucket=self.payload_bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=bucket_child,
        )
        # A finished execution's payloads (tagged so by the stores) go after the retention
        # period; an execution in progress has no tagged object.
        aws.s3.BucketLifecycleConfiguration(
            self._n("Payloads", "Lifecycle"),
            bucket=self.payload_bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="FinishedExecutionPayloads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
                        tag=aws.s3.BucketLifecycleConfigurationRuleFilterTagArgs(
                            key=n.PAYLOAD_EXPIRE_TAG, value="true"
                        )
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=self.retention_days
                    ),
                ),
                # Emitted events' payloads: by age (read by subscribers soon after the emit).
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="EmittedEventPayloads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(
                        prefix=n.PAYLOAD_EVENTS_PREFIX
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=n.event_payload_days(self.retention_days)
                    ),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="AbortIncompleteUploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                ),
            ],
            opts=bucket_child,
        )
        aws.s3.BucketPolicy(
            self._n("Payloads", "Policy"),
            bucket=self.payload_bucket.id,
            policy=_policy(
                [
                    _deny_insecure(
                        "s3:*",
                        [
                            self.payload_bucket.arn,
                            self.payload_bucket.arn.apply(lambda a: a + "/*"),
                        ],
                    )
                ]
            ),
            opts=bucket_child,
        )

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
                f"component does not know ({', '.join(sorted(set(attrs) - known))}): upgrade "
                "eventual-pulumi together with eventual-aws-runtime"
            )
        fifo = attrs.get("FifoQueue") == "true"
        self.execution_dlq = self._queue("ExecutionDlq", fifo=fifo)
        self.execution_queue = self._queue(
            "ExecutionQueue",
            dlq=self.execution_dlq,
            max_receive_count=max_receive_count,
            fifo=fifo,
            content_based_deduplication=attrs.get("ContentBasedDeduplication") == "true",
            deduplication_scope=attrs.get("DeduplicationScope"),
            fifo_throughput_limit=attrs.get("FifoThroughputLimit"),
            visibility_timeout_seconds=int(attrs["VisibilityTimeout"]),
        )
        self.timer_dlq = self._queue("TimerDlq")
        self.timer_queue = self._queue(
            "TimerQueue",
            dlq=self.timer_dlq,
            max_receive_count=max_receive_count,
            visibility_timeout_seconds=int(n.timer_queue_attributes()["VisibilityTimeout"]),
        )
        self.event_bus = aws.cloudwatch.EventBus(self._n("Bus"), opts=self._child)
        self.execution_log_group = self._log_group("ExecutionLogs")
        self.schedule_group = aws.scheduler.ScheduleGroup(
            self._n("ScheduleGroup"), opts=self._child
        )
        self.scheduler_role = aws.iam.Role(
            self._n("SchedulerRole"),
            description=f"EventBridge Scheduler: {self.service_name}'s long timers to its queue",
            assume_role_policy=_assume(
                "scheduler.amazonaws.com", {"StringEquals": {"aws:SourceAccount": self.account}}
            ),
            opts=self._child,
        )
        self.task_dlq = self._queue("TaskDlq")

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
        dead_letter_queue: aws.sqs.Queue | None = None,
        max_timeout: int = config.LAMBDA_MAX_TIMEOUT,
        description: str | None = None,
    ) -> LambdaFunction:
        role = aws.iam.Role(
            self._n(id, "Role"),
            description=f"{self.service_name}: the {id} function (Eventual)",
            assume_role_policy=_assume("lambda.amazonaws.com"),
            opts=self._child,
        )
        log_group = self._log_group(id, "Logs")
        statements: list[dict[str, Any]] = [
            perms.Statement("OwnLogs", perms.OWN_LOGS_ACTIONS, (log_group.arn,)).document()
        ]
        seconds = seconds_of(props.timeout) if props.timeout is not None else default[1]
        config.check_timeout(id, seconds, max_timeout)
        if dead_letter_queue is not None:
            # What Lambda does with the role to dead-letter an asynchronous invocation.
            statements.append(
                perms.Statement(None, ("sqs:SendMessage",), (dead_letter_queue.arn,)).document()
            )
        env = {
            **FUNCTION_ENVIRONMENT,
            **self._environment,
            **dict(props.environment),
            **self.runtime_environment,
            **dict(extra_env or {}),
        }
        function = aws.lambda_.Function(
            self._n(id, "Function"),
            name=function_name,
            description=description or f"{self.service_name}: {kind} (Eventual)",
            runtime=self.runtime,
            architectures=[self.architecture],
            code=self.code,
            handler=n.HANDLERS[kind],
            role=role.arn,
            memory_size=props.memory_size or default[0],
            timeout=int(seconds) if seconds == int(seconds) else int(seconds) + 1,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=env),
            reserved_concurrent_executions=props.reserved_concurrency,
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="Text", log_group=log_group.name
            ),
            dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(
                target_arn=dead_letter_queue.arn
            )
            if dead_letter_queue is not None
            else None,
            opts=self._child,
        )
        fn = LambdaFunction(id, kind, function, role, log_group, statements)
        self._functions.append(fn)
        return fn

    def _queue_trigger(self, fn: LambdaFunction, queue: aws.sqs.Queue, batch_size: int) -> None:
        fn.statements.append(
            perms.Statement("QueueTrigger", perms.QUEUE_TRIGGER_ACTIONS, (queue.arn,)).document()
        )
        self._triggers.append((fn, queue, batch_size))

    def _build_functions(
        self,
        defaults: n.ServiceNames,
        *,
        commands: Mapping[str, CommandProps],
        tasks: Mapping[str, TaskProps],
        subscriptions: Mapping[str, SubscriptionProps],
        orchestrator: FunctionProps | None,
        timer: FunctionProps | None,
        system: FunctionProps | None,
        api: FunctionProps | None,
        max_receive_count: int,
    ) -> None:
        self._triggers: list[tuple[LambdaFunction, aws.sqs.Queue, int]] = []
        self.task_functions: dict[str, aws.lambda_.Function] = {}
        self._task_fns: dict[str, LambdaFunction] = {}
        for task_name, task_spec in self._tasks_spec.items():
            props = tasks.get(task_name) or TaskProps()
            fn = self._function(
                f"Task{pascal(task_name)}",
                "task",
                props,
                (config.TASK[0], config.task_timeout(task_spec)),
                extra_env={n.ENV_TASK: task_name},
                function_name=defaults.task_function(task_name),
                dead_letter_queue=self.task_dlq,
                description=f"{self.service_name}: task {task_name}",
            )
            if props.retry_attempts is not None or props.max_event_age is not None:
                aws.lambda_.FunctionEventInvokeConfig(
                    self._n(fn.id, "Function", "EventInvokeConfig"),
                    function_name=fn.function.name,
                    qualifier="$LATEST",
                    maximum_retry_attempts=props.retry_attempts,
                    maximum_event_age_in_seconds=int(seconds_of(props.max_event_age))
                    if props.max_event_age is not None
                    else None,
                    opts=pulumi.ResourceOptions(parent=fn.function),
                )
            self.task_functions[task_name] = fn.function
            self._task_fns[task_name] = fn
        receive_env = {n.ENV_MAX_RECEIVE_COUNT: str(max_receive_count)}
        # A service without workflows gets neither: nothing would ever send them a message.
        self._orchestrator: LambdaFunction | None = None
        self._timer: LambdaFunction | None = None
        if self.spec["workflows"]:
            self._orchestrator = self._function(
                "Orchestrator",
                "orchestrator",
                orchestrator or FunctionProps(),
                config.ORCHESTRATOR,
                extra_env=receive_env,
            )
            self._queue_trigger(self._orchestrator, self.execution_queue, n.ORCHESTRATOR_BATCH_SIZE)
            self._timer = self._function(
                "Timer", "timer", timer or FunctionProps(), config.TIMER, extra_env=receive_env
            )
            self._queue_trigger(self._timer, self.timer_queue, 10)
        self._system = self._function("System", "system", system or FunctionProps(), config.SYSTEM)
        self._api_fn = self._function("Api", "command", api or FunctionProps(), config.COMMAND)
        self.orchestrator: aws.lambda_.Function | None = (
            self._orchestrator.function if self._orchestrator is not None else None
        )
        self.timer_function: aws.lambda_.Function | None = (
            self._timer.function if self._timer is not None else None
        )
        self.system_function = self._system.function
        self.api_function = self._api_fn.function
        self.command_functions: dict[str, aws.lambda_.Function] = {}
        self._command_fns: dict[str, LambdaFunction] = {}
        for command_name, props in commands.items():
            fn = self._function(
                f"Command{pascal(command_name)}",
                "command",
                props,
                config.COMMAND,
                max_timeout=config.API_MAX_TIMEOUT,
                description=f"{self.service_name}: command {command_name}",
            )
            self.command_functions[command_name] = fn.function
            self._command_fns[command_name] = fn
        self.subscription_functions: dict[str, aws.lambda_.Function] = {}
        self.subscription_rules: dict[str, aws.cloudwatch.EventRule] = {}
        self.subscription_dlqs: dict[str, aws.sqs.Queue] = {}
        self._sub_fns: dict[str, LambdaFunction] = {}
        for sub_name, sub_spec in self._subs_spec.items():
            props = subscriptions.get(sub_name) or SubscriptionProps()
            label = f"Subscription{pascal(sub_name)}"
            dlq = self._queue(f"{label}Dlq")
            fn = self._function(
                label,
                "subscription",
                props,
                config.SUBSCRIPTION,
                extra_env={n.ENV_SUBSCRIPTION: sub_name},
                dead_letter_queue=dlq,
                description=f"{self.service_name}: subscription {sub_name}",
            )
            rule_id = f"Rule{pascal(sub_name)}"
            rule = aws.cloudwatch.EventRule(
                self._n(rule_id),
                event_bus_name=self.event_bus.name,
                description=f"{self.service_name}: subscription {sub_name}",
                event_pattern=json.dumps(
                    {"detail-type": n.subscription_event_pattern(sub_spec["events"])["detail-type"]}
                ),
                state="ENABLED",
                opts=self._child,
            )
            retry = None
            if props.retry_attempts is not None or props.max_event_age is not None:
                retry = aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_retry_attempts=props.retry_attempts,
                    maximum_event_age_in_seconds=int(seconds_of(props.max_event_age))
                    if props.max_event_age is not None
                    else None,
                )
            aws.cloudwatch.EventTarget(
                self._n(rule_id, "Target0"),
                rule=rule.name,
                event_bus_name=self.event_bus.name,
                arn=fn.function.arn,
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=dlq.arn),
                retry_policy=retry,
                opts=pulumi.ResourceOptions(parent=rule),
            )
            aws.lambda_.Permission(
                self._n(rule_id, "AllowEventRule"),
                action="lambda:InvokeFunction",
                function=fn.function.arn,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=pulumi.ResourceOptions(parent=rule),
            )
            # The rule's target dead-letters what it cannot deliver.
            self._queue_policies[f"{label}Dlq"].append(
                {
                    "Sid": f"AllowEventRule{rule_id}",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": dlq.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                }
            )
            self.subscription_functions[sub_name] = fn.function
            self.subscription_rules[sub_name] = rule
            self.subscription_dlqs[sub_name] = dlq
            self._sub_fns[sub_name] = fn
        self._queues = {
            "ExecutionDlq": self.execution_dlq,
            "ExecutionQueue": self.execution_queue,
            "TimerDlq": self.timer_dlq,
            "TimerQueue": self.timer_queue,
            "TaskDlq": self.task_dlq,
            **{f"Subscription{pascal(s)}Dlq": q for s, q in self.subscription_dlqs.items()},
        }
        for id, queue in self._queues.items():
            aws.sqs.QueuePolicy(
                self._n(id, "Policy"),
                queue_url=queue.url,
                policy=_policy(self._queue_policies[id]),
                opts=pulumi.ResourceOptions(parent=queue),
            )

    @property
    def functions(self) -> list[aws.lambda_.Function]:
        """Every Lambda function of the service."""
        return [fn.function for fn in self._functions]

    def _grant_runtime_permissions(self) -> None:
        schedules = self.schedule_group.arn.apply(
            lambda a: a.replace(":schedule-group/", ":schedule/") + "/*"
        )
        executions = self.executions_table.arn
        arns = perms.RuntimeArns(
            executions=executions,
            history=self.history_table.arn,
            claims=self.claims_table.arn,
            payloads=self.payload_bucket.arn.apply(lambda a: f"{a}/{n.PAYLOAD_KEY_PREFIX}*"),
            schedules=schedules,
            execution_queue=self.execution_queue.arn,
            timer_queue=self.timer_queue.arn,
            event_bus=self.event_bus.arn,
            scheduler_role=self.scheduler_role.arn,
            execution_logs=self.execution_log_group.arn,
            payload_bucket=self.payload_bucket.arn,
            executions_indexes=tuple(
                executions.apply(lambda a, i=index: f"{a}/index/{i}")
                for index in (n.EXECUTIONS_INDEX_BY_TIME, n.EXECUTIONS_INDEX_BY_WORKFLOW)
            ),
        )
        clients: dict[str, LambdaFunction] = {
            self._api_fn.id: self._api_fn,
            **{fn.id: fn for fn in self._command_fns.values()},
            **{fn.id: fn for fn in self._sub_fns.values()},
        }
        tasks = {fn.id: fn for fn in self._task_fns.values()}
        statements = perms.runtime_statements(
            arns,
            perms.ServiceNeeds.of(self.spec),
            tasks={key: fn.function.arn for key, fn in tasks.items()},
            clients={key: fn.kind == "subscription" for key, fn in clients.items()},
            calls={
                perms.ORCHESTRATOR if key == "Orchestrator" else key: made
                for key, made in self.calls.items()
            },
            task_specs={
                self._task_fns[name].id: spec
                for name, spec in self._tasks_spec.items()
                if name in self._task_fns
            },
        )
        by_key: dict[str, LambdaFunction] = {
            **({perms.ORCHESTRATOR: self._orchestrator} if self._orchestrator else {}),
            **({perms.TIMER: self._timer} if self._timer else {}),
            perms.SYSTEM: self._system,
            **tasks,
            **clients,
        }
        policies: dict[str, aws.iam.RolePolicy] = {}
        for key, fn in by_key.items():
            docs = fn.statements + [s.document() for s in statements.get(key, [])]
            policies[fn.id] = aws.iam.RolePolicy(
                self._n(fn.id, "Role", "DefaultPolicy"),
                role=fn.role.id,
                policy=_policy(docs),
                opts=pulumi.ResourceOptions(parent=fn.role),
            )
        self.scheduler_policy: aws.iam.RolePolicy | None = None
        if statements.get(perms.SCHEDULER):
            self.scheduler_policy = aws.iam.RolePolicy(
                self._n("SchedulerRole", "DefaultPolicy"),
                role=self.scheduler_role.id,
                policy=_policy([s.document() for s in statements[perms.SCHEDULER]]),
                opts=pulumi.ResourceOptions(parent=self.scheduler_role),
            )
        for fn, queue, batch_size in self._triggers:
            # CreateEventSourceMapping fails while the role may not receive from the queue.
            aws.lambda_.EventSourceMapping(
                self._n(fn.id, "QueueTrigger"),
                event_source_arn=queue.arn,
                function_name=fn.function.name,
                batch_size=batch_size,
                function_response_types=["ReportBatchItemFailures"],
                opts=pulumi.ResourceOptions(parent=fn.function, depends_on=[policies[fn.id]]),
            )

    # ---------------------------------------------------------------- HTTP API

    def _build_api(
        self, iam_auth_commands: bool, cors: aws.apigatewayv2.ApiCorsConfigurationArgs | None
    ) -> None:
        self.http_api = aws.apigatewayv2.Api(
            self._n("HttpApi"),
            protocol_type="HTTP",
            description=f"Eventual service {self.service_name}",
            cors_configuration=cors,
            opts=self._child,
        )
        api_child = pulumi.ResourceOptions(parent=self.http_api)
        self.access_log_group = self._log_group("AccessLogs")
        self.stage = aws.apigatewayv2.Stage(
            self._n("Stage"),
            api_id=self.http_api.id,
            name="$default",
            auto_deploy=True,
            access_log_settings=aws.apigatewayv2.StageAccessLogSettingsArgs(
                destination_arn=self.access_log_group.arn, format=ACCESS_LOG_FORMAT
            ),
            opts=self._child,
        )
        user_auth = "AWS_IAM" if iam_auth_commands else "NONE"
        integrations: dict[str, aws.apigatewayv2.Integration] = {}
        functions: dict[str, aws.lambda_.Function] = {}

        def integration(id: str, fn: aws.lambda_.Function) -> aws.apigatewayv2.Integration:
            if id not in integrations:
                integrations[id] = aws.apigatewayv2.Integration(
                    self._n("HttpApi", id),
                    api_id=self.http_api.id,
                    integration_type="AWS_PROXY",
                    integration_uri=fn.arn,
                    payload_format_version="2.0",
                    opts=api_child,
                )
                functions[id] = fn
            return integrations[id]

        def permit(label: str, id: str, path: str) -> None:
            """API Gateway may invoke the integration's function from this route."""
            aws.lambda_.Permission(
                self._n("HttpApi", label, id, "Permission"),
                action="lambda:InvokeFunction",
                function=functions[id].arn,
                principal="apigateway.amazonaws.com",
                source_arn=self.http_api.execution_arn.apply(lambda a: f"{a}/*/*{path}"),
                opts=api_child,
            )

        self.routes: dict[tuple[str, str], aws.apigatewayv2.Route] = {}

        def add(method: str, path: str, id: str, auth: str) -> None:
            key = (method.upper(), path)
            if key in self.routes:
                return
            label = re_label(f"{method.upper()}{path}")
            target = integrations[id]
            permit(label, id, path)
            self.routes[key] = aws.apigatewayv2.Route(
                self._n("HttpApi", label),
                api_id=self.http_api.id,
                route_key=f"{method.upper()} {path}",
                authorization_type=auth,
                target=target.id.apply(lambda i: f"integrations/{i}"),
                opts=api_child,
            )

        default = integration("ApiIntegration", self.api_function)
        permit("DefaultRoute", "ApiIntegration", "")
        self.default_route = aws.apigatewayv2.Route(
            self._n("HttpApi", "DefaultRoute"),
            api_id=self.http_api.id,
            route_key="$default",
            authorization_type=user_auth,
            target=default.id.apply(lambda i: f"integrations/{i}"),
            opts=api_child,
        )
        integration("System", self.system_function)
        add("POST", n.SYSTEM_ROUTE_PREFIX + "{proxy+}", "System", "AWS_IAM")
        for name, command in self._commands_spec.items():
            target = "ApiIntegration"
            if name in self.command_functions:
                target = f"Command{pascal(name)}"
                integration(target, self.command_functions[name])
            add("POST", command["rpc_path"], target, user_auth)
            if command.get("path"):
                add(command["method"], command["path"], target, user_auth)
        for route in self.spec["routes"]:
            add(route["method"], route["path"], "ApiIntegration", user_auth)
        self.api_url: pulumi.Output[str] = self.http_api.api_endpoint.apply(lambda e: e + "/")

    def _execute_api_arn(self, method: str, path: str) -> pulumi.Output[str]:
        resource = _path_wildcards(path)
        return self.http_api.execution_arn.apply(
            lambda a: f"{a}/$default/{method.upper()}{resource}"
        )

    # ---------------------------------------------------------------- discovery

    def _build_discovery(self) -> None:
        record = n.dead_letter_record(
            executions=(self.execution_dlq.url, self.execution_queue.url),
            timers=(self.timer_dlq.url, self.timer_queue.url),
            tasks=(
                (self.task_dlq.url, {t: f.name for t, f in self.task_functions.items()})
                if self.task_functions
                else None
            ),
            subscriptions={
                name: (queue.url, self.subscription_functions[name].name)
                for name, queue in self.subscription_dlqs.items()
            },
        )
        self.discovery_parameter = aws.ssm.Parameter(
            self._n("Discovery"),
            name=n.service_parameter(self.service_name),
            type="String",
            tier="Intelligent-Tiering",
            description=f"Eventual service discovery record of {self.service_name}",
            value=pulumi.Output.json_dumps(
                {
                    "version": n.SERVICE_RECORD_VERSION,
                    "service": self.service_name,
                    "apiUrl": self.api_url,
                    "eventBusArn": self.event_bus.arn,
                    "eventBusName": self.event_bus.name,
                    "region": self.region,
                    "account": self.account,
                    "logGroup": self.execution_log_group.name,
                    "stack": f"{pulumi.get_project()}/{pulumi.get_stack()}",
                    "deadLetters": record,
                },
                separators=(",", ":"),
            ),
            opts=self._child,
        )

    # ---------------------------------------------------------------- public API

    def _grant(
        self, name: str, role: aws.iam.Role, actions: Sequence[str], resources: Sequence[Any]
    ) -> aws.iam.RolePolicy:
        return aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=_policy([perms.Statement(None, tuple(actions), tuple(resources)).document()]),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def grant_invoke_commands(self, name: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """``execute-api:Invoke`` on every command route (RPC and REST) and ``api`` route:
        what a caller needs when the service was built with ``iam_auth_commands=True``. A
        role policy named ``name``."""
        arns = [
            self._execute_api_arn(method, path)
            for (method, path) in self.routes
            if not path.startswith(n.SYSTEM_ROUTE_PREFIX)
        ]
        return self._grant(name, role, ["execute-api:Invoke"], arns)

    def grant_system_commands(
        self, name: str, role: aws.iam.Role, *commands: str
    ) -> aws.iam.RolePolicy:
        """``execute-api:Invoke`` on the named system commands (``"startExecution"``...), or on
        all of them (the CLI's needs) when none is named."""
        arns = (
            [self._execute_api_arn("POST", n.SYSTEM_ROUTE_PREFIX + c) for c in commands]
            if commands
            else [self._execute_api_arn("POST", n.SYSTEM_ROUTE_PREFIX + "*")]
        )
        return self._grant(name, role, ["execute-api:Invoke"], arns)

    def grant_start_execution(self, name: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Lets ``role`` start workflows (``POST /rpc/_system/startExecution``, SigV4)."""
        return self.grant_system_commands(name, role, "startExecution")

    def grant_emit_events(self, name: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """``events:PutEvents`` on the service's bus (what its subscriptions listen to)."""
        return self._grant(name, role, ["events:PutEvents"], [self.event_bus.arn])

    def subscribe(
        self,
        name: str,
        *,
        service: Service,
        events: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> aws.cloudwatch.EventRule:
        """Forward ``events`` emitted by ``service`` to this service's bus, where this
        service's subscriptions to them run. Every event must be one ``service`` defines and
        one of this service's subscriptions listens to (else :class:`UnknownNameError`)."""
        wanted = config.check_subscribed_events(
            events,
            producer=service.service_name,
            produced=[e["name"] for e in service.spec["events"]],
            consumer=self.service_name,
            heard=[e for s in self._subs_spec.values() for e in s["events"]],
        )
        opts = pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=self), opts)
        pattern = n.forward_event_pattern(service.service_name, wanted)
        rule = aws.cloudwatch.EventRule(
            name,
            event_bus_name=service.event_bus.name,
            description=f"{service.service_name} events to {self.service_name}",
            event_pattern=json.dumps(
                {"source": pattern["source"], "detail-type": pattern["detail-type"]}
            ),
            state="ENABLED",
            opts=opts,
        )
        # EventBridge needs a role to put events on another bus.
        role = aws.iam.Role(
            f"{name}-EventsRole",
            assume_role_policy=_assume("events.amazonaws.com"),
            opts=pulumi.ResourceOptions(parent=rule),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-EventsRole-DefaultPolicy",
            role=role.id,
            policy=_policy(
                [perms.Statement(None, ("events:PutEvents",), (self.event_bus.arn,)).document()]
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-Target0",
            rule=rule.name,
            event_bus_name=service.event_bus.name,
            arn=self.event_bus.arn,
            role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=rule, depends_on=[policy]),
        )
        # A payload too large for EventBridge spills to the producer's bucket, and the event
        # names it: the subscriptions that hear these events may read it there.
        objects = service.payload_bucket.arn.apply(lambda a: f"{a}/{n.PAYLOAD_KEY_PREFIX}*")
        for sub_name, fn in self._sub_fns.items():
            if set(self._subs_spec[sub_name]["events"]) & set(wanted):
                aws.iam.RolePolicy(
                    f"{name}-{fn.id}-Payloads",
                    role=fn.role.id,
                    policy=_policy(
                        [perms.Statement(None, ("s3:GetObject",), (objects,)).document()]
                    ),
                    opts=pulumi.ResourceOptions(parent=rule),
                )
        return rule


def re_label(text: str) -> str:
    """The CDK's route construct id (``POST/rpc/getOrder`` -> ``POSTrpcgetOrder``)."""
    return "".join(ch for ch in text if ch.isalnum())


def _path_wildcards(path: str) -> str:
    out, depth = [], 0
    for ch in path:
        if ch == "{":
            depth += 1
            if depth == 1:
                out.append("*")
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


__all__ = ["Service", "UnknownNameError"]
