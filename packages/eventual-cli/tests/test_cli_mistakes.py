"""The mistakes a new user makes with the CLI, and what they see: one `Error:` line saying what
is wrong and what to do (never a traceback), nothing sent or changed, and output a script can
read when it is not a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import DevServerProcess, wait_for


def run(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=env)


def one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The single line an error prints, after checking that it is one."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def against(server: DevServerProcess, *args: str):  # type: ignore[no-untyped-def]
    return run("--url", server.url, *args)


# ---------------------------------------------------------------- eventual dev


def test_dev_refuses_a_port_out_of_range_as_a_usage_error() -> None:
    r = run("dev", "cli_demo", "--port", "99999", "--no-reload")
    assert r.exit_code == 2
    assert "Invalid value for '--port'" in r.output and "65535" in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("{tmp}", "cannot open the database {tmp}: it is a folder; pass the path of a file"),
        ("{tmp}/a-file/dev.db", "{tmp}/a-file is a file, not a folder"),
    ],
)
def test_dev_says_what_is_wrong_with_the_database_path(tmp_path: Path, db: str, says: str) -> None:
    (tmp_path / "a-file").write_text("not a folder\n")
    r = run("dev", "cli_demo", "--port", "0", "--no-reload", "--db", db.format(tmp=tmp_path))
    assert says.format(tmp=tmp_path) in one_error_line(r)


def test_dev_says_a_host_name_does_not_resolve() -> None:
    r = run("dev", "cli_demo", "--port", "0", "--no-reload", "--host", "no-such-host.invalid")
    line = one_error_line(r)
    assert "the host name 'no-such-host.invalid' does not resolve" in line
    assert "another dev server" not in line


def test_the_dev_server_log_file_keeps_each_record_on_one_line(
    demo_server: DevServerProcess,
) -> None:
    path = "/rpc/" + "x" * 300
    assert httpx.post(demo_server.url + path).status_code == 404
    log = wait_for(lambda: demo_server.log() if path in demo_server.log() else None, timeout=10)
    line = next(line for line in log.splitlines() if path in line)
    assert f'"POST {path} HTTP/1.1" 404' in line
    assert line == line.rstrip()  # not padded to a width


# ---------------------------------------------------------------- commands against a server


def test_history_of_an_unknown_execution_is_not_found(
    demo_server: DevServerProcess, tmp_path: Path
) -> None:
    for extra in ([], ["--json"], ["--export", str(tmp_path / "h.json")]):
        r = against(demo_server, "history", "greet/never-started", *extra)
        assert "ExecutionNotFound: no execution 'greet/never-started' (HTTP 404)" in (
            one_error_line(r)
        )
    assert not (tmp_path / "h.json").exists()


def test_a_signal_to_an_execution_that_has_ended_is_refused(demo_server: DevServerProcess) -> None:
    assert against(demo_server, "start", "waitForGo", '"s"', "--name", "sig-ended").exit_code == 0
    assert against(demo_server, "signal", "waitForGo/sig-ended", "go", "first").exit_code == 0
    demo_server.wait_finished("waitForGo/sig-ended")
    late = against(demo_server, "signal", "waitForGo/sig-ended", "go", "second")
    assert one_error_line(late) == (
        "Error: waitForGo/sig-ended has already ended (succeeded): a signal to it would be "
        "dropped; start a new execution to send it to"
    )
    history = json.loads(against(demo_server, "history", "waitForGo/sig-ended", "--json").stdout)
    assert [e["payload"] for e in history if e["type"] == "SignalReceived"] == ["first"]


def test_an_unknown_execution_still_gets_the_services_answer(
    demo_server: DevServerProcess,
) -> None:
    r = against(demo_server, "signal", "waitForGo/nobody", "go", "x")
    assert "no execution 'waitForGo/nobody' (HTTP 404)" in one_error_line(r)


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_executions_limit_must_be_positive(demo_server: DevServerProcess, limit: str) -> None:
    r = against(demo_server, "executions", "--limit", limit)
    assert r.exit_code == 2
    assert "Invalid value for '--limit'" in r.output
    assert "not an Eventual service's answer" not in r.output


@pytest.mark.parametrize("text", ["{bad", "[1, 2", '"unterminated'])
def test_input_that_starts_as_json_and_does_not_parse_is_shown_not_sent(
    demo_server: DevServerProcess, text: str
) -> None:
    r = against(demo_server, "start", "greet", text, "--name", "bad-json")
    assert one_error_line(r).startswith("Error: the input is not valid JSON (")
    assert "quote it as a JSON string to send it as text" in r.stderr
    listed = json.loads(against(demo_server, "executions", "--json").stdout)
    assert "greet/bad-json" not in [e["id"] for e in listed]
    # Plain text is still a string, as documented.
    plain = against(demo_server, "start", "greet", "ada", "--name", "plain-text", "--wait")
    assert plain.exit_code == 0 and '"HELLO ADA"' in plain.stdout


def test_tables_into_a_pipe_keep_every_column_and_are_not_wrapped(
    demo_server: DevServerProcess, fixture_env: dict[str, str]
) -> None:
    long_name = "piped-" + "n" * 70
    started = against(demo_server, "start", "greet", "ada", "--name", long_name, "--wait")
    assert started.exit_code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "eventual.cli.main", "--url", demo_server.url, "executions"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **fixture_env, "COLUMNS": ""},
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["Execution", "Status", "Started", "Ended", "Build", "Outcome"]
    row = next(line for line in lines if long_name in line)
    assert row.rstrip().endswith('"HELLO ADA"')  # the whole row on one line, past 80 columns


def test_timeline_says_which_options_the_dev_server_ignores(
    demo_server: DevServerProcess,
) -> None:
    r = against(demo_server, "timeline", "--port", "4000", "--allow-actions")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"{demo_server.url}/_eventual/executions"
    assert "--port and --read-only/--allow-actions apply to a deployed service" in r.stderr
    assert "Note:" not in against(demo_server, "timeline").stderr


# ---------------------------------------------------------------- replay and purge


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("nope_module", "cannot import the service entry 'nope_module': no module named"),
        ("./nope", "there is no file or folder './nope'"),
    ],
)
def test_replay_reports_a_service_that_does_not_import_as_dev_does(entry: str, says: str) -> None:
    r = run("replay", "greet/x", "--entry", entry)
    assert says in one_error_line(r)
    dev = run("dev", entry, "--no-reload", "--port", "0")
    assert says in one_error_line(dev)


def test_purge_while_the_dev_server_runs_says_to_stop_it(demo_server: DevServerProcess) -> None:
    r = run("purge", "--db", str(demo_server.db))
    assert one_error_line(r) == (
        f"Error: {demo_server.db} is in use by another Eventual process: stop it to purge now "
        "(a running `eventual dev` sweeps its finished executions itself, see its --retention)"
    )


def test_purge_of_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite\n")
    r = run("purge", "--db", str(junk))
    assert f"cannot open the database {junk}: file is not a database" in one_error_line(r)
    assert junk.read_text() == "not sqlite\n"


def test_purge_without_a_database_names_the_ones_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert one_error_line(run("purge")) == (
        "Error: no database at .eventual/dev.db: pass --db with the dev server's database"
    )
    found = tmp_path / "apps" / "shop" / ".eventual" / "dev.db"
    found.parent.mkdir(parents=True)
    found.write_bytes(b"")
    assert one_error_line(run("purge")).endswith(
        "(`eventual dev` keeps it beside the service), such as apps/shop/.eventual/dev.db"
    )


# ---------------------------------------------------------------- help


def test_help_paragraphs_are_not_broken_at_the_sources_line_ends() -> None:
    wide = {"COLUMNS": "300", "TERMINAL_WIDTH": "300"}
    top = run("--help", env=wide)
    purge = next(line for line in top.stdout.splitlines() if " purge " in line)
    assert "Remove old finished executions from a dev database, now." in purge
    start = run("start", "--help", env=wide)
    assert "end with its result; with --wait, print only the result" in start.stdout
