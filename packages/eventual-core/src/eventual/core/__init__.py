"""Eventual core: the programming model, the service spec, the history format, the
deterministic workflow engine and the runtime over ports.

Everything a service author imports comes from here::

    from eventual.core import workflow, task, command, api, signal, event, subscription
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes

if TYPE_CHECKING:
    from .definitions import (
        EventDefinition,
        ExecutionHandle,
        RetryPolicy,
        SignalDefinition,
        SignalHandle,
        SubscriptionDefinition,
        TaskContext,
        TaskDefinition,
        WorkflowDefinition,
        async_result,
        condition,
        event,
        heartbeat,
        now,
        random,
        send_task_failure,
        send_task_heartbeat,
        send_task_success,
        signal,
        sleep,
        sleep_until,
        subscription,
        task,
        task_context,
        uuid4,
        workflow,
    )
    from .errors import (
        DeterminismError,
        EventualError,
        ExecutionAlreadyExists,
        ExecutionNotFound,
        HeartbeatTimeout,
        InvalidInput,
        InvalidTaskToken,
        ServiceError,
        Timeout,
        WorkflowTimeout,
    )
    from .history import HISTORY_FORMAT_VERSION, HistoryEvent, export_history, parse_history
    from .http import (
        ApiRoute,
        CommandContext,
        CommandDefinition,
        HttpError,
        Request,
        Response,
        Router,
        api,
        command,
    )
    from .models import Execution, ExecutionStatus
    from .service import Service, load_service

# Every name below is imported from its module on first access (PEP 562), so importing one
# part of eventual-core (an AWS command handler imports the HTTP layer, not the engine or the
# history models) does not load all of it. ``from eventual.core import task`` works as before.
_LAZY = {
    "EventDefinition": "definitions",
    "ExecutionHandle": "definitions",
    "RetryPolicy": "definitions",
    "SignalDefinition": "definitions",
    "SignalHandle": "definitions",
    "SubscriptionDefinition": "definitions",
    "TaskContext": "definitions",
    "TaskDefinition": "definitions",
    "WorkflowDefinition": "definitions",
    "async_result": "definitions",
    "condition": "definitions",
    "event": "definitions",
    "heartbeat": "definitions",
    "now": "definitions",
    "random": "definitions",
    "send_task_failure": "definitions",
    "send_task_heartbeat": "definitions",
    "send_task_success": "definitions",
    "signal": "definitions",
    "sleep": "definitions",
    "sleep_until": "definitions",
    "subscription": "definitions",
    "task": "definitions",
    "task_context": "definitions",
    "uuid4": "definitions",
    "workflow": "definitions",
    "DeterminismError": "errors",
    "EventualError": "errors",
    "ExecutionAlreadyExists": "errors",
    "ExecutionNotFound": "errors",
    "HeartbeatTimeout": "errors",
    "InvalidInput": "errors",
    "InvalidTaskToken": "errors",
    "ServiceError": "errors",
    "Timeout": "errors",
    "WorkflowTimeout": "errors",
    "HISTORY_FORMAT_VERSION": "history",
    "HistoryEvent": "history",
    "export_history": "history",
    "parse_history": "history",
    "ApiRoute": "http",
    "CommandContext": "http",
    "CommandDefinition": "http",
    "HttpError": "http",
    "Request": "http",
    "Response": "http",
    "Router": "http",
    "api": "http",
    "command": "http",
    "Execution": "models",
    "ExecutionStatus": "models",
    "Service": "service",
    "load_service": "service",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__version__ = "0.1.0"

__all__ = [
    "HISTORY_FORMAT_VERSION",
    "ApiRoute",
    "CommandContext",
    "CommandDefinition",
    "DeterminismError",
    "EventDefinition",
    "EventualError",
    "Execution",
    "ExecutionAlreadyExists",
    "ExecutionHandle",
    "ExecutionNotFound",
    "ExecutionStatus",
    "HeartbeatTimeout",
    "HistoryEvent",
    "HttpError",
    "InvalidInput",
    "InvalidTaskToken",
    "Request",
    "Response",
    "RetryPolicy",
    "Router",
    "Service",
    "ServiceError",
    "SignalDefinition",
    "SignalHandle",
    "SubscriptionDefinition",
    "TaskContext",
    "TaskDefinition",
    "Timeout",
    "WorkflowDefinition",
    "WorkflowTimeout",
    "api",
    "async_result",
    "command",
    "condition",
    "event",
    "export_history",
    "heartbeat",
    "load_service",
    "now",
    "parse_history",
    "random",
    "send_task_failure",
    "send_task_heartbeat",
    "send_task_success",
    "signal",
    "sleep",
    "sleep_until",
    "subscription",
    "task",
    "task_context",
    "uuid4",
    "workflow",
]
