"""eventual-client installs on its own: a fresh virtual environment with only eventual-client
(and eventual-core, which it declares) calls a running service, and has none of boto3,
aws-cdk-lib, uvicorn or the CLI.

Needs PyPI for httpx/pydantic (uv's cache keeps it fast); EVENTUAL_OFFLINE=1 skips it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import LiveService

PACKAGES = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, importlib.metadata, importlib.util, json, sys

from eventual.client import (
    EventualClient, HttpError, ServiceClient, SyncEventualClient, SyncServiceClient,
    command_ref, service_ref,
)

url = sys.argv[1]
out = {}
orders = service_ref(greet="getGreeting")
with SyncServiceClient(url) as client:
    out["invoice"] = client.call(orders.send_invoice, {"id": "v1", "amount": 3})
    out["greeting"] = client.call(orders.greet, "venv")
    try:
        client.call("send_invoice", {"id": "v1"})
    except HttpError as exc:
        out["error"] = [exc.status, exc.name]
with SyncEventualClient(url) as system:
    out["workflows"] = system.list_workflows()
    handle = system.start_execution("humanApproval", "v2", execution_name="v2")
    out["status"] = handle.get_status().status.value

async def main():
    async with ServiceClient(url) as client:
        out["sum"] = await client.call(command_ref("add_all"), [20, 22])
    async with EventualClient(url) as system:
        out["history"] = [e.type for e in await system.get_execution_history("humanApproval/v2")]

asyncio.run(main())
modules = ["boto3", "botocore", "aws_cdk", "uvicorn", "eventual.cli", "eventual.testing",
           "client_example_service"]
out["importable"] = [m for m in modules if importlib.util.find_spec(m) is not None]
out["distributions"] = sorted(
    d.metadata["Name"].lower() for d in importlib.metadata.distributions()
)
print(json.dumps(out))
"""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build the fresh environment (pip install uv)")
    return uv


@pytest.mark.network
def test_the_client_installs_and_works_alone(live: LiveService, tmp_path: Path, poll):
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
        return done

    run(uv, "venv", "--no-config", "--quiet", "--python", "3.11", venv)
    run(
        uv,
        "pip",
        "install",
        "--no-config",
        "--quiet",
        "--python",
        python,
        PACKAGES / "eventual-core",
        PACKAGES / "eventual-client",
    )
    done = run(python, "-c", SCRIPT, live.url)
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["invoice"] == {"order_id": "v1", "total": 6, "note": ""}
    assert out["greeting"] == "hello venv from example"
    assert out["error"] == [400, "ValidationError"]
    assert out["sum"] == 42
    assert out["workflows"] == ["humanApproval", "processOrder"]
    assert out["status"] == "IN_PROGRESS"
    assert out["history"][0] == "WorkflowStarted"
    assert out["importable"] == []
    installed = set(out["distributions"])
    assert {"eventual-client", "eventual-core", "httpx", "pydantic"} <= installed
    assert not installed & {"boto3", "botocore", "aws-cdk-lib", "uvicorn", "eventual-cli"}
