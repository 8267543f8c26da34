"""The ASGI adapter in-process, through httpx's ASGITransport."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import cli_demo
import httpx
import pytest
from openapi_spec_validator import validate

from eventual.cli.server import ServiceApp
from eventual.core.runtime import InMemoryRuntime
from eventual.core.service import load_service

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    service = load_service(cli_demo)
    async with InMemoryRuntime(service) as rt:
        app = ServiceApp(service, rt, service_url="http://demo")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
            yield c


async def test_rpc_command_validates_and_answers(client: httpx.AsyncClient) -> None:
    ok = await client.post("/rpc/add", json={"a": 2, "b": 40})
    assert (ok.status_code, ok.json()) == (200, 42)
    bad = await client.post("/rpc/add", json={"a": "two"})
    assert bad.status_code == 400
    body = bad.json()
    assert body["error"] == "ValidationError"
    assert {tuple(d["path"]) for d in body["data"]} == {("a",), ("b",)}
    not_json = await client.post(
        "/rpc/add", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "BadRequest"


async def test_rest_path_params_are_decoded_and_merged(client: httpx.AsyncClient) -> None:
    r = await client.get("/items/a%20b%C3%A9", params={"size": "3"})
    assert r.status_code == 200
    assert r.json() == {"id": "a bé", "size": 3}


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "message": "no route for GET /nowhere"}
    wrong = await client.post("/items/x")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"


async def test_handler_exception_is_a_500_without_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="eventual.http"):
        r = await client.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"error": "RuntimeError", "message": "the flux capacitor broke"}
    assert "Traceback" not in r.text and "cli_demo" not in r.text
    logged = [rec for rec in caplog.records if rec.name == "eventual.http"]
    assert logged and logged[0].exc_info is not None
    assert "the flux capacitor broke" in caplog.text


async def test_middleware_puts_the_user_in_the_context(client: httpx.AsyncClient) -> None:
    assert (await client.get("/me")).status_code == 401
    r = await client.get("/me", headers={"x-user": "ada"})
    assert r.json() == {"user": "ada"}


async def test_head_has_headers_but_no_body(client: httpx.AsyncClient) -> None:
    r = await client.head("/items/x")
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["content-length"]) > 0


async def test_default_body_limit_is_one_megabyte(client: httpx.AsyncClient) -> None:
    limit = 1024 * 1024
    at_limit = await client.post("/rpc/add", content=b" " * (limit - 16) + b'{"a":1,"b":1}')
    assert at_limit.status_code == 200
    over = await client.post("/rpc/add", content=b" " * (limit + 1))
    assert over.status_code == 413
    assert over.json()["error"] == "PayloadTooLarge"


async def test_body_limit_while_streaming_without_content_length() -> None:
    """A chunked body is cut off at the limit: the app stops reading and answers 413."""
    service = load_service(cli_demo)
    app = ServiceApp(service, None, max_body=100)
    chunks = [b"x" * 60, b"x" * 60, b"x" * 60]
    received: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        chunk = chunks[len(received) - 1]
        return {"type": "http.request", "body": chunk, "more_body": len(received) < len(chunks)}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/rpc/add",
        "raw_path": b"/rpc/add",
        "query_string": b"",
        "headers": [(b"transfer-encoding", b"chunked")],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert len(received) == 2  # stopped reading as soon as it went over
    assert b"larger than the limit of 100 bytes" in sent[1]["body"]


async def test_content_length_over_the_limit_is_refused_before_reading() -> None:
    service = load_service(cli_demo)
    app = ServiceApp(service, None, max_body=10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as c:
        r = await c.post("/rpc/add", content=b"x" * 11)
    assert r.status_code == 413


async def test_system_commands_drive_the_runtime(client: httpx.AsyncClient) -> None:
    started = await client.post(
        "/rpc/_system/startExecution",
        json={"workflow": "greet", "input": "ada", "executionName": "one"},
    )
    assert started.json() == {"executionId": "greet/one", "alreadyRunning": False}
    execution: dict[str, Any] = {}
    for _ in range(400):
        execution = (await client.post("/rpc/_system/getExecution", json="greet/one")).json()
        if execution["status"] != "IN_PROGRESS":
            break
        import anyio

        await anyio.sleep(0.01)
    assert execution["status"] == "SUCCEEDED"
    assert execution["result"] == "HELLO ADA"
    history = (
        await client.post("/rpc/_system/getExecutionHistory", json={"executionId": "greet/one"})
    ).json()
    assert [e["type"] for e in history["events"]][-1] == 95  # WorkflowSucceeded
    missing = await client.post("/rpc/_system/getExecution", json="greet/nope")
    assert (missing.status_code, missing.content) == (200, b"")  # the original's answer


async def test_system_commands_need_a_runtime() -> None:
    app = ServiceApp(load_service(cli_demo), None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as c:
        r = await c.post("/rpc/_system/listWorkflows", json={})
    assert r.status_code == 404


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "cli-demo"
    assert doc["servers"] == [{"url": "http://demo"}]
    paths = doc["paths"]
    add = paths["/rpc/add"]["post"]
    assert add["summary"] == "Add two numbers."
    assert add["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Sum"
    }
    sum_schema = doc["components"]["schemas"]["Sum"]
    assert sum_schema["required"] == ["a", "b"]
    assert paths["/items/{id}"]["get"]["parameters"][0]["name"] == "id"
    assert {p["name"] for p in paths["/items/{id}"]["get"]["parameters"]} == {"id", "size"}
    assert set(paths["/me"]) == {"get"}
    assert "/rpc/_system/startExecution" in paths
    assert doc["x-eventual"]["workflows"] == ["fail", "greet", "waitForGo"]


async def test_replace_service_swaps_handlers(client: httpx.AsyncClient) -> None:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, ServiceApp)
    smaller = load_service(cli_demo)
    del smaller.commands["add"]
    app.replace_service(smaller)
    assert (await client.post("/rpc/add", json={"a": 1, "b": 2})).status_code == 404
    assert "/rpc/add" not in (await client.get("/openapi.json")).json()["paths"]
