"""The definers of the public API: workflows, tasks, signals, events, subscriptions.

Defining something registers it in a process-wide list, tagged with the module that defined
it; :func:`eventual.core.service.load_service` then picks out the definitions reachable from a
service's entry module. Commands and HTTP routes live in :mod:`eventual.core.http`.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from ._context import current_ops, current_runtime, task_context_var
from ._record import FrozenRecord, init_field
from .errors import EventualError, Timeout
from .serialization import Signature, from_json, to_json

if TYPE_CHECKING:
    from .models import Execution

P = ParamSpec("P")
R = TypeVar("R")
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741
T = TypeVar("T")

Duration = timedelta | float | int


def seconds(d: Duration | None) -> float | None:
    """A duration in seconds (``timedelta`` or a number), or ``None``."""
    if d is None:
        return None
    if isinstance(d, timedelta):
        return d.total_seconds()
    return float(d)


def _caller_module(depth: int = 2) -> str:
    try:
        return sys._getframe(depth).f_globals.get("__name__", "__main__")
    except ValueError:  # pragma: no cover
        return "__main__"


class Definition:
    """Anything a service defines. ``kind`` is the spec's section name."""

    kind: str = ""
    name: str
    module: str

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} from {self.module}>"


_REGISTRY: list[Definition] = []


def _register(d: Definition) -> None:
    # Importing a module again (a reload, a test that re-imports a service) redefines its
    # definitions: the new one replaces the old instead of standing beside it as a duplicate.
    for i, existing in enumerate(_REGISTRY):
        if existing.kind == d.kind and existing.name == d.name and existing.module == d.module:
            _REGISTRY[i] = d
            return
    _REGISTRY.append(d)


def registered() -> list[Definition]:
    return list(_REGISTRY)


def forget_definitions(package: str) -> int:
    """Drop the definitions made in ``package`` or a module under it from the registry, so
    that re-importing the package (the dev server's reload) does not define them twice.
    Returns how many were dropped."""
    prefix = package + "."
    keep = [d for d in _REGISTRY if not (d.module == package or d.module.startswith(prefix))]
    dropped = len(_REGISTRY) - len(keep)
    _REGISTRY[:] = keep
    return dropped


# ---------------------------------------------------------------- tasks


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed task is retried: ``max_attempts`` in all, waiting ``initial_interval``
    times ``backoff_coefficient`` to the power of the retry number, capped at
    ``maximum_interval``. Errors named in ``non_retryable`` (names or classes) fail at once."""

    max_attempts: int = 3
    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    non_retryable: Sequence[str | type[BaseException]] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.backoff_coefficient < 1:
            raise ValueError("RetryPolicy.backoff_coefficient must be at least 1")

    def interval(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (1-based) before the next one."""
        base = self.initial_interval.total_seconds() * self.backoff_coefficient ** (attempt - 1)
        if self.maximum_interval is not None:
            base = min(base, self.maximum_interval.total_seconds())
        return base

    def to_spec(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "initial_interval": self.initial_interval.total_seconds(),
            "backoff_coefficient": self.backoff_coefficient,
            "maximum_interval": (
                self.maximum_interval.total_seconds() if self.maximum_interval else None
            ),
            "non_retryable": [n if isinstance(n, str) else n.__name__ for n in self.non_retryable],
        }


class TaskDefinition(Definition, Generic[P, R]):
    """A task: called from a workflow, it is scheduled durably and its result recorded;
    called anywhere else, it is a plain async call."""

    kind = "tasks"

    def __init__(
        self,
        name: str,
        fn: Callable[P, Awaitable[R]],
        *,
        timeout: Duration | None = None,
        heartbeat_timeout: Duration | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn) and not callable(fn):
            raise TypeError(f"task {name!r}: expected a function")
        self.name = name
        self.fn = fn
        self.module = getattr(fn, "__module__", None) or _caller_module(3)
        self.signature = Signature(fn)
        self.timeout = seconds(timeout)
        self.heartbeat_timeout = seconds(heartbeat_timeout)
        self.retry = retry
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _register(self)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        ops = current_ops()
        if ops is not None:
            return ops.call_task(self, self.signature.bind_json(args, kwargs))  # type: ignore[arg-type]
        return self.fn(*args, **kwargs)

    async def invoke_json(self, args: list[Any]) -> Any:
        """Run the handler on JSON arguments (what task workers do)."""
        return await self.fn(*self.signature.load_args(args))  # type: ignore[call-arg]

    def result_to_json(self, value: Any) -> Any:
        return to_json(value, self.signature.return_type)

    def result_from_json(self, value: Any) -> Any:
        return from_json(value, self.signature.return_type)


@overload
def task(fn: Callable[P, Awaitable[R]], /) -> TaskDefinition[P, R]: ...
@overload
def task(name: str, fn: Callable[P, Awaitable[R]], /, **options: Any) -> TaskDefinition[P, R]: ...
@overload
def task(
    name: str | None = None,
    /,
    *,
    timeout: Duration | None = None,
    heartbeat_timeout: Duration | None = None,
    retry: RetryPolicy | None = None,
) -> Callable[[Callable[P, Awaitable[R]]], TaskDefinition[P, R]]: ...
def task(name: Any = None, fn: Any = None, /, **options: Any) -> Any:
    """Define a task: ``@task``, ``@task("name", timeout=...)`` or ``task("name", fn)``."""
    if callable(name):
        fn = cast(Any, name)
        return TaskDefinition(fn.__name__, fn, **options)
    if fn is not None:
        return TaskDefinition(name, fn, **options)

    def deco(f: Callable[P, Awaitable[R]]) -> TaskDefinition[P, R]:
        return TaskDefinition(name or f.__name__, f, **options)

    return deco


# ---------------------------------------------------------------- task context


class TaskContext(FrozenRecord):
    """Where a running task comes from (``task_context()`` inside a task). Immutable, compared
    and hashed by its fields, like a frozen dataclass (it is not one: a dataclass compiles its
    methods on import, which every AWS handler's cold start would pay)."""

    __slots__ = _fields = ("execution_id", "workflow_name", "task_name", "seq", "attempt")
    execution_id: str
    workflow_name: str
    task_name: str
    seq: int
    attempt: int

    def __init__(
        self, execution_id: str, workflow_name: str, task_name: str, seq: int, attempt: int
    ) -> None:
        init_field(self, "execution_id", execution_id)
        init_field(self, "workflow_name", workflow_name)
        init_field(self, "task_name", task_name)
        init_field(self, "seq", seq)
        init_field(self, "attempt", attempt)

    @property
    def token(self) -> str:
        """The attempt's task token (``send_task_success`` and friends take it); made on
        first use, since most tasks never need it."""
        from .runtime.ports import encode_token

        return encode_token(self.execution_id, self.seq, self.attempt)


def task_context() -> TaskContext:
    ctx = task_context_var().get()
    if ctx is None:
        raise RuntimeError("task_context() is only available inside a task run by a runtime")
    if not isinstance(ctx, TaskContext):
        # The runtime sets the attempt's request (most tasks never ask for their context).
        ctx = TaskContext(ctx.execution_id, ctx.workflow, ctx.name, ctx.seq, ctx.attempt)
    return ctx


async def heartbeat(details: Any = None) -> bool:
    """Report that the task is alive; returns whether the task was cancelled (timed out)."""
    ctx = task_context_var().get()
    if ctx is None:
        raise RuntimeError("heartbeat() is only available inside a task run by a runtime")
    return await current_runtime().send_task_heartbeat(ctx.token, details)


class AsyncResult:
    """Returned by a task to complete later, by token (see :func:`async_result`)."""

    def __init__(self, register: Callable[[str], Any]) -> None:
        self.register = register


def async_result(register: Callable[[str], Any]) -> Any:
    """Complete the task later: ``register(token)`` (sync or async) hands the token out, and
    ``send_task_success(token, value)`` or ``send_task_failure(token, error, message)``
    completes the task."""
    return AsyncResult(register)


async def send_task_success(token: str, result: Any = None) -> None:
    await current_runtime().send_task_success(token, to_json(result))


async def send_task_failure(token: str, error: str | BaseException, message: str = "") -> None:
    if isinstance(error, BaseException):
        from .errors import error_payload

        p = error_payload(error)
        error, message = p.error, message or p.message
    await current_runtime().send_task_failure(token, error, message)


async def send_task_heartbeat(token: str, details: Any = None) -> bool:
    return await current_runtime().send_task_heartbeat(token, details)


# ---------------------------------------------------------------- workflows


class ExecutionHandle(Generic[O]):
    """A started execution: ``execution_id``, ``get_status()``, ``send_signal()``."""

    def __init__(self, execution_id: str, workflow: WorkflowDefinition[Any, O] | None = None):
        self.execution_id = execution_id
        self.workflow = workflow

    async def get_status(self) -> Execution:
        execution = await current_runtime().get_execution(self.execution_id)
        if self.workflow is not None and execution.result is not None:
            try:
                typed = self.workflow.output_from_json(execution.result)
                return execution.model_copy(update={"result": typed})
            except Exception:
                return execution
        return execution

    async def send_signal(self, signal: SignalDefinition[T] | str, payload: Any = None) -> None:
        name = signal if isinstance(signal, str) else signal.name
        await current_runtime().send_signal(self.execution_id, name, to_json(payload))

    def __repr__(self) -> str:
        return f"ExecutionHandle({self.execution_id!r})"


class WorkflowDefinition(Definition, Generic[I, O]):
    """A durable workflow: one input, one output."""

    kind = "workflows"

    def __init__(
        self,
        name: str,
        fn: Callable[[I], Coroutine[Any, Any, O]],
        *,
        timeout: Duration | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"workflow {name!r}: the handler must be an `async def` function")
        self.name = name
        self.fn = fn
        self.module = fn.__module__
        self.signature = Signature(fn)
        if len(self.signature.params) > 1:
            raise TypeError(f"workflow {name!r}: a workflow takes one input parameter")
        self.input_type: Any = self.signature.param_types[0] if self.signature.params else Any
        self.output_type: Any = self.signature.return_type
        self.timeout = seconds(timeout)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _register(self)

    def __call__(self, input: I) -> Awaitable[O]:
        """Inside a workflow: run this workflow as a child and return its result."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError(
                f"workflow {self.name!r} can only be awaited from inside another workflow; "
                f"use `await {self.fn.__name__}.start_execution(input)` elsewhere"
            )
        return ops.call_child(self, self.input_to_json(input), None)

    def child(self, input: I, *, execution_name: str | None = None) -> Awaitable[O]:
        """Inside a workflow: run a child execution with a chosen name."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError("child() can only be called from inside a workflow")
        return ops.call_child(self, self.input_to_json(input), execution_name)

    async def start_execution(
        self,
        input: I,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> ExecutionHandle[O]:
        """Start an execution (outside workflows); same name and input returns the running one."""
        if current_ops() is not None:
            raise RuntimeError(
                "start_execution() cannot be called inside a workflow; "
                f"await {self.fn.__name__}(input) to run it as a child workflow"
            )
        t = seconds(timeout)
        execution_id = await current_runtime().start_execution(
            self.name,
            self.input_to_json(input),
            execution_name=execution_name,
            timeout=timedelta(seconds=t) if t is not None else None,
        )
        return ExecutionHandle(execution_id, self)

    def input_to_json(self, value: Any) -> Any:
        return to_json(value, self.input_type)

    def input_from_json(self, value: Any) -> Any:
        return from_json(value, self.input_type)

    def output_to_json(self, value: Any) -> Any:
        return to_json(value, self.output_type)

    def output_from_json(self, value: Any) -> Any:
        return from_json(value, self.output_type)


@overload
def workflow(fn: Callable[[I], Coroutine[Any, Any, O]], /) -> WorkflowDefinition[I, O]: ...
@overload
def workflow(
    name: str, fn: Callable[[I], Coroutine[Any, Any, O]], /, *, timeout: Duration | None = None
) -> WorkflowDefinition[I, O]: ...
@overload
def workflow(
    name: str | None = None, /, *, timeout: Duration | None = None
) -> Callable[[Callable[[I], Coroutine[Any, Any, O]]], WorkflowDefinition[I, O]]: ...
def workflow(name: Any = None, fn: Any = None, /, **options: Any) -> Any:
    """Define a workflow: ``@workflow("name", timeout=...)`` or ``workflow("name", fn)``."""
    if callable(name):
        fn = cast(Any, name)
        return WorkflowDefinition(fn.__name__, fn, **options)
    if fn is not None:
        return WorkflowDefinition(name, fn, **options)

    def deco(f: Callable[[I], Coroutine[Any, Any, O]]) -> WorkflowDefinition[I, O]:
        return WorkflowDefinition(name or f.__name__, f, **options)

    return deco


# ---------------------------------------------------------------- signals


class SignalDefinition(Definition, Generic[T]):
    """A named message to a running execution, with an optional payload type."""

    kind = "signals"

    def __init__(self, name: str, payload_type: Any = Any, *, module: str | None = None) -> None:
        self.name = name
        self.payload_type = payload_type
        self.module = module or _caller_module(3)
        _register(self)

    def on_signal(self, handler: Callable[[T], Any]) -> SignalHandle:
        """Inside a workflow: call ``handler(payload)`` on every signal until disposed."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError("on_signal() can only be called from inside a workflow")
        return ops.on_signal(self, handler)

    async def expect_signal(self, timeout: Duration | None = None) -> T:
        """Inside a workflow: wait for the next signal; raises ``Timeout`` after ``timeout``."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError("expect_signal() can only be called from inside a workflow")
        return await ops.expect_signal(self, seconds(timeout))

    async def send_signal(
        self, execution_id: str | ExecutionHandle[Any], payload: T | None = None
    ) -> None:
        """Send the signal to an execution (recorded when called from a workflow)."""
        target = execution_id if isinstance(execution_id, str) else execution_id.execution_id
        data = self.payload_to_json(payload)
        ops = current_ops()
        if ops is not None:
            await ops.send_signal(target, self.name, data)
            return
        await current_runtime().send_signal(target, self.name, data)

    def payload_to_json(self, value: Any) -> Any:
        return to_json(value, self.payload_type)

    def payload_from_json(self, value: Any) -> Any:
        return from_json(value, self.payload_type)


class SignalHandle:
    """Returned by ``on_signal``: ``dispose()`` stops the handler."""

    def __init__(self, dispose: Callable[[], None]) -> None:
        self._dispose = dispose

    def dispose(self) -> None:
        self._dispose()


def signal(name: str, payload_type: Any = Any) -> SignalDefinition[Any]:
    """Define a signal: ``cancel = signal("cancel", str)``."""
    return SignalDefinition(name, payload_type, module=_caller_module(2))


# ---------------------------------------------------------------- events


class EventDefinition(Definition, Generic[T]):
    """A named event published on the service's bus, with an optional payload schema."""

    kind = "events"

    def __init__(self, name: str, schema: Any = None, *, module: str | None = None) -> None:
        self.name = name
        self.schema: Any = schema if schema is not None else Any
        self.module = module or _caller_module(3)
        _register(self)

    async def emit(self, *payloads: T) -> None:
        """Publish payloads (recorded when called from a workflow)."""
        data = [self.payload_to_json(p) for p in payloads]
        ops = current_ops()
        if ops is not None:
            await ops.emit_events(self.name, data)
            return
        await current_runtime().emit_events(self.name, data)

    def payload_to_json(self, value: Any) -> Any:
        return to_json(value, self.schema)

    def payload_from_json(self, value: Any) -> Any:
        return from_json(value, self.schema)


def event(name: str, schema: Any = None) -> EventDefinition[Any]:
    """Define an event: ``order_event = event("Order", OrderEvent)``."""
    return EventDefinition(name, schema, module=_caller_module(2))


# ---------------------------------------------------------------- subscriptions


class SubscriptionDefinition(Definition):
    """A handler run for every event of the listed names (at least once)."""

    kind = "subscriptions"

    def __init__(
        self,
        name: str,
        fn: Callable[[Any], Awaitable[Any]],
        *,
        events: Sequence[EventDefinition[Any] | str],
    ) -> None:
        if not events:
            raise ValueError(f"subscription {name!r}: list at least one event in events=[...]")
        self.name = name
        self.fn = fn
        self.module = fn.__module__
        self.events = list(events)
        self.event_names = [e if isinstance(e, str) else e.name for e in events]
        self.signature = Signature(fn)
        _register(self)

    async def handle(self, event_name: str, payload: Any, schema: Any = Any) -> None:
        """Run the handler on one event's JSON payload, validated against the event schema."""
        tp = schema
        for e in self.events:
            if not isinstance(e, str) and e.name == event_name:
                tp = e.schema
        if tp is Any and self.signature.param_types:
            tp = self.signature.param_types[0]
        await self.fn(from_json(payload, tp))


def subscription(
    name: str, *, events: Sequence[EventDefinition[Any] | str]
) -> Callable[[Callable[[Any], Awaitable[Any]]], SubscriptionDefinition]:
    """Define a subscription: ``@subscription("onOrder", events=[order_event])``."""

    def deco(fn: Callable[[Any], Awaitable[Any]]) -> SubscriptionDefinition:
        return SubscriptionDefinition(name, fn, events=events)

    return deco


# ---------------------------------------------------------------- workflow-time operations


async def sleep(duration: Duration) -> None:
    """Durable sleep in a workflow (``asyncio.sleep`` works too); a plain sleep elsewhere."""
    import asyncio

    await asyncio.sleep(seconds(duration) or 0)


async def sleep_until(when: Any) -> None:
    """Sleep until a datetime (durable in a workflow; a time in the past returns at once)."""
    import asyncio
    from datetime import UTC, datetime

    ops = current_ops()
    if ops is not None:
        await ops.sleep_until(when)
        return
    delay = (when - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, delay))


async def condition(predicate: Callable[[], bool], timeout: Duration | None = None) -> bool:
    """Wait in a workflow until ``predicate()`` is true (re-checked after every event).
    Returns ``False`` if ``timeout`` passes first."""
    ops = current_ops()
    if ops is None:
        raise RuntimeError("condition() can only be awaited from inside a workflow")
    return await ops.condition(predicate, seconds(timeout))


def now() -> Any:
    """The current time: the replayed run's time inside a workflow; elsewhere the clock of the
    runtime serving the code (virtual under TestEnvironment), or the system clock."""
    ops = current_ops()
    if ops is not None:
        return ops.now()
    try:
        runtime_now = getattr(current_runtime(), "now", None)
    except RuntimeError:
        runtime_now = None
    if runtime_now is not None:
        return runtime_now()
    from datetime import UTC, datetime

    return datetime.now(UTC)


def random() -> float:
    """A random float in [0, 1): deterministic inside a workflow."""
    ops = current_ops()
    if ops is not None:
        return ops.random()
    import random as _random

    return _random.random()


def uuid4() -> Any:
    """A random UUID: deterministic inside a workflow."""
    ops = current_ops()
    if ops is not None:
        return ops.uuid4()
    import uuid

    return uuid.uuid4()


__all__ = [
    "AsyncResult",
    "Definition",
    "EventDefinition",
    "EventualError",
    "ExecutionHandle",
    "RetryPolicy",
    "SignalDefinition",
    "SubscriptionDefinition",
    "TaskContext",
    "TaskDefinition",
    "Timeout",
    "WorkflowDefinition",
    "async_result",
    "condition",
    "event",
    "heartbeat",
    "now",
    "random",
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
    "uuid4",
    "workflow",
]
