"""Deployed services: --service/--region discovery (moto SSM) and SigV4-signed system requests
(a local server that verifies every signature with the test credentials)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cli_demo
import pytest
import uvicorn
from botocore.auth import SigV4Auth as BotoSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws
from typer.testing import CliRunner

from eventual.cli.deployed import SERVICE_PARAMETER_PREFIX, service_parameter
from eventual.cli.main import app
from eventual.cli.server import ServiceApp
from eventual.core.runtime import InMemoryRuntime
from eventual.core.service import load_service

REGION = "us-east-1"
KEY, SECRET = "testing", "testing-secret"
SERVICE = "cli-demo"


# ---------------------------------------------------------------- a server that checks SigV4


class SigV4Checker:
    """ASGI middleware standing in for API Gateway's IAM auth on the system routes: a request
    whose signature does not verify with the test credentials gets a 403."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append((scope["path"], headers))
        if scope["path"].startswith("/rpc/_system/"):
            problem = verify(scope, headers, body)
            if problem:
                payload = json.dumps({"message": problem}).encode()
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"application/json")]})  # fmt: skip
                await send({"type": "http.response.body", "body": payload})
                return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.inner(scope, replay, send)


def verify(scope: Any, headers: dict[str, str], body: bytes) -> str | None:
    authorization = headers.get("authorization", "")
    amz_date = headers.get("x-amz-date")
    if not authorization.startswith("AWS4-HMAC-SHA256 ") or not amz_date:
        return "Missing Authentication Token"
    parts = dict(
        p.strip().split("=", 1) for p in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    scope_parts = parts["Credential"].split("/")
    if scope_parts[0] != KEY or scope_parts[2:] != [REGION, "execute-api", "aws4_request"]:
        return f"wrong credential scope {parts['Credential']}"
    signed = parts["SignedHeaders"].split(";")
    if not {"host", "x-amz-date"} <= set(signed):
        return f"host and x-amz-date must be signed, not only {signed}"
    query = scope.get("query_string", b"").decode()
    url = f"http://{headers['host']}{scope['path']}" + (f"?{query}" if query else "")
    request = AWSRequest(
        method=scope["method"], url=url, data=body, headers={h: headers[h] for h in signed}
    )
    request.context["timestamp"] = amz_date
    signer = BotoSigV4Auth(Credentials(KEY, SECRET), "execute-api", REGION)
    expected = signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )
    if expected != parts["Signature"]:
        return "The request signature we calculated does not match the signature you provided"
    return None


class SignedServer:
    def __init__(self) -> None:
        self.url = ""
        self.checker: SigV4Checker | None = None
        self._server: uvicorn.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        service = load_service(cli_demo)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with InMemoryRuntime(service) as rt:
            self.checker = SigV4Checker(ServiceApp(service, rt, service_url=self.url))
            config = uvicorn.Config(self.checker, log_level="warning", lifespan="off")
            self._server = uvicorn.Server(config)
            self._ready.set()
            await self._server.serve(sockets=[sock])

    def __enter__(self) -> SignedServer:
        self._thread.start()
        assert self._ready.wait(10)
        assert self._server is not None
        for _ in range(1000):  # started within ~10 s
            if self._server.started:
                break
            threading.Event().wait(0.01)
        assert self._server.started
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.should_exit = True
        self._thread.join(10)

    @property
    def seen(self) -> list[tuple[str, dict[str, str]]]:
        assert self.checker is not None
        return self.checker.seen


@pytest.fixture(scope="module")
def server() -> Iterator[SignedServer]:
    with SignedServer() as s:
        yield s


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Fake credentials, no region, no profile, and moto's SSM."""
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SESSION_TOKEN",
                "EVENTUAL_URL", "EVENTUAL_SERVICE", "EVENTUAL_CDK"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    with mock_aws():
        # mock_aws puts its own fake keys in the environment: ours are the ones the checker
        # verifies signatures with.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        yield {}


def put_record(api_url: str, *, name: str = SERVICE, region: str = REGION) -> dict[str, Any]:
    import boto3

    record = {
        "version": 1,
        "service": name,
        "apiUrl": api_url + "/",
        "eventBusArn": f"arn:aws:events:{region}:123456789012:event-bus/{name}-events",
        "eventBusName": f"{name}-events",
        "region": region,
        "account": "123456789012",
        "logGroup": f"/eventual/{name}/executions",
        "stack": "CliDemoStack",
    }
    boto3.client("ssm", region_name=region).put_parameter(
        Name=service_parameter(name), Value=json.dumps(record), Type="String"
    )
    return record


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# ---------------------------------------------------------------- discovery + signing


def test_the_parameter_name_is_the_one_the_construct_writes() -> None:
    from eventual.aws_runtime import names

    assert SERVICE_PARAMETER_PREFIX == names.SERVICE_PARAMETER_PREFIX
    for name in ("orders", "my service/β", "a.b_c-d"):
        assert service_parameter(name) == names.service_parameter(name)


def test_start_history_and_executions_through_service_are_signed(
    server: SignedServer, aws_env: dict[str, str]
) -> None:
    put_record(server.url)
    before = len(server.seen)
    started = run("--service", SERVICE, "--region", REGION, "start", "greet", "ada",
                  "--name", "signed-1", "--follow")  # fmt: skip
    assert started.exit_code == 0, started.output
    assert "Started greet/signed-1" in started.stdout
    assert '"HELLO ADA"' in started.stdout and "succeeded" in started.stdout

    history = run("--service", SERVICE, "--region", REGION, "history", "greet/signed-1", "--json")
    assert history.exit_code == 0, history.output
    types = [e["type"] for e in json.loads(history.stdout)]
    assert types[0] == "WorkflowStarted" and types[-1] == "WorkflowSucceeded"
    assert "TaskSucceeded" in types

    listed = run("--service", SERVICE, "--region", REGION, "executions", "--json")
    assert listed.exit_code == 0, listed.output
    assert {e["id"]: e["status"] for e in json.loads(listed.stdout)}["greet/signed-1"] == (
        "SUCCEEDED"
    )
    requests = server.seen[before:]
    system = [h for path, h in requests if path.startswith("/rpc/_system/")]
    assert system, requests
    for headers in system:
        assert (
            headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")
            and f"/{REGION}/execute-api/aws4_request" in headers["authorization"]
        )
        assert "SignedHeaders=" in headers["authorization"]
        assert "host" in headers["authorization"].split("SignedHeaders=")[1].split(",")[0]
        assert headers["x-amz-date"].endswith("Z")


def test_signal_emit_logs_execution_and_replay_through_service(
    server: SignedServer, aws_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cli_demo")  # as `eventual dev` sets it
    put_record(server.url)
    env = {"EVENTUAL_SERVICE": SERVICE, "AWS_DEFAULT_REGION": REGION}
    assert run("start", "waitForGo", "bo", "--name", "w1", env=env).exit_code == 0
    sent = run("signal", "waitForGo/w1", "go", "now", env=env)
    assert sent.exit_code == 0, sent.output
    assert "Sent signal go to waitForGo/w1" in sent.stdout
    follow = run("start", "waitForGo", "bo", "--name", "w1", "--follow", "--json", env=env)
    assert follow.exit_code == 0, follow.output
    assert json.loads(follow.stdout.splitlines()[-1])["result"] == "bo:now"
    shown = run("execution", "waitForGo/w1", "--json", env=env)
    assert json.loads(shown.stdout)["status"] == "SUCCEEDED"

    emitted = run("emit", "Ping", '{"n": 7}', env=env)
    assert emitted.exit_code == 0, emitted.output
    assert "Emitted 1 Ping event(s)" in emitted.stdout

    run("start", "greet", "cy", "--name", "logged", "--follow", env=env)
    logged = run("logs", "--execution", "greet/logged", "--json", env=env)
    assert logged.exit_code == 0, logged.output
    assert any("greeting cy" in json.loads(ln)["message"] for ln in logged.stdout.splitlines())

    # replay (registered by another module) gets the global --service too.
    replayed = run("--service", SERVICE, "--region", REGION, "replay", "greet/logged",
                   "--entry", "cli_demo")  # fmt: skip
    assert replayed.exit_code == 0, replayed.output
    assert "the outcome matches the recorded one" in replayed.stdout
    # ... and its own --service/--region, like the other commands.
    own = run("replay", "greet/logged", "--entry", "cli_demo", "--service", SERVICE,
              "--region", REGION, env={"EVENTUAL_URL": "http://127.0.0.1:9"})  # fmt: skip
    assert own.exit_code == 0, own.output
    assert "the outcome matches the recorded one" in own.stdout


def test_env_service_and_region_per_command_options_and_unsigned_user_commands(
    server: SignedServer, aws_env: dict[str, str]
) -> None:
    put_record(server.url, region="eu-west-1")
    env = {"EVENTUAL_SERVICE": SERVICE, "AWS_REGION": "eu-west-1"}
    # The record's region (eu-west-1) is the signing region: the checker expects us-east-1.
    refused = run("workflows", env=env)
    line = one_line_error(refused)
    assert "HTTP 403" in line and "execute-api:Invoke" in line
    assert line.startswith("Error: Forbidden: wrong credential scope testing/")

    put_record(server.url)  # us-east-1
    ok = run("workflows", "--service", SERVICE, "--region", REGION, "--json")
    assert ok.exit_code == 0, ok.output
    assert "greet" in json.loads(ok.stdout)

    before = len(server.seen)
    invoked = run("invoke", "whoami", "-H", "x-user: ada", "--service", SERVICE,
                  "--region", REGION, env={"EVENTUAL_URL": "http://127.0.0.1:9"})  # fmt: skip
    assert invoked.exit_code == 0, invoked.output
    assert json.loads(invoked.stdout) == "nobody"  # no middleware on whoami
    (path, headers), *_ = server.seen[before:]
    assert path == "/rpc/whoami" and "authorization" not in headers


def test_a_bad_signature_is_refused_by_the_checker(server: SignedServer) -> None:
    import httpx

    from eventual.client.aws import SigV4Auth

    wrong = SigV4Auth(region=REGION, credentials=Credentials(KEY, "not-the-secret"))
    r = httpx.post(server.url + "/rpc/_system/listWorkflows", json={}, auth=wrong)
    assert r.status_code == 403 and "signature" in r.json()["message"]
    unsigned = httpx.post(server.url + "/rpc/_system/listWorkflows", json={})
    assert unsigned.status_code == 403


# ---------------------------------------------------------------- errors


def test_no_such_service(aws_env: dict[str, str]) -> None:
    line = one_line_error(run("--service", "nope", "--region", "eu-central-1", "executions"))
    assert "no deployed service 'nope' in eu-central-1" in line
    assert "/eventual/services/nope" in line and "Deploy its stack" in line


def test_region_missing(aws_env: dict[str, str]) -> None:
    line = one_line_error(run("--service", SERVICE, "executions"))
    assert "--region" in line and "AWS_REGION" in line


def test_no_credentials(aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    line = one_line_error(run("--service", SERVICE, "--region", REGION, "executions"))
    assert "no AWS credentials found" in line


def test_not_a_service_record(aws_env: dict[str, str]) -> None:
    import boto3

    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=service_parameter("odd"), Value="not json", Type="String"
    )
    line = one_line_error(run("--service", "odd", "--region", REGION, "executions"))
    assert "not an Eventual service record" in line


def test_url_and_service_together_is_an_error(aws_env: dict[str, str]) -> None:
    line = one_line_error(run("executions", "--url", "http://x", "--service", SERVICE))
    assert "not both" in line
    line = one_line_error(
        run("executions", env={"EVENTUAL_URL": "http://x", "EVENTUAL_SERVICE": SERVICE})
    )
    assert "EVENTUAL_URL and $EVENTUAL_SERVICE" in line


def test_an_unreachable_service_names_it(aws_env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    put_record(f"http://127.0.0.1:{port}")
    line = one_line_error(run("--service", SERVICE, "--region", REGION, "executions"))
    assert (
        f"cannot connect to the service 'cli-demo' (us-east-1) at http://127.0.0.1:{port}" in line
    )


# ---------------------------------------------------------------- eventual service


def test_service_shows_the_record(aws_env: dict[str, str]) -> None:
    record = put_record("https://abc.execute-api.us-east-1.amazonaws.com")
    shown = run("service", "--service", SERVICE, "--region", REGION)
    assert shown.exit_code == 0, shown.output
    for value in (record["apiUrl"], "CliDemoStack", "cli-demo-events", record["logGroup"],
                  "123456789012", "/eventual/services/cli-demo"):  # fmt: skip
        assert value in shown.stdout
    as_json = json.loads(run("--service", SERVICE, "--region", REGION, "service", "--json").stdout)
    assert as_json["apiUrl"] == record["apiUrl"]
    assert as_json["eventBusArn"] == record["eventBusArn"]
    assert as_json["stack"] == "CliDemoStack" and as_json["region"] == REGION
    assert as_json["systemUrl"] == record["apiUrl"] + "rpc/_system/"


def test_service_against_a_url_reads_the_openapi_document(server: SignedServer) -> None:
    shown = run("--url", server.url, "service")
    assert shown.exit_code == 0, shown.output
    assert "cli-demo" in shown.stdout and f"{server.url}/openapi.json" in shown.stdout
    assert "POST /rpc/add" in shown.stdout and "Add two numbers." in shown.stdout
    data = json.loads(run("service", "--url", server.url, "--json").stdout)
    assert data["title"] == "cli-demo"
    names = {(e["kind"], e["name"]) for e in data["endpoints"]}
    assert {("command", "add"), ("command", "getItem"), ("route", "get_me")} <= names
    assert not any(e["path"].startswith("/rpc/_system/") for e in data["endpoints"])


def test_service_with_no_dev_server(aws_env: dict[str, str]) -> None:
    line = one_line_error(run("service", "--url", "http://127.0.0.1:9"))
    assert "eventual dev" in line


# ---------------------------------------------------------------- eventual timeline


def started_greeting(name: str) -> str:
    """A finished `greet` execution (a task and a timer) on the signed server."""
    started = run("--service", SERVICE, "--region", REGION, "start", "greet", "ada",
                  "--name", name, "--follow")  # fmt: skip
    assert started.exit_code == 0, started.output
    return f"greet/{name}"


def signed_system_requests(server: SignedServer, since: int) -> dict[str, dict[str, str]]:
    """The system requests the signed server received since ``since``, by command (each got
    through the checker: its signature verified)."""
    return {
        path.removeprefix("/rpc/_system/"): headers
        for path, headers in server.seen[since:]
        if path.startswith("/rpc/_system/")
    }


def test_timeline_server_forwards_read_only_commands_signed(
    server: SignedServer, aws_env: dict[str, str]
) -> None:
    import httpx

    from eventual.cli.deployed import connect
    from eventual.cli.timeline_proxy import TimelineServer

    put_record(server.url)
    execution_id = started_greeting("tl-proxy")
    with connect(service=SERVICE, region=REGION) as client, TimelineServer(client) as proxy:
        before = len(server.seen)
        page = httpx.get(proxy.page_url(execution_id))
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert '"serviceUrl": ""' in page.text  # the page calls the proxy (same origin)
        assert '"executionId": "greet/tl-proxy"' in page.text
        listing = httpx.get(proxy.url + "/_eventual/executions")
        assert listing.status_code == 200 and "<title>Executions" in listing.text
        assert httpx.get(proxy.url, follow_redirects=True).text == listing.text

        rpc = proxy.url + "/rpc/_system/"
        got = httpx.post(rpc + "getExecution", json=execution_id)
        assert got.status_code == 200, got.text
        assert got.json()["status"] == "SUCCEEDED" and got.json()["result"] == "HELLO ADA"
        history = httpx.post(rpc + "getExecutionHistory", json={"executionId": execution_id})
        types = [e["type"] for e in history.json()["events"]]
        assert types[0] == 10 and 46 in types  # WorkflowStarted, TaskSucceeded (wire kinds)
        listed = httpx.post(rpc + "listExecutions", json={})
        assert execution_id in [e["id"] for e in listed.json()["executions"]]
        # The browser sent no credentials; the service received each command signed.
        forwarded = signed_system_requests(server, before)
        assert set(forwarded) == {"getExecution", "getExecutionHistory", "listExecutions"}
        for headers in forwarded.values():
            assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY}/")

        # The service's errors come back as the service sent them.
        missing = httpx.post(rpc + "getExecution", json="greet/nope")
        assert (missing.status_code, missing.content) == (200, b"")  # the original's answer
        bad = httpx.post(rpc + "listExecutions", json={"statuses": ["BOGUS"]})
        assert bad.status_code == 400
        assert bad.json()["error"] == "ValidationError" and "BOGUS" in bad.json()["message"]

        # Nothing that changes the service is forwarded (read-only, the default).
        before = len(server.seen)
        for command, body in (("startExecution", {"workflow": "greet", "input": "x"}),
                              ("sendSignal", {"executionId": execution_id, "signalId": "go"}),
                              ("emitEvents", {"events": []})):  # fmt: skip
            refused = httpx.post(rpc + command, json=body)
            assert refused.status_code == 403
            assert refused.json()["error"] == "ReadOnly"
            assert "is read-only" in refused.json()["message"]
            assert command in refused.json()["message"]
        other = httpx.post(rpc + "updateTask", json={"type": "Success", "taskToken": "t"})
        assert other.status_code == 403 and other.json()["error"] == "Forbidden"
        assert server.seen[before:] == []
        # Other pages of the browser cannot use it: a JSON body only, and only our host name.
        plain = httpx.post(rpc + "getExecution", content=execution_id.encode(),
                           headers={"content-type": "text/plain"})  # fmt: skip
        assert plain.status_code == 415
        huge = httpx.post(rpc + "getExecution", json="x" * 70_000)
        assert huge.status_code == 413
        rebound = httpx.post(rpc + "getExecution", json=execution_id,
                             headers={"host": "evil.example"})  # fmt: skip
        assert rebound.status_code == 400
        assert server.seen[before:] == []


def test_timeline_server_reports_an_unreachable_service(aws_env: dict[str, str]) -> None:
    import httpx

    from eventual.cli.deployed import connect
    from eventual.cli.timeline_proxy import TimelineServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    put_record(f"http://127.0.0.1:{port}")
    with connect(service=SERVICE, region=REGION) as client, TimelineServer(client) as proxy:
        answer = httpx.post(proxy.url + "/rpc/_system/getExecution", json="greet/x")
    assert answer.status_code == 502
    assert (
        f"cannot connect to the service 'cli-demo' (us-east-1) at http://127.0.0.1:{port}"
        in (answer.json()["message"])
    )


def test_timeline_command_serves_a_deployed_service_until_ctrl_c(
    server: SignedServer, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    import httpx

    put_record(server.url)
    execution_id = started_greeting("tl-cli")
    seen: dict[str, Any] = {}

    def fake_open(url: str, *args: Any, **kwargs: Any) -> bool:
        """The "browser": read the page and what it reads, then press Ctrl-C."""
        try:
            seen["page"] = httpx.get(url).text
            origin = url.split("/_eventual/", 1)[0]
            seen["origin"] = origin
            seen["execution"] = httpx.post(
                origin + "/rpc/_system/getExecution", json=execution_id
            ).json()
        finally:
            raise KeyboardInterrupt

    monkeypatch.setattr(webbrowser, "open", fake_open)
    result = run("timeline", execution_id, "--service", SERVICE, "--region", REGION, "--open")
    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("http://127.0.0.1:") and url.endswith(
        "/_eventual/timeline/greet%2Ftl-cli"
    )
    assert "Press Ctrl-C to stop" in result.stderr and "cli-demo" in result.stderr
    assert '"executionId": "greet/tl-cli"' in seen["page"]
    assert seen["execution"]["status"] == "SUCCEEDED"
    with pytest.raises(httpx.ConnectError):  # Ctrl-C stopped the server
        httpx.get(seen["origin"] + "/_eventual/executions")

    # A taken --port, and an execution that does not exist, are one-line errors.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = one_line_error(run("timeline", execution_id, "--service", SERVICE,
                                  "--region", REGION, "--port", str(port)))  # fmt: skip
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line
    line = one_line_error(run("--service", SERVICE, "--region", REGION, "timeline", "greet/nope"))
    assert "no execution" in line


def test_timeline_of_a_deployed_service_in_a_browser(
    server: SignedServer,
    aws_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    browser: Any,
    artifacts: Path,
) -> None:
    """`eventual timeline ID --service NAME --open`, with chromium as the browser it opens."""
    import webbrowser

    put_record(server.url)
    execution_id = started_greeting("tl-browser")
    seen: dict[str, Any] = {}

    def open_in_chromium(url: str, *args: Any, **kwargs: Any) -> bool:
        try:
            before = len(server.seen)
            page = browser.new_page(viewport={"width": 1200, "height": 500})
            page.goto(url)
            page.wait_for_selector("body[data-rendered]", timeout=15000)
            seen["status"] = page.inner_text("#status")
            seen["labels"] = page.locator(".label").all_inner_texts()
            seen["tasks"] = page.locator(".bar.task").count()
            seen["timers"] = page.locator(".bar.timer").count()
            page.locator(".bar.task").first.hover()
            seen["details"] = page.inner_text("#details")
            page.screenshot(path=str(artifacts / "timeline-deployed.png"), full_page=True)
            seen["signed"] = signed_system_requests(server, before)
            page.goto(url.split("/_eventual/", 1)[0] + "/_eventual/executions")
            page.wait_for_selector("body[data-rendered]", timeout=15000)
            seen["listed"] = page.locator("a").all_inner_texts()
        except Exception as exc:
            seen["error"] = exc
        finally:
            raise KeyboardInterrupt

    monkeypatch.setattr(webbrowser, "open", open_in_chromium)
    result = run("--service", SERVICE, "--region", REGION, "timeline", execution_id, "--open")
    assert result.exit_code == 0, result.output
    if "error" in seen:
        raise seen["error"]
    assert seen["status"] == "SUCCEEDED"
    assert seen["labels"][0] == "workflow greet"
    assert "0: task shout" in seen["labels"]
    assert seen["tasks"] == 1 and seen["timers"] == 1
    assert "HELLO ADA" in seen["details"]
    # The whole history in one request (getExecutionHistory pages each read all of it).
    assert {"getExecution", "getExecutionWorkflowHistory"} <= set(seen["signed"])
    assert (artifacts / "timeline-deployed.png").stat().st_size > 0
    assert execution_id in seen["listed"]


# ---------------------------------------------------------------- synth / deploy


@pytest.fixture
def fake_npx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `npx` on PATH that records its arguments and working folder and prints CDK-like
    output (exit status from $FAKE_CDK_STATUS)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "npx.log"
    script = bin_dir / "npx"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps([os.getcwd(), sys.argv[1:]]) + '\\n')\n"
        "print('Bundling asset CliDemoStack/Orchestrator...', flush=True)\n"
        "print('✨  Synthesis time: 1.2s', flush=True)\n"
        "sys.exit(int(os.environ.get('FAKE_CDK_STATUS', '0')))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("EVENTUAL_CDK", raising=False)
    return log


def calls(log: Path) -> list[list[Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_synth_and_deploy_run_the_cdk_cli_in_the_app_folder(fake_npx: Path, tmp_path: Path) -> None:
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "cdk.json").write_text('{"app": "python app.py"}')
    synth = run("synth", "--app-dir", str(infra))
    assert synth.exit_code == 0, synth.output
    assert "Synthesis time" in synth.stderr  # the CDK output is streamed
    assert "Synthesized" in synth.stdout
    deploy = run("deploy", "--app-dir", str(infra), "--yes")
    assert deploy.exit_code == 0, deploy.output
    named = run("deploy", "-a", str(infra), "--", "CliDemoStack", "--profile", "prod")
    assert named.exit_code == 0, named.output
    custom = run("synth", "-a", str(infra), env={"EVENTUAL_CDK": "npx my-cdk"})
    assert custom.exit_code == 0, custom.output
    assert calls(fake_npx) == [
        [str(infra), ["--yes", "aws-cdk@2", "synth"]],
        [str(infra), ["--yes", "aws-cdk@2", "deploy", "--all", "--require-approval", "never"]],
        [str(infra), ["--yes", "aws-cdk@2", "deploy", "--require-approval", "broadening",
                      "CliDemoStack", "--profile", "prod"]],
        [str(infra), ["my-cdk", "synth"]],
    ]  # fmt: skip
    # The closing line names where the assembly went, --output included.
    assert f"Synthesized {infra / 'cdk.out'}" in synth.stdout
    elsewhere = run("synth", "-a", str(infra), "--", "--output", "build/assembly")
    assert elsewhere.exit_code == 0, elsewhere.output
    assert f"Synthesized {infra / 'build' / 'assembly'}" in elsewhere.stdout


def test_synth_errors(fake_npx: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = one_line_error(run("synth", "--app-dir", str(tmp_path / "nowhere")))
    assert "no cdk.json in" in line and "--app-dir" in line
    (tmp_path / "cdk.json").write_text("{}")
    monkeypatch.setenv("FAKE_CDK_STATUS", "3")
    failed = run("deploy", "--app-dir", str(tmp_path))
    assert failed.exit_code == 1
    assert f"cdk deploy in {tmp_path} failed with exit status 3" in failed.stderr
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    line = one_line_error(run("synth", "--app-dir", str(tmp_path)))
    assert "npx was not found" in line


REPO = Path(__file__).resolve().parents[3]


@pytest.mark.skipif(
    __import__("shutil").which("npx") is None, reason="needs Node.js (npx) for the CDK CLI"
)
def test_synth_the_example_service_for_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real CDK CLI (npx aws-cdk@2) on apps/order-service/infra, into a temporary folder."""
    monkeypatch.delenv("EVENTUAL_CDK", raising=False)
    infra = REPO / "apps" / "order-service" / "infra"
    result = run("synth", "--app-dir", str(infra), "--", "--output", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    templates = list(tmp_path.glob("*.template.json"))
    assert templates, result.output
    template = json.loads(templates[0].read_text())
    parameters = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SSM::Parameter"
    ]
    assert any(str(p.get("Name")) == service_parameter("order-service") for p in parameters)
