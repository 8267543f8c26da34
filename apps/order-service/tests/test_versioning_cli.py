"""The deploy procedure of docs/versioning.md with the CLI, on `eventual dev`: an order recorded
on the code before the ``patched("out-of-stock-reason")`` change is exported with `eventual
history --export`, the service restarts on the patched code (the deploy), and `eventual replay`
reproduces the old execution on it; `eventual executions --build` tells the builds apart."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from order_service import process_order
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import DevServerProcess
from eventual.testing import replay

SRC = Path(__file__).resolve().parents[1] / "src" / "order_service"
OUT_OF_STOCK = {
    "source": "visa-4242",
    "amount": 1200,
    "items": ["book", "out-of-stock-lamp"],
    "dispatch_after": 0.2,
}

runner = CliRunner()


def copy_with_one_branch(folder: Path, package: str, branch: str) -> Path:
    """A copy of the order service (as the package ``package`` in ``folder``) whose
    ``if patched("out-of-stock-reason"): NEW else: OLD`` is only one of its branches: "old"
    for the code before the change, "new" for the change made without a patch."""
    target = folder / package
    shutil.copytree(SRC, target, ignore=shutil.ignore_patterns("__pycache__"))
    service = target / "service.py"
    lines = service.read_text().splitlines(keepends=True)
    start = lines.index('        if patched("out-of-stock-reason"):\n')
    middle = lines.index("        else:\n", start)
    end = lines.index("        await charge_back(order.id, charge.charge_id, reason)\n", middle)
    kept = lines[start + 1 : middle] if branch == "new" else lines[middle + 1 : end]
    dedented = [line.removeprefix("    ") for line in kept]
    service.write_text("".join(lines[:start] + dedented + lines[end:]))
    return folder


def cli(server: DevServerProcess, *args: str, exit_code: int = 0) -> str:
    result = runner.invoke(app, ["--url", server.url, *args])
    assert result.exit_code == exit_code, result.output
    return result.output


def order(server: DevServerProcess, name: str) -> dict[str, Any]:
    server.system(
        "startExecution",
        {"workflow": "processOrder", "input": {"id": name, **OUT_OF_STOCK}, "executionName": name},
    )
    return server.wait_finished(f"processOrder/{name}")


def charge_back_reason(events: list[dict[str, Any]]) -> str:
    (call,) = [e for e in events if e["type"] == "TaskScheduled" and e["name"] == "chargeBack"]
    return call["args"][2]


def test_export_deploy_and_replay_with_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTUAL_BUILD", raising=False)  # each build from its code
    work = tmp_path / "dev"
    old_code = copy_with_one_branch(tmp_path / "before", "order_service", "old")
    # The change made without a patch, importable here for `eventual replay --entry`.
    monkeypatch.syspath_prepend(
        str(copy_with_one_branch(tmp_path / "unpatched", "order_service_unpatched", "new"))
    )
    exported = tmp_path / "histories"
    exported.mkdir()

    # Before the deploy: the old code serves (its copy comes first on the path).
    path = os.pathsep.join(p for p in (str(old_code), os.environ.get("PYTHONPATH")) if p)
    with DevServerProcess("order_service", work, env={"PYTHONPATH": path}) as server:
        done = order(server, "old")
        assert (done["status"], done["result"]) == ("SUCCEEDED", "charged back")
        cli(server, "history", "processOrder/old", "--export", str(exported / "old.json"))
        (listed,) = json.loads(cli(server, "executions", "--json"))
        old_build = listed["build"]
        assert old_build

    # The deploy: the same database, the patched code.
    with DevServerProcess("order_service", work) as server:
        replayed = cli(server, "replay", "processOrder/old", "--entry", "order_service")
        assert "the outcome matches the recorded one" in replayed, replayed
        # What the same check says of the change made without the patch: do not deploy.
        failed = cli(
            server, "replay", "processOrder/old", "--entry", "order_service_unpatched", exit_code=1
        )
        assert "The current code does not reproduce processOrder/old." in failed
        assert "at seq 3: recorded task 'chargeBack' with arguments" in failed
        assert '"dispatch failed: cannot dispatch out-of-stock-lamp"' in failed
        assert '"out of stock: cannot dispatch out-of-stock-lamp"' in failed

        done = order(server, "new")
        assert done["result"] == "charged back"
        events = json.loads(cli(server, "history", "processOrder/new", "--json"))
        assert [e["patch"] for e in events if e["type"] == "PatchMarked"] == ["out-of-stock-reason"]
        assert charge_back_reason(events) == "out of stock: cannot dispatch out-of-stock-lamp"
        cli(server, "history", "processOrder/new", "--export", str(exported / "new.json"))
        assert "matches" in cli(server, "replay", "processOrder/new", "--entry", "order_service")

        on_old = json.loads(cli(server, "executions", "--build", old_build, "--json"))
        assert [e["id"] for e in on_old] == ["processOrder/old"]
        builds = {e["id"]: e["build"] for e in json.loads(cli(server, "executions", "--json"))}
        assert builds["processOrder/new"] != old_build

    # The exported files replay in a plain test (what CI runs before the next deploy).
    old = json.loads((exported / "old.json").read_text())
    assert charge_back_reason(old["events"]) == "dispatch failed: cannot dispatch out-of-stock-lamp"
    for name in ("old", "new"):
        outcome = replay(process_order, json.loads((exported / f"{name}.json").read_text()))
        assert outcome.succeeded and outcome.result == "charged back"


def test_replay_of_the_exported_histories_is_the_ci_step_before_a_deploy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`eventual replay --history tests/histories` (docs/versioning.md, step 3): every
    committed history replays on the patched code; on the change made without its patch, the
    history recorded before it does not, and the command exits 1 naming the seq."""
    histories = Path(__file__).resolve().parent / "histories"
    count = len(list(histories.glob("*.json")))
    ok = runner.invoke(app, ["replay", "--history", str(histories), "--entry", "order_service"])
    assert ok.exit_code == 0, ok.output
    assert f"All {count} histories replay on this code." in ok.output
    assert "processOrder/out-of-stock: the outcome matches" in " ".join(ok.output.split())

    copy_with_one_branch(tmp_path, "unpatched_orders", "new")
    monkeypatch.syspath_prepend(str(tmp_path))
    bad = runner.invoke(
        app,
        ["replay", "-H", str(histories / "out-of-stock.json"), "--entry", "unpatched_orders"],
    )
    assert bad.exit_code == 1, bad.output
    flat = " ".join(bad.output.split())
    assert "The current code does not reproduce processOrder/out-of-stock." in flat
    assert "at seq 3: recorded" in flat
    assert "1 of 1 histories do not replay on this code" in flat

    neither = runner.invoke(app, ["replay", "--entry", "order_service"])
    assert neither.exit_code != 0
    assert "give an execution ID or --history FILE" in neither.output
