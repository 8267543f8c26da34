"""``EventualClient``: the system commands at ``POST /rpc/_system/{name}``, async.

:class:`EventualClient` and the :class:`RemoteExecution` handles it returns send the calls that
:mod:`eventual.client._system_calls` builds and reads (the wire format). The blocking form,
:class:`SyncEventualClient`, lives in :mod:`eventual.client._sync_system` and is importable from
here too, as are the result types.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar, overload

import anyio
import httpx

from eventual.core.definitions import WorkflowDefinition
from eventual.core.history import HistoryEvent
from eventual.core.http.api import HttpError
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.serialization import to_json

from ._core import (
    DEFAULT_TIMEOUT,
    AsyncSender,
    AuthLike,
    Call,
    Retry,
    Settings,
)
from ._sync_system import SyncEventualClient, SyncRemoteExecution
from ._system_calls import (
    EventArg,
    ExecutionArg,
    ExecutionPage,
    HasExecutionId,
    LogEntry,
    SignalArg,
    StartedExecution,
    SystemCalls,
    WorkflowArg,
    execution_id_of,
    heartbeat_cancelled,
    wait_step,
    wait_unsupported,
)

__all__ = [
    "EventArg",
    "EventualClient",
    "ExecutionArg",
    "ExecutionPage",
    "HasExecutionId",
    "LogEntry",
    "RemoteExecution",
    "SignalArg",
    "StartedExecution",
    "SyncEventualClient",
    "SyncRemoteExecution",
    "WorkflowArg",
]

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741
R = TypeVar("R")


class RemoteExecution(Generic[O]):
    """A started execution, seen through an :class:`EventualClient`."""

    def __init__(
        self,
        client: EventualClient,
        execution_id: str,
        *,
        already_running: bool = False,
        workflow: WorkflowDefinition[Any, O] | None = None,
    ) -> None:
        self.client = client
        self.execution_id = execution_id
        self.already_running = already_running
        self.workflow = workflow

    async def get_status(self) -> Execution:
        """The execution's record; ``result`` is built as the workflow's output type when the
        execution was started from the workflow definition."""
        return await self.client._send(SystemCalls.get_execution(self.execution_id, self.workflow))

    async def wait(self, timeout: float = 60.0, *, interval: float = 0.2) -> Execution:
        """Wait until the execution is no longer in progress: the server holds each
        ``waitExecution`` request until the end (or a few seconds), so the answer comes as
        the execution ends; a server without it (the TypeScript original) is polled every
        ``interval`` seconds. ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        blocking = True
        while True:
            if blocking:
                step = wait_step(deadline - time.monotonic(), self.client._settings.timeout)
                call = SystemCalls.wait_execution(self.execution_id, step, self.workflow)
                try:
                    execution = await self.client._send(call)
                except HttpError as exc:
                    if not wait_unsupported(exc):
                        raise
                    blocking = False
                    continue
            else:
                execution = await self.get_status()
            if execution.status is not ExecutionStatus.IN_PROGRESS:
                return execution
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"execution {self.execution_id!r} is still in progress after {timeout}s"
                )
            if not blocking:
                await anyio.sleep(interval)

    async def send_signal(self, signal: SignalArg, payload: Any = None) -> None:
        await self.client.send_signal(self.execution_id, signal, payload)

    async def get_history(self) -> list[HistoryEvent]:
        return await self.client.get_execution_history(self.execution_id)

    def __repr__(self) -> str:
        return f"RemoteExecution({self.execution_id!r})"


class EventualClient:
    """The system commands of a service, async: ``await client.start_execution(wf, input)``.

    ``EventualClient(service_url, *, headers=None, auth=None, timeout=30.0, retry=Retry())``.
    Calls that are safe to repeat (reads, starts with an ``execution_name``, signals, task
    updates) are retried with backoff on connection errors, timeouts and 429/502/503/504."""

    def __init__(
        self,
        service_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: AuthLike = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = Settings(
            service_url, headers=headers, auth=auth, timeout=timeout, retry=retry
        )
        self._sender = AsyncSender(self._settings, transport)

    @property
    def service_url(self) -> str:
        return self._settings.service_url

    async def _send(self, call: Call[R]) -> R:
        return await self._sender.send(call)

    @overload
    async def start_execution(
        self,
        workflow: WorkflowDefinition[I, O],
        input: I,
        *,
        execution_name: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> RemoteExecution[O]: ...
    @overload
    async def start_execution(
        self,
        workflow: str,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> RemoteExecution[Any]: ...
    async def start_execution(
        self,
        workflow: WorkflowArg,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> RemoteExecution[Any]:
        """Start an execution; the same ``execution_name`` and input return the running one
        (``already_running`` is then True)."""
        started = await self._send(
            SystemCalls.start_execution(workflow, input, execution_name, timeout)
        )
        return RemoteExecution(
            self,
            started.execution_id,
            already_running=started.already_running,
            workflow=started.workflow,
        )

    async def get_execution(self, execution_id: ExecutionArg) -> Execution:
        return await self._send(SystemCalls.get_execution(execution_id_of(execution_id)))

    async def list_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
        sort_direction: Literal["ASC", "DESC"] | None = None,
        build: str | None = None,
    ) -> ExecutionPage:
        """One page of executions; ``build`` keeps those started on that build."""
        return await self._send(
            SystemCalls.list_executions(
                workflow, statuses, max_results, next_token, sort_direction, build
            )
        )

    async def iter_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        page_size: int = 100,
        sort_direction: Literal["ASC", "DESC"] | None = None,
        build: str | None = None,
    ) -> AsyncIterator[Execution]:
        """Every matching execution, page after page (``page_size`` per request), oldest
        first (the original's default) unless ``sort_direction="DESC"``:
        ``async for e in client.iter_executions()``."""
        token: str | None = None
        while True:
            page = await self.list_executions(
                workflow=workflow,
                statuses=statuses,
                max_results=page_size,
                next_token=token,
                sort_direction=sort_direction,
                build=build,
            )
            for execution in page:
                yield execution
            token = page.next_token
            if not token:
                return

    async def get_execution_history(self, execution_id: ExecutionArg) -> list[HistoryEvent]:
        """The recorded history events of an execution, oldest first."""
        return await self._send(SystemCalls.get_execution_history(execution_id_of(execution_id)))

    async def get_execution_logs(
        self, execution_id: str | None = None, *, workflow: WorkflowArg | None = None
    ) -> list[LogEntry]:
        return await self._send(SystemCalls.get_execution_logs(execution_id, workflow))

    async def send_signal(
        self,
        execution_id: ExecutionArg,
        signal: SignalArg,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> None:
        await self._send(
            SystemCalls.send_signal(execution_id_of(execution_id), signal, payload, signal_id)
        )

    async def emit_events(self, event: EventArg, *payloads: Any) -> None:
        await self._send(SystemCalls.emit_events(event, payloads))

    async def send_task_success(self, token: str, result: Any = None) -> None:
        await self._send(
            SystemCalls.update_task(
                {"type": "Success", "taskToken": token, "result": to_json(result)},
                "send_task_success",
            )
        )

    async def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        await self._send(
            SystemCalls.update_task(
                {"type": "Failure", "taskToken": token, "error": error, "message": message},
                "send_task_failure",
            )
        )

    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        """Returns True if the task attempt was cancelled (it timed out)."""
        data = await self._send(
            SystemCalls.update_task(
                {"type": "Heartbeat", "taskToken": token, "details": to_json(details)},
                "send_task_heartbeat",
            )
        )
        return heartbeat_cancelled(data)

    async def list_workflows(self) -> list[str]:
        return await self._send(SystemCalls.list_workflows())

    async def call_system(self, name: str, body: Any = None, *, idempotent: bool = False) -> Any:
        """Call the system command ``name`` with ``body`` (JSON) and return its decoded JSON
        answer as is: for a command this client has no method for, or to pass answers on
        unchanged (a proxy). ``idempotent=True`` lets it be retried like the reads."""
        return await self._send(SystemCalls.raw(name, body, idempotent))

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
