"""``EventualClient``: the system commands at ``POST /rpc/_system/{name}``.

The request bodies are those of the TypeScript Eventual's HTTP client (and what
``eventual.core.http.system`` serves): camelCase fields, ``getExecution`` taking the bare
execution id as a JSON string, ``sendSignal`` naming the signal ``signalId``, ``updateTask``
discriminated by ``type``.

:class:`_Calls` builds every request and reads every answer once; :class:`EventualClient` and
:class:`SyncEventualClient` are thin wrappers that send them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Generic, Literal, Protocol, Self, TypeVar, overload

import anyio
import httpx

from eventual.core.definitions import (
    EventDefinition,
    SignalDefinition,
    WorkflowDefinition,
)
from eventual.core.history import HistoryEvent, parse_history
from eventual.core.http.system import execution_from_wire
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.serialization import to_json

from ._core import (
    DEFAULT_TIMEOUT,
    AsyncSender,
    AuthLike,
    Call,
    Retry,
    Settings,
    SyncSender,
    UnexpectedResponse,
    system_path,
)

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741
T = TypeVar("T")
R = TypeVar("R")

WorkflowArg = WorkflowDefinition[Any, Any] | str
SignalArg = SignalDefinition[Any] | str
EventArg = EventDefinition[Any] | str


class HasExecutionId(Protocol):
    """An execution handle or record: anything with an ``execution_id``."""

    @property
    def execution_id(self) -> str: ...


ExecutionArg = str | HasExecutionId


@dataclass(frozen=True)
class ExecutionPage:
    """One page of :meth:`EventualClient.list_executions`; iterate it for the executions."""

    executions: list[Execution]
    next_token: str | None = None

    def __iter__(self) -> Iterator[Execution]:
        return iter(self.executions)

    def __len__(self) -> int:
        return len(self.executions)


@dataclass(frozen=True)
class LogEntry:
    """A log line written by workflow or task code."""

    execution_id: str
    timestamp: datetime
    level: str
    message: str


@dataclass(frozen=True)
class StartedExecution:
    execution_id: str
    already_running: bool = False
    workflow: WorkflowDefinition[Any, Any] | None = field(default=None, compare=False)


def _name(obj: Any, kind: str) -> str:
    if isinstance(obj, str):
        return obj
    name = getattr(obj, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"expected a {kind} definition or a {kind} name, got {obj!r}")
    return name


def _execution_id(execution: Any) -> str:
    if isinstance(execution, str):
        return execution
    value = getattr(execution, "execution_id", None)
    if not isinstance(value, str):
        raise TypeError(f"expected an execution id or an execution, got {execution!r}")
    return value


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _typed(execution: Execution, workflow: WorkflowDefinition[Any, Any] | None) -> Execution:
    """The execution with its result built as the workflow's output type, when known."""
    if workflow is None or execution.status is not ExecutionStatus.SUCCEEDED:
        return execution
    try:
        typed = workflow.output_from_json(execution.result)
    except Exception as exc:
        raise UnexpectedResponse(
            f"execution {execution.id!r} succeeded with {str(execution.result)[:200]!r}, which "
            f"is not a valid output of workflow {workflow.name!r}: {exc}"
        ) from None
    return execution.model_copy(update={"result": typed})


def _dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UnexpectedResponse(f"{what}: expected a JSON object, got {str(data)[:200]!r}")
    return data


class _Calls:
    """Every system command as a :class:`Call`: request body in, typed result out."""

    @staticmethod
    def start_execution(
        workflow: WorkflowArg,
        input: Any,
        execution_name: str | None,
        timeout: float | timedelta | None,
    ) -> Call[StartedExecution]:
        name = _name(workflow, "workflow")
        body: dict[str, Any] = {
            "workflow": name,
            "input": workflow.input_to_json(input)
            if isinstance(workflow, WorkflowDefinition)
            else to_json(input),
        }
        if execution_name is not None:
            body["executionName"] = execution_name
        seconds = _seconds(timeout)
        if seconds is not None:
            body["timeout"] = {"type": "Duration", "dur": seconds, "unit": "seconds"}
        what = f"start_execution({name!r})"
        definition = workflow if isinstance(workflow, WorkflowDefinition) else None

        def read(data: Any) -> StartedExecution:
            d = _dict(data, what)
            return StartedExecution(
                execution_id=str(d["executionId"]),
                already_running=bool(d.get("alreadyRunning", False)),
                workflow=definition,
            )

        # Starting with a name is idempotent: the same name and input return the same run.
        return Call(
            system_path("startExecution"),
            body,
            read,
            idempotent=execution_name is not None,
            what=what,
        )

    @staticmethod
    def get_execution(
        execution_id: str, workflow: WorkflowDefinition[Any, Any] | None = None
    ) -> Call[Execution]:
        what = f"get_execution({execution_id!r})"

        def read(data: Any) -> Execution:
            return _typed(execution_from_wire(_dict(data, what)), workflow)

        return Call(system_path("getExecution"), execution_id, read, idempotent=True, what=what)

    @staticmethod
    def list_executions(
        workflow: WorkflowArg | None,
        statuses: Sequence[ExecutionStatus | str] | None,
        max_results: int | None,
        next_token: str | None,
        sort_direction: Literal["ASC", "DESC"] | None,
    ) -> Call[ExecutionPage]:
        body: dict[str, Any] = {}
        if workflow is not None:
            body["workflowName"] = _name(workflow, "workflow")
        if statuses:
            body["statuses"] = [ExecutionStatus(s).value for s in statuses]
        if max_results is not None:
            body["maxResults"] = max_results
        if next_token is not None:
            body["nextToken"] = next_token
        if sort_direction is not None:
            body["sortDirection"] = sort_direction
        what = "list_executions"

        def read(data: Any) -> ExecutionPage:
            d = _dict(data, what)
            return ExecutionPage(
                [execution_from_wire(e) for e in d.get("executions", [])], d.get("nextToken")
            )

        return Call(system_path("listExecutions"), body, read, idempotent=True, what=what)

    @staticmethod
    def get_execution_history(execution_id: str) -> Call[list[HistoryEvent]]:
        what = f"get_execution_history({execution_id!r})"

        def read(data: Any) -> list[HistoryEvent]:
            return parse_history(_dict(data, what).get("events", []))

        return Call(
            system_path("getExecutionHistory"),
            {"executionId": execution_id},
            read,
            idempotent=True,
            what=what,
        )

    @staticmethod
    def get_execution_logs(
        execution_id: str | None, workflow: WorkflowArg | None
    ) -> Call[list[LogEntry]]:
        body: dict[str, Any] = {}
        if execution_id is not None:
            body["executionId"] = execution_id
        if workflow is not None:
            body["workflowName"] = _name(workflow, "workflow")
        what = "get_execution_logs"

        def read(data: Any) -> list[LogEntry]:
            return [
                LogEntry(
                    execution_id=str(e.get("source", "")),
                    timestamp=datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")),
                    level=str(e.get("level", "")),
                    message=str(e.get("message", "")),
                )
                for e in _dict(data, what).get("events", [])
            ]

        return Call(system_path("getExecutionLogs"), body, read, idempotent=True, what=what)

    @staticmethod
    def send_signal(
        execution_id: str, signal: SignalArg, payload: Any, signal_id: str | None
    ) -> Call[None]:
        name = _name(signal, "signal")
        data = (
            signal.payload_to_json(payload)
            if isinstance(signal, SignalDefinition)
            else to_json(payload)
        )
        body = {
            "executionId": execution_id,
            "signalId": name,
            "payload": data,
            # A dedup id makes the signal safe to retry: the execution keeps one copy.
            "id": signal_id or str(uuid.uuid4()),
        }
        return Call(
            system_path("sendSignal"),
            body,
            lambda _: None,
            idempotent=True,
            what=f"send_signal({execution_id!r}, {name!r})",
        )

    @staticmethod
    def emit_events(event: EventArg, payloads: Sequence[Any]) -> Call[None]:
        name = _name(event, "event")
        events = [
            {
                "name": name,
                "event": event.payload_to_json(p)
                if isinstance(event, EventDefinition)
                else to_json(p),
            }
            for p in payloads
        ]
        return Call(
            system_path("emitEvents"),
            {"events": events},
            lambda _: None,
            idempotent=False,
            what=f"emit_events({name!r})",
        )

    @staticmethod
    def update_task(body: dict[str, Any], what: str) -> Call[Any]:
        # Completing a task twice is harmless: the execution drops the duplicate result.
        return Call(system_path("updateTask"), body, lambda d: d, idempotent=True, what=what)

    @staticmethod
    def raw(name: str, body: Any, idempotent: bool) -> Call[Any]:
        if not name or "/" in name:
            raise ValueError(f"not a system command name: {name!r}")
        return Call(
            system_path(name), {} if body is None else body, lambda d: d, idempotent, what=name
        )

    @staticmethod
    def list_workflows() -> Call[list[str]]:
        def read(data: Any) -> list[str]:
            return [str(w["name"]) for w in _dict(data, "list_workflows").get("workflows", [])]

        return Call(system_path("listWorkflows"), {}, read, idempotent=True, what="list_workflows")


def _heartbeat_result(data: Any) -> bool:
    return bool(data.get("cancelled")) if isinstance(data, dict) else False


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
        return await self.client._send(_Calls.get_execution(self.execution_id, self.workflow))

    async def wait(self, timeout: float = 60.0, *, interval: float = 0.2) -> Execution:
        """Poll until the execution is no longer in progress; ``TimeoutError`` after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            execution = await self.get_status()
            if execution.status is not ExecutionStatus.IN_PROGRESS:
                return execution
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"execution {self.execution_id!r} is still in progress after {timeout}s"
                )
            await anyio.sleep(interval)

    async def send_signal(self, signal: SignalArg, payload: Any = None) -> None:
        await self.client.send_signal(self.execution_id, signal, payload)

    async def get_history(self) -> list[HistoryEvent]:
        return await self.client.get_execution_history(self.execution_id)

    def __repr__(self) -> str:
        return f"RemoteExecution({self.execution_id!r})"


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
        return self.client._send(_Calls.get_execution(self.execution_id, self.workflow))

    def wait(self, timeout: float = 60.0, *, interval: float = 0.2) -> Execution:
        """Poll until the execution is no longer in progress; ``TimeoutError`` after
        ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get_status()
            if execution.status is not ExecutionStatus.IN_PROGRESS:
                return execution
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"execution {self.execution_id!r} is still in progress after {timeout}s"
                )
            time.sleep(interval)

    def send_signal(self, signal: SignalArg, payload: Any = None) -> None:
        self.client.send_signal(self.execution_id, signal, payload)

    def get_history(self) -> list[HistoryEvent]:
        return self.client.get_execution_history(self.execution_id)

    def __repr__(self) -> str:
        return f"SyncRemoteExecution({self.execution_id!r})"


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
        started = await self._send(_Calls.start_execution(workflow, input, execution_name, timeout))
        return RemoteExecution(
            self,
            started.execution_id,
            already_running=started.already_running,
            workflow=started.workflow,
        )

    async def get_execution(self, execution_id: ExecutionArg) -> Execution:
        return await self._send(_Calls.get_execution(_execution_id(execution_id)))

    async def list_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
        sort_direction: Literal["ASC", "DESC"] | None = None,
    ) -> ExecutionPage:
        return await self._send(
            _Calls.list_executions(workflow, statuses, max_results, next_token, sort_direction)
        )

    async def iter_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        page_size: int = 100,
        sort_direction: Literal["ASC", "DESC"] | None = None,
    ) -> AsyncIterator[Execution]:
        """Every matching execution, page after page (``page_size`` per request), newest
        first unless ``sort_direction="ASC"``: ``async for e in client.iter_executions()``."""
        token: str | None = None
        while True:
            page = await self.list_executions(
                workflow=workflow,
                statuses=statuses,
                max_results=page_size,
                next_token=token,
                sort_direction=sort_direction,
            )
            for execution in page:
                yield execution
            token = page.next_token
            if not token:
                return

    async def get_execution_history(self, execution_id: ExecutionArg) -> list[HistoryEvent]:
        """The recorded history events of an execution, oldest first."""
        return await self._send(_Calls.get_execution_history(_execution_id(execution_id)))

    async def get_execution_logs(
        self, execution_id: str | None = None, *, workflow: WorkflowArg | None = None
    ) -> list[LogEntry]:
        return await self._send(_Calls.get_execution_logs(execution_id, workflow))

    async def send_signal(
        self,
        execution_id: ExecutionArg,
        signal: SignalArg,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> None:
        await self._send(
            _Calls.send_signal(_execution_id(execution_id), signal, payload, signal_id)
        )

    async def emit_events(self, event: EventArg, *payloads: Any) -> None:
        await self._send(_Calls.emit_events(event, payloads))

    async def send_task_success(self, token: str, result: Any = None) -> None:
        await self._send(
            _Calls.update_task(
                {"type": "Success", "taskToken": token, "result": to_json(result)},
                "send_task_success",
            )
        )

    async def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        await self._send(
            _Calls.update_task(
                {"type": "Failure", "taskToken": token, "error": error, "message": message},
                "send_task_failure",
            )
        )

    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        """Returns True if the task attempt was cancelled (it timed out)."""
        data = await self._send(
            _Calls.update_task(
                {"type": "Heartbeat", "taskToken": token, "details": to_json(details)},
                "send_task_heartbeat",
            )
        )
        return _heartbeat_result(data)

    async def list_workflows(self) -> list[str]:
        return await self._send(_Calls.list_workflows())

    async def call_system(self, name: str, body: Any = None, *, idempotent: bool = False) -> Any:
        """Call the system command ``name`` with ``body`` (JSON) and return its decoded JSON
        answer as is: for a command this client has no method for, or to pass answers on
        unchanged (a proxy). ``idempotent=True`` lets it be retried like the reads."""
        return await self._send(_Calls.raw(name, body, idempotent))

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
        started = self._send(_Calls.start_execution(workflow, input, execution_name, timeout))
        return SyncRemoteExecution(
            self,
            started.execution_id,
            already_running=started.already_running,
            workflow=started.workflow,
        )

    def get_execution(self, execution_id: ExecutionArg) -> Execution:
        return self._send(_Calls.get_execution(_execution_id(execution_id)))

    def list_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
        sort_direction: Literal["ASC", "DESC"] | None = None,
    ) -> ExecutionPage:
        return self._send(
            _Calls.list_executions(workflow, statuses, max_results, next_token, sort_direction)
        )

    def iter_executions(
        self,
        *,
        workflow: WorkflowArg | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        page_size: int = 100,
        sort_direction: Literal["ASC", "DESC"] | None = None,
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
            )
            yield from page
            token = page.next_token
            if not token:
                return

    def get_execution_history(self, execution_id: ExecutionArg) -> list[HistoryEvent]:
        return self._send(_Calls.get_execution_history(_execution_id(execution_id)))

    def get_execution_logs(
        self, execution_id: str | None = None, *, workflow: WorkflowArg | None = None
    ) -> list[LogEntry]:
        return self._send(_Calls.get_execution_logs(execution_id, workflow))

    def send_signal(
        self,
        execution_id: ExecutionArg,
        signal: SignalArg,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> None:
        self._send(_Calls.send_signal(_execution_id(execution_id), signal, payload, signal_id))

    def emit_events(self, event: EventArg, *payloads: Any) -> None:
        self._send(_Calls.emit_events(event, payloads))

    def send_task_success(self, token: str, result: Any = None) -> None:
        self._send(
            _Calls.update_task(
                {"type": "Success", "taskToken": token, "result": to_json(result)},
                "send_task_success",
            )
        )

    def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        self._send(
            _Calls.update_task(
                {"type": "Failure", "taskToken": token, "error": error, "message": message},
                "send_task_failure",
            )
        )

    def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        data = self._send(
            _Calls.update_task(
                {"type": "Heartbeat", "taskToken": token, "details": to_json(details)},
                "send_task_heartbeat",
            )
        )
        return _heartbeat_result(data)

    def list_workflows(self) -> list[str]:
        return self._send(_Calls.list_workflows())

    def call_system(self, name: str, body: Any = None, *, idempotent: bool = False) -> Any:
        """Call the system command ``name`` with ``body`` and return its decoded JSON answer."""
        return self._send(_Calls.raw(name, body, idempotent))

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
