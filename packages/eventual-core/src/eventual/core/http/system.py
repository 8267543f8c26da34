"""The system commands: ``POST /rpc/_system/{name}``.

Request and response bodies follow the TypeScript Eventual's shapes, so its HTTP clients can
drive a Python service: camelCase fields, ``getExecution`` taking the bare execution id as a
JSON string, ``sendSignal`` naming the signal ``signalId`` (and the dedup id ``id``),
``updateTask`` discriminated by ``type`` (``Success``/``Failure``/``Heartbeat``) with a
``taskToken``. The package README lists every command with its body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import ExecutionNotFound
from ..history import HistoryEvent, ParentRef, event_dict
from ..models import Execution, ExecutionStatus
from .api import HttpError

if TYPE_CHECKING:
    from .._context import RuntimeClient
    from ..service import Service

SystemHandler = Callable[[Any], Awaitable[Any]]

_UNITS = {
    "second": 1,
    "seconds": 1,
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
    "year": 365.25 * 86400,
    "years": 365.25 * 86400,
}


def execution_to_wire(execution: Execution) -> dict[str, Any]:
    """An execution as the TypeScript Eventual's clients read it (camelCase)."""
    out: dict[str, Any] = {
        "id": execution.id,
        "status": execution.status.value,
        "workflowName": execution.workflow,
        "startTime": _iso(execution.start_time),
        "input": execution.input,
    }
    if execution.end_time is not None:
        out["endTime"] = _iso(execution.end_time)
    if execution.status is ExecutionStatus.SUCCEEDED:
        out["result"] = execution.result
    if execution.status is ExecutionStatus.FAILED:
        out["error"] = execution.error
        out["message"] = execution.message
    if execution.parent is not None:
        out["parent"] = {"executionId": execution.parent.execution_id, "seq": execution.parent.seq}
    if execution.timeout_at is not None:
        out["timeoutTime"] = _iso(execution.timeout_at)
    if execution.build is not None:
        out["build"] = execution.build  # the service build it started on (ours)
    return out


def execution_from_wire(data: dict[str, Any]) -> Execution:
    parent = data.get("parent")
    return Execution(
        id=data["id"],
        workflow=data.get("workflowName") or data["id"].split("/", 1)[0],
        status=ExecutionStatus(data["status"]),
        input=data.get("input"),
        result=data.get("result"),
        error=data.get("error"),
        message=data.get("message"),
        start_time=data["startTime"],
        end_time=data.get("endTime"),
        parent=ParentRef(execution_id=parent["executionId"], seq=parent["seq"]) if parent else None,
        timeout_at=data.get("timeoutTime"),
        build=data.get("build"),
    )


def events_to_wire(events: list[HistoryEvent]) -> list[Any]:
    return [event_dict(e) for e in events]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def parse_timeout(value: Any) -> timedelta | None:
    """A timeout as seconds, ``{"type": "Duration", "dur": n, "unit": "minutes"}`` or
    ``{"type": "Time", "isoDate": "..."}`` (relative to now)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, dict):
        if value.get("type") == "Duration":
            unit = _UNITS.get(str(value.get("unit", "seconds")))
            if unit is None:
                raise HttpError(
                    400, f"unknown duration unit {value.get('unit')!r}", name="BadRequest"
                )
            return timedelta(seconds=float(value.get("dur", 0)) * unit)
        if value.get("type") == "Time":
            from datetime import UTC

            when = datetime.fromisoformat(str(value["isoDate"]).replace("Z", "+00:00"))
            return when - datetime.now(UTC)
    raise HttpError(400, f"cannot read timeout {value!r}", name="BadRequest")


def _require(body: Any, field: str) -> Any:
    if not isinstance(body, dict) or field not in body:
        raise HttpError(400, f"the request body needs a {field!r} field", name="BadRequest")
    return body[field]


def _obj(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HttpError(400, "this system command takes a JSON object", name="BadRequest")
    return body


def _execution_id(body: Any) -> str:
    if isinstance(body, str):
        return body
    value = _require(body, "executionId")
    if not isinstance(value, str):
        raise HttpError(400, "executionId must be a string", name="BadRequest")
    return value


class SystemCommands:
    """The system command handlers for one service and runtime."""

    def __init__(self, service: Service, runtime: RuntimeClient) -> None:
        self.service = service
        self.runtime = runtime
        self._handlers: dict[str, SystemHandler] = {
            "startExecution": self.start_execution,
            "getExecution": self.get_execution,
            "listExecutions": self.list_executions,
            "getExecutionHistory": self.get_execution_history,
            "getExecutionWorkflowHistory": self.get_execution_history,
            "getExecutionLogs": self.get_execution_logs,
            "sendSignal": self.send_signal,
            "emitEvents": self.emit_events,
            "updateTask": self.update_task,
            "listWorkflows": self.list_workflows,
        }

    def get(self, name: str) -> SystemHandler | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)

    async def start_execution(self, body: Any) -> dict[str, Any]:
        workflow = _require(body, "workflow")
        if workflow not in self.service.workflows:
            raise HttpError(
                404,
                f"workflow {workflow!r} does not exist in service {self.service.name!r}; "
                f"it defines: {', '.join(sorted(self.service.workflows)) or 'none'}",
                name="WorkflowNotFound",
            )
        name = body.get("executionName")
        timeout = parse_timeout(body.get("timeout"))
        execution_id_guess = f"{workflow}/{name}" if name else None
        existed = False
        if execution_id_guess is not None:
            try:
                await self.runtime.get_execution(execution_id_guess)
                existed = True
            except ExecutionNotFound:
                existed = False
        execution_id = await self.runtime.start_execution(
            workflow, body.get("input"), execution_name=name, timeout=timeout
        )
        return {"executionId": execution_id, "alreadyRunning": existed}

    async def get_execution(self, body: Any) -> dict[str, Any]:
        return execution_to_wire(await self.runtime.get_execution(_execution_id(body)))

    async def list_executions(self, body: Any) -> dict[str, Any]:
        body = _obj(body)
        statuses = body.get("statuses")
        try:
            parsed = [ExecutionStatus(s) for s in statuses] if statuses else None
        except ValueError:
            raise HttpError(
                400,
                f"statuses must be among IN_PROGRESS, SUCCEEDED, FAILED; got {statuses!r}",
                name="BadRequest",
            ) from None
        limit = body.get("maxResults") or 100
        if isinstance(limit, float) and limit.is_integer():  # JSON's 100.0 is an integer
            limit = int(limit)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise HttpError(400, "maxResults must be a positive integer", name="BadRequest")
        token_in = body.get("nextToken")
        if token_in is not None and not isinstance(token_in, str):
            raise HttpError(400, "nextToken must be a string", name="BadRequest")
        build = body.get("build")
        if build is not None and not isinstance(build, str):
            raise HttpError(400, "build must be a string", name="BadRequest")
        try:
            executions, token = await self.runtime.list_executions(
                workflow=body.get("workflowName") or body.get("workflow"),
                statuses=parsed,
                limit=min(limit, 1000),
                next_token=token_in,
                build=build,
            )
        except ValueError:
            raise HttpError(
                400,
                "nextToken is not one this service returned; pass the token of the last page",
                name="BadRequest",
            ) from None
        if body.get("sortDirection") == "ASC":
            executions = list(reversed(executions))
        out: dict[str, Any] = {"executions": [execution_to_wire(e) for e in executions]}
        if token:
            out["nextToken"] = token
        return out

    async def get_execution_history(self, body: Any) -> dict[str, Any]:
        events = await self.runtime.get_history(_execution_id(body))
        wire = events_to_wire(events)
        if isinstance(body, dict) and body.get("sortDirection") == "DESC":
            wire.reverse()
        return {"events": wire}

    async def get_execution_logs(self, body: Any) -> dict[str, Any]:
        body = _obj(body)
        get_logs = getattr(self.runtime, "get_logs", None)
        if get_logs is None:
            return {"events": []}
        entries = await get_logs(body.get("executionId"), workflow=body.get("workflowName"))
        return {
            "events": [
                {
                    "time": e.timestamp.timestamp() * 1000,
                    "timestamp": _iso(e.timestamp),
                    "level": e.level,
                    "message": e.message,
                    "source": execution_id,
                }
                for execution_id, e in entries
            ]
        }

    async def send_signal(self, body: Any) -> None:
        body = _obj(body)
        execution_id = _execution_id(body)
        signal = body.get("signalId") or body.get("signal")
        if not isinstance(signal, str):
            raise HttpError(
                400, "the request body needs the signal name in 'signalId'", name="BadRequest"
            )
        await self.runtime.send_signal(
            execution_id, signal, body.get("payload"), signal_id=body.get("id")
        )

    async def emit_events(self, body: Any) -> None:
        events = _require(body, "events")
        if not isinstance(events, list):
            raise HttpError(400, "events must be a list of {name, event}", name="BadRequest")
        by_name: dict[str, list[Any]] = {}
        for e in events:
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise HttpError(400, "each event needs a 'name' and an 'event'", name="BadRequest")
            by_name.setdefault(e["name"], []).append(e.get("event"))
        for name, payloads in by_name.items():
            await self.runtime.emit_events(name, payloads)

    async def update_task(self, body: Any) -> Any:
        kind = _require(body, "type")
        token = _require(body, "taskToken")
        if kind == "Success":
            await self.runtime.send_task_success(token, body.get("result"))
            return None
        if kind == "Failure":
            await self.runtime.send_task_failure(
                token, str(body.get("error") or "Error"), str(body.get("message") or "")
            )
            return None
        if kind == "Heartbeat":
            cancelled = await self.runtime.send_task_heartbeat(token, body.get("details"))
            return {"cancelled": cancelled}
        raise HttpError(
            400,
            f"updateTask type must be Success, Failure or Heartbeat, not {kind!r}",
            name="BadRequest",
        )

    async def list_workflows(self, body: Any) -> dict[str, Any]:
        return {"workflows": [{"name": n} for n in sorted(self.service.workflows)]}
