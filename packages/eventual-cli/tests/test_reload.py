"""`eventual dev --reload`: a source change swaps the handlers, keeping running executions."""

from __future__ import annotations

from pathlib import Path

import httpx

from eventual.cli.testing import DevServerProcess, wait_for

SOURCE = """
from eventual.core import command, signal, task, workflow

VERSION = "{version}"

go = signal("go")


@command
async def version(_: None) -> str:
    return VERSION


@task("stamp")
async def stamp(text: str) -> str:
    return f"{{text}} by {{VERSION}}"


@workflow("waitThenStamp")
async def wait_then_stamp(text: str) -> str:
    got = await go.expect_signal(timeout=120)
    return await stamp(f"{{text}}+{{got}}")
"""


def write(package: Path, version: str, extra: str = "") -> None:
    (package / "__init__.py").write_text(SOURCE.format(version=version) + extra)


def version_of(server: DevServerProcess) -> str | None:
    try:
        r = httpx.post(f"{server.url}/rpc/version", timeout=5)
    except httpx.HTTPError:
        return None
    return r.json() if r.status_code == 200 else None


def test_a_change_reloads_handlers_and_keeps_executions(tmp_path: Path) -> None:
    package = tmp_path / "reload_demo"
    package.mkdir()
    write(package, "v1")
    with DevServerProcess(str(package), tmp_path, reload=True) as server:
        assert version_of(server) == "v1"
        assert "Reload    on, watching" in server.log()
        started = server.system(
            "startExecution", {"workflow": "waitThenStamp", "input": "order", "executionName": "r1"}
        )
        assert started["executionId"] == "waitThenStamp/r1"

        write(package, "v2")
        wait_for(lambda: version_of(server) == "v2", timeout=30, message=server.log)
        assert "reloaded reload-demo after a change to reload_demo/__init__.py" in server.log()

        # The execution started under v1 is still there and finishes on v2's code.
        server.system(
            "sendSignal", {"executionId": "waitThenStamp/r1", "signalId": "go", "payload": "go!"}
        )
        done = server.wait_finished("waitThenStamp/r1")
        assert done["status"] == "SUCCEEDED", done
        assert done["result"] == "order+go! by v2"

        # Broken code is reported and the previous code keeps serving.
        write(package, "v3", extra="\ndef broken(:\n")
        wait_for(lambda: "reload failed" in server.log(), timeout=30, message=server.log)
        assert version_of(server) == "v2"
        write(package, "v3")
        wait_for(lambda: version_of(server) == "v3", timeout=30, message=server.log)
    assert server.process is not None and server.process.returncode == 0
