"""Tasks: the definer, retry policies, and what a running task may ask (its context, a
heartbeat, completion by token)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from .._context import current_ops, current_runtime, task_context_var
from .._record import FrozenRecord, init_field
from ..serialization import Signature, from_json, to_json
from ..tokens import encode_token
from .base import Definition, Duration, _caller_module, _register, seconds

P = ParamSpec("P")
R = TypeVar("R")


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

    def invoke_json(self, args: list[Any]) -> Awaitable[Any]:
        """Run the handler on JSON arguments (what task workers do): its awaitable, with no
        coroutine of its own around it."""
        return self.fn(*self.signature.load_args(args))  # type: ignore[call-arg]

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
        from ..errors import error_payload

        p = error_payload(error)
        error, message = p.error, message or p.message
    await current_runtime().send_task_failure(token, error, message)


async def send_task_heartbeat(token: str, details: Any = None) -> bool:
    return await current_runtime().send_task_heartbeat(token, details)
