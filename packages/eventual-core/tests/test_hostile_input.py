"""Hostile input at the HTTP edge every server shares (``eventual dev`` and the AWS API and
system handlers serve through this layer): each bad request is a 4xx in the wire error shape
with a sentence that says what to fix, nothing is recorded, nothing else is disturbed; and,
for any JSON body at all, no system command answers a 5xx (a property-based test)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from eventual.core import Request, Response, command, event, signal, subscription, workflow
from eventual.core.http.handler import HttpHandler
from eventual.core.runtime import InMemoryRuntime
from eventual.core.serialization import MAX_JSON_DEPTH

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    id: str
    qty: int


class Shipped(BaseModel):
    id: str


approve = signal("approve", bool)
shipped = event("Shipped", Shipped)
seen: list[Any] = []


@subscription("onShipped", events=[shipped])
async def on_shipped(payload: Any) -> None:
    seen.append(payload)


@workflow("fulfil")
async def fulfil(order: Order) -> str:
    ok = await approve.expect_signal()
    return f"{order.id}: {'approved' if ok else 'refused'}"


@command
async def place(order: Order) -> str:
    return order.id


@pytest.fixture
async def http(rt: InMemoryRuntime) -> HttpHandler:
    return HttpHandler(rt.service, rt, service_url="http://svc", max_body=100_000)


async def post(h: HttpHandler, path: str, body: Any) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await h.handle(Request("POST", f"http://svc{path}", body=raw))


def refused(r: Response, status: int = 400) -> str:
    """The message of a refusal in the wire error shape."""
    assert r.status == status, (r.status, r.body[:300])
    body = r.json_body()
    assert set(body) <= {"message", "error", "data"} and body["message"], body
    return body["message"]


async def nothing_recorded(rt: InMemoryRuntime) -> None:
    await rt.idle()
    executions, _token = await rt.list_executions()
    assert executions == []
    assert seen == []


DEEP = b"[" * 20_000 + b"]" * 20_000


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (DEEP, f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"workflow": "fulfil", "input": ' + b"[" * 101 + b"]" * 101 + b"}", "nested deeper"),
        (b'{"workflow": "fulfil", "input": NaN}', "NaN is not a JSON value"),
        (b'{"workflow": "fulfil", "input": Infinity}', "Infinity is not a JSON value"),
        (b'{"workflow": "fulfil", "executionName": "\xff"}', "not valid JSON"),
        (b'{"workflow": ', "not valid JSON"),
    ],
)
async def test_bodies_that_are_not_acceptable_json(
    http: HttpHandler, rt: InMemoryRuntime, body: bytes, says: str
) -> None:
    for path in ("/rpc/_system/startExecution", "/rpc/place"):
        assert says in refused(await post(http, path, body))
    await nothing_recorded(rt)


async def test_json_just_within_the_depth_limit_is_served(http: HttpHandler) -> None:
    nested: Any = 1
    for _ in range(MAX_JSON_DEPTH - 2):  # body object + "input" value + these lists
        nested = [nested]
    r = await post(http, "/rpc/_system/startExecution", {"workflow": "fulfil", "input": nested})
    # Accepted as JSON; refused by the workflow's model, not by the parser.
    assert "invalid input for workflow 'fulfil'" in refused(r)


async def test_a_workflow_start_is_checked_against_the_declared_input(
    http: HttpHandler, rt: InMemoryRuntime
) -> None:
    r = await post(
        http,
        "/rpc/_system/startExecution",
        {"workflow": "fulfil", "input": {"id": "o1", "qty": "many"}, "executionName": "o1"},
    )
    message = refused(r)
    issue = "Input should be a valid integer, unable to parse string as an integer"
    assert message == f"invalid input for workflow 'fulfil': qty: {issue}"
    assert r.json_body()["data"] == [{"code": "int_parsing", "path": ["qty"], "message": issue}]
    await nothing_recorded(rt)
    # The same start with a good input goes through, under the same name.
    r = await post(
        http,
        "/rpc/_system/startExecution",
        {"workflow": "fulfil", "input": {"id": "o1", "qty": 2}, "executionName": "o1"},
    )
    assert r.json_body() == {"executionId": "fulfil/o1", "alreadyRunning": False}


@pytest.mark.parametrize(
    "name",
    ["../../etc", "..", ".", "a/b", "-rf", "x\ny", "tab\there", "", "ü", "x" * 257, 5],
)
async def test_execution_names_outside_the_rule(
    http: HttpHandler, rt: InMemoryRuntime, name: Any
) -> None:
    r = await post(
        http,
        "/rpc/_system/startExecution",
        {"workflow": "fulfil", "input": {"id": "o", "qty": 1}, "executionName": name},
    )
    message = refused(r)
    if isinstance(name, str):
        assert message.startswith(f"invalid execution name {name[:80]!r}: use 1 to 256")
        assert "starting with a letter, a digit or _" in message
    else:
        assert message == "executionName must be a string, got 5"
    await nothing_recorded(rt)


@pytest.mark.parametrize("good", ["o1", "order_2024-05-06T07:08:09", "a.b", "x" * 256, "_p"])
async def test_execution_names_inside_the_rule(http: HttpHandler, good: str) -> None:
    r = await post(
        http,
        "/rpc/_system/startExecution",
        {"workflow": "fulfil", "input": {"id": "o", "qty": 1}, "executionName": good},
    )
    assert r.status == 200 and r.json_body()["executionId"] == f"fulfil/{good}"


@pytest.mark.parametrize(
    "bad_id", ["fulfil/../x", "fulfil/a\x00b", "fulfil/", "nosuch", "/x", "../etc", "./x"]
)
async def test_hostile_execution_ids_are_refused_before_any_store(
    http: HttpHandler, bad_id: str
) -> None:
    assert "invalid execution id" in refused(await post(http, "/rpc/_system/getExecution", bad_id))
    for command_name in ("getExecutionHistory", "sendSignal", "getExecutionLogs"):
        body = {"executionId": bad_id, "signalId": "approve"}
        r = await post(http, f"/rpc/_system/{command_name}", body)
        assert "invalid execution id" in refused(r), command_name


@pytest.mark.parametrize("command_name", ["getExecutionLogs", "listExecutions", "countExecutions"])
async def test_a_workflow_filter_that_is_not_a_string_is_refused(
    http: HttpHandler, command_name: str
) -> None:
    """Found by the HTTP fuzzer: a list as ``workflowName`` of getExecutionLogs reached
    SQLite's parameter binding and answered 500."""
    body = {"executionId": "fulfil/o1", "workflowName": [[], {"x": True}]}
    r = await post(http, f"/rpc/_system/{command_name}", body)
    assert refused(r) == "workflowName must be a string", command_name


async def test_unknown_workflows_signals_and_events(http: HttpHandler, rt: InMemoryRuntime) -> None:
    r = await post(http, "/rpc/_system/startExecution", {"workflow": "ghost"})
    assert refused(r, 404) == (
        "workflow 'ghost' does not exist in service 'test'; it defines: fulfil"
    )
    r = await post(
        http, "/rpc/_system/sendSignal", {"executionId": "fulfil/o1", "signalId": "nudge"}
    )
    assert refused(r) == "service 'test' has no signal 'nudge'; it defines: approve"
    r = await post(
        http, "/rpc/_system/emitEvents", {"events": [{"name": "Lost", "event": {"id": "1"}}]}
    )
    assert refused(r) == "service 'test' has no event 'Lost'; it defines: Shipped"
    r = await post(http, "/rpc/nope", {})
    assert refused(r, 404) == "no route for POST /rpc/nope"
    await nothing_recorded(rt)


async def test_payloads_are_checked_against_signal_and_event_models(
    http: HttpHandler, rt: InMemoryRuntime
) -> None:
    start = {"workflow": "fulfil", "input": {"id": "o1", "qty": 1}, "executionName": "o1"}
    assert (await post(http, "/rpc/_system/startExecution", start)).status == 200
    await rt.idle()
    r = await post(
        http,
        "/rpc/_system/sendSignal",
        {"executionId": "fulfil/o1", "signalId": "approve", "payload": {"yes": True}},
    )
    assert (
        refused(r) == "invalid payload for signal 'approve': input: Input should be a valid boolean"
    )
    # A bad event among good ones: none of them is published.
    r = await post(
        http,
        "/rpc/_system/emitEvents",
        {"events": [{"name": "Shipped", "event": {"id": "1"}}, {"name": "Shipped", "event": {}}]},
    )
    assert refused(r).startswith("invalid payload for event 'Shipped' (#1): id: Field required")
    await rt.idle()
    assert seen == []
    # The execution was not disturbed: the right signal still completes it.
    r = await post(
        http,
        "/rpc/_system/sendSignal",
        {"executionId": "fulfil/o1", "signalId": "approve", "payload": True},
    )
    assert r.status == 200
    await rt.idle()
    done = await rt.get_execution("fulfil/o1")
    assert (done.status.value, done.result) == ("SUCCEEDED", "o1: approved")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"workflow": "fulfil", "timeout": 1e300}, "a timeout is more than 0"),
        ({"workflow": "fulfil", "timeout": -1}, "a timeout is more than 0"),
        ({"workflow": "fulfil", "timeout": {"type": "Duration", "dur": "x"}}, "dur must be"),
        ({"workflow": "fulfil", "timeout": {"type": "Time", "isoDate": 3}}, "ISO 8601"),
        ({"workflow": "fulfil", "timeout": "soon"}, "cannot read timeout"),
        ({"workflow": 7}, "workflow must be a str"),
    ],
)
async def test_wrong_json_types(
    http: HttpHandler, rt: InMemoryRuntime, body: Any, says: str
) -> None:
    assert says in refused(await post(http, "/rpc/_system/startExecution", body))
    await nothing_recorded(rt)


SYSTEM = [
    "startExecution",
    "getExecution",
    "listExecutions",
    "getExecutionHistory",
    "getExecutionWorkflowHistory",
    "getExecutionLogs",
    "sendSignal",
    "emitEvents",
    "updateTask",
    "listWorkflows",
    "countExecutions",
    "getServiceSpec",
    "executeTransaction",
]
# Any JSON, biased towards the fields the commands read.
FIELDS = st.sampled_from(
    ["workflow", "input", "executionName", "executionId", "signalId", "payload", "events",
     "name", "event", "maxResults", "nextToken", "sortDirection", "timeout", "type",
     "taskToken", "statuses", "workflowName", "after", "id", "dur", "unit", "isoDate", "search",
     "build"]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["fulfil", "fulfil/o1", "approve", "Shipped", "ASC", "Duration", "Time"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(FIELDS | st.text(), inner, max_size=5)
    ),
    max_leaves=20,
)


async def test_no_json_body_makes_a_system_command_answer_5xx(
    http: HttpHandler, rt: InMemoryRuntime
) -> None:
    answers: dict[int, int] = {}

    @settings(
        max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(command_name=st.sampled_from(SYSTEM), body=JSON)
    def check(command_name: str, body: Any) -> None:
        # hypothesis drives a sync function (in a worker thread); the handler runs on this
        # test's event loop, where the runtime lives.
        r = anyio.from_thread.run(post, http, f"/rpc/_system/{command_name}", body)
        answers[r.status] = answers.get(r.status, 0) + 1
        assert r.status < 500, (command_name, body, r.body[:300])
        if r.status >= 400:
            refused(r, r.status)

    await anyio.to_thread.run_sync(check)
    assert set(answers) - {200, 400, 404, 409} == set(), answers
    assert answers.get(400, 0) > 0 and answers.get(200, 0) > 0, answers
