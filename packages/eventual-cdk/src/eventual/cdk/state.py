"""The service's state and messaging, built exactly as :mod:`eventual.aws_runtime.names`
describes them: the three tables, the payload bucket, the execution and timer queues with their
dead-letter queues, the event bus, the workflow log group, the schedule group with the role the
scheduler assumes, and the tasks' dead-letter queue (each subscription's function has its own,
made beside it, so a dead-lettered event names the subscription it failed in)."""

# jsii's generated interfaces (IRole, IPrincipal...) are typing Protocols whose members pyright
# cannot match against the generated classes that implement them; argument checks are off here.
# pyright: reportArgumentType=false

from __future__ import annotations

from dataclasses import dataclass, replace

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eventual.aws_runtime import names as n

from .permissions import RuntimeArns


@dataclass(frozen=True)
class State:
    """The resources :func:`build_state` made."""

    executions_table: dynamodb.Table
    history_table: dynamodb.Table
    claims_table: dynamodb.Table
    payload_bucket: s3.Bucket
    execution_dlq: sqs.Queue
    execution_queue: sqs.Queue
    timer_dlq: sqs.Queue
    timer_queue: sqs.Queue
    event_bus: eventbridge.EventBus
    execution_log_group: logs.LogGroup
    schedule_group: scheduler.ScheduleGroup
    scheduler_role: iam.Role
    task_dlq: sqs.Queue

    def runtime_names(self, defaults: n.ServiceNames) -> n.ServiceNames:
        """The names the runtime reads (tokens resolved at deploy time)."""
        return replace(
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

    def runtime_arns(self, stack: cdk.Stack) -> RuntimeArns:
        """The ARNs the handlers' permissions name."""
        return RuntimeArns(
            executions=self.executions_table.table_arn,
            history=self.history_table.table_arn,
            claims=self.claims_table.table_arn,
            payloads=self.payload_bucket.arn_for_objects(n.PAYLOAD_KEY_PREFIX + "*"),
            schedules=stack.format_arn(
                service="scheduler",
                resource="schedule",
                resource_name=f"{self.schedule_group.schedule_group_name}/*",
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            ),
            execution_queue=self.execution_queue.queue_arn,
            timer_queue=self.timer_queue.queue_arn,
            event_bus=self.event_bus.event_bus_arn,
            scheduler_role=self.scheduler_role.role_arn,
            execution_logs=self.execution_log_group.log_group_arn,
            payload_bucket=self.payload_bucket.bucket_arn,
            scheduler=self.scheduler_role,
        )


def build_state(
    scope: Construct,
    *,
    service_name: str,
    defaults: n.ServiceNames,
    point_in_time_recovery: bool,
    removal_policy: cdk.RemovalPolicy,
    log_retention: logs.RetentionDays,
    max_receive_count: int,
    retention_days: int = n.RETENTION_DAYS,
) -> State:
    """The service's state resources, children of ``scope``."""
    tables = _build_tables(scope, defaults, point_in_time_recovery, removal_policy)
    payload_bucket = s3.Bucket(
        scope,
        "Payloads",
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=removal_policy,
        # A finished execution's payloads (tagged so by the stores) go after the retention
        # period; an execution in progress has no tagged object.
        lifecycle_rules=[
            s3.LifecycleRule(
                id="FinishedExecutionPayloads",
                tag_filters={n.PAYLOAD_EXPIRE_TAG: "true"},
                expiration=cdk.Duration.days(retention_days),
            ),
            # Emitted events' payloads: by age (read by subscribers soon after the emit).
            s3.LifecycleRule(
                id="EmittedEventPayloads",
                prefix=n.PAYLOAD_EVENTS_PREFIX,
                expiration=cdk.Duration.days(n.event_payload_days(retention_days)),
            ),
            s3.LifecycleRule(
                id="AbortIncompleteUploads",
                abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
            ),
        ],
    )
    execution_dlq, execution_queue, timer_dlq, timer_queue = _build_queues(scope, max_receive_count)
    event_bus = eventbridge.EventBus(scope, "Bus")
    execution_log_group = logs.LogGroup(
        scope, "ExecutionLogs", retention=log_retention, removal_policy=removal_policy
    )
    schedule_group = scheduler.ScheduleGroup(
        scope, "ScheduleGroup", removal_policy=cdk.RemovalPolicy.DESTROY
    )
    scheduler_role = iam.Role(
        scope,
        "SchedulerRole",
        description=f"EventBridge Scheduler: {service_name}'s long timers to its queue",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}},
        ),
    )
    # What the schedules deliver (the timer queue) is granted with the runtime's permissions,
    # only to a service whose workflows make timers (permissions.grant_runtime_permissions).
    task_dlq = dead_letter_queue(scope, "TaskDlq")
    return State(
        executions_table=tables["Executions"],
        history_table=tables["History"],
        claims_table=tables["TaskClaims"],
        payload_bucket=payload_bucket,
        execution_dlq=execution_dlq,
        execution_queue=execution_queue,
        timer_dlq=timer_dlq,
        timer_queue=timer_queue,
        event_bus=event_bus,
        execution_log_group=execution_log_group,
        schedule_group=schedule_group,
        scheduler_role=scheduler_role,
        task_dlq=task_dlq,
    )


def dead_letter_queue(scope: Construct, id: str, *, fifo: bool = False) -> sqs.Queue:
    return sqs.Queue(
        scope,
        id,
        fifo=fifo or None,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=cdk.Duration.days(14),
    )


def _build_tables(
    scope: Construct, defaults: n.ServiceNames, pitr: bool, removal_policy: cdk.RemovalPolicy
) -> dict[str, dynamodb.Table]:
    """The three tables exactly as ``names.dynamodb_tables`` describes them, by construct id
    (``Executions``, ``History``, ``TaskClaims``)."""
    built: dict[str, dynamodb.Table] = {}
    for table_def in n.dynamodb_tables(defaults):
        types = {a["AttributeName"]: a["AttributeType"] for a in table_def["AttributeDefinitions"]}

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
            scope,
            label,
            partition_key=attr(keys["HASH"]),
            sort_key=attr(keys["RANGE"]) if "RANGE" in keys else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=pitr
            ),
            removal_policy=removal_policy,
            # Claims expire by themselves; executions and history once finished (the stores
            # set the attribute on a finished execution's items only).
            time_to_live_attribute=n.CLAIMS_TTL if label == "TaskClaims" else n.RETENTION_TTL,
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
    return built


def _build_queues(
    scope: Construct, max_receive_count: int
) -> tuple[sqs.Queue, sqs.Queue, sqs.Queue, sqs.Queue]:
    """The execution queue (``names.execution_queue_attributes``) and the timer queue, each
    after its dead-letter queue: ``(execution_dlq, execution_queue, timer_dlq, timer_queue)``."""
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
    execution_dlq = dead_letter_queue(scope, "ExecutionDlq", fifo=fifo)
    execution_queue = sqs.Queue(
        scope,
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
            queue=execution_dlq, max_receive_count=max_receive_count
        ),
    )
    timer_attrs = n.timer_queue_attributes()
    timer_dlq = dead_letter_queue(scope, "TimerDlq")
    timer_queue = sqs.Queue(
        scope,
        "TimerQueue",
        visibility_timeout=cdk.Duration.seconds(int(timer_attrs["VisibilityTimeout"])),
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        dead_letter_queue=sqs.DeadLetterQueue(queue=timer_dlq, max_receive_count=max_receive_count),
    )
    return execution_dlq, execution_queue, timer_dlq, timer_queue
