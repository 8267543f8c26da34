"""Runs ``drive.mjs`` (the real TypeScript client) against a service URL and checks what the
client returned. Used against ``eventual dev`` (eventual-client's ``test_ts_client.py``) and
against the AWS runtime's handlers (eventual-aws-runtime's ``test_ts_client_aws.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
DRIVER = HERE / "drive.mjs"
REPO = HERE.parents[4]
#: The runnable build of @eventual/client 0.57 (see its README); EVENTUAL_TS_CLIENT overrides.
CLIENT_DIR = Path(
    os.environ.get("EVENTUAL_TS_CLIENT", REPO.parent / "shared" / "ts-eventual-client")
)
CLIENT_MODULE = CLIENT_DIR / "eventual-client.mjs"


def skip_without_node() -> None:
    """Skip (with the reason) where Node or the client build is absent."""
    if shutil.which("node") is None:
        pytest.skip("node is not on PATH: the real TypeScript client needs Node 18+")
    if not CLIENT_MODULE.is_file():
        pytest.skip(f"the TypeScript client build is absent: no {CLIENT_MODULE}")


def drive(service_url: str, *, timeout: float = 180.0) -> dict[str, Any]:
    """What every call of the real client returned, as one JSON document."""
    done = subprocess.run(
        ["node", str(DRIVER), CLIENT_MODULE.resolve().as_uri(), service_url],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"the TypeScript client failed:\n{done.stderr[-4000:]}"
    return json.loads(done.stdout)


def _body(error: dict[str, Any]) -> dict[str, Any]:
    return json.loads(error["body"])


def check(out: dict[str, Any]) -> None:
    """Assert on what the client returned, as a TypeScript user would see it."""
    assert out["listWorkflows"] == {
        "workflows": [{"name": n} for n in ("double", "listener", "order")]
    }
    assert out["started"] == {"executionId": "order/o1", "isHandle": True}
    assert out["startedAgain"] == "order/o1"

    # Task tokens: the heartbeat answers {cancelled}; the others answer nothing (an empty
    # body, which the client's fetch handler returns as "").
    assert out["heartbeat"] == {"cancelled": False}
    for name in ("taskSuccess", "taskFailure", "sendSignal", "handleSendSignal", "emitEvents"):
        assert out[name] == "", name

    o1, o2, o3 = (out["finished"][f"order/{n}"] for n in ("o1", "o2", "o3"))
    assert o1["status"] == "SUCCEEDED"
    assert o1["result"] == {
        "charged": 5,
        "retried": "attempt 2",
        "doubled": 10,
        "approved": "approved",
        "note": "now",
    }
    assert o2["status"] == "SUCCEEDED" and o2["result"]["note"] == "later"
    assert (o3["status"], o3["error"], o3["message"]) == ("FAILED", "Declined", "card declined")
    assert out["listenerDone"]["result"] == "o1 shipped"
    execution = out["getExecution"]
    assert execution["id"] == "order/o1" and execution["workflowName"] == "order"
    for field in ("startTime", "endTime"):
        assert execution[field].endswith("Z") and len(execution[field]) == 24  # milliseconds
    # An unknown execution: the original's 200 with no body, "" through the fetch handler.
    assert out["missingExecution"] == {"type": "string", "value": "", "falsy": True}

    # listExecutions: ASC (the default) oldest first, DESC newest first, paged by 2.
    ids = ["order/o1", "order/o2", "order/o3"]
    assert out["listAsc"] == [ids[:2], ids[2:]]
    assert out["listDesc"] == [ids[::-1][:2], ids[::-1][2:]]
    assert out["listDefault"] == ids
    assert out["listFailed"] == ["order/o3"]

    # getExecutionHistory: the events by time (then by kind), paged, in both directions.
    asc = out["historyAsc"]["events"]
    assert "nextToken" not in out["historyAsc"]
    kinds = out["historyAscKinds"]
    assert kinds[0] == "WorkflowStarted" and kinds[-1] == "WorkflowSucceeded"
    for kind in (
        "Call:TaskScheduled",
        "TaskSucceeded",
        "TaskFailed",
        "kind:TaskRetryScheduled",
        "kind:TaskRetryDue",
        "Call:TimerScheduled",
        "TimerCompleted",
        "Call:ChildWorkflowScheduled",
        "ChildWorkflowSucceeded",
        "SignalReceived",
        "Call:SignalSent",
        "Call:EventsEmitted",
    ):
        assert kind in kinds, kind
    assert not [k for k in kinds if "?" in k or k == "kind:undefined"], kinds
    stamps = [e["timestamp"] for e in asc]
    assert stamps == sorted(stamps) and all(len(s) == 24 and s.endswith("Z") for s in stamps)
    started = asc[0]
    assert started["workflowName"] == "order" and started["input"] == {"id": "o1", "amount": 5}
    assert started["context"]["name"] == "o1"
    signal = next(e for e in asc if e["type"] == 24)
    assert (signal["signalId"], signal["payload"], signal["id"]) == ("go", "now", "go-1")
    charge = next(e for e in asc if e["type"] == 20 and e["event"]["type"] == 7)
    assert charge["event"]["name"] == "charge" and charge["event"]["input"] == 5
    assert asc[-1]["output"] == o1["result"]
    assert out["historyDesc"]["events"] == asc[::-1]
    pages = out["historyPages"]
    assert all(len(p) <= 3 for p in pages) and len(pages) == -(-len(asc) // 3)
    assert [e for p in pages for e in p] == asc
    assert [e for p in out["historyDescPages"] for e in p] == asc[::-1]
    assert out["historyAfter"]["events"] == [e for e in asc if e["timestamp"] > out["after"]]
    # getExecutionWorkflowHistory: the replay history (recorded order, unpaged).
    assert sorted(out["workflowHistoryKinds"]) == sorted(kinds)
    assert out["workflowHistoryKinds"][0] == "WorkflowStarted"
    assert out["failedHistoryKinds"][-1] == "WorkflowFailed"
    assert out["missingHistory"] == {"events": []}
    assert out["missingWorkflowHistory"] == {"events": []}
    logs = out["logs"]["events"]
    assert any("ordering o1" in e["message"] for e in logs), logs
    assert all(e["source"] == "order/o1" and isinstance(e["time"], int) for e in logs)

    # Errors: HttpError with the status; its message is the body {message, data?}.
    validation = out["validation"]["error"]
    assert validation["status"] == 400 and validation["message"] == validation["body"]
    body = _body(validation)
    assert "BOGUS" in body["message"] and body["data"][0]["path"] == ["statuses"]
    unknown = out["unknownWorkflow"]["error"]
    assert (
        unknown["status"] == 404 and "workflow 'ghost' does not exist" in _body(unknown)["message"]
    )
    transaction = out["transaction"]["error"]
    assert transaction["status"] == 400
    assert "transactions are not part of Eventual for Python" in _body(transaction)["message"]
    bad_token = out["badToken"]["error"]
    assert bad_token["status"] == 400 and _body(bad_token)["message"]
