"""Task mocks: what a mocked task does when a workflow calls it under TestEnvironment.

A mock holds *once-resolutions* (used first, one per call, in the order they were added)
and at most one *standing* resolution (used for every call after the once-resolutions run
out). A mock with neither runs the real task.
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from eventual.core import EventualError, TaskDefinition
from eventual.core.definitions import AsyncResult
from eventual.core.history import TaskHeartbeatTimedOut, TaskTimedOut
from eventual.core.runtime import TaskRequest, decode_token

if TYPE_CHECKING:
    from eventual.core.runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")

ErrorSpec = BaseException | type[BaseException] | str


@dataclass(frozen=True)
class _Resolution:
    kind: str  # succeed | fail | invoke | invoke_real | async_result | timeout | heartbeat_timeout
    value: Any = None
    message: str = ""


def _make_error(error: ErrorSpec, message: str) -> BaseException:
    if isinstance(error, BaseException):
        return error
    if isinstance(error, str):
        return EventualError(message, name=error)
    if isinstance(error, type) and issubclass(error, BaseException):
        try:
            return error(message)
        except TypeError:
            return EventualError(message, name=error.__name__)
    raise TypeError(
        f"fail() takes an exception, an exception class or an error name, not {error!r}"
    )


class TaskMock(Generic[P, R]):
    """The mock of one task, returned by :meth:`TestEnvironment.mock_task`.

    Every method returns the mock, so resolutions chain::

        env.mock_task(charge).fail_once(CardDeclined("no")).succeed(Charge(id="c1"))

    ``calls`` lists the (typed) arguments of every call the mock answered, and ``tokens`` the
    task tokens handed out by ``async_result``/``async_result_once``.
    """

    def __init__(self, task: TaskDefinition[P, R]) -> None:
        self.task = task
        self._once: deque[_Resolution] = deque()
        self._standing: _Resolution | None = None
        self.calls: list[tuple[Any, ...]] = []
        self.tokens: list[str] = []

    def __repr__(self) -> str:
        standing = self._standing.kind if self._standing else "real"
        return f"<TaskMock {self.task.name!r}: {len(self._once)} once, then {standing}>"

    # ------------------------------------------------------------ building

    def _set(self, resolution: _Resolution, once: bool) -> TaskMock[P, R]:
        if once:
            self._once.append(resolution)
        else:
            self._standing = resolution
        return self

    def succeed(self, value: R | None = None) -> TaskMock[P, R]:
        """Every call returns ``value`` (after any once-resolutions)."""
        return self._set(_Resolution("succeed", value), False)

    def succeed_once(self, value: R | None = None) -> TaskMock[P, R]:
        """The next call returns ``value``."""
        return self._set(_Resolution("succeed", value), True)

    def fail(self, error: ErrorSpec = "Error", message: str = "") -> TaskMock[P, R]:
        """Every call fails with ``error``: an exception, an exception class (instantiated with
        ``message``) or an error name (raised as ``EventualError`` with that ``.name``)."""
        _make_error(error, message)  # reject a bad argument now, not when the task runs
        return self._set(_Resolution("fail", error, message), False)

    def fail_once(self, error: ErrorSpec = "Error", message: str = "") -> TaskMock[P, R]:
        """The next call fails with ``error`` (see :meth:`fail`)."""
        _make_error(error, message)
        return self._set(_Resolution("fail", error, message), True)

    def invoke(self, fn: Callable[P, R | Awaitable[R]]) -> TaskMock[P, R]:
        """Every call runs ``fn`` (sync or async) on the task's arguments instead of the task."""
        return self._set(_Resolution("invoke", fn), False)

    def invoke_once(self, fn: Callable[P, R | Awaitable[R]]) -> TaskMock[P, R]:
        return self._set(_Resolution("invoke", fn), True)

    def invoke_real(self) -> TaskMock[P, R]:
        """Every call runs the real task (useful after ``*_once`` resolutions)."""
        return self._set(_Resolution("invoke_real"), False)

    def invoke_real_once(self) -> TaskMock[P, R]:
        return self._set(_Resolution("invoke_real"), True)

    def async_result(self, fn: Callable[[str], Any] | None = None) -> TaskMock[P, R]:
        """Every call completes later, by token: ``fn(token)`` (sync or async, optional)
        receives the token, which also lands in :attr:`tokens`; complete it with
        ``env.send_task_success(token, value)`` or ``env.send_task_failure(...)``."""
        return self._set(_Resolution("async_result", fn), False)

    def async_result_once(self, fn: Callable[[str], Any] | None = None) -> TaskMock[P, R]:
        return self._set(_Resolution("async_result", fn), True)

    def timeout(self) -> TaskMock[P, R]:
        """Every call times out at once: the workflow sees ``Timeout`` (retries apply)."""
        return self._set(_Resolution("timeout"), False)

    def timeout_once(self) -> TaskMock[P, R]:
        return self._set(_Resolution("timeout"), True)

    def heartbeat_timeout(self) -> TaskMock[P, R]:
        """Every call misses its heartbeat at once: the workflow sees ``HeartbeatTimeout``."""
        return self._set(_Resolution("heartbeat_timeout"), False)

    def heartbeat_timeout_once(self) -> TaskMock[P, R]:
        return self._set(_Resolution("heartbeat_timeout"), True)

    def clear(self) -> TaskMock[P, R]:
        """Forget every resolution: the task runs for real again."""
        self._once.clear()
        self._standing = None
        return self

    # ------------------------------------------------------------ running

    def _next(self) -> _Resolution | None:
        if self._once:
            return self._once.popleft()
        return self._standing

    async def run(self, runtime: Runtime, request: TaskRequest) -> Any:
        """Answer one task attempt (called by the environment's runtime)."""
        definition = self.task
        resolution = self._next()
        if resolution is None or resolution.kind == "invoke_real":
            self.calls.append(tuple(definition.signature.load_args(request.args)))
            return await definition.invoke_json(request.args)
        args = definition.signature.load_args(request.args)
        self.calls.append(tuple(args))
        kind = resolution.kind
        if kind == "succeed":
            return resolution.value
        if kind == "fail":
            raise _make_error(resolution.value, resolution.message)
        if kind == "invoke":
            out = resolution.value(*args)
            if inspect.isawaitable(out):
                out = await out
            return out
        if kind == "async_result":
            callback: Callable[[str], Any] | None = resolution.value

            async def register(token: str) -> None:
                self.tokens.append(token)
                if callback is not None:
                    out = callback(token)
                    if inspect.isawaitable(out):
                        await out

            return AsyncResult(register)
        if kind in ("timeout", "heartbeat_timeout"):
            heartbeat = kind == "heartbeat_timeout"

            async def time_out(token: str) -> None:
                execution_id, seq, attempt = decode_token(token)
                if not await runtime.ports.claims.finish(
                    execution_id, seq, attempt, timed_out=True
                ):
                    return
                event = (
                    TaskHeartbeatTimedOut(timestamp=runtime.now(), seq=seq, attempt=attempt)
                    if heartbeat
                    else TaskTimedOut(timestamp=runtime.now(), seq=seq, attempt=attempt)
                )
                await runtime.ports.queue.enqueue(execution_id, [event])

            return AsyncResult(time_out)
        raise AssertionError(f"unknown mock resolution {kind!r}")  # pragma: no cover
