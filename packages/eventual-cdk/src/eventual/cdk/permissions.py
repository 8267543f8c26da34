"""The IAM statements of the service's roles: each function's role gets the actions its handler
makes, on the service's own resources only (the README's *Permissions* table)."""

# jsii's generated interfaces (IRole...) are typing Protocols whose members pyright cannot match
# against the generated classes that implement them; argument checks are off in this module.
# pyright: reportArgumentType=false

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from eventual.aws_runtime import names as n


def allow(
    role: iam.IRole, sid: str, actions: Sequence[str], resources: Sequence[str], **kw: Any
) -> None:
    """One inline statement on ``role``'s default policy."""
    role.add_to_principal_policy(
        iam.PolicyStatement(sid=sid, actions=list(actions), resources=list(resources), **kw)
    )


@dataclass(frozen=True)
class RuntimeArns:
    """The ARNs of the service's resources that its handlers use."""

    executions: str
    history: str
    claims: str
    payloads: str
    """The payload objects (``{bucket}/payloads/*``)."""
    schedules: str
    """The schedules of the service's schedule group (``schedule/{group}/*``)."""
    execution_queue: str
    timer_queue: str
    event_bus: str
    scheduler_role: str
    execution_logs: str


def _role(fn: lambda_.Function) -> iam.IRole:
    role = fn.role
    assert role is not None
    return role


def grant_runtime_permissions(
    arns: RuntimeArns,
    *,
    orchestrator: lambda_.Function,
    timer: lambda_.Function,
    system: lambda_.Function,
    tasks: Sequence[lambda_.Function],
    clients: Sequence[lambda_.Function],
) -> None:
    """Each function's role gets the actions its handler makes, on its resources only.

    ``clients`` are the functions that run user code and nothing more (the API function, the
    command and subscription functions); the task functions run user code and claim their
    attempts."""

    def client(role: iam.IRole) -> None:
        """What user code may do anywhere (start/get executions, signal, emit, complete
        tasks by token), and what sending to the queue or bus may need (large payloads
        go to the bucket)."""
        allow(role, "Executions", ["dynamodb:GetItem", "dynamodb:PutItem"], [arns.executions])
        allow(role, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arns.claims])
        allow(role, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        allow(role, "Events", ["events:PutEvents"], [arns.event_bus])
        allow(role, "Payloads", ["s3:GetObject", "s3:PutObject"], [arns.payloads])

    def schedule_timers(role: iam.IRole, actions: Sequence[str]) -> None:
        allow(role, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])
        # Schedules are created per timer, named at run time: the group's schedules are
        # the narrowest resource.
        allow(role, "Schedules", actions, [arns.schedules])
        allow(
            role,
            "PassSchedulerRole",
            ["iam:PassRole"],
            [arns.scheduler_role],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )

    orchestrator_role = _role(orchestrator)
    allow(
        orchestrator_role,
        "Executions",
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        [arns.executions],
    )
    allow(
        orchestrator_role,
        "History",
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
        [arns.history],
    )
    allow(orchestrator_role, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
    allow(orchestrator_role, "Events", ["events:PutEvents"], [arns.event_bus])
    allow(orchestrator_role, "Payloads", ["s3:GetObject", "s3:PutObject"], [arns.payloads])
    if tasks:
        allow(
            orchestrator_role,
            "InvokeTasks",
            ["lambda:InvokeFunction"],
            [fn.function_arn for fn in tasks],
        )
    schedule_timers(
        orchestrator_role,
        ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
    )
    allow(
        orchestrator_role,
        "WorkflowLogs",
        ["logs:CreateLogStream", "logs:PutLogEvents"],
        [arns.execution_logs],
    )

    timer_role = _role(timer)
    allow(timer_role, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arns.claims])
    allow(timer_role, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
    allow(timer_role, "Payloads", ["s3:PutObject"], [arns.payloads])
    schedule_timers(timer_role, ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"])

    for fn in tasks:
        client(_role(fn))
        allow(_role(fn), "ClaimTask", ["dynamodb:PutItem"], [arns.claims])
    for fn in clients:
        client(_role(fn))

    system_role = _role(system)
    client(system_role)
    allow(
        system_role,
        "ListExecutions",
        ["dynamodb:Query"],
        [
            f"{arns.executions}/index/{n.EXECUTIONS_INDEX_BY_TIME}",
            f"{arns.executions}/index/{n.EXECUTIONS_INDEX_BY_WORKFLOW}",
        ],
    )
    allow(system_role, "History", ["dynamodb:Query", "dynamodb:GetItem"], [arns.history])
    allow(system_role, "WorkflowLogs", ["logs:FilterLogEvents"], [arns.execution_logs])
