"""The system commands: ``POST /rpc/_system/{name}``.

Requests and answers are the TypeScript Eventual 0.57's (``@eventual/client``'s
``HttpEventualClient`` drives a Python service unchanged), encoded by :mod:`eventual.core.wire`:
camelCase fields, ``getExecution`` and ``getExecutionWorkflowHistory`` taking the bare
execution id as a JSON string, ``sendSignal`` naming the signal ``signalId`` (and the dedup id
``id``), ``updateTask`` discriminated by ``type`` (``Success``/``Failure``/``Heartbeat``) with
a ``taskToken``, paging by ``maxResults``/``nextToken``/``sortDirection`` (``ASC`` by default).
As in the original, an unknown execution is a 200 with an empty body for ``getExecution`` and
an empty event list for the history calls, and the commands that return nothing answer 200
with an empty body. ``docs/wire.md`` maps every shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..definitions import timeout_problem
from ..errors import ExecutionNotFound, ServiceError, check_valid
from ..history import HistoryEvent
from ..models import ExecutionStatus
from ..names import id_problem
from ..wire import (
    DURATION_UNITS,
    WireError,
    events_to_wire,
    execution_from_wire,
    execution_to_wire,
    iso,
    page_start,
    page_token,
    sorted_for_listing,
)
from .api import HttpError

if TYPE_CHECKING:
    from .._context import RuntimeClient
    from ..service import Service

__all__ = [
    "SystemCommands",
    "events_to_wire",
    "execution_from_wire",
    "execution_to_wire",
    "parse_timeout",
]

SystemHandler = Callable[[Any], Awaitable[Any]]

_iso = iso


def invalid(message: str, *path: str | int, code: str = "invalid_type") -> HttpError:
    """A 400 whose ``data`` is the issue list (one issue), as the original's validation."""
    return HttpError(
        400,
        message,
        name="ValidationError",
        details=[{"code": code, "path": list(path), "message": message}],
    )


def parse_timeout(value: Any) -> timedelta | None:
    """A timeout as seconds, ``{"type": "Duration", "dur": n, "unit": "minutes"}`` or
    ``{"type": "Time", "isoDate": "..."}`` (relative to now)."""
    if value is None:
        return None
    if _is_number(value):
        return _seconds(value, "timeout")
    if isinstance(value, dict):
        if value.get("type") == "Duration":
            unit = DURATION_UNITS.get(str(value.get("unit", "seconds")))
            if unit is None:
                raise invalid(
                    f"unknown duration unit {value.get('unit')!r}",
                    "timeout",
                    "unit",
                    code="invalid_enum_value",
                )
            dur = value.get("dur", 0)
            if not _is_number(dur):
                raise invalid(f"timeout.dur must be a number, got {dur!r}", "timeout", "dur")
            return _seconds(dur * unit, "timeout", "dur")
        if value.get("type") == "Time":
            from datetime import UTC

            from ..wire import parse_time

            try:
                when = parse_time(value.get("isoDate"), "timeout.isoDate")
            except WireError as exc:
                raise invalid(str(exc), "timeout", "isoDate", code="invalid_string") from None
            return when - datetime.now(UTC)
    raise invalid(f"cannot read timeout {value!r}", "timeout", code="invalid_union")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seconds(value: float, *path: str) -> timedelta:
    problem = timeout_problem(value)
    if problem is not None:
        raise invalid(problem, *path, code="too_big" if value > 0 else "too_small")
    return timedelta(seconds=value)


def _require(body: Any, field: str, kind: type = str) -> Any:
    if not isinstance(body, dict) or body.get(field) is None:
        raise invalid(f"the request body needs a {field!r} field", field)
    value = body[field]
    if not isinstance(value, kind):
        raise invalid(f"{field} must be a {kind.__name__}, got {value!r}", field)
    return value


def _obj(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("this system command takes a JSON object")
    return body


def _execution_id(body: Any) -> str:
    if isinstance(body, str):
        return _checked_id(body)
    return _checked_id(_require(body, "executionId"), "executionId")


def _checked_id(execution_id: str, *path: str) -> str:
    """A hostile id (control characters, ``..`` segments) is refused before any store sees it."""
    problem = id_problem(execution_id)
    if problem is not None:
        raise invalid(problem, *path, code="custom")
    return execution_id


MAX_PAGE = 10_000
# listExecutions' search reads at most this many records per request; countExecutions on a
# store that cannot count reads at most this many.
SEARCH_SCAN = 5_000
COUNT_SCAN = 10_000

# waitExecution: how long one request waits by default and at most (an API Gateway HTTP API
# integration ends at 30 s), and how many may wait at once in one server.
DEFAULT_WAIT = 20.0
MAX_WAIT = 25.0
MAX_WAITERS = 1000


def _max_results(body: dict[str, Any], default: int) -> int:
    limit = body.get("maxResults")
    if limit is None:
        return default
    if isinstance(limit, float) and limit.is_integer():  # JSON's 100.0 is an integer
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise invalid(f"maxResults must be a positive integer, got {limit!r}", "maxResults")
    # A page never holds more than MAX_PAGE items, however many are asked for: the
    # answer's nextToken goes on from there (the client pages on, as it always must).
    return min(limit, MAX_PAGE)


def _descending(body: dict[str, Any]) -> bool:
    direction = body.get("sortDirection")
    if direction is None or direction == "ASC":
        return False
    if direction == "DESC":
        return True
    raise invalid(
        f"sortDirection must be 'ASC' or 'DESC', got {direction!r}",
        "sortDirection",
        code="invalid_enum_value",
    )


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    """``body[field]``: absent (``None``) or a string; anything else is a 400 naming it."""
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{field} must be a string", field)
    return value


def _token(body: dict[str, Any]) -> str | None:
    token = body.get("nextToken")
    if token is not None and not isinstance(token, str):
        raise invalid("nextToken must be a string", "nextToken")
    return token


class SystemCommands:
    """The system command handlers for one service and runtime.

    A handler returns the answer's JSON, ``None`` (a 200 with an empty body) or a
    :class:`Response`."""

    def __init__(self, service: Service, runtime: RuntimeClient) -> None:
        self.service = service
        self.runtime = runtime
        self._waiting = 0
        self._handlers: dict[str, SystemHandler] = {
            "startExecution": self.start_execution,
            "getExecution": self.get_execution,
            "waitExecution": self.wait_execution,
            "listExecutions": self.list_executions,
            "getExecutionHistory": self.get_execution_history,
            "getExecutionWorkflowHistory": self.get_execution_workflow_history,
            "getExecutionLogs": self.get_execution_logs,
            "sendSignal": self.send_signal,
            "emitEvents": self.emit_events,
            "updateTask": self.update_task,
            "listWorkflows": self.list_workflows,
            "countExecutions": self.count_executions,
            "getServiceSpec": self.get_service_spec,
            "executeTransaction": self.execute_transaction,
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
        if name is not None and not isinstance(name, str):
            raise invalid(f"executionName must be a string, got {name!r}", "executionName")
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

    async def wait_execution(self, body: Any) -> Any:
        """Ours (the original has none): ``{executionId, timeout?}``, answered as
        ``getExecution`` once the execution is no longer in progress, or as it is after
        ``timeout`` seconds (default :data:`DEFAULT_WAIT`, at most :data:`MAX_WAIT`), so a
        client waits with one request per ``timeout`` instead of polling."""
        body = {"executionId": body} if isinstance(body, str) else _obj(body)
        execution_id = _execution_id(body)
        timeout = body.get("timeout", DEFAULT_WAIT)
        if not _is_number(timeout) or timeout < 0:
            raise invalid(f"timeout must be a number of seconds, got {timeout!r}", "timeout")
        timeout = min(float(timeout), MAX_WAIT)
        if self._waiting >= MAX_WAITERS:
            raise HttpError(
                503,
                f"{MAX_WAITERS} requests are waiting for executions already; retry in a "
                "moment, or poll getExecution",
                name="TooManyWaiters",
            )
        self._waiting += 1
        try:
            wait = getattr(self.runtime, "wait_execution", None)
            if wait is not None:
                execution = await wait(execution_id, timeout)
            else:  # a runtime that cannot be woken: poll it
                execution = await self._poll(execution_id, timeout)
        except ExecutionNotFound:
            return None  # as getExecution: an empty 200
        finally:
            self._waiting -= 1
        return execution_to_wire(execution)

    async def _poll(self, execution_id: str, timeout: float) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            execution = await self.runtime.get_execution(execution_id)
            remaining = deadline - loop.time()
            if execution.status is not ExecutionStatus.IN_PROGRESS or remaining <= 0:
                return execution
            await asyncio.sleep(min(0.5, remaining))

    async def get_execution(self, body: Any) -> Any:
        # The original takes the bare id as a JSON string; ``{"executionId": id}`` is read too.
        try:
            return execution_to_wire(await self.runtime.get_execution(_execution_id(body)))
        except ExecutionNotFound:
            return None  # the original's ``undefined``: 200, no body

    async def list_executions(self, body: Any) -> dict[str, Any]:
        body = _obj(body)
        statuses = body.get("statuses")
        try:
            parsed = [ExecutionStatus(s) for s in statuses] if statuses else None
        except (ValueError, TypeError):
            raise invalid(
                f"statuses must be among IN_PROGRESS, SUCCEEDED, FAILED; got {statuses!r}",
                "statuses",
                code="invalid_enum_value",
            ) from None
        workflow = _optional_str(body, "workflowName")
        build = _optional_str(body, "build")
        search = _optional_str(body, "search")
        limit = _max_results(body, 100)
        token = _token(body)
        ascending = not _descending(body)
        scanned = 0
        try:
            if not search:
                executions, token = await self.runtime.list_executions(
                    workflow=workflow,
                    statuses=parsed,
                    build=build,
                    limit=limit,
                    next_token=token,
                    ascending=ascending,
                )
            else:
                # Ours: the executions whose id (``workflow/name``) contains ``search``, any
                # case. At most SEARCH_SCAN records are read per request; the answer's
                # nextToken (and ``scanned``) lets the caller go on through the rest.
                needle = search.casefold()
                executions = []
                while len(executions) < limit and scanned < SEARCH_SCAN:
                    start = token
                    page, token = await self.runtime.list_executions(
                        workflow=workflow,
                        statuses=parsed,
                        build=build,
                        limit=min(1000, SEARCH_SCAN - scanned),
                        next_token=start,
                        ascending=ascending,
                    )
                    for i, e in enumerate(page):
                        if needle in e.id.casefold():
                            executions.append(e)
                            if len(executions) == limit and i + 1 < len(page):
                                # Full in the middle of a page: the token that goes on
                                # right after this one (tokens are opaque; list up to it).
                                _, token = await self.runtime.list_executions(
                                    workflow=workflow,
                                    statuses=parsed,
                                    build=build,
                                    limit=i + 1,
                                    next_token=start,
                                    ascending=ascending,
                                )
                                page = page[: i + 1]
                                break
                    scanned += len(page)
                    if not token:
                        break
        except ValueError:
            raise invalid(
                "nextToken is not one this service returned; pass the token of the last page",
                "nextToken",
                code="custom",
            ) from None
        out: dict[str, Any] = {"executions": [execution_to_wire(e) for e in executions]}
        if token:
            out["nextToken"] = token
        if search:
            out["scanned"] = scanned
        return out

    async def count_executions(self, body: Any) -> dict[str, Any]:
        """Ours: how many executions there are per status, ``{workflowName?, build?}``."""
        body = _obj(body)
        workflow = _optional_str(body, "workflowName")
        build = _optional_str(body, "build")
        store = getattr(getattr(self.runtime, "ports", None), "executions", None)
        count = getattr(store, "count", None)
        counts = {s.value: 0 for s in ExecutionStatus}
        capped = False
        if count is not None:
            counts.update(await count(workflow=workflow, build=build))
        else:  # a store that cannot count: count a bounded listing
            token: str | None = None
            seen = 0
            while True:
                page, token = await self.runtime.list_executions(
                    workflow=workflow, build=build, limit=1000, next_token=token
                )
                for e in page:
                    counts[e.status.value] += 1
                seen += len(page)
                if not token:
                    break
                if seen >= COUNT_SCAN:
                    capped = True
                    break
        out: dict[str, Any] = {"counts": counts, "total": sum(counts.values())}
        if capped:
            out["capped"] = True
        return out

    async def get_service_spec(self, body: Any) -> dict[str, Any]:
        """Ours: the service's spec (its workflows, commands, tasks, events, signals and
        subscriptions with their schemas), as ``python -m eventual.core.spec`` prints it."""
        from ..spec import build_spec

        return build_spec(self.service)

    async def _history(self, execution_id: str) -> list[HistoryEvent]:
        try:
            return await self.runtime.get_history(execution_id)
        except ExecutionNotFound:
            return []  # as the original: no events, not an error

    async def get_execution_history(self, body: Any) -> dict[str, Any]:
        """The execution's events for display: sorted by time, paged."""
        if isinstance(body, str):
            body = {"executionId": body}
        body = _obj(body)
        execution_id = _execution_id(body)
        limit = _max_results(body, 100)
        descending = _descending(body)
        token = _token(body)
        after = body.get("after")
        if after is not None and not isinstance(after, str):
            raise invalid("after must be an ISO 8601 string", "after")
        try:
            start = page_start(token)
            wire = events_to_wire(await self._history(execution_id))
            if after is not None:
                from ..wire import parse_time

                bound = parse_time(after, "after")
                wire = [e for e in wire if parse_time(e["timestamp"]) > bound]
        except WireError as exc:
            raise invalid(str(exc), "nextToken" if token else "after", code="custom") from None
        ordered = sorted_for_listing(wire, descending=descending)
        page = ordered[start : start + limit]
        out: dict[str, Any] = {"events": page}
        if start + len(page) < len(ordered):
            out["nextToken"] = page_token(start + len(page))
        return out

    async def get_execution_workflow_history(self, body: Any) -> dict[str, Any]:
        """The workflow's replay history: every event, in recorded order, unpaged."""
        return {"events": events_to_wire(await self._history(_execution_id(body)))}

    async def get_execution_logs(self, body: Any) -> dict[str, Any]:
        body = _obj(body)
        get_logs = getattr(self.runtime, "get_logs", None)
        if get_logs is None:
            return {"events": []}
        limit = _max_results(body, 10_000)
        token = _token(body)
        try:
            start = page_start(token)
        except WireError as exc:
            raise invalid(str(exc), "nextToken", code="custom") from None
        wanted = body.get("executionId")
        if wanted is not None:
            wanted = _execution_id(body)
        entries = await get_logs(wanted, workflow=_optional_str(body, "workflowName"))
        events = [
            {
                "time": int(e.timestamp.timestamp() * 1000),
                "timestamp": iso(e.timestamp),
                "level": e.level,
                "message": e.message,
                "source": execution_id,
            }
            for execution_id, e in entries
        ]
        page = events[start : start + limit]
        out: dict[str, Any] = {"events": page}
        if start + len(page) < len(events):
            out["nextToken"] = page_token(start + len(page))
        return out

    async def send_signal(self, body: Any) -> None:
        body = _obj(body)
        execution_id = _execution_id(body)
        signal = body.get("signalId")
        if not isinstance(signal, str):
            raise invalid("the request body needs the signal name in 'signalId'", "signalId")
        try:
            self.service.signal(signal)
        except ServiceError as e:
            raise invalid(str(e), "signalId", code="invalid_enum_value") from None
        signal_id = body.get("id")
        if signal_id is not None and not isinstance(signal_id, str):
            raise invalid("id must be a string", "id")
        await self.runtime.send_signal(
            execution_id, signal, body.get("payload"), signal_id=signal_id
        )

    async def emit_events(self, body: Any) -> None:
        events = _require(body, "events", list)
        by_name: dict[str, list[Any]] = {}
        for i, e in enumerate(events):
            if not isinstance(e, dict) or not isinstance(e.get("name"), str):
                raise invalid("each event needs a 'name' and an 'event'", "events", i, "name")
            try:
                self.service.event(e["name"])
            except ServiceError as problem:
                raise invalid(
                    str(problem), "events", i, "name", code="invalid_enum_value"
                ) from None
            by_name.setdefault(e["name"], []).append(e.get("event"))
        # Every payload is checked before any is published: a bad one publishes nothing.
        for name, payloads in by_name.items():
            read = self.service.events[name].payload_from_json
            for i, payload in enumerate(payloads):
                check_valid(f"payload for event {name!r} (#{i})", read, payload)
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
        raise invalid(
            f"updateTask type must be Success, Failure or Heartbeat, not {kind!r}",
            "type",
            code="invalid_union_discriminator",
        )

    async def list_workflows(self, body: Any) -> dict[str, Any]:
        return {"workflows": [{"name": n} for n in sorted(self.service.workflows)]}

    async def execute_transaction(self, body: Any) -> Any:
        name = body.get("transactionName") if isinstance(body, dict) else None
        raise HttpError(
            400,
            f"executeTransaction{f' ({name!r})' if isinstance(name, str) else ''}: transactions "
            "are not part of Eventual for Python; run the work in a command or a workflow",
            name="TransactionsNotSupported",
        )
