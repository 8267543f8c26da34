"""Every AWS resource name, key schema and environment variable the runtime and the CDK
construct share. ``eventual.cdk`` imports this module, so the two cannot drift.

This module imports nothing but the standard library: the CDK app and every handler load it.

Resources of one service (``ServiceNames.for_service(name)`` gives the default names; a deployed
function reads the actual ones from its environment with ``ServiceNames.from_env()``):

- DynamoDB ``executions`` table: one item per execution, partition key ``id``. Attributes:
  ``workflow``, ``status``, ``len`` (the history length: the commit version), ``data`` (the
  record as JSON) or ``data_ref`` (its S3 key when large), ``start_key``
  (``{start time}|{id}``, sorts by start time), and the two GSI partition keys ``list_shard``
  and ``workflow_shard``. Two GSIs list executions newest first: ``by-time`` (all workflows)
  and ``by-workflow``; each partition key is spread over :data:`LIST_SHARDS` shards so a burst
  of starts never concentrates on one index partition. The indexes project ``status``,
  ``workflow`` and ``data`` only: the per-step ``len`` update writes no index. A finished
  execution's record has the TTL attribute ``expires_at`` (its end plus the retention period)
  and, until its marking is done, ``retention_pending``.
- DynamoDB ``history`` table: one item per orchestration step, partition key ``execution_id``,
  sort key ``first`` (the position of the step's first event), holding the step's events as
  one JSON list in ``events`` (or ``events_ref``, an S3 key, when large) and the step's
  idempotency token ``step``. Every item of a finished execution has ``expires_at`` too.
- DynamoDB ``task claims`` table: partition key ``id`` (``{execution}|{seq}|{attempt}``), TTL
  attribute ``expires_at``.
- S3 bucket for payloads too large for an item or a message (``EVENTUAL_PAYLOAD_BUCKET``):
  an execution's under ``payloads/executions/{hash of its id}/``, emitted events' under
  ``payloads/``; a finished execution's are tagged ``eventual-finished=true``, which the
  bucket's lifecycle rule expires.
- SQS FIFO ``execution queue``: message group = execution, deduplication id = a hash of
  (execution, event id); high-throughput FIFO (deduplication per message group).
- SQS standard ``timer queue``: delayed messages (up to 15 minutes) and the target of the
  EventBridge Scheduler one-time schedules for longer timers (schedule group below).
- EventBridge bus per service (source ``eventual.{service}``, detail-type = event name) and a
  rule per subscription.
- CloudWatch Logs group for workflow logs, one stream per execution.
- Lambda functions: orchestrator, task (one per task), command (API), system commands,
  subscription (one per subscription), timer.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

# ---------------------------------------------------------------- environment variables

ENV_SERVICE_NAME = "EVENTUAL_SERVICE_NAME"
ENV_SERVICE_ENTRY = "EVENTUAL_SERVICE_ENTRY"
ENV_EXECUTIONS_TABLE = "EVENTUAL_EXECUTIONS_TABLE"
ENV_HISTORY_TABLE = "EVENTUAL_HISTORY_TABLE"
ENV_CLAIMS_TABLE = "EVENTUAL_CLAIMS_TABLE"
ENV_PAYLOAD_BUCKET = "EVENTUAL_PAYLOAD_BUCKET"
ENV_EXECUTION_QUEUE_URL = "EVENTUAL_EXECUTION_QUEUE_URL"
ENV_TIMER_QUEUE_URL = "EVENTUAL_TIMER_QUEUE_URL"
ENV_TIMER_QUEUE_ARN = "EVENTUAL_TIMER_QUEUE_ARN"
ENV_EVENT_BUS = "EVENTUAL_EVENT_BUS_NAME"
ENV_SCHEDULE_GROUP = "EVENTUAL_SCHEDULE_GROUP"
ENV_SCHEDULER_ROLE_ARN = "EVENTUAL_SCHEDULER_ROLE_ARN"
ENV_LOG_GROUP = "EVENTUAL_LOG_GROUP"
ENV_TASK_FUNCTION_PREFIX = "EVENTUAL_TASK_FUNCTION_PREFIX"
ENV_SUBSCRIPTION = "EVENTUAL_SUBSCRIPTION"
"""Set on a subscription's function: run only that subscription (one rule per subscription)."""
ENV_TASK = "EVENTUAL_TASK"
"""Set on a task's function: the task it runs (a payload naming another is refused)."""
ENV_MAX_RECEIVE_COUNT = "EVENTUAL_MAX_RECEIVE_COUNT"
"""Set on the orchestrator and timer functions: the receive count at which SQS moves a message
of their queue to its dead-letter queue (the queues' ``maxReceiveCount``). A message failing on
that attempt fails its execution, naming the dead-letter queue."""
DEFAULT_MAX_RECEIVE_COUNT = 10

# ---------------------------------------------------------------- key schemas

EXECUTIONS_PK = "id"
EXECUTIONS_INDEX_BY_TIME = "by-time"
EXECUTIONS_INDEX_BY_WORKFLOW = "by-workflow"
EXECUTIONS_LIST_SHARD = "list_shard"
EXECUTIONS_WORKFLOW_SHARD = "workflow_shard"
EXECUTIONS_START_KEY = "start_key"
# ``build`` (the service build an execution started on) is filtered on when listing by build.
EXECUTIONS_INDEX_PROJECTION = ["status", "workflow", "data", "data_ref", "build"]
LIST_SHARDS = 4

HISTORY_PK = "execution_id"
HISTORY_SK = "first"

CLAIMS_PK = "id"
CLAIMS_TTL = "expires_at"
CLAIMS_TTL_DAYS = 30
# Retention (issue 23): every table has TTL enabled on the same attribute, which the stores
# set on a finished execution's items (never on one in progress); the payload bucket expires
# objects tagged PAYLOAD_EXPIRE_TAG=true (a finished execution's) after RETENTION_DAYS.
RETENTION_TTL = CLAIMS_TTL
RETENTION_DAYS = 30
"""The retention period when :data:`RETENTION_DAYS_ENV` is not set."""
RETENTION_DAYS_ENV = "EVENTUAL_RETENTION_DAYS"
"""Set on every function (by the construct, from its ``retention=``): the days a finished
execution is kept, a positive whole number; read once per container (:func:`retention_days`)."""
RETENTION_PENDING = "retention_pending"
"""On a finished execution's record from its finishing step until its earlier history items
carry :data:`RETENTION_TTL` and its payloads are tagged; an orchestrator reading a record
that still has it finishes the marking (a crash in between loses nothing)."""
PAYLOAD_EXPIRE_TAG = "eventual-finished"
"""The tag key (value ``true``) of a finished execution's payload objects; the bucket's
lifecycle rule expires the objects that carry it."""
PAYLOAD_EXECUTIONS_PREFIX = "payloads/executions/"
"""An execution's payloads (its record, history steps, the events queued for it and its task
requests when large) are under ``{this}{hash of its id}/`` (:func:`execution_payload_prefix`),
so they are found, and tagged, when it finishes. Emitted events' payloads are not an
execution's: they are under :data:`PAYLOAD_EVENTS_PREFIX`."""

PAYLOAD_EVENTS_PREFIX = "payloads/events/"
"""Emitted events' payloads (too large for EventBridge): read by the subscribers, perhaps of
another service, soon after the emit. The bucket's lifecycle rule expires them by age,
:func:`event_payload_days` after they were written."""

EVENT_PAYLOAD_MIN_DAYS = 14
"""An emitted event's payload is kept at least this long, whatever the retention period: the
subscriptions' dead-letter queues keep a failed delivery 14 days (SQS's most), and a redrive
of it reads the payload."""


def event_payload_days(retention_days: int) -> int:
    """Days an emitted event's payload is kept: the retention period, and at least as long as
    a dead-lettered delivery of it can wait for a redrive."""
    return max(retention_days, EVENT_PAYLOAD_MIN_DAYS)


# ---------------------------------------------------------------- limits and settings

MAX_SQS_DELAY_SECONDS = 900
"""Timers due within this many seconds are SQS delayed messages; later ones are schedules."""
ITEM_INLINE_LIMIT = 256 * 1024
"""JSON larger than this (bytes) goes to S3 and the item keeps a pointer."""
MESSAGE_INLINE_LIMIT = 200 * 1024
"""Message/invoke/event payloads larger than this go to S3 (SQS, async invoke and
EventBridge cap requests at 256 KB)."""
ORCHESTRATOR_BATCH_SIZE = 10
EXECUTION_QUEUE_VISIBILITY_TIMEOUT = 180
TIMER_QUEUE_VISIBILITY_TIMEOUT = 60
EVENT_SOURCE_PREFIX = "eventual."

_SAFE = r"[^A-Za-z0-9_-]"  # compiled (and cached by ``re``) on first use, not on import


def _fit(name: str, limit: int, *, suffix: str = "") -> str:
    """``name`` made of safe characters and at most ``limit`` long (with ``suffix``),
    shortened with a stable hash when needed."""
    clean = re.sub(_SAFE, "-", name)
    if len(clean) + len(suffix) <= limit:
        return clean + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return clean[: limit - len(suffix) - 9] + "-" + digest + suffix


def retention_days(env: Mapping[str, str] | None = None) -> int:
    """The retention period in days: :data:`RETENTION_DAYS_ENV`, else :data:`RETENTION_DAYS`.
    A value that is not a positive whole number is an error naming the variable."""
    env = os.environ if env is None else env
    text = env.get(RETENTION_DAYS_ENV, "").strip()
    if not text:
        return RETENTION_DAYS
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise RuntimeError(
            f"{RETENTION_DAYS_ENV} is {text!r}: set it to a whole number of days, 1 or more "
            "(the eventual.cdk construct sets it from its retention= option)"
        )
    return days


def execution_payload_prefix(execution_id: str) -> str:
    """Where the payload objects of ``execution_id`` are (ends with ``/``)."""
    digest = hashlib.sha256(execution_id.encode()).hexdigest()[:32]
    return f"{PAYLOAD_EXECUTIONS_PREFIX}{digest}/"


def list_shard(execution_id: str) -> int:
    return int(hashlib.sha256(execution_id.encode()).hexdigest()[:8], 16) % LIST_SHARDS


def event_source(service_name: str) -> str:
    return EVENT_SOURCE_PREFIX + service_name


@dataclass(frozen=True)
class ServiceNames:
    """The resource names of one deployed service."""

    service_name: str
    executions_table: str
    history_table: str
    claims_table: str
    payload_bucket: str
    execution_queue: str
    timer_queue: str
    event_bus: str
    schedule_group: str
    log_group: str
    task_function_prefix: str
    execution_queue_url: str = ""
    timer_queue_url: str = ""
    timer_queue_arn: str = ""
    scheduler_role_arn: str = ""

    @classmethod
    def for_service(cls, service_name: str, **overrides: str) -> ServiceNames:
        """The default names the construct gives a service's resources."""
        base = _fit(service_name, 40)
        values = {
            "service_name": service_name,
            "executions_table": f"{base}-executions",
            "history_table": f"{base}-history",
            "claims_table": f"{base}-task-claims",
            "payload_bucket": _fit(f"{base}-payloads".lower(), 63),
            "execution_queue": _fit(f"{base}-executions", 80, suffix=".fifo"),
            "timer_queue": f"{base}-timers",
            "event_bus": f"{base}-events",
            "schedule_group": f"{base}-timers",
            "log_group": f"/eventual/{service_name}/executions",
            "task_function_prefix": f"{base}-task-",
        }
        values.update(overrides)
        return cls(**values)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServiceNames:
        """The names a deployed function was given (the construct sets every variable)."""
        env = os.environ if env is None else env
        service = env.get(ENV_SERVICE_NAME)
        if not service:
            raise RuntimeError(
                f"{ENV_SERVICE_NAME} is not set: this function was not deployed by the "
                "eventual.cdk Service construct (or its environment was changed)"
            )
        defaults = cls.for_service(service)
        values = asdict(defaults)
        for field_name, var in ENV_OF_FIELD.items():
            if env.get(var):
                values[field_name] = env[var]
        return cls(**values)

    def environment(self) -> dict[str, str]:
        """The environment variables that describe these names (what the construct sets)."""
        out = {ENV_SERVICE_NAME: self.service_name}
        for field_name, var in ENV_OF_FIELD.items():
            value = getattr(self, field_name)
            if value:
                out[var] = value
        return out

    # ------------------------------------------------------------ derived names

    def task_function(self, task_name: str) -> str:
        """The Lambda function that runs ``task_name`` (64 characters at most)."""
        return _fit(self.task_function_prefix + task_name, 64)

    def orchestrator_function(self) -> str:
        return _fit(f"{self.service_name}-orchestrator", 64)

    def timer_function(self) -> str:
        return _fit(f"{self.service_name}-timer", 64)

    def command_function(self) -> str:
        return _fit(f"{self.service_name}-commands", 64)

    def system_function(self) -> str:
        return _fit(f"{self.service_name}-system", 64)

    def subscription_function(self, subscription: str) -> str:
        return _fit(f"{self.service_name}-sub-{subscription}", 64)

    def subscription_rule(self, subscription: str) -> str:
        return _fit(f"{self.service_name}-{subscription}", 64)

    def event_source(self) -> str:
        return event_source(self.service_name)

    def schedule_name(self, timer_id: str) -> str:
        """The one-time schedule of a timer (64 characters of [0-9A-Za-z_.-])."""
        return "t-" + hashlib.sha256(timer_id.encode()).hexdigest()[:48]


ENV_OF_FIELD: dict[str, str] = {
    "executions_table": ENV_EXECUTIONS_TABLE,
    "history_table": ENV_HISTORY_TABLE,
    "claims_table": ENV_CLAIMS_TABLE,
    "payload_bucket": ENV_PAYLOAD_BUCKET,
    "execution_queue_url": ENV_EXECUTION_QUEUE_URL,
    "timer_queue_url": ENV_TIMER_QUEUE_URL,
    "timer_queue_arn": ENV_TIMER_QUEUE_ARN,
    "event_bus": ENV_EVENT_BUS,
    "schedule_group": ENV_SCHEDULE_GROUP,
    "scheduler_role_arn": ENV_SCHEDULER_ROLE_ARN,
    "log_group": ENV_LOG_GROUP,
    "task_function_prefix": ENV_TASK_FUNCTION_PREFIX,
}
assert set(ENV_OF_FIELD) | {"service_name", "execution_queue", "timer_queue"} == {
    f.name for f in fields(ServiceNames)
}


# ---------------------------------------------------------------- resource definitions


def dynamodb_tables(names: ServiceNames) -> list[dict[str, Any]]:
    """The three tables as ``CreateTable`` arguments (on-demand billing). The construct builds
    the same tables; the test harness creates them from this."""
    projection = {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": EXECUTIONS_INDEX_PROJECTION,
    }
    return [
        {
            "TableName": names.executions_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": EXECUTIONS_PK, "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": EXECUTIONS_PK, "AttributeType": "S"},
                {"AttributeName": EXECUTIONS_LIST_SHARD, "AttributeType": "S"},
                {"AttributeName": EXECUTIONS_WORKFLOW_SHARD, "AttributeType": "S"},
                {"AttributeName": EXECUTIONS_START_KEY, "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": EXECUTIONS_INDEX_BY_TIME,
                    "KeySchema": [
                        {"AttributeName": EXECUTIONS_LIST_SHARD, "KeyType": "HASH"},
                        {"AttributeName": EXECUTIONS_START_KEY, "KeyType": "RANGE"},
                    ],
                    "Projection": projection,
                },
                {
                    "IndexName": EXECUTIONS_INDEX_BY_WORKFLOW,
                    "KeySchema": [
                        {"AttributeName": EXECUTIONS_WORKFLOW_SHARD, "KeyType": "HASH"},
                        {"AttributeName": EXECUTIONS_START_KEY, "KeyType": "RANGE"},
                    ],
                    "Projection": projection,
                },
            ],
        },
        {
            "TableName": names.history_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [
                {"AttributeName": HISTORY_PK, "KeyType": "HASH"},
                {"AttributeName": HISTORY_SK, "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": HISTORY_PK, "AttributeType": "S"},
                {"AttributeName": HISTORY_SK, "AttributeType": "N"},
            ],
        },
        {
            "TableName": names.claims_table,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": CLAIMS_PK, "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": CLAIMS_PK, "AttributeType": "S"}],
        },
    ]


def execution_queue_attributes() -> dict[str, str]:
    """``CreateQueue`` attributes of the execution queue (FIFO, high throughput)."""
    return {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
        "VisibilityTimeout": str(EXECUTION_QUEUE_VISIBILITY_TIMEOUT),
    }


def timer_queue_attributes() -> dict[str, str]:
    return {"VisibilityTimeout": str(TIMER_QUEUE_VISIBILITY_TIMEOUT)}


# ---------------------------------------------------------------- deployment (eventual.cdk)

HANDLERS: dict[str, str] = {
    "orchestrator": "eventual.aws_runtime.handlers.orchestrator.handler",
    "task": "eventual.aws_runtime.handlers.task.handler",
    "command": "eventual.aws_runtime.handlers.command.handler",
    "system": "eventual.aws_runtime.handlers.system.handler",
    "subscription": "eventual.aws_runtime.handlers.subscription.handler",
    "timer": "eventual.aws_runtime.handlers.timer.handler",
}
"""The Lambda handler of each kind of function (``module.function``)."""

PAYLOAD_KEY_PREFIX = "payloads/"
"""Every object the runtime writes to the payload bucket is under this prefix (the construct
grants S3 access to ``{bucket}/payloads/*`` only)."""

SYSTEM_ROUTE_PREFIX = "/rpc/_system/"
"""The system commands' routes (IAM-authorised on AWS)."""

SERVICE_PARAMETER_PREFIX = "/eventual/services/"
SERVICE_RECORD_VERSION = 1
"""The service-discovery record: an SSM String parameter at ``service_parameter(name)`` whose
value is a JSON object with ``version`` (this number), ``service``, ``apiUrl`` (ends with
``/``), ``eventBusArn``, ``eventBusName``, ``region``, ``account``, ``logGroup`` and
``stack``, and ``deadLetters``: one ``{"kind", "name", "queueUrl", "source"}`` per dead-letter
queue, where ``kind`` is ``execution``, ``timer``, ``task`` or ``subscription`` and ``source`` is
where ``eventual dlq redrive`` sends a message back: the queue URL it came from (execution and
timer queues), the subscription's function name, or for the tasks' shared queue an object of
task name to function name. The CLI reads it for ``--service NAME``."""


def service_parameter(service_name: str) -> str:
    """The SSM parameter name of a service's discovery record."""
    return SERVICE_PARAMETER_PREFIX + re.sub(r"[^A-Za-z0-9_.-]", "-", service_name)


def dead_letter_record(
    *,
    executions: tuple[Any, Any],
    timers: tuple[Any, Any],
    tasks: tuple[Any, Mapping[str, Any]] | None,
    subscriptions: Mapping[str, tuple[Any, Any]],
) -> list[dict[str, Any]]:
    """The discovery record's ``deadLetters`` (see :data:`SERVICE_RECORD_VERSION`), written by
    the CDK construct and the Pulumi component alike: each pair is (the dead-letter queue's
    URL, where ``eventual dlq redrive`` sends its messages back). ``tasks`` (None when the
    service has no task functions) pairs the tasks' shared queue with task name -> function
    name; ``subscriptions`` maps a subscription's name to its queue and function name. The
    values are whatever the tool resolves at deploy time (CDK tokens, Pulumi outputs)."""
    record: list[dict[str, Any]] = [
        {
            "kind": "execution",
            "name": "executions",
            "queueUrl": executions[0],
            "source": executions[1],
        },
        {"kind": "timer", "name": "timers", "queueUrl": timers[0], "source": timers[1]},
    ]
    if tasks is not None:
        record.append(
            {"kind": "task", "name": "tasks", "queueUrl": tasks[0], "source": dict(tasks[1])}
        )
    for name, (queue_url, function_name) in subscriptions.items():
        record.append(
            {"kind": "subscription", "name": name, "queueUrl": queue_url, "source": function_name}
        )
    return record


def subscription_event_pattern(event_names: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The EventBridge pattern of a subscription's rule: the event names (detail-type) only,
    whatever the source, so events forwarded from another service's bus match too."""
    return {"detail-type": sorted(set(event_names))}


def forward_event_pattern(
    service_name: str, event_names: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """The pattern of a rule on ``service_name``'s bus forwarding those events elsewhere."""
    return {"source": [event_source(service_name)], "detail-type": sorted(set(event_names))}
