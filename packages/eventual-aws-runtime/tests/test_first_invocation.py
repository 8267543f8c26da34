"""A container's first invocation (benchmark 5, ``benchmarks/cold_start.py``): the garbage
collector is paused while it runs and everything it built is frozen afterwards; later
invocations are untouched; the clients come from botocore alone.

Each scenario runs in a fresh interpreter, as a new Lambda container does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SERVICE = """
import gc
import time

from pydantic import BaseModel

from eventual.core import command


class GcState(BaseModel):
    enabled: bool
    resumed_within_deadline: bool = False


@command
async def gc_state() -> GcState:
    return GcState(enabled=gc.isenabled())


@command
async def wait_for_gc() -> GcState:
    # Runs longer than the pause may last: the collector comes back while it runs.
    deadline = time.monotonic() + 30
    while not gc.isenabled() and time.monotonic() < deadline:
        time.sleep(0.01)
    return GcState(enabled=gc.isenabled(), resumed_within_deadline=gc.isenabled())
"""


def _event(command: str) -> dict[str, Any]:
    path = f"/rpc/{command}"
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": path}, "stage": "$default"},
        "body": None,
        "isBase64Encoded": False,
    }


def run_fresh(tmp_path: Path, body: str) -> Any:
    """Run ``body`` in a new interpreter serving the test service; it leaves its result in
    ``result``, printed as JSON."""
    (tmp_path / "gc_service.py").write_text(SERVICE)
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")])),
            "EVENTUAL_SERVICE_NAME": "gc",
            "EVENTUAL_SERVICE_ENTRY": "gc_service",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    code = "import gc, json, sys\n" + textwrap.dedent(body) + "\nprint(json.dumps(result))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_first_invocation_runs_with_the_collector_paused(tmp_path: Path) -> None:
    result = run_fresh(
        tmp_path,
        f"""
        from eventual.aws_runtime.handlers import command
        before = gc.isenabled()
        first = json.loads(command.handler({_event("gc_state")!r})["body"])
        after_first = {{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}
        second = json.loads(command.handler({_event("gc_state")!r})["body"])
        result = {{
            "before": before,
            "first": first["enabled"],
            "after_first": after_first,
            "second": second["enabled"],
        }}
        """,
    )
    assert result["before"] is True
    assert result["first"] is False  # paused inside the first invocation
    assert result["after_first"]["enabled"] is True
    # What the first invocation built (modules, the service, the runtime) is frozen.
    assert result["after_first"]["frozen"] > 10_000
    assert result["second"] is True  # later invocations are not touched


def test_a_long_first_invocation_gets_the_collector_back(tmp_path: Path) -> None:
    result = run_fresh(
        tmp_path,
        f"""
        from eventual.aws_runtime.handlers import _common, command
        _common.GC_PAUSE_SECONDS = 0.2
        response = json.loads(command.handler({_event("wait_for_gc")!r})["body"])
        result = {{"response": response, "enabled": gc.isenabled()}}
        """,
    )
    assert result["response"]["resumed_within_deadline"] is True
    assert result["enabled"] is True


def test_a_process_without_a_collector_keeps_it_off(tmp_path: Path) -> None:
    result = run_fresh(
        tmp_path,
        f"""
        gc.disable()
        from eventual.aws_runtime.handlers import command
        command.handler({_event("gc_state")!r})
        result = {{"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}
        """,
    )
    assert result == {"enabled": False, "frozen": 0}


def test_an_invocation_inside_the_first_leaves_the_pause_to_it(tmp_path: Path) -> None:
    result = run_fresh(
        tmp_path,
        """
        from eventual.aws_runtime.handlers import _common
        with _common.FirstInvocation():
            with _common.FirstInvocation():
                inner = gc.isenabled()
            after_inner = gc.isenabled()
        result = {"inner": inner, "after_inner": after_inner, "after": gc.isenabled()}
        """,
    )
    assert result == {"inner": False, "after_inner": False, "after": True}


def test_the_clients_come_from_botocore_without_boto3(tmp_path: Path) -> None:
    result = run_fresh(
        tmp_path,
        """
        from eventual.aws_runtime import clients
        sqs = clients.client("sqs")
        result = {
            "service": sqs.meta.service_model.service_name,
            "session": type(clients._session).__module__,
            "boto3": "boto3" in sys.modules,
        }
        """,
    )
    assert result == {"service": "sqs", "session": "botocore.session", "boto3": False}


def test_a_boto3_session_still_configures_the_clients() -> None:
    import boto3

    from eventual.aws_runtime import clients

    session = boto3.Session(region_name="us-east-1")
    clients.configure(session)
    try:
        sqs = clients.client("sqs")
        assert sqs.meta.service_model.service_name == "sqs"
        assert sqs.meta.region_name == "us-east-1"
    finally:
        clients.configure()
