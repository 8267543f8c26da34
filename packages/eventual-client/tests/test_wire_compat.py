"""The TypeScript Eventual HTTP client's request shapes, sent verbatim, are served."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from conftest import LiveService

JSON = {"Content-Type": "application/json"}


def test_typescript_client_requests_are_served(
    live: LiveService, example: Any, poll: Callable[..., None]
):
    with httpx.Client(base_url=live.url, headers=JSON) as http:
        # A user command: POST /rpc/{command} with the raw JSON input.
        r = http.post("/rpc/send_invoice", content=b'{"id":"t1","amount":4}')
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"order_id": "t1", "total": 8, "note": ""}
        r = http.post("/rpc/getGreeting", content=b'"Ts"')
        assert r.json() == "hello Ts from example"

        r = http.post(
            "/rpc/_system/startExecution",
            content=b'{"workflow":"processOrder","input":{"id":"t1","amount":4},'
            b'"executionName":"t1"}',
        )
        assert r.status_code == 200
        assert r.json() == {"executionId": "processOrder/t1", "alreadyRunning": False}

        # getExecution takes the bare execution id as a JSON string.
        r = http.post("/rpc/_system/getExecution", content=b'"processOrder/t1"')
        assert r.status_code == 200
        execution = r.json()
        assert execution["id"] == "processOrder/t1"
        assert execution["status"] == "IN_PROGRESS"
        assert execution["workflowName"] == "processOrder"
        assert execution["startTime"].endswith("Z")

        r = http.post(
            "/rpc/_system/sendSignal",
            content=b'{"executionId":"processOrder/t1","signalId":"approve",'
            b'"payload":"from ts","id":"sig-1"}',
        )
        assert r.status_code == 200

        def succeeded() -> bool:
            got = http.post("/rpc/_system/getExecution", content=b'"processOrder/t1"').json()
            return got["status"] == "SUCCEEDED"

        poll(succeeded, what="the execution to succeed")
        execution = http.post("/rpc/_system/getExecution", content=b'"processOrder/t1"').json()
        assert execution["result"] == {"order_id": "t1", "total": 4, "note": "from ts"}
        assert "endTime" in execution

        r = http.post(
            "/rpc/_system/getExecutionHistory", content=b'{"executionId":"processOrder/t1"}'
        )
        types = [e["type"] for e in r.json()["events"]]
        assert types[0] == "WorkflowStarted"
        assert "SignalReceived" in types
        assert types[-1] == "WorkflowSucceeded"
        r = http.post("/rpc/_system/getExecutionWorkflowHistory", content=b'"processOrder/t1"')
        assert [e["type"] for e in r.json()["events"]] == types

        r = http.post(
            "/rpc/_system/listExecutions",
            content=b'{"workflowName":"processOrder","statuses":["SUCCEEDED"]}',
        )
        assert [e["id"] for e in r.json()["executions"]] == ["processOrder/t1"]

        r = http.post("/rpc/_system/listWorkflows", content=b"{}")
        assert r.json() == {"workflows": [{"name": "humanApproval"}, {"name": "processOrder"}]}

        r = http.post(
            "/rpc/_system/emitEvents",
            content=b'{"events":[{"name":"OrderPlaced","event":{"id":"t2","amount":1}}]}',
        )
        assert r.status_code == 200
        poll(lambda: [o.id for o in example.RECEIVED] == ["t2"], what="the event delivered")

        http.post(
            "/rpc/_system/startExecution",
            content=b'{"workflow":"humanApproval","input":"t3","executionName":"t3"}',
        )
        poll(lambda: "t3" in example.TOKENS, what="the task token")
        token = example.TOKENS["t3"].encode()
        r = http.post(
            "/rpc/_system/updateTask",
            content=b'{"type":"Heartbeat","taskToken":"' + token + b'"}',
        )
        assert r.json() == {"cancelled": False}
        r = http.post(
            "/rpc/_system/updateTask",
            content=b'{"type":"Success","taskToken":"' + token + b'","result":"ok"}',
        )
        assert r.status_code == 200

        def approved() -> bool:
            got = http.post("/rpc/_system/getExecution", content=b'"humanApproval/t3"').json()
            return got["status"] == "SUCCEEDED" and got["result"] == "ok"

        poll(approved, what="the task to complete the execution")

        # Errors follow the {"error", "message"} contract.
        r = http.post("/rpc/_system/getExecution", content=b'"processOrder/missing"')
        assert r.status_code == 404
        assert r.json()["error"] == "ExecutionNotFound"
        r = http.post("/rpc/send_invoice", content=b'{"id":"t1"}')
        assert r.status_code == 400
        assert r.json()["error"] == "ValidationError"
