"""``SyncEventualClient``: the blocking form of :class:`eventual.client.EventualClient`.

Same methods, same behaviour; it sends the calls :mod:`eventual.client._system_calls` builds
over a blocking ``httpx`` client. Import it from :mod:`eventual.client`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar, overload

import httpx

from eventual.core.definitions import WorkflowDefinition
from eventual.core.history import HistoryEvent
from eventual.core.http.api import HttpError
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.serialization import to_json

from ._core import (
    DEFAULT_TIMEOUT,
    AuthLike,
    Call,
    Retry,
    Settings,
    SyncSender,
)
from ._system_calls import (
    EventArg,
    ExecutionArg,
    ExecutionPage,
    LogEntry,
    SignalArg,
    SystemCalls,
    WorkflowArg,
    execution_id_of,
    heartbeat_cancelled,
    wait_step,
    wait_unsupported,
)

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741
R = TypeVar("R")


class SyncRemoteExecution(Generic[O]):
    """A started execution, seen through a :class:`SyncEventualClient`."""

    def __init__(
        self,
        client: SyncEventualClient,
        execution_id: str,
        *,
        already_running: bool = False,
        workflow: WorkflowDefinition[Any, O] | None = None,
    ) -> None:
        self.client = client
        self.execution_id = execution_id
        self.already_running = already_running
        self.workflow = workflow

    def get_status(self) -> Execution:
        return self.client._send(SystemCalls.get_execution(self.execution_id, self.workflow))

    def wait(self, timeout: float = 60.0, *, interval: float = 0.2) -> Execution:
        """As :meth:`RemoteExecution.wait`: one held ``waitExecution`` request at a time,
        polling every ``interval`` seconds where the server has none."""
        deadline = time.monotonic() + timeout
        blocking = True
        while True:
            if blocking:
                step = wait_step(deadline - time.monotonic(), self.client._settings.timeout)
                call = SystemCalls.wait_execution(self.execution_id, step, self.workflow)
                try:
                    execution = self.client._send(call)
                except HttpError as exc:
                    if not wait_unsupported(exc):
                        raise
                    blocking = False
                    continue
            else:
                execution = self.get_status()
            if execution.status is not ExecutionStatus.IN_PROGRESS:
                return execution
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"execution {self.execution_id!r} is still in progress after {timeout}s"
                )
            if not blocking:
                time.sleep(interval)

    def send_signal(self, signal: SignalArg, payload: Any = None) -> None:
        self.client.send_signal(self.execution_id, signal, payload)

    def get_history(self) -> list[HistoryEvent]:
        return self.client.get_execution_history(self.execution_id)

    def __repr__(self) -> str:
        return f"SyncRemoteExecution({self.execution_id!r})"


class SyncEventualClient:
    """The blocking form of :class:`EventualClient` (same methods, same behaviour)."""

    def __init__(
        self,
        service_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: AuthLike = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._settings = Settings(
            service_url, headers=headers, auth=auth, timeout=timeout, retry=retry
        )
        self._sender = SyncSender(self._settings, transport)

    @property
    def service_url(self) -> str:
        return self._settings.service_url

    def _send(self, call: Call[R]) -> R:
        return self._sender.send(call)

    @overload
    def start_execution(
        self,
        workflow: WorkflowDefinition[I, O],
        input: I,
        *,
        execution_name: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> SyncRemoteExecution[O]: ...
    @overload
    def start_execution(
        self,
        workflow: str,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> SyncRemoteExecution[Any]: ...
    def start_execution(
        self,
        workflow: WorkflowArg,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> SyncRemoteExecution[Any]:
        started = self._send(SystemCalls.start_execution(workflow, input, execution_name, timeout))
        return SyncRemoteExecution(
            self,
            started.execution_id,
            already_running=started.already_running,
            workflow=started.workflow,
        )

    def get_execution(self, execution_id: ExecutionArg) -> Execution:
        return self._send(SystemCalls.get_execution(execution_id_of(execution_id)))

    def list_executions(
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
        return self._send(
            SystemCalls.list_executions(
                workflow, statuses, max_results, next_token, sort_direction, build
            )
        )

    def iter_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        page_size: int = 100,
        sort_direction: Literal["ASC", "DESC"] | None = None,
        build: str | None = None,
    ) -> Iterator[Execution]:
        """Every matching execution, page after page (``page_size`` per request)."""
        token: str | None = None
        while True:
            page = self.list_executions(
                workflow=workflow,
                statuses=statuses,
                max_results=page_size,
                next_token=token,
                sort_direction=sort_direction,
                build=build,
            )
            yield from page
            token = page.next_token
            if not token:
                return

    def get_execution_history(self, execution_id: ExecutionArg) -> list[HistoryEvent]:
        return self._send(SystemCalls.get_execution_history(execution_id_of(execution_id)))

    def get_execution_logs(
        self, execution_id: str | None = None, *, workflow: WorkflowArg | None = None
    ) -> list[LogEntry]:
        return self._send(SystemCalls.get_execution_logs(execution_id, workflow))

    def send_signal(
        self,
        execution_id: ExecutionArg,
        signal: SignalArg,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> None:
        self._send(
            SystemCalls.send_signal(execution_id_of(execution_id), signal, payload, signal_id)
        )

    def emit_events(self, event: EventArg, *payloads: Any) -> None:
        self._send(SystemCalls.emit_events(event, payloads))

    def send_task_success(self, token: str, result: Any = None) -> None:
        self._send(
            SystemCalls.update_task(
                {"type": "Success", "taskToken": token, "result": to_json(result)},
                "send_task_success",
            )
        )

    def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        self._send(
            SystemCalls.update_task(
                {"type": "Failure", "taskToken": token, "error": error, "message": message},
                "send_task_failure",
            )
        )

    def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        data = self._send(
            SystemCalls.update_task(
                {"type": "Heartbeat", "taskToken": token, "details": to_json(details)},
                "send_task_heartbeat",
            )
        )
        return heartbeat_cancelled(data)

    def list_workflows(self) -> list[str]:
        return self._send(SystemCalls.list_workflows())

    def call_system(self, name: str, body: Any = None, *, idempotent: bool = False) -> Any:
        """Call the system command ``name`` with ``body`` and return its decoded JSON answer."""
        return self._send(SystemCalls.raw(name, body, idempotent))

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
