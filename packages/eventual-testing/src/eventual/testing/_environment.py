"""TestEnvironment: the shared runtime on in-memory adapters, driven by a virtual clock.

Its lifecycle, time, actions, task mocks and test subscriptions live here; ``env.client``
(:class:`EnvironmentClient`, with the execution handles it returns) lives in ``_client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json as _json
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

from eventual.core import (
    CommandDefinition,
    EventDefinition,
    Execution,
    HistoryEvent,
    Request,
    Response,
    Service,
    SignalDefinition,
    TaskDefinition,
    WorkflowDefinition,
    load_service,
)
from eventual.core._context import current_runtime, use_runtime
from eventual.core.definitions import Duration, seconds
from eventual.core.errors import ServiceError
from eventual.core.history import EmittedEvent
from eventual.core.http import CommandContext
from eventual.core.http.handler import HttpHandler
from eventual.core.runtime import InMemoryRuntime, TaskRequest, VirtualClock
from eventual.core.serialization import to_json

from ._client import EnvironmentClient, ExecutionRef, TestExecutionHandle
from ._mocks import TaskMock

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)


class _EnvironmentRuntime(InMemoryRuntime):
    """The in-memory runtime with task mocks applied where the runtime runs a task's code."""

    def __init__(
        self,
        service: Service,
        clock: VirtualClock,
        mocks: dict[str, TaskMock[Any, Any]],
        task_grace: float = 1.0,
    ):
        super().__init__(service, clock=clock, attempt_grace=task_grace)
        self._mocks = mocks

    async def invoke_task_handler(self, definition: Any, request: TaskRequest) -> Any:
        mock = self._mocks.get(definition.name)
        if mock is None:
            return await super().invoke_task_handler(definition, request)
        return await mock.run(self, request)


# ---------------------------------------------------------------- test subscriptions


@dataclass
class TestSubscription:
    """A test subscription from :meth:`TestEnvironment.subscribe_events`; ``dispose()``
    stops it."""

    __test__ = False

    events: frozenset[str]
    _dispose: Callable[[], None] = field(repr=False)

    def dispose(self) -> None:
        self._dispose()


class _InstalledRuntime:
    """The runtime that user code called from the test body finds (``current_runtime()``):
    the environment's runtime, settling after each action like the environment does."""

    def __init__(self, env: TestEnvironment) -> None:
        self._env = env

    def now(self) -> datetime:
        return self._env.time

    async def start_execution(
        self,
        workflow: str,
        input: Any,
        *,
        execution_name: str | None = None,
        timeout: timedelta | None = None,
    ) -> str:
        execution_id = await self._env.runtime.start_execution(
            workflow, input, execution_name=execution_name, timeout=timeout
        )
        await self._env._settle()
        return execution_id

    async def get_execution(self, execution_id: str) -> Execution:
        await self._env._settle()
        return await self._env.runtime.get_execution(execution_id)

    async def list_executions(self, **kwargs: Any) -> tuple[list[Execution], str | None]:
        await self._env._settle()
        return await self._env.runtime.list_executions(**kwargs)

    async def get_history(self, execution_id: str) -> list[HistoryEvent]:
        await self._env._settle()
        return await self._env.runtime.get_history(execution_id)

    async def send_signal(
        self, execution_id: str, signal: str, payload: Any, *, signal_id: str | None = None
    ) -> None:
        await self._env.runtime.send_signal(execution_id, signal, payload, signal_id=signal_id)
        await self._env._settle()

    async def emit_events(self, event: str, payloads: Sequence[Any]) -> None:
        await self._env.runtime.emit_events(event, payloads)
        await self._env._settle()

    async def send_task_success(self, token: str, result: Any = None) -> None:
        await self._env.runtime.send_task_success(token, result)
        await self._env._settle()

    async def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        await self._env.runtime.send_task_failure(token, error, message)
        await self._env._settle()

    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        cancelled = await self._env.runtime.send_task_heartbeat(token, details)
        await self._env._settle()
        return cancelled


# ---------------------------------------------------------------- the environment


def _resolve_service(
    entry: str | types.ModuleType | Service, *, module_only: bool, name: str | None
) -> Service:
    if isinstance(entry, Service):
        return entry
    if isinstance(entry, (str, types.ModuleType)):
        return load_service(entry, name=name, module_only=module_only)
    raise TypeError(
        "TestEnvironment(entry=...) takes a module name, a module or a Service, "
        f"not {type(entry).__name__}"
    )


class TestEnvironment:
    """Runs a service's workflows, tasks and subscriptions in-process on a virtual clock.

    ``async with TestEnvironment(entry="order_service", start=datetime(...)) as env:``

    ``entry`` is the service: a module name (its whole top-level package is the service, as
    everywhere in Eventual), a module object (with ``module_only=True``, only what that module
    defines: handy for a service defined in a test file) or a :class:`Service`.

    Time moves only when the test calls :meth:`tick` or :meth:`tick_until`. Every action
    (starting an execution, sending a signal, emitting an event, completing a task by token,
    invoking a command) returns once the environment is idle at the current virtual time: all
    the work the action caused, and that can happen without time passing, has happened.

    A task handler still running after ``task_grace`` real seconds, with nothing else to wait
    for (one that never returns, or waits for real time), is not waited for: time moves on
    without it, and its timeout on the virtual clock cancels it like any timed-out attempt.
    """

    __test__ = False

    def __init__(
        self,
        entry: str | types.ModuleType | Service,
        *,
        start: datetime | None = None,
        module_only: bool = False,
        name: str | None = None,
        task_grace: float = 1.0,
    ) -> None:
        start = start if start is not None else DEFAULT_START
        if start.tzinfo is None:
            raise ValueError(
                "TestEnvironment(start=...) must be timezone-aware, e.g. "
                "datetime(2024, 1, 1, tzinfo=UTC)"
            )
        self.service = _resolve_service(entry, module_only=module_only, name=name)
        self.start = start
        self.task_grace = task_grace
        self.client = EnvironmentClient(self)
        self._mocks: dict[str, TaskMock[Any, Any]] = {}
        self._runtime: _EnvironmentRuntime | None = None
        self._lock: asyncio.Lock | None = None
        self._errors_seen = 0
        self._installed: contextlib.AbstractContextManager[None] | None = None
        self._http: tuple[InMemoryRuntime, HttpHandler] | None = None

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> TestEnvironment:
        """Start the environment (``async with`` does this)."""
        if self._runtime is not None:
            raise RuntimeError("this TestEnvironment is already open")
        self._lock = asyncio.Lock()
        self._runtime = await self._new_runtime()
        self._installed = use_runtime(_InstalledRuntime(self))  # type: ignore[arg-type]
        self._installed.__enter__()
        return self

    async def close(self) -> None:
        """Stop the environment, cancelling any work still in flight."""
        installed, self._installed = self._installed, None
        if installed is not None:
            # The context may differ from the one open() ran in (pytest fixtures).
            with contextlib.suppress(ValueError):
                installed.__exit__(None, None, None)
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            await runtime.__aexit__(None, None, None)

    async def __aenter__(self) -> TestEnvironment:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _new_runtime(self) -> _EnvironmentRuntime:
        runtime = _EnvironmentRuntime(
            self.service, VirtualClock(self.start), self._mocks, self.task_grace
        )
        await runtime.__aenter__()
        self._errors_seen = 0
        return runtime

    @property
    def runtime(self) -> InMemoryRuntime:
        """The underlying core runtime (for inspection: ``runtime.stats``, ``runtime.errors``)."""
        if self._runtime is None:
            raise RuntimeError(
                "this TestEnvironment is not open: use `async with TestEnvironment(...) as env`"
            )
        return self._runtime

    async def reset(self) -> None:
        """Forget every execution, mock and test subscription, switch service subscriptions
        back on, and put the clock back to ``start``."""
        if self._inside_runtime_work():
            raise RuntimeError(
                "reset() cannot be called from code the environment is running (a task, a mock "
                "or a subscription); call it from the test"
            )
        lock = self._require_lock()
        async with lock:
            old = self._runtime
            self._mocks.clear()
            self._http = None
            if old is not None:
                self._runtime = None
                await old.__aexit__(None, None, None)
            self._runtime = await self._new_runtime()

    async def replace_service(
        self,
        entry: str | types.ModuleType | Service,
        *,
        module_only: bool = False,
        name: str | None = None,
    ) -> Service:
        """Deploy new code into the running environment: the executions, the clock and the
        mocks stay; each execution's next step replays its history against the new code (as
        after a deploy, or `eventual dev`'s reload), and executions started from now on record
        the new service's build. ``entry`` is taken as by the constructor. Returns the new
        service."""
        if self._inside_runtime_work():
            raise RuntimeError(
                "replace_service() cannot be called from code the environment is running; "
                "call it from the test"
            )
        service = _resolve_service(entry, module_only=module_only, name=name)
        async with self._require_lock():
            self.service = service
            self._http = None
            runtime = self.runtime
            runtime.service = service
            runtime.clear_cache()  # no executor keeps running the old code
        return service

    # ------------------------------------------------------------ time

    @property
    def time(self) -> datetime:
        """The virtual time now."""
        return self.runtime.clock.now()

    async def tick(self, n: Duration = 1) -> None:
        """Move the clock forward ``n`` seconds (a number or a ``timedelta``), firing every
        timer that falls due on the way, in due order, each at its own due time."""
        if n is None:
            raise TypeError("tick() takes a number of seconds or a timedelta, got None")
        amount = seconds(n)  # a TypeError for a string or a bool
        assert amount is not None
        if not amount >= 0:  # NaN too
            raise ValueError(f"tick() moves time forward by 0 seconds or more; got {n!r}")
        try:
            target = self.time + timedelta(seconds=amount)
        except OverflowError:  # infinity, or past datetime's year 9999
            raise ValueError(
                f"tick({n!r}) would move the clock past what a datetime holds "
                f"(the year 9999; now {self.time.isoformat()})"
            ) from None
        await self._drive(target)

    async def tick_until(self, when: datetime) -> None:
        """Move the clock forward to ``when``; a time at or before now does nothing."""
        if when.tzinfo is None:
            raise ValueError("tick_until() needs a timezone-aware datetime (use tzinfo=UTC)")
        await self._drive(max(when, self.time))

    def _require_lock(self) -> asyncio.Lock:
        self.runtime  # noqa: B018 - raises if not open
        assert self._lock is not None
        return self._lock

    def _inside_runtime_work(self) -> bool:
        """Whether the caller is code the runtime is running (a task, a mock, a subscription,
        a test subscription): it cannot wait for the runtime to go idle."""
        try:
            return current_runtime() is self._runtime
        except RuntimeError:
            return False

    async def _drive(self, target: datetime | None) -> None:
        if self._inside_runtime_work():
            if target is not None and target > self.time:
                raise RuntimeError(
                    "tick()/tick_until() cannot be called from code the environment is "
                    "running (a task, a mock or a subscription); move time from the test"
                )
            return
        lock = self._require_lock()
        async with lock:
            runtime = self.runtime
            await runtime.advance_to(target if target is not None else runtime.clock.now())
            self._raise_runtime_errors(runtime)

    async def _settle(self) -> None:
        """Let every piece of work that can happen at the current virtual time happen."""
        await self._drive(None)

    def _raise_runtime_errors(self, runtime: InMemoryRuntime) -> None:
        errors = runtime.errors[self._errors_seen :]
        self._errors_seen = len(runtime.errors)
        if errors:
            raise errors[0]

    # ------------------------------------------------------------ actions

    @overload
    async def start_execution(
        self,
        workflow: WorkflowDefinition[I, O],
        input: I,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> TestExecutionHandle[O]: ...
    @overload
    async def start_execution(
        self,
        workflow: str,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> TestExecutionHandle[Any]: ...
    async def start_execution(
        self,
        workflow: WorkflowDefinition[Any, Any] | str,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> TestExecutionHandle[Any]:
        """Start an execution and run it until it waits on time or on the outside world."""
        return await self.client.start_execution(
            workflow, input, execution_name=execution_name, timeout=timeout
        )

    async def send_signal(
        self,
        execution: ExecutionRef,
        signal: SignalDefinition[Any] | str,
        payload: Any = None,
    ) -> None:
        """Send a signal to an execution (a handle or an execution id)."""
        await self.client.send_signal(execution, signal, payload)

    async def emit_event(self, event: EventDefinition[Any] | str, *payloads: Any) -> None:
        """Publish events to the service's subscriptions and the test subscriptions."""
        await self.client.emit_events(event, *payloads)

    async def send_task_success(self, token: str, result: Any = None) -> None:
        """Complete an asynchronous task by its token."""
        await self.client.send_task_success(token, result)

    async def send_task_failure(
        self, token: str, error: str | BaseException = "Error", message: str = ""
    ) -> None:
        """Fail an asynchronous task by its token (an error name, or an exception)."""
        await self.client.send_task_failure(token, error, message)

    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        """Heartbeat an asynchronous task; True if the attempt already timed out."""
        return await self.client.send_task_heartbeat(token, details)

    async def get_execution(self, execution: ExecutionRef) -> Execution:
        return await self.client.get_execution(execution)

    async def invoke(self, command: CommandDefinition[Any, O] | str, input: Any = None) -> O:
        """Call a command's handler directly (no HTTP, no middleware) with the runtime
        installed. The input is validated against the command's input type, as over HTTP."""
        definition = self._command(command)
        args: list[Any] = []
        if definition.has_input:
            args.append(definition.parse_input(to_json(input)))
        if definition.wants_context:
            args.append(CommandContext(service_name=self.service.name))
        with use_runtime(self.runtime):
            result = await definition.fn(*args)
        await self._settle()
        return result

    async def http(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Serve one HTTP request through the service's router (commands at ``/rpc/{name}``,
        REST paths, ``api`` routes with their middleware, the system commands)."""
        runtime = self.runtime
        if self._http is None or self._http[0] is not runtime:
            self._http = (runtime, HttpHandler(self.service, runtime, service_url="http://test"))
        hdrs = dict(headers or {})
        if json is not None:
            body = _json.dumps(to_json(json))
            hdrs.setdefault("content-type", "application/json")
        response = await self._http[1].handle(
            Request(method, f"http://test{path}", headers=hdrs, body=body)
        )
        await self._settle()
        return response

    def _command(self, command: CommandDefinition[Any, Any] | str) -> CommandDefinition[Any, Any]:
        name = command if isinstance(command, str) else command.name
        definition = self.service.commands.get(name)
        if definition is None:
            raise ServiceError(
                f"service {self.service.name!r} has no command {name!r}; "
                f"it defines: {', '.join(sorted(self.service.commands)) or 'none'}"
            )
        return definition

    # ------------------------------------------------------------ mocks

    def mock_task(self, task: TaskDefinition[Any, Any] | str) -> TaskMock[Any, Any]:
        """Mock a task (replacing any earlier mock of it). Without resolutions the mock runs
        the real task; see :class:`TaskMock`."""
        name = task if isinstance(task, str) else task.name
        definition = self.service.task(name)
        mock: TaskMock[Any, Any] = TaskMock(definition)
        self._mocks[name] = mock
        return mock

    def clear_mocks(self) -> None:
        """Remove every task mock: all tasks run for real again."""
        self._mocks.clear()

    # ------------------------------------------------------------ subscriptions

    def subscribe_events(
        self,
        events: Sequence[EventDefinition[Any] | str],
        handler: Callable[[Any], Any],
    ) -> TestSubscription:
        """Call ``handler(payload)`` (sync or async) for every event of these names published
        in the environment, by workflows, tasks, commands or the test. The payload is typed by
        the event's schema. Returns a subscription with ``dispose()``."""
        if not events:
            raise ValueError("subscribe_events() needs at least one event")
        definitions: dict[str, EventDefinition[Any] | None] = {}
        for e in events:
            if isinstance(e, EventDefinition):
                definitions[e.name] = e
            else:
                definitions[e] = self.service.events.get(e)
        names = set(definitions)

        async def listener(emitted: EmittedEvent) -> None:
            definition = definitions.get(emitted.name)
            payload = (
                definition.payload_from_json(emitted.payload)
                if definition is not None
                else emitted.payload
            )
            out = handler(payload)
            if inspect.isawaitable(out):
                await out

        runtime = self.runtime
        entry: tuple[set[str] | None, Any] = (names, listener)
        runtime.listeners.append(entry)

        def dispose() -> None:
            if entry in runtime.listeners:
                runtime.listeners.remove(entry)

        return TestSubscription(frozenset(names), dispose)

    def disable_service_subscriptions(self) -> None:
        """Stop delivering events to the service's own subscriptions (test subscriptions still
        receive them)."""
        self.runtime.subscriptions_enabled = False

    def enable_service_subscriptions(self) -> None:
        self.runtime.subscriptions_enabled = True

    def __repr__(self) -> str:
        state = "open" if self._runtime is not None else "closed"
        return f"<TestEnvironment {self.service.name!r} {state}>"
