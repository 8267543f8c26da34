"""The wire format of the system commands: the TypeScript Eventual 0.57's JSON shapes.

One encoder, used by every server (``eventual dev`` and the AWS system handler both serve
through core's HTTP layer), and its decoder, used by the Python clients. The history stored by
the runtimes keeps its own typed events (:mod:`eventual.core.history`); this module maps them
to the original's ``WorkflowEvent`` shape and back, without loss:

- a numeric ``type`` from the original's ``WorkflowEventType`` (and, inside a ``CallEvent``,
  from its ``WorkflowCallHistoryType``), camelCase fields, ISO timestamps with milliseconds;
- what the original has no field for rides in extra camelCase fields (``attempt``, ``args``,
  ``executionId``...), which its client passes through untouched;
- our kinds the original lacks (task retries, patch markers, any kind added later) are sent
  with the type number 1000, outside both of its enums, their own name in ``kind`` and their
  fields in camelCase; a task's timeout is sent as the original's ``TaskFailed`` with the
  error ``Timeout``, also marked with ``kind``.

``docs/wire.md`` has the table. Nothing here imports an HTTP layer: decoding errors are
:class:`WireError` (a ``ValueError``), which the servers answer as 400.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from .history import (
    ChildWorkflowFailed,
    ChildWorkflowScheduled,
    ChildWorkflowSucceeded,
    EmittedEvent,
    EventsEmitted,
    HistoryEvent,
    ParentRef,
    SignalReceived,
    SignalSent,
    TaskFailed,
    TaskHeartbeatTimedOut,
    TaskScheduled,
    TaskSucceeded,
    TaskTimedOut,
    TimerCompleted,
    TimerScheduled,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSucceeded,
    WorkflowTimedOut,
    event_dict,
    validate_event,
)
from .models import Execution, ExecutionStatus


class WireError(ValueError):
    """A request or an answer that is not in the wire format."""


# The original's WorkflowEventType (@eventual/core/internal, 0.57).
WORKFLOW_STARTED = 10
CALL_EVENT = 20
SIGNAL_RECEIVED = 24
TASK_SUCCEEDED = 46
CHILD_WORKFLOW_SUCCEEDED = 50
CHILD_WORKFLOW_FAILED = 51
TASK_FAILED = 57
TASK_HEARTBEAT_TIMED_OUT = 58
TIMER_COMPLETED = 59
WORKFLOW_TIMED_OUT = 90
WORKFLOW_SUCCEEDED = 95
WORKFLOW_FAILED = 96

# The original's WorkflowCallHistoryType: the ``event.type`` of a CallEvent.
CALL_CHILD_WORKFLOW_SCHEDULED = 1
CALL_EVENTS_EMITTED = 3
CALL_SIGNAL_SENT = 5
CALL_TASK_SCHEDULED = 7
CALL_TIMER_SCHEDULED = 8

# Our kinds that the original lacks: outside both of its enums, named by ``kind``.
EXTENSION = 1000

TIMEOUT_ERROR = "Timeout"
TIMEOUT_MESSAGE = "the task did not complete within its timeout"

# SignalTarget.type: 0 = an execution by id.
_TARGET_EXECUTION = 0


# ---------------------------------------------------------------- time


def iso(t: datetime) -> str:
    """``2024-01-01T00:00:00.000Z``: what JavaScript's ``Date.toISOString()`` writes."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(value: Any, what: str = "timestamp") -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise WireError(f"{what} must be an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise WireError(f"{what} must be an ISO 8601 string, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _opt_time(value: Any, what: str) -> datetime | None:
    return None if value is None else parse_time(value, what)


# ---------------------------------------------------------------- executions


def execution_to_wire(execution: Execution) -> dict[str, Any]:
    """An execution as the original's ``Execution`` (plus ``input`` and ``timeoutTime``)."""
    out: dict[str, Any] = {
        "id": execution.id,
        "status": execution.status.value,
        "workflowName": execution.workflow,
        "startTime": iso(execution.start_time),
        "input": execution.input,
    }
    if execution.end_time is not None:
        out["endTime"] = iso(execution.end_time)
    if execution.status is ExecutionStatus.SUCCEEDED:
        out["result"] = execution.result
    if execution.status is ExecutionStatus.FAILED:
        out["error"] = execution.error
        out["message"] = execution.message
    if execution.parent is not None:
        out["parent"] = {"executionId": execution.parent.execution_id, "seq": execution.parent.seq}
    if execution.timeout_at is not None:
        out["timeoutTime"] = iso(execution.timeout_at)
    if execution.build is not None:
        out["build"] = execution.build  # the service build it started on (ours)
    return out


def execution_from_wire(data: Any) -> Execution:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        raise WireError(f"an execution is an object with an 'id', got {str(data)[:200]!r}")
    parent = data.get("parent")
    try:
        return Execution(
            id=data["id"],
            workflow=data.get("workflowName") or data["id"].split("/", 1)[0],
            status=ExecutionStatus(data["status"]),
            input=data.get("input"),
            result=data.get("result"),
            error=data.get("error"),
            message=data.get("message"),
            start_time=parse_time(data["startTime"], "startTime"),
            end_time=_opt_time(data.get("endTime"), "endTime"),
            parent=ParentRef(execution_id=parent["executionId"], seq=parent["seq"])
            if parent
            else None,
            timeout_at=_opt_time(data.get("timeoutTime"), "timeoutTime"),
            build=data.get("build"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"not an execution ({exc}): {str(data)[:200]!r}") from None


# ---------------------------------------------------------------- history events


def _with_attempt(out: dict[str, Any], attempt: int) -> dict[str, Any]:
    if attempt != 1:
        out["attempt"] = attempt
    return out


def _call(event: HistoryEvent, inner: dict[str, Any]) -> dict[str, Any]:
    return {"type": CALL_EVENT, "event": inner, "timestamp": iso(event.timestamp)}


def event_to_wire(event: HistoryEvent) -> dict[str, Any]:
    """One of our history events as the original's ``WorkflowEvent``."""
    ts = iso(event.timestamp)
    if isinstance(event, WorkflowStarted):
        context: dict[str, Any] = {"name": event.execution_id.split("/", 1)[-1]}
        if event.parent is not None:
            context["parent"] = {"id": event.parent.execution_id, "seq": event.parent.seq}
        out: dict[str, Any] = {
            "type": WORKFLOW_STARTED,
            "id": event.id,
            "timestamp": ts,
            "workflowName": event.workflow,
            "input": event.input,
            "context": context,
        }
        if event.timeout_at is not None:
            out["timeoutTime"] = iso(event.timeout_at)
        if event.execution_id != f"{event.workflow}/{context['name']}":
            out["executionId"] = event.execution_id
        return out
    if isinstance(event, TaskSucceeded):
        return _with_attempt(
            {"type": TASK_SUCCEEDED, "seq": event.seq, "timestamp": ts, "result": event.result},
            event.attempt,
        )
    if isinstance(event, TaskFailed):
        return _with_attempt(
            {
                "type": TASK_FAILED,
                "seq": event.seq,
                "timestamp": ts,
                "error": event.error,
                "message": event.message,
            },
            event.attempt,
        )
    if isinstance(event, TaskTimedOut):
        return _with_attempt(
            {
                "type": TASK_FAILED,
                "kind": "TaskTimedOut",
                "seq": event.seq,
                "timestamp": ts,
                "error": TIMEOUT_ERROR,
                "message": TIMEOUT_MESSAGE,
            },
            event.attempt,
        )
    if isinstance(event, TaskHeartbeatTimedOut):
        return _with_attempt(
            {"type": TASK_HEARTBEAT_TIMED_OUT, "seq": event.seq, "timestamp": ts}, event.attempt
        )
    if isinstance(event, TimerCompleted):
        return {"type": TIMER_COMPLETED, "seq": event.seq, "timestamp": ts}
    if isinstance(event, ChildWorkflowSucceeded):
        return {
            "type": CHILD_WORKFLOW_SUCCEEDED,
            "seq": event.seq,
            "timestamp": ts,
            "result": event.result,
        }
    if isinstance(event, ChildWorkflowFailed):
        return {
            "type": CHILD_WORKFLOW_FAILED,
            "seq": event.seq,
            "timestamp": ts,
            "error": event.error,
            "message": event.message,
        }
    if isinstance(event, SignalReceived):
        return {
            "type": SIGNAL_RECEIVED,
            "id": event.signal_id,
            "timestamp": ts,
            "signalId": event.signal,
            "payload": event.payload,
        }
    if isinstance(event, WorkflowTimedOut):
        return {"type": WORKFLOW_TIMED_OUT, "id": event.id, "timestamp": ts}
    if isinstance(event, TaskScheduled):
        inner: dict[str, Any] = {"type": CALL_TASK_SCHEDULED, "seq": event.seq, "name": event.name}
        if len(event.args) == 1:
            inner["input"] = event.args[0]
        elif event.args:
            inner["args"] = event.args
        if event.timeout is not None:
            inner["timeout"] = event.timeout
        if event.heartbeat_timeout is not None:
            inner["heartbeatTimeout"] = event.heartbeat_timeout
        return _call(event, _with_attempt(inner, event.attempt))
    if isinstance(event, TimerScheduled):
        return _call(
            event,
            {
                "type": CALL_TIMER_SCHEDULED,
                "seq": event.seq,
                "schedule": {"type": "Time", "isoDate": iso(event.until)},
            },
        )
    if isinstance(event, ChildWorkflowScheduled):
        return _call(
            event,
            {
                "type": CALL_CHILD_WORKFLOW_SCHEDULED,
                "seq": event.seq,
                "name": event.name,
                "input": event.input,
                "executionId": event.execution_id,
            },
        )
    if isinstance(event, SignalSent):
        return _call(
            event,
            {
                "type": CALL_SIGNAL_SENT,
                "seq": event.seq,
                "signalId": event.signal,
                "payload": event.payload,
                "target": {"type": _TARGET_EXECUTION, "executionId": event.execution_id},
                "id": event.signal_id,
            },
        )
    if isinstance(event, EventsEmitted):
        return _call(
            event,
            {
                "type": CALL_EVENTS_EMITTED,
                "seq": event.seq,
                "events": [{"name": e.name, "event": e.payload} for e in event.events],
            },
        )
    if isinstance(event, WorkflowSucceeded):
        return {"type": WORKFLOW_SUCCEEDED, "id": event.id, "timestamp": ts, "output": event.result}
    if isinstance(event, WorkflowFailed):
        return {
            "type": WORKFLOW_FAILED,
            "id": event.id,
            "timestamp": ts,
            "error": event.error,
            "message": event.message,
        }
    return _extension(event)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _extension(event: HistoryEvent) -> dict[str, Any]:
    """An event of a kind the original lacks: type 1000, ``kind``, our fields in camelCase
    (times as ISO strings with milliseconds)."""
    out: dict[str, Any] = {"type": EXTENSION, "kind": event.type}
    data = event_dict(event)
    for name, value in data.items():
        if name == "type":
            continue
        attr = getattr(event, name, None)
        out[_camel(name)] = iso(attr) if isinstance(attr, datetime) else value
    return out


def _from_extension(data: dict[str, Any]) -> HistoryEvent:
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise WireError(f"an event of type {EXTENSION} names its kind in 'kind': {data!r}")
    fields = {_snake(k): v for k, v in data.items() if k not in ("type", "kind")}
    return validate_event({**fields, "type": kind})


def events_to_wire(events: list[HistoryEvent]) -> list[dict[str, Any]]:
    return [event_to_wire(e) for e in events]


def _schedule_time(schedule: Any, timestamp: datetime) -> datetime:
    if not isinstance(schedule, dict):
        raise WireError(f"a timer's schedule is an object, got {schedule!r}")
    if schedule.get("type") == "Time":
        return parse_time(schedule.get("isoDate"), "schedule.isoDate")
    if schedule.get("type") == "Duration":
        from datetime import timedelta

        seconds = float(schedule.get("dur", 0)) * DURATION_UNITS.get(str(schedule.get("unit")), 1)
        return timestamp + timedelta(seconds=seconds)
    raise WireError(f"unknown schedule {schedule!r}")


def _from_call(inner: Any, ts: datetime) -> HistoryEvent:
    if not isinstance(inner, dict):
        raise WireError(f"a CallEvent's 'event' is an object, got {inner!r}")
    kind = inner.get("type")
    seq = inner.get("seq")
    if kind == CALL_TASK_SCHEDULED:
        if "args" in inner:
            args = list(inner["args"])
        elif "input" in inner:
            args = [inner["input"]]
        else:
            args = []
        return TaskScheduled(
            timestamp=ts,
            seq=seq,  # type: ignore[arg-type]
            name=inner["name"],
            args=args,
            attempt=inner.get("attempt", 1),
            timeout=inner.get("timeout"),
            heartbeat_timeout=inner.get("heartbeatTimeout"),
        )
    if kind == CALL_TIMER_SCHEDULED:
        return TimerScheduled(
            timestamp=ts,
            seq=seq,  # type: ignore[arg-type]
            until=_schedule_time(inner.get("schedule"), ts),
        )
    if kind == CALL_CHILD_WORKFLOW_SCHEDULED:
        return ChildWorkflowScheduled(
            timestamp=ts,
            seq=seq,  # type: ignore[arg-type]
            name=inner["name"],
            input=inner.get("input"),
            execution_id=inner.get("executionId") or f"{inner['name']}/{seq}",
        )
    if kind == CALL_SIGNAL_SENT:
        target = inner.get("target") or {}
        return SignalSent(
            timestamp=ts,
            seq=seq,  # type: ignore[arg-type]
            execution_id=target.get("executionId", ""),
            signal=inner["signalId"],
            payload=inner.get("payload"),
            signal_id=inner.get("id") or f"{seq}",
        )
    if kind == CALL_EVENTS_EMITTED:
        return EventsEmitted(
            timestamp=ts,
            seq=seq,  # type: ignore[arg-type]
            events=[
                EmittedEvent(name=e["name"], payload=e.get("event"))
                for e in inner.get("events", [])
            ],
        )
    raise WireError(f"unknown call event type {kind!r} (WorkflowCallHistoryType)")


def event_from_wire(data: Any) -> HistoryEvent:
    """One wire event as our typed history event. An event in our own JSON form (a string
    ``type``) is read as such."""
    if not isinstance(data, dict):
        raise WireError(f"a history event is a JSON object, got {str(data)[:200]!r}")
    kind = data.get("type")
    if isinstance(kind, str):
        return validate_event(data)
    try:
        return _from_wire(data, kind)
    except WireError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"not a history event ({exc!r}): {str(data)[:200]!r}") from None


def _from_wire(data: dict[str, Any], kind: Any) -> HistoryEvent:
    ts = parse_time(data.get("timestamp", "1970-01-01T00:00:00Z"))
    attempt = data.get("attempt", 1)
    if kind == CALL_EVENT:
        return _from_call(data.get("event"), ts)
    if kind == WORKFLOW_STARTED:
        context = data.get("context") or {}
        name = context.get("name")
        parent = context.get("parent")
        return WorkflowStarted(
            timestamp=ts,
            workflow=data["workflowName"],
            execution_id=data.get("executionId") or f"{data['workflowName']}/{name}",
            input=data.get("input"),
            timeout_at=_opt_time(data.get("timeoutTime"), "timeoutTime"),
            parent=ParentRef(execution_id=parent["id"], seq=parent["seq"]) if parent else None,
        )
    if kind == TASK_SUCCEEDED:
        return TaskSucceeded(
            timestamp=ts, seq=data["seq"], attempt=attempt, result=data.get("result")
        )
    if kind == TASK_FAILED:
        if data.get("kind") == "TaskTimedOut":
            return TaskTimedOut(timestamp=ts, seq=data["seq"], attempt=attempt)
        return TaskFailed(
            timestamp=ts,
            seq=data["seq"],
            attempt=attempt,
            error=data["error"],
            message=data.get("message") or "",
        )
    if kind == TASK_HEARTBEAT_TIMED_OUT:
        return TaskHeartbeatTimedOut(timestamp=ts, seq=data["seq"], attempt=attempt)
    if kind == EXTENSION:
        return _from_extension(data)
    if kind == TIMER_COMPLETED:
        return TimerCompleted(timestamp=ts, seq=data["seq"])
    if kind == CHILD_WORKFLOW_SUCCEEDED:
        return ChildWorkflowSucceeded(timestamp=ts, seq=data["seq"], result=data.get("result"))
    if kind == CHILD_WORKFLOW_FAILED:
        return ChildWorkflowFailed(
            timestamp=ts, seq=data["seq"], error=data["error"], message=data.get("message") or ""
        )
    if kind == SIGNAL_RECEIVED:
        return SignalReceived(
            timestamp=ts,
            signal_id=data.get("id") or "",
            signal=data["signalId"],
            payload=data.get("payload"),
        )
    if kind == WORKFLOW_TIMED_OUT:
        return WorkflowTimedOut(timestamp=ts)
    if kind == WORKFLOW_SUCCEEDED:
        return WorkflowSucceeded(timestamp=ts, result=data.get("output"))
    if kind == WORKFLOW_FAILED:
        return WorkflowFailed(timestamp=ts, error=data["error"], message=data.get("message") or "")
    raise WireError(f"unknown history event type {kind!r} (WorkflowEventType)")


def events_from_wire(data: Any) -> list[HistoryEvent]:
    """Wire events (skipping the original's WorkflowRunStarted/WorkflowRunCompleted markers,
    which record runs of the orchestrator, not anything the workflow saw)."""
    if not isinstance(data, list):
        raise WireError(f"history events are a JSON list, got {str(data)[:200]!r}")
    return [event_from_wire(e) for e in data if not _is_run_marker(e)]


_RUN_MARKERS = (15, 80)  # WorkflowRunStarted, WorkflowRunCompleted


def _is_run_marker(data: Any) -> bool:
    return isinstance(data, dict) and data.get("type") in _RUN_MARKERS


# ---------------------------------------------------------------- listing


DURATION_UNITS: dict[str, float] = {
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


def sorted_for_listing(
    wire: list[dict[str, Any]], *, descending: bool = False
) -> list[dict[str, Any]]:
    """Wire events in the order ``getExecutionHistory`` lists them: by timestamp, then by
    type number (the original's display order), then as recorded; descending is the exact
    reverse."""
    keyed = sorted(
        enumerate(wire), key=lambda ie: (ie[1].get("timestamp", ""), ie[1]["type"], ie[0])
    )
    ordered = [e for _, e in keyed]
    if descending:
        ordered.reverse()
    return ordered


def page_token(index: int) -> str:
    """An opaque paging token: where the next page starts (as the original's local stores)."""
    return base64.b64encode(json.dumps({"index": index}).encode()).decode()


def page_start(token: str | None) -> int:
    if not token:
        return 0
    try:
        index = json.loads(base64.b64decode(token.encode(), validate=True))["index"]
    except Exception:
        raise WireError("nextToken is not one this service returned") from None
    if not isinstance(index, int) or index < 0:
        raise WireError("nextToken is not one this service returned")
    return index
