"""The wire format where the real TypeScript client cannot look (``test_ts_client.py`` drives
the real one): the raw bytes of the answers it turns into ``""``, bodies it never sends, our
event kinds no scenario produces, and a history written by the original itself (with the
run markers our servers never send), read by the Python client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from eventual.client import EventualClient
from eventual.core import history as h
from eventual.core.wire import event_from_wire, event_to_wire, events_from_wire

if TYPE_CHECKING:
    from conftest import LiveService

JSON = {"Content-Type": "application/json"}
T = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)


def test_raw_answers_and_bodies_the_typescript_client_never_sends(live: LiveService):
    with httpx.Client(base_url=live.url, headers=JSON) as http:
        # Nothing to answer: 200 with no body at all (not "null"), as the original.
        r = http.post("/rpc/_system/getExecution", content=b'"processOrder/missing"')
        assert (r.status_code, r.content) == (200, b"")
        r = http.post("/rpc/_system/emitEvents", content=b'{"events":[]}')
        assert (r.status_code, r.content) == (200, b"")
        r = http.post("/rpc/_system/listWorkflows", content=b"{}")
        assert r.headers["content-type"] == "application/json"

        # Malformed bodies: 400, {message, data: [issue]}.
        r = http.post("/rpc/_system/getExecution", content=b"5")
        assert r.status_code == 400
        assert r.json()["data"][0]["path"] == []  # the body itself
        r = http.post(
            "/rpc/_system/getExecutionHistory",
            content=b'{"executionId":"processOrder/x","nextToken":"garbage"}',
        )
        assert r.status_code == 400 and "nextToken" in r.json()["message"]
        r = http.post("/rpc/_system/listExecutions", content=b'{"sortDirection":"UP"}')
        assert r.status_code == 400 and r.json()["data"][0]["code"] == "invalid_enum_value"
        r = http.post("/rpc/_system/listExecutions", content=b'{"maxResults":0}')
        assert r.status_code == 400 and r.json()["data"][0]["path"] == ["maxResults"]
        # A page size beyond any store's integers is served as the largest page.
        r = http.post("/rpc/_system/listExecutions", content=b'{"maxResults":1' + b"0" * 40 + b"}")
        assert r.status_code == 200 and "executions" in r.json()
        r = http.post("/rpc/send_invoice", content=b'{"id":"t1"}')
        assert r.status_code == 400
        assert r.json()["data"][0] == {
            "code": "missing",
            "path": ["amount"],
            "message": "Field required",
        }


EVERY_KIND: list[Any] = [
    h.WorkflowStarted(
        timestamp=T,
        workflow="wf",
        execution_id="wf/a",
        input={"x": 1},
        timeout_at=T,
        parent=h.ParentRef(execution_id="p/1", seq=3),
    ),
    h.TaskScheduled(timestamp=T, seq=0, name="t", args=[1], attempt=2, timeout=3.0),
    h.TaskScheduled(timestamp=T, seq=1, name="t", args=[]),
    h.TaskScheduled(timestamp=T, seq=2, name="t", args=[1, 2], heartbeat_timeout=1.0),
    h.TaskSucceeded(timestamp=T, seq=0, result=5, attempt=2),
    h.TaskFailed(timestamp=T, seq=0, error="E", message="m"),
    h.TaskTimedOut(timestamp=T, seq=0, attempt=3),
    h.TaskHeartbeatTimedOut(timestamp=T, seq=0),
    h.TaskRetryDue(timestamp=T, seq=0, attempt=2),
    h.TaskRetryScheduled(timestamp=T, seq=0, attempt=2, until=T, error="E", message="m"),
    h.TimerScheduled(timestamp=T, seq=1, until=T),
    h.TimerCompleted(timestamp=T, seq=1),
    h.ChildWorkflowScheduled(timestamp=T, seq=2, name="c", input=1, execution_id="c/x"),
    h.ChildWorkflowSucceeded(timestamp=T, seq=2, result=1),
    h.ChildWorkflowFailed(timestamp=T, seq=2, error="E", message="m"),
    h.SignalReceived(timestamp=T, signal_id="s1", signal="sig", payload=[1]),
    h.SignalSent(timestamp=T, seq=3, execution_id="o/1", signal="sig", payload=2, signal_id="x"),
    h.EventsEmitted(timestamp=T, seq=4, events=[h.EmittedEvent(name="E", payload={"a": 1})]),
    h.WorkflowTimedOut(timestamp=T),
    h.WorkflowSucceeded(timestamp=T, result=1),
    h.WorkflowFailed(timestamp=T, error="E", message="m"),
]
if hasattr(h, "PatchMarked"):
    EVERY_KIND.append(h.PatchMarked(timestamp=T, seq=5, patch="charge-v2"))  # type: ignore[attr-defined]


@pytest.mark.parametrize("event", EVERY_KIND, ids=lambda e: e.type)
def test_every_event_kind_survives_the_wire(event: Any):
    wire = event_to_wire(event)
    assert isinstance(wire["type"], int) and wire["timestamp"] == "2024-05-06T07:08:09.123Z"
    assert event_from_wire(wire) == event


# As the original's orchestrator records an execution (its WorkflowEvent types, 0.57).
ORIGINAL_HISTORY = [
    {
        "type": 10,
        "id": "01HX",
        "timestamp": "2024-05-06T07:08:09.000Z",
        "workflowName": "processOrder",
        "input": {"id": "o1"},
        "context": {"name": "o1"},
    },
    {"type": 15, "id": "01HY", "timestamp": "2024-05-06T07:08:09.001Z"},
    {
        "type": 20,
        "timestamp": "2024-05-06T07:08:09.002Z",
        "event": {"type": 7, "seq": 0, "name": "charge", "input": {"amount": 3}},
    },
    {
        "type": 20,
        "timestamp": "2024-05-06T07:08:09.002Z",
        "event": {
            "type": 8,
            "seq": 1,
            "schedule": {"type": "Duration", "dur": 5, "unit": "minutes"},
        },
    },
    {"type": 80, "id": "01HZ", "timestamp": "2024-05-06T07:08:09.003Z"},
    {"type": 46, "seq": 0, "timestamp": "2024-05-06T07:08:10.000Z", "result": "c1"},
    {"type": 24, "id": "s-1", "timestamp": "2024-05-06T07:08:11.000Z", "signalId": "approve"},
    {"type": 95, "id": "01J0", "timestamp": "2024-05-06T07:08:12.000Z", "output": "done"},
]


def test_a_history_written_by_the_original_reads_as_typed_events():
    events = events_from_wire(ORIGINAL_HISTORY)  # the run markers (15, 80) are skipped
    assert [e.type for e in events] == [
        "WorkflowStarted",
        "TaskScheduled",
        "TimerScheduled",
        "TaskSucceeded",
        "SignalReceived",
        "WorkflowSucceeded",
    ]
    started, task, timer = events[0], events[1], events[2]
    assert isinstance(started, h.WorkflowStarted) and started.execution_id == "processOrder/o1"
    assert isinstance(task, h.TaskScheduled) and task.args == [{"amount": 3}]
    assert isinstance(timer, h.TimerScheduled)
    assert timer.until == datetime(2024, 5, 6, 7, 13, 9, 2000, tzinfo=UTC)
    assert events[-1] == h.WorkflowSucceeded(timestamp=events[-1].timestamp, result="done")


@pytest.mark.anyio
async def test_the_python_client_reads_the_wire_and_keeps_its_own_errors(live: LiveService):
    async with EventualClient(live.url) as client:
        handle = await client.start_execution("humanApproval", "w1", execution_name="w1")
        history = await handle.get_history()
        assert (
            isinstance(history[0], h.WorkflowStarted)
            and history[0].execution_id == "humanApproval/w1"
        )
        # The server's empty answer for an unknown id is still an error in Python.
        with pytest.raises(Exception) as missing:
            await client.get_execution("humanApproval/none")
        assert getattr(missing.value, "status", None) == 404
