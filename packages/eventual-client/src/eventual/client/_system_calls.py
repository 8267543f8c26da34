"""The system commands as requests and answers: the wire format of ``POST /rpc/_system/{name}``.

The request bodies and answers are those of the TypeScript Eventual 0.57's HTTP client (and
what ``eventual.core.http.system`` serves): camelCase fields, ``getExecution`` taking the bare
execution id as a JSON string, ``sendSignal`` naming the signal ``signalId``, ``updateTask``
discriminated by ``type``, history events in the original's ``WorkflowEvent`` shape, decoded
into our typed events by :mod:`eventual.core.wire`.

:class:`SystemCalls` builds every request and reads every answer once, into the result types
defined here (:class:`ExecutionPage`, :class:`LogEntry`); the async and sync clients only send
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import httpx

from eventual.core.definitions import (
    EventDefinition,
    SignalDefinition,
    WorkflowDefinition,
)
from eventual.core.history import HistoryEvent
from eventual.core.http.api import HttpError
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.serialization import to_json
from eventual.core.wire import WireError, events_from_wire, execution_from_wire

from ._core import Call, UnexpectedResponse, system_path

# One waitExecution request waits at most this long (the server caps it at 25 s too).
WAIT_STEP = 10.0


def wait_step(remaining: float, client_timeout: httpx.Timeout) -> float:
    """How long the next waitExecution request may hold: within what is left of the caller's
    timeout, and well within the client's own read timeout."""
    step = min(WAIT_STEP, max(0.0, remaining))
    if client_timeout.read is not None:
        step = min(step, max(0.0, client_timeout.read - 5.0))
    return step


def wait_unsupported(exc: HttpError) -> bool:
    """Whether the server has no waitExecution (the TypeScript original, an older server):
    the caller then polls getExecution."""
    return exc.status == 404 and exc.name != "ExecutionNotFound"


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


def execution_id_of(execution: Any) -> str:
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


def _wire(decode: Any, data: Any, what: str) -> Any:
    try:
        return decode(data)
    except WireError as exc:
        raise UnexpectedResponse(f"{what}: {exc}") from None


def _dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise UnexpectedResponse(f"{what}: expected a JSON object, got {str(data)[:200]!r}")
    return data


class SystemCalls:
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
            if data is None or data == "":
                # The original's answer for an unknown id: 200 with no body.
                raise HttpError(404, f"no execution {execution_id!r}", name="ExecutionNotFound")
            return _typed(_wire(execution_from_wire, _dict(data, what), what), workflow)

        return Call(system_path("getExecution"), execution_id, read, idempotent=True, what=what)

    @staticmethod
    def wait_execution(
        execution_id: str, timeout: float, workflow: WorkflowDefinition[Any, Any] | None = None
    ) -> Call[Execution]:
        """Ours: the execution once it ended, or as it is after ``timeout`` seconds."""
        what = f"wait_execution({execution_id!r})"
        got = SystemCalls.get_execution(execution_id, workflow)
        body = {"executionId": execution_id, "timeout": timeout}
        return Call(system_path("waitExecution"), body, got.read, idempotent=True, what=what)

    @staticmethod
    def list_executions(
        workflow: WorkflowArg | None,
        statuses: Sequence[ExecutionStatus | str] | None,
        max_results: int | None,
        next_token: str | None,
        sort_direction: Literal["ASC", "DESC"] | None,
        build: str | None = None,
    ) -> Call[ExecutionPage]:
        body: dict[str, Any] = {}
        if build is not None:
            body["build"] = build
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
                [_wire(execution_from_wire, e, what) for e in d.get("executions", [])],
                d.get("nextToken"),
            )

        return Call(system_path("listExecutions"), body, read, idempotent=True, what=what)

    @staticmethod
    def get_execution_history(execution_id: str) -> Call[list[HistoryEvent]]:
        """The recorded events in their recorded order: ``getExecutionWorkflowHistory`` (the
        replay history; ``getExecutionHistory`` lists them by time, paged)."""
        what = f"get_execution_history({execution_id!r})"

        def read(data: Any) -> list[HistoryEvent]:
            return _wire(events_from_wire, _dict(data, what).get("events", []), what)

        return Call(
            system_path("getExecutionWorkflowHistory"),
            execution_id,
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


def heartbeat_cancelled(data: Any) -> bool:
    return bool(data.get("cancelled")) if isinstance(data, dict) else False
