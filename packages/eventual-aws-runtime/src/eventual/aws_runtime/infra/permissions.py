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

from collections.abc import Mapping, Sequence
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


def runtime_statements(
    arns: RuntimeArns,
    needs: ServiceNeeds,
    *,
    tasks: Mapping[str, Any],
    clients: Mapping[str, bool],
) -> dict[str, list[Statement]]:
    """The statements of each role: :data:`ORCHESTRATOR`, :data:`TIMER`, :data:`SYSTEM`,
    :data:`SCHEDULER`, each key of ``tasks`` (a task function's key to its ARN) and each key
    of ``clients`` (the functions that run user code and nothing more, to whether they read
    payloads that spilled to the bucket: a subscription does). Roles with nothing to do are
    absent."""
    out: dict[str, list[Statement]] = {}
    queue_users = needs.workflows or needs.tasks

    def allow(
        role: str, sid: str | None, actions: Sequence[str], resources: Sequence[Any], **kw: Any
    ) -> None:
        out.setdefault(role, []).append(
            Statement(sid, tuple(actions), tuple(resources), kw.get("conditions"))
        )

    def client(role: str, *, reads_payloads: bool = False) -> None:
        if needs.workflows:
            allow(role, "Executions", ["dynamodb:GetItem", "dynamodb:PutItem"], [arns.executions])
        if needs.tasks:
            allow(role, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arns.claims])
        if queue_users:
            allow(role, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        if needs.events:
            allow(role, "Events", ["events:PutEvents"], [arns.event_bus])
        payloads = []
        if queue_users or needs.events:
            payloads.append("s3:PutObject")
        if needs.workflows or reads_payloads:
            payloads.insert(0, "s3:GetObject")
        if payloads:
            allow(role, "Payloads", payloads, [arns.payloads])

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
        allow(
            o,
            "Executions",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            [arns.executions],
        )
        allow(
            o,
            "History",
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
            [arns.history],
        )
        allow(o, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        if needs.events:
            allow(o, "Events", ["events:PutEvents"], [arns.event_bus])
        allow(o, "Payloads", ["s3:GetObject", "s3:PutObject"], [arns.payloads])
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
        client(key, reads_payloads=True)
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
