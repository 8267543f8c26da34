"""The runtime's IAM statements, role by role, without any infrastructure library: what each
handler kind calls on the service's own resources, and only what the service's spec leaves
possible (no workflow: no orchestration; no task: no task claims; no event: no ``PutEvents``).

:func:`runtime_statements` takes the ARNs as opaque values (strings, CDK tokens or Pulumi
outputs) and returns, for each role, the statements to attach to it; eventual-pulumi attaches
them as they are, and the parity test compares them with what ``eventual.cdk`` grants (its
``permissions.grant_runtime_permissions`` follows the same table; see its docstring for what
each handler does and so needs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventual.aws_runtime import names as n

ORCHESTRATOR = "orchestrator"
TIMER = "timer"
SYSTEM = "system"
SCHEDULER = "scheduler"
"""The role keys of :func:`runtime_statements` besides those of the tasks and clients."""

QUEUE_TRIGGER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
"""What Lambda's SQS event source mapping does with the function's role."""

OWN_LOGS_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
"""What a function does with its own log group."""


@dataclass(frozen=True)
class Statement:
    """One ``Allow`` statement."""

    sid: str | None
    actions: tuple[str, ...]
    resources: tuple[Any, ...]
    conditions: Mapping[str, Any] | None = None

    def document(self) -> dict[str, Any]:
        """The statement as IAM JSON (its resources as given: outputs stay outputs)."""
        doc: dict[str, Any] = {
            "Effect": "Allow",
            "Action": self.actions[0] if len(self.actions) == 1 else list(self.actions),
            "Resource": self.resources[0] if len(self.resources) == 1 else list(self.resources),
        }
        if self.sid:
            doc["Sid"] = self.sid
        if self.conditions:
            doc["Condition"] = dict(self.conditions)
        return doc


@dataclass(frozen=True)
class RuntimeArns:
    """The ARNs of the service's resources that its handlers use."""

    executions: Any
    history: Any
    claims: Any
    payloads: Any
    """The payload objects (``{bucket}/payloads/*``)."""
    schedules: Any
    """The schedules of the service's schedule group (``schedule/{group}/*``)."""
    execution_queue: Any
    timer_queue: Any
    event_bus: Any
    scheduler_role: Any
    execution_logs: Any
    payload_bucket: Any = None
    """The payload bucket itself (listed by prefix when a finished execution's payloads are
    tagged for retention); by default made from ``payloads`` when it is a string."""
    executions_indexes: tuple[Any, ...] = field(default=())
    """The executions table's indexes (``{table}/index/by-time``...); by default made from
    ``executions`` when it is a string."""


@dataclass(frozen=True)
class ServiceNeeds:
    """What the service's spec makes possible, so what its roles may need."""

    workflows: bool = True
    tasks: bool = True
    events: bool = True
    task_timeouts: bool = True
    long_heartbeats: bool = True

    @classmethod
    def of(cls, spec: Mapping[str, Any] | None) -> ServiceNeeds:
        """From a service spec (``eventual.core.spec``); without one, everything."""
        if spec is None:
            return cls()
        tasks = list(spec.get("tasks") or [])
        heartbeats = [t["heartbeat_timeout"] for t in tasks if t.get("heartbeat_timeout")]
        return cls(
            workflows=bool(spec.get("workflows")),
            tasks=bool(tasks),
            events=bool(spec.get("events")),
            task_timeouts=any(t.get("timeout") or t.get("heartbeat_timeout") for t in tasks),
            long_heartbeats=any(h > n.MAX_SQS_DELAY_SECONDS for h in heartbeats),
        )


START_EXECUTION = "start_execution"
GET_STATUS = "get_status"
SEND_SIGNAL = "send_signal"
EMIT = "emit"
COMPLETE_TASK = "complete_task"
CALLS: dict[str, str] = {
    START_EXECUTION: "start an execution (`wf.start_execution`, a child workflow), and read "
    "it back when one of that name exists",
    GET_STATUS: "read an execution (`handle.get_status()`)",
    SEND_SIGNAL: "signal an execution (`sig.send_signal`, `handle.send_signal`)",
    EMIT: "emit events (`ev.emit`)",
    COMPLETE_TASK: "complete or heartbeat a task by its token (`send_task_success`, "
    "`send_task_failure`, `send_task_heartbeat`)",
}
"""What a function's own code may call of eventual's client: the values of a function's
``calls=`` setting, each with what it allows."""
ALL_CALLS = frozenset(CALLS)


def check_calls(calls: Iterable[str] | None, where: str) -> frozenset[str]:
    """The ``calls=`` of the function ``where`` as a set: every call (the default) for
    ``None``; a clear error for a name that is not one of :data:`CALLS`."""
    if calls is None:
        return ALL_CALLS
    if isinstance(calls, str):
        raise ValueError(
            f"{where}: calls= takes a list of names, not the string {calls!r} "
            f"(write calls=[{calls!r}])"
        )
    given = list(calls)
    unknown = [c for c in given if c not in CALLS]
    if unknown:
        raise ValueError(
            f"{where}: calls= names {', '.join(map(repr, unknown))}, which is not a call of "
            f"eventual's client; the calls are {', '.join(CALLS)}"
        )
    return frozenset(given)


def task_returns_value(spec: Mapping[str, Any] | None) -> bool:
    """Whether a task may return a value (so a result large enough to spill to the bucket):
    not when its return type is ``None``. (A failure never spills: its message is bounded,
    ``eventual.core.errors.MAX_ERROR_MESSAGE``.)"""
    return spec is None or spec.get("output_schema") != {"type": "null"}


def runtime_statements(
    arns: RuntimeArns,
    needs: ServiceNeeds,
    *,
    tasks: Mapping[str, Any],
    clients: Mapping[str, bool],
    calls: Mapping[str, frozenset[str]] | None = None,
    task_specs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, list[Statement]]:
    """The statements of each role: :data:`ORCHESTRATOR`, :data:`TIMER`, :data:`SYSTEM`,
    :data:`SCHEDULER`, each key of ``tasks`` (a task function's key to its ARN) and each key
    of ``clients`` (the functions that run user code and nothing more, to whether they read
    payloads that spilled to the bucket: a subscription does). Roles with nothing to do are
    absent.

    ``calls`` narrows what the user code of a role may call of eventual's client (a key of
    ``tasks`` or ``clients``, or :data:`ORCHESTRATOR` for the workflows' code: child
    workflows, signals, events); a role it does not name may make every call. ``task_specs``
    (a task function's key to its spec) leaves out what a task cannot need: the claim update
    of a task without a heartbeat timeout, the result upload of a task that returns None."""
    out: dict[str, list[Statement]] = {}
    calls = calls or {}
    task_specs = task_specs or {}

    def allow(
        role: str, sid: str | None, actions: Sequence[str], resources: Sequence[Any], **kw: Any
    ) -> None:
        if actions:
            out.setdefault(role, []).append(
                Statement(sid, tuple(actions), tuple(resources), kw.get("conditions"))
            )

    def client(
        role: str,
        *,
        reads_payloads: bool = False,
        sends: bool = False,
        spills: bool = False,
        heartbeats: bool = False,
    ) -> None:
        """What the user code of ``role`` may do (its ``calls``), with what its handler does
        besides: ``sends`` to the execution queue, ``spills`` to the bucket, ``heartbeats``
        its own claim, ``reads_payloads`` from the bucket."""
        made = calls.get(role, ALL_CALLS)
        starts = needs.workflows and START_EXECUTION in made
        reads = needs.workflows and (starts or GET_STATUS in made)
        signals = needs.workflows and SEND_SIGNAL in made
        emits = needs.events and EMIT in made
        completes = needs.tasks and COMPLETE_TASK in made
        allow(
            role,
            "Executions",
            [a for a, on in (("dynamodb:GetItem", reads), ("dynamodb:PutItem", starts)) if on],
            [arns.executions],
        )
        allow(
            role,
            "TaskClaims",
            [
                a
                for a, on in (
                    ("dynamodb:GetItem", completes),
                    ("dynamodb:UpdateItem", completes or heartbeats),
                )
                if on
            ],
            [arns.claims],
        )
        if starts or signals or completes or sends:
            allow(role, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        if emits:
            allow(role, "Events", ["events:PutEvents"], [arns.event_bus])
        puts = starts or signals or emits or completes or spills
        gets = reads or reads_payloads
        allow(
            role,
            "Payloads",
            [a for a, on in (("s3:GetObject", gets), ("s3:PutObject", puts)) if on],
            [arns.payloads],
        )

    def pass_scheduler_role(role: str) -> None:
        allow(
            role,
            "PassSchedulerRole",
            ["iam:PassRole"],
            [arns.scheduler_role],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )

    if needs.workflows:
        o = ORCHESTRATOR
        # The workflows' own calls: a child workflow is started (and reports back to its
        # parent) through the executions table and the queue; a signal through the queue.
        made = calls.get(o, ALL_CALLS)
        children = START_EXECUTION in made
        allow(
            o,
            "Executions",
            [
                "dynamodb:GetItem",
                *(["dynamodb:PutItem"] if children else []),
                "dynamodb:UpdateItem",
            ],
            [arns.executions],
        )
        # BatchWriteItem: a finished execution's history items re-put with their TTL
        # attribute (retention; ``DynamoExecutionStore.complete_retention``).
        allow(
            o,
            "History",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:BatchWriteItem"],
            [arns.history],
        )
        if children or SEND_SIGNAL in made:
            allow(o, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        if needs.events and EMIT in made:
            allow(o, "Events", ["events:PutEvents"], [arns.event_bus])
        # PutObjectTagging: a finished execution's payloads are copied onto themselves with
        # the tag the bucket's lifecycle rule expires (``S3PayloadStore.tag_finished``), after
        # listing them under their execution's prefix.
        allow(
            o, "Payloads", ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"], [arns.payloads]
        )
        bucket = arns.payload_bucket
        if bucket is None and isinstance(arns.payloads, str):
            bucket = arns.payloads.split("/", 1)[0]
        allow(
            o,
            "ListExecutionPayloads",
            ["s3:ListBucket"],
            [bucket],
            conditions={"StringLike": {"s3:prefix": f"{n.PAYLOAD_EXECUTIONS_PREFIX}*"}},
        )
        if tasks:
            allow(o, "InvokeTasks", ["lambda:InvokeFunction"], list(tasks.values()))
        allow(o, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])
        allow(
            o,
            "Schedules",
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
            [arns.schedules],
        )
        pass_scheduler_role(o)
        allow(
            o, "WorkflowLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [arns.execution_logs]
        )

        t = TIMER
        allow(t, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        allow(t, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])
        if needs.long_heartbeats:
            allow(
                t,
                "Schedules",
                ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"],
                [arns.schedules],
            )
            pass_scheduler_role(t)
        if needs.task_timeouts:
            allow(t, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arns.claims])
        allow(SCHEDULER, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])

    for key in tasks:
        spec = task_specs.get(key)
        client(
            key,
            reads_payloads=True,
            sends=True,
            spills=task_returns_value(spec),
            heartbeats=spec is None or bool(spec.get("heartbeat_timeout")),
        )
        allow(key, "ClaimTask", ["dynamodb:PutItem"], [arns.claims])
    for key, reads_payloads in clients.items():
        client(key, reads_payloads=reads_payloads)

    client(SYSTEM)
    indexes = arns.executions_indexes or (
        f"{arns.executions}/index/{n.EXECUTIONS_INDEX_BY_TIME}",
        f"{arns.executions}/index/{n.EXECUTIONS_INDEX_BY_WORKFLOW}",
    )
    allow(SYSTEM, "ListExecutions", ["dynamodb:Query"], list(indexes))
    if not needs.workflows:
        allow(SYSTEM, "Executions", ["dynamodb:GetItem"], [arns.executions])
    else:
        allow(SYSTEM, "History", ["dynamodb:Query"], [arns.history])
    allow(SYSTEM, "WorkflowLogs", ["logs:FilterLogEvents"], [arns.execution_logs])
    return out
