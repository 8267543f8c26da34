"""The service's Lambda functions: the factory they share (a role, a log group and the
runtime's environment for each), the functions of every kind (orchestrator, timer, system,
API, a function per command with props, per task and per subscription, with its rule), and the
line that announces their bundle at synthesis (:func:`announce_bundle`)."""

# jsii's generated interfaces (IQueue, IRuleTarget...) are typing Protocols whose members pyright
# cannot match against the generated classes that implement them; argument checks are off here.
# pyright: reportArgumentType=false

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eventual.aws_runtime import names as n
from eventual.aws_runtime.handlers import FUNCTION_ENVIRONMENT

from . import config
from .bundling import Bundle
from .config import pascal
from .permissions import allow
from .props import CommandProps, FunctionProps, SubscriptionProps, TaskProps, to_duration
from .state import State
from .state import dead_letter_queue as dead_letter_queue_of


@dataclass(frozen=True)
class FunctionFactory:
    """What every function of the service shares: where it goes (``scope``), its code and
    runtime, the user's service-wide ``environment`` and the runtime's."""

    scope: Construct
    service_name: str
    runtime: lambda_.Runtime
    architecture: lambda_.Architecture
    code: lambda_.Code
    environment: Mapping[str, str]
    runtime_environment: Mapping[str, str]
    log_retention: logs.RetentionDays
    removal_policy: cdk.RemovalPolicy

    def function(
        self,
        id: str,
        kind: str,
        props: FunctionProps,
        default: tuple[int, int],
        *,
        extra_env: Mapping[str, str] | None = None,
        function_name: str | None = None,
        dead_letter_queue: sqs.IQueue | None = None,
        max_timeout: int = config.LAMBDA_MAX_TIMEOUT,
        description: str | None = None,
    ) -> lambda_.Function:
        """A function running the ``kind`` handler, in a construct ``id`` with its own role and
        log group; ``default`` is its (memory MB, timeout s) where ``props`` leave them."""
        scope = Construct(self.scope, id)
        role = iam.Role(
            scope,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{self.service_name}: the {id} function (Eventual)",
        )
        log_group = logs.LogGroup(
            scope, "Logs", retention=self.log_retention, removal_policy=self.removal_policy
        )
        allow(
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
                + (" (API Gateway's limit)" if max_timeout == config.API_MAX_TIMEOUT else "")
            )
        env = {
            **FUNCTION_ENVIRONMENT,  # the handlers' defaults: the user's settings may change them
            **self.environment,
            **dict(props.environment),
            **self.runtime_environment,
            **dict(extra_env or {}),
        }
        return lambda_.Function(
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

    def task(
        self,
        task_name: str,
        spec: Mapping[str, Any],
        props: TaskProps,
        *,
        function_name: str,
        dead_letter_queue: sqs.IQueue,
    ) -> lambda_.Function:
        """The task's function (the orchestrator invokes it asynchronously, by name); its
        default timeout is the task's own ``timeout``."""
        default_timeout = config.TASK[1]
        if spec.get("timeout"):
            default_timeout = max(1, min(config.LAMBDA_MAX_TIMEOUT, int(spec["timeout"] + 0.999)))
        fn = self.function(
            f"Task{pascal(task_name)}",
            "task",
            props,
            (config.TASK[0], default_timeout),
            extra_env={n.ENV_TASK: task_name},
            function_name=function_name,
            dead_letter_queue=dead_letter_queue,
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

    def subscription(
        self,
        sub_name: str,
        spec: Mapping[str, Any],
        props: SubscriptionProps,
        *,
        event_bus: eventbridge.IEventBus,
    ) -> tuple[lambda_.Function, eventbridge.Rule, sqs.Queue]:
        """The subscription's function, the rule on ``event_bus`` that invokes it, and its own
        dead-letter queue (of the function's asynchronous invocations and of the rule's
        target): ``eventual dlq redrive`` sends a message in it back to this function."""
        dead_letter_queue = dead_letter_queue_of(self.scope, f"Subscription{pascal(sub_name)}Dlq")
        fn = self.function(
            f"Subscription{pascal(sub_name)}",
            "subscription",
            props,
            config.SUBSCRIPTION,
            extra_env={n.ENV_SUBSCRIPTION: sub_name},
            dead_letter_queue=dead_letter_queue,
            description=f"{self.service_name}: subscription {sub_name}",
        )
        rule = eventbridge.Rule(
            self.scope,
            f"Rule{pascal(sub_name)}",
            event_bus=event_bus,
            description=f"{self.service_name}: subscription {sub_name}",
            event_pattern=eventbridge.EventPattern(
                detail_type=n.subscription_event_pattern(spec["events"])["detail-type"]
            ),
            targets=[
                targets.LambdaFunction(
                    fn,
                    dead_letter_queue=dead_letter_queue,
                    retry_attempts=props.retry_attempts,
                    max_event_age=to_duration(props.max_event_age)
                    if props.max_event_age is not None
                    else None,
                )
            ],
        )
        return fn, rule, dead_letter_queue


@dataclass(frozen=True)
class Functions:
    """The functions :func:`build_functions` made."""

    tasks: dict[str, lambda_.Function]
    orchestrator: lambda_.Function | None
    """None for a service without workflows (nothing would ever send it a message)."""
    timer: lambda_.Function | None
    """None for a service without workflows, as the orchestrator."""
    system: lambda_.Function
    api: lambda_.Function
    commands: dict[str, lambda_.Function]
    subscriptions: dict[str, lambda_.Function]
    subscription_rules: dict[str, eventbridge.Rule]
    subscription_dlqs: dict[str, sqs.Queue]

    def all(self) -> list[lambda_.Function]:
        return [
            *([self.orchestrator] if self.orchestrator is not None else []),
            *([self.timer] if self.timer is not None else []),
            self.system,
            self.api,
            *self.commands.values(),
            *self.tasks.values(),
            *self.subscriptions.values(),
        ]

    def kinds(self) -> dict[str, int]:
        """How many functions run each handler (``{"orchestrator": 1, ..., "task": 3}``); the
        API function and the commands with their own function are ``command``."""
        counts = {
            "orchestrator": int(self.orchestrator is not None),
            "timer": int(self.timer is not None),
            "system": 1,
            "command": 1 + len(self.commands),
            "task": len(self.tasks),
            "subscription": len(self.subscriptions),
        }
        return {kind: count for kind, count in counts.items() if count}


LOGGER = "eventual.cdk"


def announce_bundle(
    scope: Construct, service_name: str, bundle: Bundle, functions: Functions
) -> str:
    """Say at synthesis what the service's Lambda asset is: an info annotation on ``scope``
    (``cdk synth`` and ``cdk deploy`` print it), logged too. One asset holds the code of every
    function of the service, so the line names the kinds of function it serves::

        Lambda asset of order-service: x86_64, Python 3.11: 5.1 MB zipped, 593 files, 13.8 MB
        unpacked, built; the code of its 9 functions: orchestrator, timer, system, command x2,
        task x3, subscription
    """
    kinds = functions.kinds()
    served = ", ".join(kind if count == 1 else f"{kind} x{count}" for kind, count in kinds.items())
    line = (
        f"Lambda asset of {service_name}: {bundle.summary()}; the code of its "
        f"{sum(kinds.values())} functions: {served}"
    )
    cdk.Annotations.of(scope).add_info(line)
    logging.getLogger(LOGGER).info(line)
    return line


# What Lambda's SQS event source mapping does with the function's role (the SQS Developer
# Guide): the CDK's SqsEventSource grants more (grantConsumeMessages adds
# ChangeMessageVisibility and GetQueueUrl), which no handler uses.
QUEUE_TRIGGER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


def queue_trigger(function: lambda_.Function, queue: sqs.IQueue, batch_size: int) -> None:
    """``queue`` invokes ``function`` in batches, with partial batch failures, its role
    allowed only what the mapping needs."""
    assert function.role is not None
    allow(function.role, "QueueTrigger", QUEUE_TRIGGER_ACTIONS, [queue.queue_arn])
    scope = function.node.scope
    assert isinstance(scope, Construct)  # the function's own construct (see FunctionMaker)
    mapping = lambda_.EventSourceMapping(
        scope,
        "QueueTrigger",
        target=function,
        event_source_arn=queue.queue_arn,
        batch_size=batch_size,
        report_batch_item_failures=True,
    )
    # CreateEventSourceMapping fails while the role may not receive from the queue yet.
    mapping.node.add_dependency(function.role)


def build_functions(
    make: FunctionFactory,
    *,
    state: State,
    names: n.ServiceNames,
    tasks_spec: Mapping[str, Mapping[str, Any]],
    subscriptions_spec: Mapping[str, Mapping[str, Any]],
    commands: Mapping[str, CommandProps],
    tasks: Mapping[str, TaskProps],
    subscriptions: Mapping[str, SubscriptionProps],
    orchestrator: FunctionProps | None,
    timer: FunctionProps | None,
    system: FunctionProps | None,
    api: FunctionProps | None,
    max_receive_count: int = n.DEFAULT_MAX_RECEIVE_COUNT,
    workflows: bool = True,
) -> Functions:
    """Every function of the service: one per task, the orchestrator and the timer (on their
    queues; only with ``workflows``), the system and API functions, one per command with
    props, one per subscription."""
    task_functions: dict[str, lambda_.Function] = {}
    for task_name, task_spec in tasks_spec.items():
        task_functions[task_name] = make.task(
            task_name,
            task_spec,
            tasks.get(task_name) or TaskProps(),
            function_name=names.task_function(task_name),
            dead_letter_queue=state.task_dlq,
        )
    # A message failing on its queue's last attempt fails its execution (the handlers read it).
    receive_env = {n.ENV_MAX_RECEIVE_COUNT: str(max_receive_count)}
    orchestrator_function: lambda_.Function | None = None
    timer_function: lambda_.Function | None = None
    if workflows:
        orchestrator_function = make.function(
            "Orchestrator",
            "orchestrator",
            orchestrator or FunctionProps(),
            config.ORCHESTRATOR,
            extra_env=receive_env,
        )
        queue_trigger(orchestrator_function, state.execution_queue, n.ORCHESTRATOR_BATCH_SIZE)
        timer_function = make.function(
            "Timer", "timer", timer or FunctionProps(), config.TIMER, extra_env=receive_env
        )
        queue_trigger(timer_function, state.timer_queue, 10)
    system_function = make.function("System", "system", system or FunctionProps(), config.SYSTEM)
    api_function = make.function("Api", "command", api or FunctionProps(), config.COMMAND)
    command_functions: dict[str, lambda_.Function] = {}
    for command_name, props in commands.items():
        command_functions[command_name] = make.function(
            f"Command{pascal(command_name)}",
            "command",
            props,
            config.COMMAND,
            max_timeout=config.API_MAX_TIMEOUT,
            description=f"{make.service_name}: command {command_name}",
        )
    subscription_functions: dict[str, lambda_.Function] = {}
    subscription_rules: dict[str, eventbridge.Rule] = {}
    subscription_dlqs: dict[str, sqs.Queue] = {}
    for sub_name, sub_spec in subscriptions_spec.items():
        (
            subscription_functions[sub_name],
            subscription_rules[sub_name],
            subscription_dlqs[sub_name],
        ) = make.subscription(
            sub_name,
            sub_spec,
            subscriptions.get(sub_name) or SubscriptionProps(),
            event_bus=state.event_bus,
        )
    return Functions(
        tasks=task_functions,
        orchestrator=orchestrator_function,
        timer=timer_function,
        system=system_function,
        api=api_function,
        commands=command_functions,
        subscriptions=subscription_functions,
        subscription_rules=subscription_rules,
        subscription_dlqs=subscription_dlqs,
    )
