from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from eventual.client import (
    HttpError,
    Retry,
    ServiceClient,
    ServiceUnreachable,
    SyncServiceClient,
    UnexpectedResponse,
    command_ref,
    service_ref,
)

if TYPE_CHECKING:
    from conftest import LiveService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.anyio
async def test_call_sends_the_input_and_builds_the_typed_output(live: LiveService, example: Any):
    async with ServiceClient(live.url) as client:
        invoice = await client.call(example.send_invoice, example.Order(id="o1", amount=21))
        assert isinstance(invoice, example.Invoice)
        assert invoice == example.Invoice(order_id="o1", total=42)
        # A command with a custom name and a CommandContext parameter.
        assert await client.call(example.greet, "Ada") == "hello Ada from example"
        # A command without input.
        assert await client.call(example.ping) == "pong"
        assert await client.call(example.add_all, [1, 2, 3]) == 6
    request = live.received[0]
    assert request.method == "POST"
    assert request.path == "/rpc/send_invoice"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request._body) == {"id": "o1", "amount": 21}
    assert live.paths()[1:] == ["/rpc/getGreeting", "/rpc/ping", "/rpc/add_all"]


def test_sync_client_calls_the_same_commands(live: LiveService, example: Any):
    with SyncServiceClient(live.url) as client:
        invoice = client.call(example.send_invoice, example.Order(id="o2", amount=5))
        assert invoice == example.Invoice(order_id="o2", total=10)
        assert client.call(example.greet, "Bob") == "hello Bob from example"
        assert client.call(example.ping) == "pong"


@pytest.mark.anyio
async def test_refs_name_commands_without_importing_the_service(live: LiveService, example: Any):
    orders = service_ref(greet="getGreeting", send_invoice=command_ref("send_invoice"))
    async with ServiceClient(live.url) as client:
        # Attribute name = command name (the @command default); renamed ones are mapped.
        assert await client.call(orders.ping) == "pong"
        assert await client.call(orders.greet, "Cy") == "hello Cy from example"
        # Without an output type the result is the decoded JSON...
        raw = await client.call(orders.send_invoice, {"id": "o3", "amount": 1})
        assert raw == {"order_id": "o3", "total": 2, "note": ""}
        # ... with one, it is built as that type.
        typed_ref = command_ref("send_invoice", input=example.Order, output=example.Invoice)
        built = await client.call(typed_ref, example.Order(id="o4", amount=2))
        assert built == example.Invoice(order_id="o4", total=4)
        # Plain strings work too (untyped).
        assert await client.call("add_all", [4, 5]) == 9


@pytest.mark.anyio
async def test_errors_carry_the_status_and_the_server_error_body(live: LiveService, example: Any):
    async with ServiceClient(live.url) as client:
        with pytest.raises(HttpError) as bad:
            await client.call("send_invoice", {"id": "o1", "amount": "lots"})
        assert bad.value.status == 400
        assert bad.value.name == "ValidationError"
        assert "amount" in bad.value.message
        assert bad.value.details[0]["path"] == ["amount"]

        with pytest.raises(HttpError) as conflict:
            await client.call(example.conflict, "o9")
        assert (conflict.value.status, conflict.value.name) == (409, "AlreadyInvoiced")
        assert conflict.value.message == "order o9 is already invoiced"

        with pytest.raises(HttpError) as crash:
            await client.call(example.explode, "o9")
        assert (crash.value.status, crash.value.name) == (500, "ValueError")
        assert crash.value.message == "cannot explode o9"
        assert "Traceback" not in str(crash.value)

        with pytest.raises(HttpError) as unknown:
            await client.call("no_such_command", 1)
        assert (unknown.value.status, unknown.value.name) == (404, "NotFound")


def test_an_output_that_does_not_match_the_declared_type_is_reported(live: LiveService):
    wrong = command_ref("greet_typo", output=int)
    ref = command_ref("ping", output=int)
    with SyncServiceClient(live.url) as client:
        with pytest.raises(UnexpectedResponse, match=r"command 'ping' answered 'pong'"):
            client.call(ref)
        with pytest.raises(HttpError):
            client.call(wrong, "x")


@pytest.mark.anyio
async def test_an_unreachable_service_raises_an_error_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}"
    async with ServiceClient(url, retry=Retry(attempts=2, backoff=0.001)) as client:
        with pytest.raises(ServiceUnreachable) as err:
            await client.call("ping")
    assert err.value.url == f"{url}/rpc/ping"
    assert f"could not reach {url}/rpc/ping" in str(err.value)
    retry = Retry(attempts=2, backoff=0.001)
    with SyncServiceClient(url, retry=retry) as sync, pytest.raises(ServiceUnreachable, match=url):
        sync.call("ping")


def test_a_slow_answer_raises_after_the_timeout(live: LiveService, example: Any):
    client = SyncServiceClient(live.url, timeout=0.1)
    with client, pytest.raises(ServiceUnreachable, match="within the timeout"):
        client.call(example.slow, 0.5)
    with SyncServiceClient(live.url, timeout=5) as client:
        assert client.call(example.slow, 0.01) == 0.01


def test_headers_and_bearer_token_are_sent(live: LiveService):
    with SyncServiceClient(live.url, headers={"X-Tenant": "acme"}, auth="s3cret") as client:
        client.call("ping", headers={"X-Request-Id": "r1"})
    headers = live.received[-1].headers
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-tenant"] == "acme"
    assert headers["x-request-id"] == "r1"


def test_commands_are_retried_only_when_the_connection_was_not_opened():
    attempts: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        if len(attempts) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json="pong")

    retry = Retry(attempts=3, backoff=0.001)
    transport = httpx.MockTransport(refuse)
    with SyncServiceClient("http://svc.test", retry=retry, transport=transport) as client:
        assert client.call("ping") == "pong"
    assert attempts == ["/rpc/ping"] * 3

    attempts.clear()

    def read_timeout(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.path)
        raise httpx.ReadTimeout("no answer", request=request)

    transport = httpx.MockTransport(read_timeout)
    client = SyncServiceClient("http://svc.test", retry=retry, transport=transport)
    with client, pytest.raises(ServiceUnreachable):
        client.call("ping")
    # The request may have run: a command is not repeated.
    assert attempts == ["/rpc/ping"]


def test_the_service_url_must_be_http():
    with pytest.raises(ValueError, match="http://"):
        ServiceClient("localhost:3111")


def test_error_bodies_from_gateways_and_proxies_still_give_a_clear_http_error():
    answers = {
        "/rpc/iam": httpx.Response(403, json={"message": "Forbidden"}),
        "/rpc/proxy": httpx.Response(502, text="<html>Bad Gateway</html>"),
        "/rpc/empty": httpx.Response(401),
    }
    transport = httpx.MockTransport(lambda request: answers[request.url.path])
    with SyncServiceClient("http://svc.test", transport=transport) as client:
        with pytest.raises(HttpError) as iam:
            client.call("iam")
        assert (iam.value.status, iam.value.name, iam.value.message) == (
            403,
            "Forbidden",
            "Forbidden",
        )
        with pytest.raises(HttpError) as proxy:
            client.call("proxy")
        assert (proxy.value.status, proxy.value.name) == (502, "BadGateway")
        assert proxy.value.message == "<html>Bad Gateway</html>"
        with pytest.raises(HttpError) as empty:
            client.call("empty")
        assert (empty.value.status, empty.value.name) == (401, "Unauthorized")
        assert empty.value.message == "command 'empty' failed with HTTP 401"
    from eventual.core import HttpError as CoreHttpError

    assert HttpError is CoreHttpError
