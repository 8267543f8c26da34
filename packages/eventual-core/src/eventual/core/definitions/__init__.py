"""The definers of the public API: workflows, tasks, signals, events, subscriptions, and the
workflow-time operations. A module per concept; this package hands their names on.

Commands and HTTP routes live in :mod:`eventual.core.http`.
"""

from ..errors import EventualError, Timeout
from .base import (
    _REGISTRY,
    MAX_TIMEOUT,
    Definition,
    Duration,
    ExecutionRef,
    _caller_module,
    _register,
    execution_timeout,
    forget_definitions,
    registered,
    seconds,
    timeout_problem,
)
from .events import EventDefinition, SubscriptionDefinition, event, subscription
from .operations import (
    condition,
    deprecate_patch,
    now,
    patched,
    random,
    sleep,
    sleep_until,
    uuid4,
)
from .signals import SignalDefinition, SignalHandle, signal
from .tasks import (
    AsyncResult,
    RetryPolicy,
    TaskContext,
    TaskDefinition,
    async_result,
    heartbeat,
    send_task_failure,
    send_task_heartbeat,
    send_task_success,
    task,
    task_context,
)
from .workflows import ExecutionHandle, WorkflowDefinition, workflow

__all__ = [
    "MAX_TIMEOUT",
    "_REGISTRY",
    "AsyncResult",
    "Definition",
    "Duration",
    "EventDefinition",
    "EventualError",
    "ExecutionHandle",
    "ExecutionRef",
    "RetryPolicy",
    "SignalDefinition",
    "SignalHandle",
    "SubscriptionDefinition",
    "TaskContext",
    "TaskDefinition",
    "Timeout",
    "WorkflowDefinition",
    "_caller_module",
    "_register",
    "async_result",
    "condition",
    "deprecate_patch",
    "event",
    "execution_timeout",
    "forget_definitions",
    "heartbeat",
    "now",
    "patched",
    "random",
    "registered",
    "seconds",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
    "signal",
    "sleep",
    "sleep_until",
    "subscription",
    "task",
    "task_context",
    "timeout_problem",
    "uuid4",
    "workflow",
]
