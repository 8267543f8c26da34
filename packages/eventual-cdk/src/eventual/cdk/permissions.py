"""The IAM statements of the service's roles: each function's role gets the actions its handler
makes, on the service's own resources only (the README's *Permissions* table), and only those
the service's spec leaves possible (no workflow: no orchestration; no task: no task claims; no
event: no ``PutEvents``...). The statements themselves are made once, by
``eventual.aws_runtime.infra.permissions.runtime_statements``, which eventual-pulumi attaches
too; this module gives them to the construct's roles.

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
from eventual.aws_runtime.infra import permissions as perms
from eventual.aws_runtime.infra.config import pascal
from eventual.aws_runtime.infra.permissions import RuntimeArns as SharedArns
from eventual.aws_runtime.infra.permissions import ServiceNeeds


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
    payload_bucket: str | None = None
    """The payload bucket itself (listed by an execution's prefix for retention)."""
    scheduler: iam.IRole | None = None
    """The scheduler's role itself (granted what the schedules deliver)."""


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


def _function_id(fn: lambda_.Function) -> str:
    """The id of the construct ``fn`` is made in (``"Api"``, ``"TaskChargeCreditCard"``...),
    the key of ``calls=`` (``eventual.aws_runtime.infra.config.function_calls``)."""
    scope = fn.node.scope
    return scope.node.id if scope is not None else fn.node.id


def grant_runtime_permissions(
    arns: RuntimeArns,
    *,
    orchestrator: lambda_.Function | None,
    timer: lambda_.Function | None,
    system: lambda_.Function,
    tasks: Sequence[lambda_.Function],
    clients: Sequence[lambda_.Function],
    spec: Mapping[str, Any] | None = None,
    calls: Mapping[str, frozenset[str]] | None = None,
) -> None:
    """Each function's role gets the actions its handler makes, on its resources only, as far
    as ``spec`` (by default the spec of the ``Service`` the functions belong to) makes them
    possible.

    ``clients`` are the functions that run user code and nothing more (the API function, the
    command and subscription functions); the task functions run user code and claim their
    attempts. ``calls`` narrows what a function's code may call of eventual's client, by the
    id of the construct the function is in (``"Api"``, ``"Orchestrator"``,
    ``"Command<Name>"``...); a function it does not name may make every call. The
    orchestrator and the timer are None for a service without workflows."""
    calls = calls or {}
    spec = spec if spec is not None else _spec_of(system)
    needs = ServiceNeeds.of(spec)
    task_specs_by_id = {f"Task{pascal(t['name'])}": t for t in (spec or {}).get("tasks", [])}
    shared = SharedArns(
        executions=arns.executions,
        history=arns.history,
        claims=arns.claims,
        payloads=arns.payloads,
        schedules=arns.schedules,
        execution_queue=arns.execution_queue,
        timer_queue=arns.timer_queue,
        event_bus=arns.event_bus,
        scheduler_role=arns.scheduler_role,
        execution_logs=arns.execution_logs,
        payload_bucket=arns.payload_bucket,
    )
    roles: dict[str, iam.IRole] = {perms.SYSTEM: _role(system)}
    narrowed: dict[str, frozenset[str]] = {}
    if orchestrator is not None:
        roles[perms.ORCHESTRATOR] = _role(orchestrator)
        if _function_id(orchestrator) in calls:
            narrowed[perms.ORCHESTRATOR] = calls[_function_id(orchestrator)]
    if timer is not None:
        roles[perms.TIMER] = _role(timer)
    if arns.scheduler is not None:
        roles[perms.SCHEDULER] = arns.scheduler
    task_arns: dict[str, str] = {}
    task_specs: dict[str, Mapping[str, Any]] = {}
    for fn in tasks:
        task_arns[fn.node.path] = fn.function_arn
        roles[fn.node.path] = _role(fn)
        if _function_id(fn) in task_specs_by_id:
            task_specs[fn.node.path] = task_specs_by_id[_function_id(fn)]
    readers: dict[str, bool] = {}
    for fn in clients:
        readers[fn.node.path] = _handler_kind(fn) == "subscription"
        roles[fn.node.path] = _role(fn)
    for fn in [*tasks, *clients]:
        if _function_id(fn) in calls:
            narrowed[fn.node.path] = calls[_function_id(fn)]
    statements = perms.runtime_statements(
        shared, needs, tasks=task_arns, clients=readers, calls=narrowed, task_specs=task_specs
    )
    # The statements of eventual.aws_runtime.infra.permissions, the ones eventual-pulumi
    # attaches too: one table of who may do what, for both.
    for key, role_statements in statements.items():
        for st in role_statements:
            extra = {"conditions": dict(st.conditions)} if st.conditions else {}
            allow(roles[key], st.sid or "", st.actions, [str(r) for r in st.resources], **extra)
