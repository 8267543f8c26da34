"""`eventual dev` in a real uvicorn subprocess, and the everyday CLI against it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import DevServerProcess, free_port, wait_for


def cli(server: DevServerProcess | None, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    url = ["--url", server.url] if server is not None else []
    result = CliRunner().invoke(app, [*url, *args], env=env)
    return result


def test_banner_shows_url_and_what_the_service_defines(demo_server: DevServerProcess) -> None:
    log = demo_server.log()
    assert f"URL       {demo_server.url}" in log
    assert f"OpenAPI   {demo_server.url}/openapi.json" in log
    for line in (
        "command       add",
        "route         GET /me",
        "workflow      greet",
        "subscription  onPing",
    ):
        assert line in log, log
    assert "Reload    off" in log
    # uvloop is the CLI's dependency wherever it runs (not on Windows): --loop auto takes it.
    assert ("Loop      uvloop" if sys.platform != "win32" else "Loop      asyncio") in log


def test_loop_asyncio_serves_on_pythons_own_loop(
    tmp_path: Path, fixture_env: dict[str, str]
) -> None:
    server = DevServerProcess(
        "cli_demo", tmp_path, env=fixture_env, extra_args=["--loop", "asyncio"]
    )
    with server:
        assert "Loop      asyncio" in server.log()
        assert httpx.post(f"{server.url}/rpc/add", json={"a": 2, "b": 3}).json() == 5
        started = cli(server, "start", "greet", "ada", "--name", "lp1", "--wait")
        assert started.exit_code == 0, started.output
        assert started.stdout.splitlines()[-1] == 'greet/lp1 succeeded: "HELLO ADA"'
    assert server.process is not None and server.process.returncode == 0


def test_an_unknown_loop_is_refused() -> None:
    r = CliRunner().invoke(app, ["dev", "--loop", "tokio", "--port", "0"])
    assert r.exit_code == 1
    assert "--loop: expected auto, uvloop or asyncio, not 'tokio'" in r.stderr


def test_real_http_commands_errors_and_openapi(demo_server: DevServerProcess) -> None:
    base = demo_server.url
    assert httpx.post(f"{base}/rpc/add", json={"a": 1, "b": 2}).json() == 3
    doc = httpx.get(f"{base}/openapi.json").json()
    assert doc["servers"] == [{"url": base}]
    boom = httpx.get(f"{base}/boom")
    assert boom.status_code == 500
    assert boom.json() == {"error": "RuntimeError", "message": "the flux capacitor broke"}
    log = wait_for(
        lambda: demo_server.log() if "Traceback" in demo_server.log() else None, timeout=10
    )
    assert 'raise RuntimeError("the flux capacitor broke")' in log


def test_body_limit_over_real_http(demo_server: DevServerProcess) -> None:
    # --max-body 4096 for this server
    base = demo_server.url
    ok = httpx.post(f"{base}/rpc/add", content=b'{"a":1,"b":2}' + b" " * 4000)
    assert ok.status_code == 200
    declared = httpx.post(f"{base}/rpc/add", content=b" " * 5000)
    assert declared.status_code == 413
    assert declared.json()["error"] == "PayloadTooLarge"

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    streamed = httpx.post(f"{base}/rpc/add", content=chunks())
    assert streamed.status_code == 413


def test_start_follow_prints_history_and_result(demo_server: DevServerProcess) -> None:
    r = cli(demo_server, "start", "greet", "ada", "--name", "f1", "--follow")
    assert r.exit_code == 0, r.output
    assert "Started greet/f1" in r.stdout
    assert "TaskScheduled" in r.stdout and "shout" in r.stdout
    assert 'greet/f1 succeeded: "HELLO ADA"' in r.stdout
    again = cli(demo_server, "start", "greet", "ada", "--name", "f1")
    assert "already exists" in again.stdout
    lines = cli(demo_server, "start", "greet", "bo", "--name", "f2", "--follow", "--json")
    records = [json.loads(line) for line in lines.stdout.splitlines()]
    assert records[0] == {"executionId": "greet/f2", "alreadyRunning": False}
    assert [r["type"] for r in records[1:-1]][-1] == "WorkflowSucceeded"
    assert (records[-1]["id"], records[-1]["result"]) == ("greet/f2", "HELLO BO")


def test_start_follow_of_a_failing_workflow_exits_1(demo_server: DevServerProcess) -> None:
    r = cli(demo_server, "start", "fail", '"no reason"', "--follow")
    assert r.exit_code == 1
    assert "failed: ValueError: no reason" in r.stderr


def test_start_json_then_signal_then_execution(demo_server: DevServerProcess) -> None:
    r = cli(demo_server, "start", "waitForGo", '"w"', "--name", "w1", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"executionId": "waitForGo/w1", "alreadyRunning": False}
    running = json.loads(cli(demo_server, "execution", "waitForGo/w1", "--json").stdout)
    assert running["status"] == "IN_PROGRESS"
    s = cli(demo_server, "signal", "waitForGo/w1", "go", "now")
    assert s.exit_code == 0, s.output
    assert "Sent signal go to waitForGo/w1" in s.stdout
    done = demo_server.wait_finished("waitForGo/w1")
    assert done["result"] == "w:now"
    shown = cli(demo_server, "execution", "waitForGo/w1")
    assert "SUCCEEDED" in shown.stdout and '"w:now"' in shown.stdout
    hist = cli(demo_server, "history", "waitForGo/w1", "--json")
    types = [e["type"] for e in json.loads(hist.stdout)]
    assert "SignalReceived" in types and types[-1] == "WorkflowSucceeded"
    table = cli(demo_server, "history", "waitForGo/w1")
    assert "SignalReceived" in table.stdout and 'go "now"' in table.stdout


def test_executions_filters(demo_server: DevServerProcess) -> None:
    cli(demo_server, "start", "greet", "x", "--name", "e1", "--follow")
    listed = json.loads(cli(demo_server, "executions", "--workflow", "greet", "--json").stdout)
    assert {e["workflowName"] for e in listed} == {"greet"}
    assert "greet/e1" in {e["id"] for e in listed}
    succeeded = json.loads(cli(demo_server, "executions", "--status", "succeeded", "--json").stdout)
    assert succeeded and all(e["status"] == "SUCCEEDED" for e in succeeded)
    table = cli(demo_server, "executions", "--workflow", "greet")
    assert "greet/e1" in table.stdout and "SUCCEEDED" in table.stdout
    bad = cli(demo_server, "executions", "--status", "sleepy")
    assert bad.exit_code == 1
    assert "unknown status 'sleepy'" in bad.stderr


def test_emit_reaches_the_subscription(demo_server: DevServerProcess) -> None:
    r = cli(demo_server, "emit", "Ping", '{"n": 1}', '{"n": 2}')
    assert r.exit_code == 0, r.output
    assert "Emitted 2 Ping event(s)" in r.stdout
    pinged = wait_for(
        lambda: (lambda v: v if {1, 2} <= set(v) else None)(
            httpx.post(f"{demo_server.url}/rpc/pinged").json()
        ),
        timeout=10,
    )
    assert {1, 2} <= set(pinged)


def test_invoke_with_headers_and_errors(demo_server: DevServerProcess) -> None:
    r = cli(demo_server, "invoke", "add", '{"a": 20, "b": 22}')
    assert (r.exit_code, json.loads(r.stdout)) == (0, 42)
    secret = cli(demo_server, "invoke", "secret", "-H", "x-user: ada")
    assert json.loads(secret.stdout) == "the secret of ada"
    denied = cli(demo_server, "invoke", "secret")
    assert denied.exit_code == 1
    assert "Unauthorized: send an x-user header (HTTP 401)" in denied.stderr
    invalid = cli(demo_server, "invoke", "add", '{"a": "x"}')
    assert invalid.exit_code == 1
    assert "ValidationError" in invalid.stderr and "HTTP 400" in invalid.stderr
    bad_header = cli(demo_server, "invoke", "add", "-H", "nonsense")
    assert bad_header.exit_code == 1 and "cannot read header" in bad_header.stderr


def test_logs_workflows_and_not_found(demo_server: DevServerProcess) -> None:
    cli(demo_server, "start", "greet", "lovelace", "--name", "l1", "--follow")
    logs = cli(demo_server, "logs", "--execution", "greet/l1")
    assert "greeting lovelace" in logs.stdout
    logs_json = [
        json.loads(line)
        for line in cli(demo_server, "logs", "--workflow", "greet", "--json").stdout.splitlines()
    ]
    assert any(line["message"] == "greeting lovelace" for line in logs_json)
    wf = cli(demo_server, "workflows", "--json")
    assert json.loads(wf.stdout) == ["fail", "greet", "waitForGo"]
    assert "waitForGo" in cli(demo_server, "workflows").stdout
    missing = cli(demo_server, "execution", "greet/none")
    assert missing.exit_code == 1
    assert "no execution 'greet/none'" in missing.stderr and "404" in missing.stderr
    unknown = cli(demo_server, "start", "nope")
    assert unknown.exit_code == 1 and "workflow 'nope' does not exist" in unknown.stderr


def test_url_from_environment(demo_server: DevServerProcess) -> None:
    r = cli(None, "workflows", "--json", env={"EVENTUAL_URL": demo_server.url})
    assert json.loads(r.stdout) == ["fail", "greet", "waitForGo"]


def test_no_server_is_one_red_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = CliRunner().invoke(app, ["--url", url, "executions"])
    assert r.exit_code == 1
    assert r.stderr.strip() == (
        f"Error: the dev server is not running at {url}: start it with `eventual dev` "
        "(or point --url / $EVENTUAL_URL at a running one)"
    )
    assert "Traceback" not in r.output


def test_a_busy_port_is_reported(
    demo_server: DevServerProcess, fixture_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "eventual.cli.main",
            "dev",
            "cli_demo",
            "--port",
            str(demo_server.port),
            "--no-reload",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **fixture_env},
    )
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{demo_server.port}" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "command",
    [
        "dev",
        "start",
        "executions",
        "execution",
        "history",
        "signal",
        "emit",
        "invoke",
        "logs",
        "workflows",
    ],
)
def test_every_command_has_help(command: str) -> None:
    r = CliRunner().invoke(app, [command, "--help"])
    assert r.exit_code == 0
    assert "Usage:" in r.stdout
    assert len(r.stdout.strip().splitlines()) > 4


def test_ctrl_c_stops_cleanly(tmp_path: Path, fixture_env: dict[str, str]) -> None:
    server = DevServerProcess("cli_demo", tmp_path, env=fixture_env)
    with server:
        assert httpx.post(f"{server.url}/rpc/add", json={"a": 1, "b": 1}).json() == 2
    assert server.process is not None
    assert server.process.returncode == 0
    assert "Stopped." in server.log()
    assert "Traceback" not in server.log()


def test_dev_reports_a_missing_path_and_a_broken_service(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["dev", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1
    assert "there is no file or folder" in missing.stderr
    package = tmp_path / "broken_at_import"
    package.mkdir()
    (package / "__init__.py").write_text('raise ValueError("oops at import")\n')
    broken = CliRunner().invoke(app, ["dev", str(package), "--port", "0"])
    assert broken.exit_code == 1
    assert "importing the service" in broken.stderr
    assert "failed with ValueError: oops at import" in broken.stderr


def test_access_log_leaves_out_the_clis_own_calls(demo_server: DevServerProcess) -> None:
    httpx.post(f"{demo_server.url}/rpc/whoami")
    cli(demo_server, "workflows")
    httpx.post(f"{demo_server.url}/rpc/_system/getExecution", json=5)  # not an id: 400
    log = wait_for(
        lambda: demo_server.log() if "/rpc/_system/getExecution" in demo_server.log() else None,
        timeout=10,
    )
    assert '"POST /rpc/whoami HTTP/1.1" 200' in log
    assert '"POST /rpc/_system/getExecution HTTP/1.1" 400' in log  # errors are kept
    assert "/rpc/_system/listWorkflows" not in log


def test_a_database_in_use_is_reported(
    demo_server: DevServerProcess, fixture_env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "eventual.cli.main", "dev", "cli_demo", "--port", "0",
         "--db", str(demo_server.db), "--no-reload"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **fixture_env},
    )  # fmt: skip
    assert proc.returncode == 1
    assert "is in use by another Eventual process" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_input_from_the_cli_is_refused_with_the_servers_sentence(
    demo_server: DevServerProcess,
) -> None:
    """Hostile names, ids, bodies and payloads: exit 1 with one sentence saying what to fix,
    and nothing started."""
    cases = [
        (["start", "greet", "ada", "--name", "../../etc"], "invalid execution name '../../etc'"),
        (["start", "greet", "[" * 200 + "]" * 200], "nested deeper than 100 levels"),
        (["start", "greet", "5"], "invalid input for workflow 'greet'"),
        (["start", "ghost", "1"], "workflow 'ghost' does not exist"),
        (["signal", "waitForGo/w-none", "stop", "x"], "has no signal 'stop'; it defines: go"),
        (["signal", "waitForGo/w-none", "go", "7"], "invalid payload for signal 'go'"),
        (["execution", "greet/../x"], "invalid execution id 'greet/../x'"),
        (["emit", "Nope", "1"], "has no event 'Nope'"),
        (["emit", "Ping", '{"n": "many"}'], "invalid payload for event 'Ping' (#0)"),
    ]
    for args, says in cases:
        r = cli(demo_server, *args)
        assert r.exit_code == 1, (args, r.output)
        assert says in r.stderr, (args, r.stderr)
    listed = json.loads(cli(demo_server, "executions", "--workflow", "greet", "--json").stdout)
    assert all("etc" not in e["id"] for e in listed)


def test_start_wait_prints_only_the_outcome(demo_server: DevServerProcess) -> None:
    r = cli(demo_server, "start", "greet", "ada", "--name", "wt1", "--wait")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["Started greet/wt1", 'greet/wt1 succeeded: "HELLO ADA"']
    failed = cli(demo_server, "start", "fail", '"no luck"', "--wait")
    assert failed.exit_code == 1
    assert "failed: ValueError: no luck" in failed.stderr
    both = cli(demo_server, "start", "greet", "x", "--wait", "--follow")
    assert both.exit_code == 1 and "give one of --follow and --wait" in both.stderr
