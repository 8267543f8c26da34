"""Time-machine debugging against a live dev server: replay, history export, the timeline."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import DevServerProcess

SERVICE = """
import asyncio
from eventual.core import event, signal, task, workflow

go = signal("go", int)
done = event("StepsDone")

@task("double")
async def double(x: int) -> int:
    return x * 2

@task("fragile")
async def fragile(x: int) -> int:
    raise ValueError(f"no {x}")

@workflow("steps")
async def steps(n: int) -> int:
    a = await double(n)
    try:
        await fragile(a)
    except Exception:
        pass
    await asyncio.sleep(0.2)
    extra = await go.expect_signal(timeout=30)
    b, c = await asyncio.gather(double(a), double(extra))
    await done.emit({"total": b + c})
    return b + c
"""

# The same workflow after a "refactor" that changes what it calls at seq 1.
CHANGED = SERVICE.replace("await fragile(a)", "await double(a)").replace('"steps"', '"steps"')

runner = CliRunner()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("debugging")
    (root / "steps_svc.py").write_text(textwrap.dedent(SERVICE))
    (root / "steps_changed.py").write_text(textwrap.dedent(CHANGED))
    sys.path.insert(0, str(root))
    yield root
    sys.path.remove(str(root))


@pytest.fixture(scope="module")
def server(services: Path) -> Iterator[DevServerProcess]:
    env = {"PYTHONPATH": str(services) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with DevServerProcess("steps_svc", services / "work", env=env) as dev:
        yield dev


@pytest.fixture(scope="module")
def finished(server: DevServerProcess) -> str:
    started = server.system("startExecution", {"workflow": "steps", "input": 3})
    execution_id = started["executionId"]

    def waiting() -> bool:
        return any(e["type"] == "TimerCompleted" for e in server.history(execution_id))

    from eventual.cli.testing import wait_for

    wait_for(waiting, timeout=30, message="the workflow to wait for its signal")
    server.system("sendSignal", {"executionId": execution_id, "signalId": "go", "payload": 5})
    execution = server.wait_finished(execution_id)
    assert execution["status"] == "SUCCEEDED" and execution["result"] == 22
    return execution_id


def cli(server: DevServerProcess, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--url", server.url, *args])
    return result.exit_code, result.output


def test_replay_reaches_the_recorded_outcome(server: DevServerProcess, finished: str) -> None:
    code, output = cli(server, "replay", finished, "--entry", "steps_svc")
    assert code == 0, output
    assert "the outcome matches the recorded one" in output
    assert "SUCCEEDED: 22" in output


def test_replay_of_changed_code_names_the_seq(server: DevServerProcess, finished: str) -> None:
    code, output = cli(server, "replay", finished, "--entry", "steps_changed")
    assert code == 1
    assert "does not reproduce" in output
    assert "at seq 1: recorded task 'fragile' with arguments [6]" in output
    assert "the code did task 'double' with arguments [6]" in output


def test_replay_needs_an_entry(
    server: DevServerProcess, finished: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EVENTUAL_ENTRY", raising=False)
    code, output = cli(server, "replay", finished)
    assert code == 1
    assert "pass --entry" in output
    (tmp_path / "pyproject.toml").write_text('[tool.eventual]\nentry = "steps_svc"\n')
    code, output = cli(server, "replay", finished)
    assert code == 0, output


def test_history_export_replays_in_a_regression_test(
    server: DevServerProcess, finished: str, tmp_path: Path
) -> None:
    from eventual.core import ExecutionStatus
    from eventual.testing import replay

    target = tmp_path / "history.json"
    code, output = cli(server, "history", finished, "--export", str(target))
    assert code == 0, output
    exported = json.loads(target.read_text())
    assert exported["version"] == 1
    import steps_svc  # type: ignore[import-not-found]

    outcome = replay(steps_svc.steps, exported)
    assert outcome.status is ExecutionStatus.SUCCEEDED
    assert outcome.result == 22


def test_timeline_command_prints_the_page_url(server: DevServerProcess, finished: str) -> None:
    code, output = cli(server, "timeline", finished)
    assert code == 0, output
    assert output.strip() == f"{server.url}/_eventual/timeline/steps%2F{finished.split('/', 1)[1]}"
    code, output = cli(server, "timeline", "steps/nope")
    assert code == 1
    assert "no execution" in output


def test_timeline_page_draws_the_execution_in_a_browser(
    server: DevServerProcess, finished: str, browser: Any, artifacts: Path
) -> None:
    _, url = cli(server, "timeline", finished)
    page = browser.new_page(viewport={"width": 1200, "height": 600})
    page.goto(url.strip())
    page.wait_for_selector("body[data-rendered]", timeout=15000)
    assert page.inner_text("#status") == "SUCCEEDED"
    labels = page.locator(".label").all_inner_texts()
    assert labels[0] == "workflow steps"
    assert "0: task double" in labels and "1: task fragile" in labels
    assert page.locator(".bar.task").count() == 4
    assert page.locator(".bar.task.failed").count() == 1
    # The sleep, and expect_signal's timeout timer, cancelled when the signal came.
    assert page.locator(".bar.timer").count() == 2
    assert page.locator(".bar.timer.abandoned").count() == 1
    assert page.locator(".mark.signal-received").count() == 1
    assert page.locator(".mark.event").count() == 1
    page.locator(".bar.task.failed").hover()
    assert "ValueError" in page.inner_text("#details")
    assert "no 6" in page.inner_text("#details")
    page.screenshot(path=str(artifacts / "timeline.png"), full_page=True)
    page.goto(f"{server.url}/_eventual/executions")
    page.wait_for_selector("body[data-rendered]", timeout=15000)
    assert finished in page.locator("a").all_inner_texts()
