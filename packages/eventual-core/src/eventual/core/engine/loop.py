"""The deterministic event loop that workflow code runs on.

It implements the part of :class:`asyncio.AbstractEventLoop` that coroutines, tasks, futures
and the ``asyncio`` helpers use (``call_soon``, ``call_at``, ``time``, ``create_task``,
``create_future``). Ready callbacks run in FIFO order; ``call_at``/``call_later`` with a time in
the future become *durable timers* recorded in the history, so ``asyncio.sleep``,
``asyncio.wait_for`` and ``asyncio.timeout`` work inside workflows and survive crashes.
``loop.time()`` is the workflow's clock: the recorded time of the event being applied.

Anything that would reach outside the process (sockets, threads, subprocesses, executors) is
refused with an explanation: workflow code must do I/O in tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol


class LoopDriver(Protocol):
    """What the loop needs from whoever drives it (the engine's ``WorkflowExecutor``): the
    workflow clock, durable timers, task tracking and error reporting. The driver is also the
    ``eventual_ops`` the loop carries for the definitions (see ``eventual.core._context``)."""

    @property
    def clock_seconds(self) -> float: ...
    def start_timer(self, handle: asyncio.TimerHandle, when: float) -> None: ...
    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None: ...
    def track_task(self, task: asyncio.Task[Any]) -> None: ...
    def loop_exception(self, context: dict[str, Any]) -> None: ...


class WorkflowLoopError(RuntimeError):
    pass


class _Discarded:
    """The driver of a closed loop. Closing drops the loop's reference to its executor, which
    refers to the loop: without that cycle a discarded execution is freed by reference
    counting at once, not left for the cyclic garbage collector (whose passes over thousands
    of live executors cost more than the steps themselves). New work is refused; what the
    discarded tasks report as they are freed ("destroyed but pending") is dropped, as the
    executor drops it once closed."""

    clock_seconds = 0.0

    def _refused(self, *args: Any) -> None:
        raise WorkflowLoopError("this execution's state was discarded; nothing more runs in it")

    start_timer = timer_cancelled = track_task = _refused

    def loop_exception(self, context: dict[str, Any]) -> None:
        pass


_DISCARDED = _Discarded()


def _refuse(name: str) -> Any:
    def method(self: WorkflowLoop, *args: Any, **kwargs: Any) -> Any:
        raise WorkflowLoopError(
            f"loop.{name}() is not available inside a workflow: workflow code must be "
            "deterministic; do I/O in a task and await the task from the workflow"
        )

    method.__name__ = name
    return method


class WorkflowLoop(asyncio.AbstractEventLoop):
    """One per execution; driven synchronously by a :class:`LoopDriver` (the engine's
    ``WorkflowExecutor``)."""

    def __init__(self, executor: LoopDriver) -> None:
        self.eventual_ops = executor
        self._executor = executor
        self._ready: deque[asyncio.Handle] = deque()
        self._closed = False
        self._task_factory = None

    # -- time and scheduling -------------------------------------------------------------

    def time(self) -> float:
        return self._executor.clock_seconds

    def call_soon(
        self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self, callback: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        raise WorkflowLoopError(
            "call_soon_threadsafe() is not available inside a workflow: threads are not "
            "deterministic; do the work in a task"
        )

    def call_at(
        self,
        when: float,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        if when <= self.time():
            self._ready.append(handle)
            return handle
        handle._scheduled = True  # type: ignore[attr-defined]
        self._executor.start_timer(handle, when)
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        self._executor.timer_cancelled(handle)

    def run_ready(self) -> bool:
        """Run every ready callback, including those they schedule. True if any ran."""
        ran = False
        ready = self._ready
        while ready:
            handle = ready.popleft()
            if handle._cancelled:  # type: ignore[attr-defined]
                continue
            ran = True
            handle._run()  # type: ignore[attr-defined]
        return ran

    # -- futures and tasks ---------------------------------------------------------------

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(self, coro: Any, *, name: str | None = None, context: Any = None) -> Any:
        task = asyncio.Task(coro, loop=self, name=name, context=context)
        self._executor.track_task(task)
        return task

    def set_task_factory(self, factory: Any) -> None:
        raise WorkflowLoopError("set_task_factory() is not available inside a workflow")

    def get_task_factory(self) -> Any:
        return None

    # -- state ---------------------------------------------------------------------------

    def is_running(self) -> bool:
        return not self._closed

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()
        self._executor = _DISCARDED
        self.eventual_ops = None

    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self._executor.loop_exception(context)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self._executor.loop_exception(context)

    def get_exception_handler(self) -> Any:
        return None

    def set_exception_handler(self, handler: Any) -> None:
        raise WorkflowLoopError("set_exception_handler() is not available inside a workflow")

    # -- what workflows may not do ----------------------------------------------------------

    run_forever = _refuse("run_forever")
    run_until_complete = _refuse("run_until_complete")
    stop = _refuse("stop")
    shutdown_asyncgens = _refuse("shutdown_asyncgens")
    shutdown_default_executor = _refuse("shutdown_default_executor")
    run_in_executor = _refuse("run_in_executor")
    set_default_executor = _refuse("set_default_executor")
    getaddrinfo = _refuse("getaddrinfo")
    getnameinfo = _refuse("getnameinfo")
    create_connection = _refuse("create_connection")
    create_server = _refuse("create_server")
    create_unix_connection = _refuse("create_unix_connection")
    create_unix_server = _refuse("create_unix_server")
    create_datagram_endpoint = _refuse("create_datagram_endpoint")
    sock_recv = _refuse("sock_recv")
    sock_sendall = _refuse("sock_sendall")
    sock_connect = _refuse("sock_connect")
    sock_accept = _refuse("sock_accept")
    subprocess_exec = _refuse("subprocess_exec")
    subprocess_shell = _refuse("subprocess_shell")
    add_reader = _refuse("add_reader")
    add_writer = _refuse("add_writer")
    add_signal_handler = _refuse("add_signal_handler")
    connect_read_pipe = _refuse("connect_read_pipe")
    connect_write_pipe = _refuse("connect_write_pipe")
