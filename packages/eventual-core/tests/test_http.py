"""The transport-neutral HTTP layer: commands, routes, middleware, errors, system commands."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from eventual.core import (
    CommandContext,
    HttpError,
    Request,
    Response,
    api,
    async_result,
    command,
    event,
    signal,
    subscription,
    task,
    workflow,
)
from eventual.core.http.handler import HttpHandler
from eventual.core.runtime import InMemoryRuntime

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    name: str
    qty: int


@command
async def add_item(item: Item) -> dict[str, Any]:
    return {"name": item.name, "total": item.qty * 2}


@command("getItem", path="/items/{name}", method="GET")
async def get_item(query: dict[str, str]) -> dict[str, str]:
    return query


@command("putItem", path="/items/{name}", method="PUT")
async def put_item(item: Item) -> Item:
    return item


@command
async def explode(_: None) -> None:
    raise RuntimeError("the flux capacitor is gone")


@command
async def teapot(_: None) -> None:
    raise HttpError(418, "I am a teapot", name="Teapot")


trail: list[str] = []


async def auth(request: Request, context: CommandContext, next: Any) -> Response:
    token = request.headers.get("authorization")
    if token != "Bearer sesame":
        raise HttpError(401, "log in first", name="Unauthorized")
    return await next({**context, "user": "ali"})


async def stamp(request: Request, context: CommandContext, next: Any) -> Response:
    trail.append(f"stamp saw {context.get('user')}")
    response = await next(context)
    response.headers["x-stamped"] = "yes"
    return response


async def short_circuit(request: Request, context: CommandContext, next: Any) -> Response:
    if request.query.get("cached"):
        return Response("from cache", status=203)
    return await next(context)


private = api.use(auth).use(stamp)


@private.command
async def whoami(_: None, context: CommandContext) -> str:
    return f"{context['user']} via {context.service_name}"


@private.get("/hello/{name}")
async def hello(request: Request, context: CommandContext) -> Response:
    return Response(f"hello {request.params['name']} from {context['user']}")


cached = api.use(short_circuit)


@cached.get("/maybe")
async def maybe(request: Request) -> Response:
    return Response.json({"fresh": True})


@api.post("/echo")
async def echo(request: Request) -> Response:
    return Response.json({"body": await request.json(), "q": request.query})


# ---------------------------------------------------------------- system commands fixtures

poke = signal("poke", int)
note = event("Note")
notes: list[Any] = []


@subscription("onNote", events=[note])
async def on_note(payload: Any) -> None:
    notes.append(payload)


tokens: list[str] = []


@task("manual")
async def manual() -> str:
    return async_result(tokens.append)


@workflow("sys")
async def sys_wf(x: int) -> int:
    v = await poke.expect_signal()
    got = await manual()
    return x + v + int(got)


@pytest.fixture
async def http(rt: InMemoryRuntime) -> HttpHandler:
    return HttpHandler(rt.service, rt, service_url="http://svc", max_body=1000)


async def call(
    h: HttpHandler, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> Response:
    raw = (
        body if isinstance(body, (bytes, str)) else (json.dumps(body) if body is not None else b"")
    )
    return await h.handle(Request(method, f"http://svc{path}", headers=headers, body=raw))


async def test_rpc_command_validates_and_returns_json(http: HttpHandler) -> None:
    r = await call(http, "POST", "/rpc/add_item", {"name": "pen", "qty": 3})
    assert (r.status, r.json_body()) == (200, {"name": "pen", "total": 6})
    assert r.headers["content-type"] == "application/json"


async def test_bad_input_is_400_with_details(http: HttpHandler) -> None:
    r = await call(http, "POST", "/rpc/add_item", {"name": "pen", "qty": "many"})
    assert r.status == 400
    body = r.json_body()
    assert body["error"] == "ValidationError"
    assert "qty" in body["message"]
    assert body["data"][0]["path"] == ["qty"]
    r = await call(http, "POST", "/rpc/add_item", "{not json")
    assert r.status == 400
    assert r.json_body()["error"] == "BadRequest"
    assert "not valid JSON" in r.json_body()["message"]


async def test_rest_path_parameters_merge_into_input(http: HttpHandler) -> None:
    r = await call(http, "GET", "/items/pen?color=blue")
    assert r.json_body() == {"color": "blue", "name": "pen"}
    r = await call(http, "PUT", "/items/pen", {"qty": 2})
    assert r.json_body() == {"name": "pen", "qty": 2}


async def test_unknown_route_404_and_wrong_method_405(http: HttpHandler) -> None:
    r = await call(http, "GET", "/nowhere")
    assert (r.status, r.json_body()["error"]) == (404, "NotFound")
    r = await call(http, "POST", "/rpc/nope", {})
    assert r.status == 404
    r = await call(http, "DELETE", "/items/pen")
    assert r.status == 405
    assert r.headers["allow"] == "GET, PUT"
    r = await call(http, "GET", "/rpc/add_item")
    assert r.status == 405


async def test_oversized_body_is_413(http: HttpHandler) -> None:
    r = await call(http, "POST", "/rpc/add_item", {"name": "x" * 2000, "qty": 1})
    assert r.status == 413
    assert r.json_body()["error"] == "PayloadTooLarge"


async def test_handler_exception_is_500_without_traceback(
    http: HttpHandler, caplog: pytest.LogCaptureFixture
) -> None:
    r = await call(http, "POST", "/rpc/explode")
    assert r.status == 500
    assert r.json_body() == {"error": "RuntimeError", "message": "the flux capacitor is gone"}
    assert "Traceback" not in r.text()
    assert any("Traceback" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records)
    r = await call(http, "POST", "/rpc/teapot")
    assert (r.status, r.json_body()) == (418, {"error": "Teapot", "message": "I am a teapot"})


async def test_middleware_chain_context_and_response_editing(http: HttpHandler) -> None:
    trail.clear()
    denied = await call(http, "POST", "/rpc/whoami")
    assert (denied.status, denied.json_body()["error"]) == (401, "Unauthorized")
    ok = await call(http, "POST", "/rpc/whoami", headers={"Authorization": "Bearer sesame"})
    assert ok.json_body() == "ali via test"
    assert ok.headers["x-stamped"] == "yes"
    assert trail == ["stamp saw ali"]
    r = await call(http, "GET", "/hello/bob", headers={"authorization": "Bearer sesame"})
    assert (r.status, r.text()) == (200, "hello bob from ali")


async def test_middleware_may_answer_without_calling_next(http: HttpHandler) -> None:
    r = await call(http, "GET", "/maybe?cached=1")
    assert (r.status, r.text()) == (203, "from cache")
    r = await call(http, "GET", "/maybe")
    assert r.json_body() == {"fresh": True}
    r = await call(http, "HEAD", "/maybe")
    assert r.status == 200


async def test_raw_route_reads_body_and_query(http: HttpHandler) -> None:
    r = await call(http, "POST", "/echo?a=1", {"k": [1, 2]})
    assert r.json_body() == {"body": {"k": [1, 2]}, "q": {"a": "1"}}


# ---------------------------------------------------------------- system commands


async def test_system_commands_drive_an_execution(http: HttpHandler, rt: InMemoryRuntime) -> None:
    tokens.clear()
    r = await call(
        http,
        "POST",
        "/rpc/_system/startExecution",
        {"workflow": "sys", "input": 1, "executionName": "one"},
    )
    assert r.json_body() == {"executionId": "sys/one", "alreadyRunning": False}
    again = await call(
        http,
        "POST",
        "/rpc/_system/startExecution",
        {"workflow": "sys", "input": 1, "executionName": "one"},
    )
    assert again.json_body() == {"executionId": "sys/one", "alreadyRunning": True}
    clash = await call(
        http,
        "POST",
        "/rpc/_system/startExecution",
        {"workflow": "sys", "input": 2, "executionName": "one"},
    )
    assert clash.status == 409
    await rt.idle()
    # The TypeScript client's shapes: signal name in signalId, dedup id in id.
    r = await call(
        http,
        "POST",
        "/rpc/_system/sendSignal",
        {"executionId": "sys/one", "signalId": "poke", "payload": 10, "id": "p1"},
    )
    assert r.status == 200
    await rt.idle()
    assert len(tokens) == 1
    r = await call(
        http,
        "POST",
        "/rpc/_system/updateTask",
        {"type": "Heartbeat", "taskToken": tokens[0]},
    )
    assert r.json_body() == {"cancelled": False}
    r = await call(
        http,
        "POST",
        "/rpc/_system/updateTask",
        {"type": "Success", "taskToken": tokens[0], "result": "100"},
    )
    assert r.status == 200
    await rt.idle()
    r = await call(http, "POST", "/rpc/_system/getExecution", json.dumps("sys/one"))
    execution = r.json_body()
    assert execution["status"] == "SUCCEEDED"
    assert execution["result"] == 111
    assert execution["workflowName"] == "sys"
    r = await call(http, "POST", "/rpc/_system/getExecutionHistory", {"executionId": "sys/one"})
    types = [e["type"] for e in r.json_body()["events"]]
    assert types[0] == 10 and types[-1] == 95  # WorkflowStarted, WorkflowSucceeded
    r = await call(http, "POST", "/rpc/_system/listExecutions", {"workflowName": "sys"})
    assert [e["id"] for e in r.json_body()["executions"]] == ["sys/one"]
    r = await call(http, "POST", "/rpc/_system/listWorkflows")
    assert {"name": "sys"} in r.json_body()["workflows"]


async def test_system_emit_events_and_errors(http: HttpHandler, rt: InMemoryRuntime) -> None:
    notes.clear()
    r = await call(
        http, "POST", "/rpc/_system/emitEvents", {"events": [{"name": "Note", "event": {"a": 1}}]}
    )
    assert r.status == 200
    await rt.idle()
    assert notes == [{"a": 1}]
    # As the original: an unknown execution is a 200 with an empty body (the client's
    # ``undefined``), and its history is empty.
    r = await call(http, "POST", "/rpc/_system/getExecution", json.dumps("sys/missing"))
    assert (r.status, r.body) == (200, b"")
    r = await call(http, "POST", "/rpc/_system/getExecutionHistory", {"executionId": "sys/x"})
    assert (r.status, r.json_body()) == (200, {"events": []})
    r = await call(http, "POST", "/rpc/_system/executeTransaction", {"transactionName": "t"})
    assert r.status == 400
    assert "transactions are not part of Eventual for Python" in r.json_body()["message"]
    r = await call(http, "POST", "/rpc/_system/nope", {})
    assert r.status == 404
    assert "unknown system command 'nope'" in r.json_body()["message"]
    r = await call(http, "POST", "/rpc/_system/startExecution", {"input": 1})
    assert (r.status, r.json_body()["message"]) == (
        400,
        "the request body needs a 'workflow' field",
    )
    r = await call(http, "POST", "/rpc/_system/startExecution", {"workflow": "ghost"})
    assert r.status == 404
    assert "workflow 'ghost' does not exist" in r.json_body()["message"]
    r = await call(http, "POST", "/rpc/_system/updateTask", {"type": "Success", "taskToken": "zz"})
    assert (r.status, r.json_body()["error"]) == (400, "InvalidTaskToken")


@command
async def start_named(name: str) -> str:
    handle = await sys_wf.start_execution(len(name), execution_name=name)
    return handle.execution_id


async def test_a_command_starting_a_taken_or_invalid_name_answers_4xx(http: HttpHandler) -> None:
    ok = await call(http, "POST", "/rpc/start_named", json.dumps("abc"))
    assert (ok.status, ok.json_body()) == (200, "sys/abc")
    # Same name, other input: the conflict is the caller's, not a server error.
    clash = await call(http, "POST", "/rpc/start_named", json.dumps("abc"))
    assert clash.status == 200  # same name and same input: the running execution
    await call(
        http,
        "POST",
        "/rpc/_system/startExecution",
        {"workflow": "sys", "input": 9, "executionName": "xy"},
    )
    taken = await call(http, "POST", "/rpc/start_named", json.dumps("xy"))
    assert (taken.status, taken.json_body()["error"]) == (409, "ExecutionAlreadyExists")
    bad = await call(http, "POST", "/rpc/start_named", json.dumps("a\nb"))
    assert (bad.status, bad.json_body()["error"]) == (400, "InvalidInput")
    assert "invalid execution name" in bad.json_body()["message"]


async def test_a_model_input_is_parsed_at_once_and_other_bodies_answer_as_before(
    http: HttpHandler,
) -> None:
    """An RPC body for a model input is parsed and validated by pydantic in one step, and a
    model output serialized by the model in one step; the bodies that path does not take
    (a JSON constant, bad JSON, an invalid input, no input, deep nesting) get the general
    path's answers."""
    r = await call(http, "POST", "/rpc/add_item", b'{"name": "p\\u00e9n", "qty": "3"}')
    assert (r.status, r.json_body()) == (200, {"name": "pén", "total": 6})
    r = await call(http, "POST", "/rpc/putItem", {"name": "ink", "qty": 2})
    assert (r.status, r.json_body()) == (200, {"name": "ink", "qty": 2})
    assert r.headers["content-type"] == "application/json"
    refused = {
        b'{"name": "pen", "qty": NaN}': "NaN is not a JSON value",
        b'{"name": "pen", "qty": 3': "the request body is not valid JSON",
        b'{"name": "pen", "qty": "many"}': "invalid input",
        b" ": "invalid input",
        b'{"name": ' + b"[" * 150 + b"]" * 150 + b', "qty": 1}': "nested deeper than 100",
    }
    for body, words in refused.items():
        r = await call(http, "POST", "/rpc/add_item", body)
        assert r.status == 400, (body, r.json_body())
        assert words in r.json_body()["message"], (body, r.json_body())


def test_a_received_request_and_its_headers() -> None:
    from eventual.core.http.api import Headers

    headers = Headers.lowered({"content-type": "application/json", "x-a": "1"})
    request = Request.received(
        "POST", "http://svc/rpc/x%20y?a=1&b=", "/rpc/x y", "a=1&b=", headers, b"{}"
    )
    assert (request.path, request.query, request.params) == ("/rpc/x y", {"a": "1", "b": ""}, {})
    assert request.headers["Content-Type"] == "application/json" and "X-A" in request.headers
    assert Request("GET", "http://svc/p", headers=headers).headers == headers  # a copy
    assert Request("GET", "http://svc/p", headers=headers).headers is not headers


def test_loads_reads_utf16_utf32_and_a_bom_as_json_loads_does() -> None:
    from eventual.core.serialization import loads

    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"):
        assert loads('{"a": "é"}'.encode(encoding)) == {"a": "é"}, encoding
    with pytest.raises(ValueError):
        loads(b'{"a": "\xff"}')  # not UTF-8


async def test_a_system_command_takes_no_body_but_refuses_a_json_null(http: HttpHandler) -> None:
    assert (await call(http, "POST", "/rpc/_system/listWorkflows", b"")).status == 200
    r = await call(http, "POST", "/rpc/_system/listWorkflows", b"null")
    assert r.status == 400
    assert r.json_body()["message"] == "listWorkflows takes a JSON object"
