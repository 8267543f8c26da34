"""A deploy under `eventual dev --reload`: executions in flight when the code changes finish on
the old branch of a `patched()` change, new ones take the new branch, `eventual executions`
shows and filters the build each started on, and a change made without the patch fails the
old executions with a DeterminismError that says what happened."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import DevServerProcess, wait_for

HEAD = """
from eventual.core import command, deprecate_patch, patched, signal, task, workflow

BUILD = "{build}"

go = signal("go")


@command
async def build(_: None) -> str:
    return BUILD


@task("charge")
async def charge(amount: int) -> str:
    return f"charged {{amount}}"


@task("chargeCents")
async def charge_cents(amount: int) -> str:
    return f"charged {{amount * 100}} cents"


@task("ship")
async def ship(receipt: str) -> str:
    return f"shipped after {{receipt}}"
"""

V1 = """
@workflow("order")
async def order(amount: int) -> str:
    receipt = await charge(amount)
    await go.expect_signal(timeout=300)
    return await ship(receipt)
"""

V2 = """
@workflow("order")
async def order(amount: int) -> str:
    if patched("cents"):
        receipt = await charge_cents(amount)
    else:
        receipt = await charge(amount)
    await go.expect_signal(timeout=300)
    return await ship(receipt)
"""

UNPATCHED = """
@workflow("order")
async def order(amount: int) -> str:
    receipt = await charge_cents(amount)
    await go.expect_signal(timeout=300)
    return await ship(receipt)
"""

runner = CliRunner()


def deploy(package: Path, build: str, workflow: str) -> None:
    (package / "__init__.py").write_text(HEAD.format(build=build) + workflow)


def build_of(server: DevServerProcess) -> str | None:
    try:
        r = httpx.post(f"{server.url}/rpc/build", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def cli(server: DevServerProcess, *args: str) -> str:
    result = runner.invoke(app, ["--url", server.url, *args])
    assert result.exit_code == 0, result.output
    return result.output


def history_types(server: DevServerProcess, execution_id: str) -> list[str]:
    return [e["type"] for e in json.loads(cli(server, "history", execution_id, "--json"))]


def start_charged(server: DevServerProcess, name: str, amount: int) -> str:
    started = server.system(
        "startExecution", {"workflow": "order", "input": amount, "executionName": name}
    )
    execution_id = started["executionId"]
    wait_for(
        lambda: "TaskSucceeded" in history_types(server, execution_id),
        timeout=30,
        message=f"{execution_id} to be charged",
    )
    return execution_id


def signal(server: DevServerProcess, execution_id: str) -> dict[str, object]:
    server.system("sendSignal", {"executionId": execution_id, "signalId": "go", "payload": 1})
    return server.wait_finished(execution_id)


def test_a_reload_is_a_deploy_of_a_patched_change(tmp_path: Path) -> None:
    package = tmp_path / "versioned_demo"
    package.mkdir()
    deploy(package, "v1", V1)
    env = {k: v for k, v in os.environ.items() if k != "EVENTUAL_BUILD"}
    with DevServerProcess(str(package), tmp_path, reload=True, env=env) as server:
        assert build_of(server) == "v1"
        old1 = start_charged(server, "old1", 1)
        old2 = start_charged(server, "old2", 1)

        deploy(package, "v2", V2)
        wait_for(lambda: build_of(server) == "v2", timeout=30, message=server.log)
        new1 = start_charged(server, "new1", 2)
        assert "PatchMarked" in history_types(server, new1)
        assert "PatchMarked" not in history_types(server, old1)

        # What runs on which build: the Build column, and --build.
        listed = {e["id"]: e.get("build") for e in json.loads(cli(server, "executions", "--json"))}
        assert listed == {old1: "v1", old2: "v1", new1: "v2"}
        on_v1 = json.loads(cli(server, "executions", "--build", "v1", "--json"))
        assert sorted(e["id"] for e in on_v1) == [old1, old2]
        table = cli(server, "executions", "--build", "v2")
        assert "Build" in table and "v2" in table and "order/new1" in table
        assert "order/old1" not in table

        # The old execution completes on the old branch, the new one on the new branch.
        assert signal(server, old1)["result"] == "shipped after charged 1"
        assert signal(server, new1)["result"] == "shipped after charged 200 cents"

        # The same change without the patch: the execution still on v1 cannot replay.
        deploy(package, "v3", UNPATCHED)
        wait_for(lambda: build_of(server) == "v3", timeout=30, message=server.log)
        failed = signal(server, old2)
        assert failed["status"] == "FAILED", failed
        assert failed["error"] == "DeterminismError"
        assert failed["message"] == (
            "seq 0: the history records task 'charge' with arguments [1], but the code did "
            "task 'chargeCents' with arguments [1]"
        )
    assert server.process is not None and server.process.returncode == 0
