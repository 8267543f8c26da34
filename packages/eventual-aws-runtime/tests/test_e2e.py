"""The engine scenarios end to end: real handlers, AWS adapters on moto, Lambda played by the
harness, time moved by the harness's virtual clock."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from _recorded import recorded

from eventual.aws_runtime.testing import AwsHarness


def types(history: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in history]


def finish(aws: AwsHarness, eid: str) -> dict[str, Any]:
    aws.run_until_idle()
    ex = aws.execution(eid)
    assert ex["status"] != "IN_PROGRESS", ex
    return ex


def test_task_result_is_recorded_in_order(aws: AwsHarness) -> None:
    eid = aws.start("pay", "visa", name="one")
    ex = finish(aws, eid)
    assert (ex["status"], ex["result"]) == ("SUCCEEDED", "ch-visa:100")
    history = recorded(aws, eid)
    assert types(history) == [
        "WorkflowStarted",
        "TaskScheduled",
        "TaskSucceeded",
        "WorkflowSucceeded",
    ]
    assert history[2]["result"] == {"charge_id": "ch-visa", "amount": 100}
    assert aws.failed_deliveries == 0


def test_task_failure_fails_the_workflow_with_its_error(aws: AwsHarness) -> None:
    ex = finish(aws, aws.start("pay", "declined"))
    assert (ex["status"], ex["error"], ex["message"]) == (
        "FAILED",
        "CardDeclined",
        "card declined declined",
    )


def test_parallel_tasks(aws: AwsHarness) -> None:
    ex = finish(aws, aws.start("fanout", 12))
    assert ex["result"] == [i * 2 for i in range(12)]


def test_many_sequential_steps_one_history_item_per_step(aws: AwsHarness) -> None:
    eid = aws.start("steps", 8)
    ex = finish(aws, eid)
    assert ex["result"] == sum(i * 2 for i in range(8))
    items = aws.admin.client("dynamodb").query(
        TableName=aws.names.history_table,
        KeyConditionExpression="execution_id = :id",
        ExpressionAttributeValues={":id": {"S": eid}},
    )["Items"]
    # One item per orchestration step, each holding that step's batch of events.
    assert len(items) == 1 + 8
    assert sum(int(i["count"]["N"]) for i in items) == len(recorded(aws, eid))


def test_short_timer_is_an_sqs_delay(aws: AwsHarness) -> None:
    eid = aws.start("sleeper", 600)
    aws.run_until_idle()
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(599)
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(1)
    assert aws.execution(eid)["result"] == "slept 600"
    assert aws.requests[("scheduler", "CreateSchedule")] == 0


def test_long_timer_is_a_one_time_schedule_that_deletes_itself(aws: AwsHarness) -> None:
    eid = aws.start("sleeper", 3 * 3600)
    aws.run_until_idle()
    scheduler = aws.admin.client("scheduler")
    schedules = scheduler.list_schedules(GroupName=aws.names.schedule_group)["Schedules"]
    assert len(schedules) == 1
    full = scheduler.get_schedule(Name=schedules[0]["Name"], GroupName=aws.names.schedule_group)
    assert full["ScheduleExpression"].startswith("at(")
    assert full["ActionAfterCompletion"] == "DELETE"
    assert full["Target"]["Arn"] == aws.names.timer_queue_arn
    aws.advance(3 * 3600 - 1)
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(1)
    assert aws.execution(eid)["result"] == "slept 10800"
    assert scheduler.list_schedules(GroupName=aws.names.schedule_group)["Schedules"] == []


def test_a_timer_failing_on_its_last_attempt_fails_its_execution(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A due timer whose message fails on every delivery: on the queue's last attempt
    (``maxReceiveCount``, which the construct gives the function) the timer function fails
    the execution, which cannot go on without it, saying why and where the message went."""
    from eventual.aws_runtime import names as n
    from eventual.aws_runtime.handlers import timer

    monkeypatch.setenv(n.ENV_MAX_RECEIVE_COUNT, "3")

    async def broken(body: Any) -> None:
        raise RuntimeError("the timer could not be fired")

    eid = aws.start("sleeper", 600)
    aws.run_until_idle()
    monkeypatch.setattr(timer, "_fire", broken)
    aws.advance(600)  # due: the first attempt fails, and the message returns to its queue
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(n.TIMER_QUEUE_VISIBILITY_TIMEOUT)  # the second
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(n.TIMER_QUEUE_VISIBILITY_TIMEOUT)  # the third and last
    failed = aws.execution(eid)
    assert (failed["status"], failed["error"]) == ("FAILED", "DeadLettered"), failed
    assert "its timers failed 3 times" in failed["message"]
    assert "RuntimeError: the timer could not be fired" in failed["message"]
    assert "eventual dlq list" in failed["message"]
    assert aws.failed_deliveries == 3


def test_workflow_logs_go_to_cloudwatch(aws: AwsHarness) -> None:
    eid = aws.start("sleeper", 1)
    aws.advance(1)
    logs = aws.system("getExecutionLogs", {"executionId": eid})["events"]
    assert [e["message"] for e in logs] == ["sleeping 1 seconds"]


def test_signal_reaches_the_workflow(aws: AwsHarness) -> None:
    eid = aws.start("waiter", 60)
    aws.run_until_idle()
    aws.signal(eid, "go", "now")
    ex = finish(aws, eid)
    assert ex["result"] == "got now"


def test_signal_timeout(aws: AwsHarness) -> None:
    eid = aws.start("waiter", 60)
    aws.advance(60)
    assert aws.execution(eid)["result"] == "Timeout: no signal 'go' arrived within 60s"


def test_emitted_events_reach_subscriptions_through_eventbridge(
    aws: AwsHarness, service_state: dict[str, list[Any]]
) -> None:
    ex = finish(aws, aws.start("shipper", "o-1"))
    assert ex["result"] == "shipped"
    assert service_state["subscribed"] == ["o-1"]
    aws.system("emitEvents", {"events": [{"name": "Shipped", "event": {"order_id": "o-2"}}]})
    aws.run_until_idle()
    assert service_state["subscribed"] == ["o-1", "o-2"]
    assert aws.requests[("eventbridge", "PutEvents")] == 2


def test_a_failing_subscription_fails_its_invocation_and_is_delivered_again(
    service_state: dict[str, list[Any]],
) -> None:
    # Lambda retries a failed asynchronous invocation; the harness plays that by making the
    # event visible again at once (retry_after=0).
    for values in service_state.values():
        values.clear()
    with AwsHarness("aws_e2e_service", retry_after=0) as aws:
        aws.system(
            "emitEvents", {"events": [{"name": "Shipped", "event": {"order_id": "flaky-1"}}]}
        )
        aws.run_until_idle()
        assert aws.failed_deliveries == 1
    assert service_state["subscribed"] == ["failed:flaky-1", "flaky-1"]


def test_child_workflows(aws: AwsHarness) -> None:
    ex = finish(aws, aws.start("parent", 3))
    assert ex["result"] == sum(i * 2 for i in range(3)) + sum(i * 2 for i in range(4))
    children = aws.system("listExecutions", {"workflowName": "steps"})["executions"]
    assert len(children) == 2
    assert all(c["parent"]["executionId"] == ex["id"] for c in children)


def test_workflow_timeout(aws: AwsHarness) -> None:
    eid = aws.start("slow", None)
    aws.advance(30 * 60)
    ex = aws.execution(eid)
    assert (ex["status"], ex["error"]) == ("FAILED", "WorkflowTimeout")


def test_async_task_completed_by_token(
    aws: AwsHarness, service_state: dict[str, list[Any]]
) -> None:
    eid = aws.start("approve", "o-9")
    aws.run_until_idle()
    [token] = service_state["tokens"]
    aws.system("updateTask", {"type": "Success", "taskToken": token, "result": "approved"})
    assert finish(aws, eid)["result"] == "approved"


def test_async_task_timeout(aws: AwsHarness) -> None:
    eid = aws.start("approve", "o-10")
    aws.advance(3600)
    assert aws.execution(eid)["result"] == "timeout: task 'approval' did not complete within 3600s"


def test_heartbeats_keep_a_task_alive_then_it_times_out(
    aws: AwsHarness, service_state: dict[str, list[Any]]
) -> None:
    eid = aws.start("beater", None)
    aws.run_until_idle()
    [token] = service_state["tokens"]
    for _ in range(4):
        aws.advance(8)
        beat = aws.system("updateTask", {"type": "Heartbeat", "taskToken": token})
        assert beat == {"cancelled": False}
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(10)
    assert aws.execution(eid)["result"] == "heartbeat: task 'beating' sent no heartbeat within 10s"
    assert aws.system("updateTask", {"type": "Heartbeat", "taskToken": token}) == {
        "cancelled": True
    }


def test_heartbeat_from_a_running_task(aws: AwsHarness) -> None:
    assert finish(aws, aws.start("beatInTask", None))["result"] is False


def test_retries_back_off_then_succeed(
    aws: AwsHarness, service_state: dict[str, list[Any]]
) -> None:
    eid = aws.start("retrying", 2)
    aws.run_until_idle()
    assert service_state["attempts"] == [1]
    aws.advance(9)
    assert service_state["attempts"] == [1]
    aws.advance(1)
    assert service_state["attempts"] == [1, 2]
    aws.advance(30)
    assert aws.execution(eid)["result"] == "ok on attempt 3"


def test_command_over_api_gateway_starts_a_workflow(aws: AwsHarness) -> None:
    response = aws.http("POST", "/rpc/place_order", body={"id": "o-1", "source": "visa"})
    assert response["statusCode"] == 200
    eid = json.loads(response["body"])
    assert eid == "pay/o-1"
    assert finish(aws, eid)["result"] == "ch-visa:100"


def test_api_gateway_validation_routes_and_errors(aws: AwsHarness) -> None:
    bad = aws.http("POST", "/rpc/place_order", body={"id": "o-1"})
    assert bad["statusCode"] == 400
    assert json.loads(bad["body"])["error"] == "ValidationError"
    hello = aws.http("GET", "/hello/world")
    assert (hello["statusCode"], hello["body"]) == (200, "hello world")
    missing = aws.http("GET", "/nope")
    assert missing["statusCode"] == 404
    assert json.loads(missing["body"])["error"] == "NotFound"
    # System commands are not served by the public command function.
    hidden = aws.http_event("POST", "/rpc/_system/listWorkflows", body={})
    from eventual.aws_runtime.handlers import command

    assert command.handler(hidden, None)["statusCode"] == 404


def test_hostile_input_through_the_api_and_system_functions(aws: AwsHarness) -> None:
    """The same refusals as ``eventual dev`` (one HTTP layer): 400 with the sentence, nothing
    recorded."""
    deep = b"[" * 20_000 + b"]" * 20_000
    cases: list[tuple[str, bytes, bool, str]] = [
        ("/rpc/place_order", deep, False, "nested deeper than 100 levels"),
        ("/rpc/_system/startExecution", deep, False, "nested deeper than 100 levels"),
        ("/rpc/_system/startExecution", b'{"workflow":"pay","input":\xff}', True, "not valid JSON"),
        (
            "/rpc/_system/startExecution",
            b'{"workflow":"pay","input":{"id":"x","source":"v"},"executionName":"../../etc"}',
            False,
            "invalid execution name '../../etc'",
        ),
        ("/rpc/_system/getExecution", b'"pay/../x"', False, "invalid execution id 'pay/../x'"),
    ]
    for path, body, binary, says in cases:
        response = aws.http("POST", path, body=body, binary=binary)
        assert response["statusCode"] == 400, (path, response)
        assert says in json.loads(response["body"])["message"], (path, response["body"][:300])
    assert aws.system("listExecutions", {})["executions"] == []


def test_api_gateway_base64_bodies_both_ways(aws: AwsHarness) -> None:
    data = bytes(range(256))
    response = aws.http("POST", "/echo-bytes", body=data, binary=True)
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert base64.b64decode(response["body"]) == bytes(reversed(data))


def test_list_executions_sorted_both_ways_paginated_and_filtered(aws: AwsHarness) -> None:
    ids = []
    for i in range(7):
        ids.append(aws.start("pay", "declined" if i % 3 == 0 else "visa", name=f"o{i}"))
        aws.clock.set(aws.clock.now() + __import__("datetime").timedelta(seconds=1))
    aws.start("sleeper", 100)
    aws.run_until_idle()
    for direction, expected in (("DESC", list(reversed(ids))), ("ASC", ids)):
        seen: list[str] = []
        token = None
        while True:
            body: dict[str, Any] = {
                "workflowName": "pay",
                "maxResults": 3,
                "sortDirection": direction,
            }
            if token:
                body["nextToken"] = token
            page = aws.system("listExecutions", body)
            assert len(page["executions"]) <= 3
            seen.extend(e["id"] for e in page["executions"])
            token = page.get("nextToken")
            if not token:
                break
        assert seen == expected, direction
    failed = aws.system("listExecutions", {"statuses": ["FAILED"], "sortDirection": "DESC"})[
        "executions"
    ]
    assert [e["id"] for e in failed] == [ids[6], ids[3], ids[0]]
    running = aws.system("listExecutions", {"statuses": ["IN_PROGRESS"]})["executions"]
    assert [e["workflowName"] for e in running] == ["sleeper"]
    everything = aws.system("listExecutions", {})["executions"]
    assert len(everything) == 8


def test_large_payloads_spill_to_s3(aws: AwsHarness) -> None:
    big = "x" * 400_000
    eid = aws.start("pay", big, name="big")
    ex = finish(aws, eid)
    assert ex["input"] == big
    assert ex["result"] == f"ch-{big}:100"
    assert recorded(aws, eid)[0]["input"] == big
    objects = aws.admin.client("s3").list_objects_v2(Bucket=aws.names.payload_bucket)
    assert objects["KeyCount"] >= 2


def test_a_failed_batch_returns_after_the_visibility_timeout(
    aws: AwsHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventual.aws_runtime.names import EXECUTION_QUEUE_VISIBILITY_TIMEOUT
    from eventual.core.runtime import Runtime

    original = Runtime.orchestrate
    calls: list[str] = []

    async def flaky(self: Runtime, execution_id: str, events: Any) -> None:
        calls.append(execution_id)
        if len(calls) == 1:
            raise RuntimeError("transient")
        await original(self, execution_id, events)

    monkeypatch.setattr(Runtime, "orchestrate", flaky)
    eid = aws.start("pay", "visa")
    aws.run_until_idle()
    assert aws.failed_deliveries == 1
    aws.advance(EXECUTION_QUEUE_VISIBILITY_TIMEOUT - 1)
    assert aws.execution(eid)["status"] == "IN_PROGRESS"
    aws.advance(1)
    assert aws.execution(eid)["result"] == "ch-visa:100"


def test_a_stale_warm_orchestrator_detects_the_conflict_and_recomputes(aws: AwsHarness) -> None:
    """Two orchestrator containers: B advances an execution that A holds warm; A's next step
    fails its conditional commit, drops what it remembered and re-reads."""
    import asyncio

    from eventual.aws_runtime.adapters import build_ports, decode_queue_event
    from eventual.aws_runtime.handlers import _common
    from eventual.core.history import parse_history
    from eventual.core.runtime import Runtime

    eid = aws.start("waiter", 60)
    aws.run_until_idle()
    a = _common.runtime("orchestrator", cache_commits=True)
    ports = build_ports(aws.names, aws.clock, cache_commits=True)
    b = Runtime(a.service, ports, clock=aws.clock)
    aws.signal(eid, "go", "first")
    url = aws.names.execution_queue_url
    messages = aws._receive(url)
    events = [decode_queue_event(m["Body"], ports.payloads)[1] for m in messages]  # type: ignore[arg-type]
    asyncio.run(b.orchestrate(eid, events))
    for m in messages:
        aws.admin.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert aws.execution(eid)["result"] == "got first"

    aws.signal(eid, "go", "second")  # reaches A, whose copy is one step behind
    aws.run_until_idle()
    assert a.stats["conflicts"] == 1
    assert aws.execution(eid)["result"] == "got first"
    history = parse_history(recorded(aws, eid))
    assert [e.type for e in history] == [
        "WorkflowStarted",
        "TimerScheduled",
        "SignalReceived",
        "WorkflowSucceeded",
    ]


def test_a_stale_warm_orchestrator_redoes_a_step_whose_events_it_does_not_know(
    aws: AwsHarness,
) -> None:
    """A holds an execution warm; B advances it to a call A has never seen; that call's result
    then reaches A. A's state drops it as a result of no call, and no commit would conflict:
    A must see that the recorded history is ahead and redo the step from it, not lose it."""
    import asyncio

    from eventual.aws_runtime.adapters import build_ports, decode_queue_event
    from eventual.aws_runtime.handlers import _common
    from eventual.core.history import TaskSucceeded
    from eventual.core.runtime import Runtime

    a = _common.runtime("orchestrator", cache_commits=True)
    b = Runtime(a.service, build_ports(aws.names, aws.clock, cache_commits=True), clock=aws.clock)
    eid = aws.start("steps", 2)
    url = aws.names.execution_queue_url
    messages = aws._receive(url)
    started = [decode_queue_event(m["Body"], a.ports.payloads)[1] for m in messages]  # type: ignore[arg-type]
    asyncio.run(a.orchestrate(eid, started))  # A: double(0) scheduled, A holds it warm
    # B takes double(0)'s result and schedules double(1), seq 1, which A has never seen.
    asyncio.run(b.orchestrate(eid, [TaskSucceeded(timestamp=aws.clock.now(), seq=0, result=0)]))
    asyncio.run(a.orchestrate(eid, [TaskSucceeded(timestamp=aws.clock.now(), seq=1, result=2)]))
    assert a.stats["stale_warm"] == 1
    assert aws.execution(eid)["status"] == "SUCCEEDED"
    assert aws.execution(eid)["result"] == 2
