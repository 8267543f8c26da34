"""The IAM statements of the service's roles: each function's role gets the actions its handler
makes, on the service's own resources only (the README's *Permissions* table), and only those
the service's spec leaves possible (no workflow: no orchestration; no task: no task claims; no
event: no ``PutEvents``...).

What each handler kind does, and so needs:

- the orchestrator: reads and commits executions and their histories (a conflict reads the
  history step it lost to), starts child workflows and signals other executions (the
  execution queue), emits events, invokes the task functions, arms and cancels timers (the
  timer queue up to 15 minutes, EventBridge Scheduler beyond, passing the scheduler's role),
  writes workflow logs, and spills large payloads to the bucket or reads them back;
- the timer: sends fired timers to the execution queue, re-arms a timer that arrives early or a
  heartbeat check that is not due (the timer queue; a schedule when the heartbeat timeout is
  beyond the queue's 15 minutes), and finishes the claim of a task attempt that timed out;
- a task worker: claims its attempt, sends its result to the execution queue, reads a large
  request from the bucket and spills a large result to it;
- the system commands: start, read, list and signal executions, read histories and workflow
  logs, emit events, complete or heartbeat tasks by token;
- user code, in every function that runs it (commands, the API function, tasks,
  subscriptions): what eventual.core's client does (start and read executions, signal them,
  emit events, complete or heartbeat tasks by token), with large payloads spilled to the
  bucket; a subscription also reads an event's payload that spilled there.

The scheduler's role sends what the schedules deliver to the timer queue. What the Lambda
service does with a function's role (its logs, its event source mapping, its dead-letter
queue) is granted where those are made (:mod:`.functions`).
"""

# jsii's generated interfaces (IRole...) are typing Protocols whose members pyright cannot match
# against the generated classes that implement them; argument checks are off in this module.
# pyright: reportArgumentType=false

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    scheduler: iam.IRole | None = None
    """The scheduler's role itself (granted what the schedules deliver)."""


@dataclass(frozen=True)
class ServiceNeeds:
    """What the service's spec makes possible, so what its roles may need."""

    workflows: bool = True
    """It defines workflows: executions, histories, the queues, timers, workflow logs."""
    tasks: bool = True
    """It defines tasks: task claims (completing a task by token, a task's timeout)."""
    events: bool = True
    """It defines events: ``PutEvents`` on its bus."""
    task_timeouts: bool = True
    """A task has a timeout or a heartbeat timeout: the timer finishes the timed-out claim."""
    long_heartbeats: bool = True
    """A task's heartbeat timeout is beyond the timer queue's 15-minute delay: the timer
    re-arms that check as a schedule."""

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


def _role(fn: lambda_.Function) -> iam.IRole:
    role = fn.role
    assert role is not None
    return role


def _handler_kind(fn: lambda_.Function) -> str:
    """The kind of eventual handler ``fn`` runs (``"subscription"``...), ``""`` if none."""
    cfn = fn.node.default_child
    handler = getattr(cfn, "handler", None)
    return next((kind for kind, h in n.HANDLERS.items() if h == handler), "")


def _spec_of(fn: lambda_.Function) -> Mapping[str, Any] | None:
    """The spec of the ``Service`` construct ``fn`` belongs to: the nearest scope above it
    with a ``spec`` (the construct builds its functions inside itself)."""
    for scope in reversed(fn.node.scopes[:-1]):
        spec = getattr(scope, "spec", None)
        if isinstance(spec, Mapping) and "workflows" in spec:
            return spec
    return None


def grant_runtime_permissions(
    arns: RuntimeArns,
    *,
    orchestrator: lambda_.Function,
    timer: lambda_.Function,
    system: lambda_.Function,
    tasks: Sequence[lambda_.Function],
    clients: Sequence[lambda_.Function],
    spec: Mapping[str, Any] | None = None,
) -> None:
    """Each function's role gets the actions its handler makes, on its resources only, as far
    as ``spec`` (by default the spec of the ``Service`` the functions belong to) makes them
    possible.

    ``clients`` are the functions that run user code and nothing more (the API function, the
    command and subscription functions); the task functions run user code and claim their
    attempts."""
    needs = ServiceNeeds.of(spec if spec is not None else _spec_of(orchestrator))
    queue_users = needs.workflows or needs.tasks

    def client(role: iam.IRole, *, reads_payloads: bool = False) -> None:
        """What user code may do anywhere (start/get executions, signal, emit, complete
        tasks by token), and what sending to the queue or bus may need (large payloads
        go to the bucket); ``reads_payloads``: the handler reads what spilled there (a task's
        large request, a subscription's large event)."""
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

    def pass_scheduler_role(role: iam.IRole) -> None:
        allow(
            role,
            "PassSchedulerRole",
            ["iam:PassRole"],
            [arns.scheduler_role],
            conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        )

    if needs.workflows:
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
        if needs.events:
            allow(orchestrator_role, "Events", ["events:PutEvents"], [arns.event_bus])
        allow(orchestrator_role, "Payloads", ["s3:GetObject", "s3:PutObject"], [arns.payloads])
        if tasks:
            allow(
                orchestrator_role,
                "InvokeTasks",
                ["lambda:InvokeFunction"],
                [fn.function_arn for fn in tasks],
            )
        allow(orchestrator_role, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])
        # Schedules are created per timer, named at run time: the group's schedules are the
        # narrowest resource.
        allow(
            orchestrator_role,
            "Schedules",
            ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
            [arns.schedules],
        )
        pass_scheduler_role(orchestrator_role)
        allow(
            orchestrator_role,
            "WorkflowLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [arns.execution_logs],
        )

        timer_role = _role(timer)
        allow(timer_role, "ExecutionQueue", ["sqs:SendMessage"], [arns.execution_queue])
        allow(timer_role, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])
        if needs.long_heartbeats:
            allow(
                timer_role,
                "Schedules",
                ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"],
                [arns.schedules],
            )
            pass_scheduler_role(timer_role)
        if needs.task_timeouts:
            allow(
                timer_role, "TaskClaims", ["dynamodb:GetItem", "dynamodb:UpdateItem"], [arns.claims]
            )
        if arns.scheduler is not None:
            allow(arns.scheduler, "TimerQueue", ["sqs:SendMessage"], [arns.timer_queue])

    for fn in tasks:
        client(_role(fn), reads_payloads=True)
        allow(_role(fn), "ClaimTask", ["dynamodb:PutItem"], [arns.claims])
    for fn in clients:
        client(_role(fn), reads_payloads=_handler_kind(fn) == "subscription")

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
    if not needs.workflows:
        # getExecution answers "no such execution" from the table.
        allow(system_role, "Executions", ["dynamodb:GetItem"], [arns.executions])
    else:
        allow(system_role, "History", ["dynamodb:Query"], [arns.history])
    allow(system_role, "WorkflowLogs", ["logs:FilterLogEvents"], [arns.execution_logs])
