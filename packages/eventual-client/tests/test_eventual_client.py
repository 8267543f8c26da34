from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest

from eventual.client import (
    EventualClient,
    HttpError,
    RemoteExecution,
    Retry,
    SyncEventualClient,
    SyncRemoteExecution,
)
from eventual.core import ExecutionStatus
from eventual.core.history import (
    SignalReceived,
    TaskScheduled,
    WorkflowStarted,
    WorkflowSucceeded,
)

if TYPE_CHECKING:
    from conftest import LiveService


@pytest.mark.anyio
async def test_start_signal_and_read_an_execution(live: LiveService, example: Any):
    order = example.Order(id="o1", amount=7)
    async with EventualClient(live.url) as client:
        handle = await client.start_execution(
            example.process_order, order, execution_name="o1", timeout=3600
        )
        assert isinstance(handle, RemoteExecution)
        assert handle.execution_id == "processOrder/o1"
        assert handle.already_running is False
        again = await client.start_execution(
            "processOrder", order.model_dump(), execution_name="o1"
        )
        assert (again.execution_id, again.already_running) == ("processOrder/o1", True)

        running = await handle.get_status()
        assert running.status is ExecutionStatus.IN_PROGRESS
        assert running.timeout_at is not None

        await handle.send_signal(example.approve, "ship it")
        done = await handle.wait(timeout=10, interval=0.01)
        assert done.status is ExecutionStatus.SUCCEEDED
        # Started from the definition: the result is the workflow's output type.
        assert done.result == example.Invoice(order_id="o1", total=7, note="ship it")

        raw = await client.get_execution("processOrder/o1")
        assert raw.result == {"order_id": "o1", "total": 7, "note": "ship it"}
        assert raw.workflow == "processOrder"
        assert raw.input == {"id": "o1", "amount": 7}
        assert raw.end_time is not None

        history = await client.get_execution_history(handle)
        assert isinstance(history[0], WorkflowStarted)
        assert isinstance(history[-1], WorkflowSucceeded)
        signals = [e for e in history if isinstance(e, SignalReceived)]
        assert [(s.signal, s.payload) for s in signals] == [("approve", "ship it")]

        logs = await client.get_execution_logs(handle.execution_id)
        assert [(entry.level, entry.message) for entry in logs] == [
            ("WARNING", "processing order o1")
        ]
        assert logs[0].execution_id == "processOrder/o1"

    sent = [r for r in live.received if r.path == "/rpc/_system/sendSignal"]
    body = json.loads(sent[0]._body)
    assert body["executionId"] == "processOrder/o1"
    assert (body["signalId"], body["payload"]) == ("approve", "ship it")
    assert isinstance(body["id"], str) and body["id"]


def test_sync_client_lists_executions_and_workflows(live: LiveService, example: Any):
    with SyncEventualClient(live.url) as client:
        assert client.list_workflows() == ["humanApproval", "processOrder"]
        a = client.start_execution(example.process_order, example.Order(id="a", amount=1))
        b = client.start_execution(example.human_approval, "b", execution_name="b")
        client.send_signal(a.execution_id, "approve", "ok")
        assert a.wait(timeout=10, interval=0.01).status is ExecutionStatus.SUCCEEDED

        everything = client.list_executions()
        assert {e.id for e in everything} == {a.execution_id, b.execution_id}
        only = client.list_executions(workflow=example.process_order)
        assert [e.id for e in only] == [a.execution_id]
        running = client.list_executions(statuses=[ExecutionStatus.IN_PROGRESS])
        assert [e.id for e in running] == ["humanApproval/b"]
        page = client.list_executions(max_results=1)
        assert len(page) == 1
        assert page.next_token is not None
        rest = client.list_executions(max_results=1, next_token=page.next_token)
        assert {page.executions[0].id, rest.executions[0].id} == {a.execution_id, b.execution_id}


@pytest.mark.anyio
async def test_task_tokens_complete_heartbeat_and_fail_tasks(
    live: LiveService, example: Any, poll: Callable[..., None]
):
    async with EventualClient(live.url) as client:
        yes = await client.start_execution(example.human_approval, "yes")
        no = await client.start_execution(example.human_approval, "no")
        poll(lambda: {"yes", "no"} <= set(example.TOKENS), what="task tokens")

        assert await client.send_task_heartbeat(example.TOKENS["yes"], {"progress": 1}) is False
        await client.send_task_success(example.TOKENS["yes"], "approved")
        await client.send_task_failure(example.TOKENS["no"], "Rejected", "not this one")

        assert (await yes.wait(timeout=10, interval=0.01)).result == "approved"
        failed = await no.wait(timeout=10, interval=0.01)
        assert failed.status is ExecutionStatus.FAILED
        assert (failed.error, failed.message) == ("Rejected", "not this one")
        history = await no.get_history()
        assert any(isinstance(e, TaskScheduled) and e.name == "waitForHuman" for e in history)

        with pytest.raises(HttpError) as bad:
            await client.send_task_success("not-a-token", 1)
        assert bad.value.status == 400


def test_emit_events_reaches_subscriptions(
    live: LiveService, example: Any, poll: Callable[..., None]
):
    with SyncEventualClient(live.url) as client:
        client.emit_events(example.order_placed, example.Order(id="e1", amount=1))
        client.emit_events("OrderPlaced", {"id": "e2", "amount": 2}, {"id": "e3", "amount": 3})
    poll(lambda: len(example.RECEIVED) == 3, what="three events delivered")
    assert sorted(o.id for o in example.RECEIVED) == ["e1", "e2", "e3"]
    bodies = [json.loads(r._body) for r in live.received if r.path.endswith("/emitEvents")]
    assert bodies[0] == {"events": [{"name": "OrderPlaced", "event": {"id": "e1", "amount": 1}}]}


@pytest.mark.anyio
async def test_system_errors_are_http_errors(live: LiveService):
    async with EventualClient(live.url) as client:
        with pytest.raises(HttpError) as missing:
            await client.get_execution("processOrder/nope")
        assert (missing.value.status, missing.value.name) == (404, "ExecutionNotFound")
        with pytest.raises(HttpError) as unknown:
            await client.start_execution("noSuchWorkflow", 1)
        assert (unknown.value.status, unknown.value.name) == (404, "WorkflowNotFound")
        assert "processOrder" in unknown.value.message


def test_safe_calls_are_retried_with_backoff_and_unsafe_ones_are_not(live: LiveService):
    with SyncEventualClient(live.url, retry=Retry(attempts=3, backoff=0.001)) as client:
        live.fail_next = [503, 502]
        assert client.list_workflows() == ["humanApproval", "processOrder"]
        assert live.paths().count("/rpc/_system/listWorkflows") == 3

        # A start with a name returns the same execution when repeated: retried.
        live.fail_next = [503]
        handle = client.start_execution("humanApproval", "r1", execution_name="r1")
        assert handle.execution_id == "humanApproval/r1"
        assert live.paths().count("/rpc/_system/startExecution") == 2

        # Without a name a repeat would start a second execution: not retried.
        live.fail_next = [503]
        with pytest.raises(HttpError) as err:
            client.start_execution("humanApproval", "r2")
        assert (err.value.status, err.value.name) == (503, "Injected")
        assert live.paths().count("/rpc/_system/startExecution") == 3

        # Emitting twice would deliver twice: not retried.
        live.fail_next = [503]
        with pytest.raises(HttpError):
            client.emit_events("OrderPlaced", {"id": "x", "amount": 1})
        assert live.paths().count("/rpc/_system/emitEvents") == 1

        # Retries give up after the configured attempts.
        live.fail_next = [503, 503, 503, 503]
        with pytest.raises(HttpError) as gave_up:
            client.get_execution("humanApproval/r1")
        assert gave_up.value.status == 503
        assert live.paths().count("/rpc/_system/getExecution") == 3
        live.fail_next = []


def test_retry_backoff_grows_and_is_capped():
    retry = Retry(attempts=10, backoff=0.5, max_backoff=2.0)
    delays = [retry.delay(n) for n in range(1, 6)]
    assert 0.25 <= delays[0] <= 0.5
    assert 0.5 <= delays[1] <= 1.0
    assert all(1.0 <= d <= 2.0 for d in delays[2:])


@pytest.mark.anyio
async def test_async_transport_retries_reads_on_timeouts():
    attempts = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"workflows": [{"name": "w"}]})

    transport = httpx.MockTransport(handler)
    retry = Retry(attempts=2, backoff=0.001)
    async with EventualClient("http://svc.test", retry=retry, transport=transport) as client:
        assert await client.list_workflows() == ["w"]
    assert attempts == 2


@pytest.mark.anyio
async def test_in_process_transport_serves_both_clients_without_a_socket(example: Any):
    from datetime import UTC, datetime

    from eventual.client import InProcessTransport, ServiceClient
    from eventual.core.http.handler import HttpHandler
    from eventual.core.runtime import InMemoryRuntime, VirtualClock
    from eventual.core.service import load_service

    service = load_service(example, module_only=True, name="example")
    clock = VirtualClock(datetime(2024, 1, 1, tzinfo=UTC))
    async with InMemoryRuntime(service, clock=clock) as runtime:
        transport = InProcessTransport(HttpHandler(service, runtime))
        async with ServiceClient("http://example", transport=transport) as client:
            invoice = await client.call(example.send_invoice, example.Order(id="p", amount=3))
            assert invoice == example.Invoice(order_id="p", total=6)
        async with EventualClient("http://example", transport=transport) as system:
            handle = await system.start_execution(
                example.process_order, example.Order(id="p", amount=3)
            )
            await runtime.idle()
            await handle.send_signal("approve", "virtual")
            await runtime.idle()
            status = await handle.get_status()
            assert status.result == example.Invoice(order_id="p", total=3, note="virtual")
            with pytest.raises(HttpError) as err:
                await system.get_execution("processOrder/none")
            assert err.value.status == 404
        assert runtime.errors == []


def test_sync_task_updates_logs_and_history(
    live: LiveService, example: Any, poll: Callable[..., None]
):
    with SyncEventualClient(live.url) as client:
        yes = client.start_execution(example.human_approval, "s-yes", execution_name="s-yes")
        no = client.start_execution(example.human_approval, "s-no", execution_name="s-no")
        poll(lambda: {"s-yes", "s-no"} <= set(example.TOKENS), what="task tokens")
        assert client.send_task_heartbeat(example.TOKENS["s-yes"]) is False
        client.send_task_success(example.TOKENS["s-yes"], "fine")
        client.send_task_failure(example.TOKENS["s-no"], "Rejected", "nope")
        assert yes.wait(timeout=10, interval=0.01).result == "fine"
        assert no.wait(timeout=10, interval=0.01).error == "Rejected"
        assert isinstance(client.get_execution_history(yes)[-1], WorkflowSucceeded)
        assert yes.get_history() == client.get_execution_history(yes.execution_id)

        order = client.start_execution(example.process_order, example.Order(id="s", amount=1))
        order.send_signal(example.approve, "sync ok")
        assert order.wait(timeout=10, interval=0.01).result == example.Invoice(
            order_id="s", total=1, note="sync ok"
        )
        logs = client.get_execution_logs(workflow=example.process_order)
        assert [(entry.execution_id, entry.message) for entry in logs] == [
            (order.execution_id, "processing order s")
        ]


def test_iter_executions_walks_every_page(live: LiveService, example: Any):
    with SyncEventualClient(live.url) as client:
        started = {
            client.start_execution(example.human_approval, n, execution_name=n).execution_id
            for n in ("p1", "p2", "p3", "p4", "p5")
        }
        before = len(live.paths())
        assert {e.id for e in client.iter_executions(page_size=2)} == started
        assert live.paths()[before:] == ["/rpc/_system/listExecutions"] * 3  # 2 + 2 + 1
        bodies = [json.loads(r._body) for r in live.received[before:]]
        assert [b.get("nextToken") is None for b in bodies] == [True, False, False]
        assert all(b["maxResults"] == 2 for b in bodies)
        # Stopping early requests no more pages than were read.
        before = len(live.paths())
        first = next(iter(client.iter_executions(page_size=2, statuses=["IN_PROGRESS"])))
        assert first.id in started and len(live.paths()) == before + 1
        assert list(client.iter_executions(workflow=example.process_order)) == []


@pytest.mark.anyio
async def test_async_iter_executions_and_raw_system_calls(live: LiveService, example: Any):
    async with EventualClient(live.url) as client:
        for n in ("q1", "q2", "q3"):
            await client.start_execution(example.human_approval, n, execution_name=n)
        ids = [e.id async for e in client.iter_executions(page_size=2, sort_direction="ASC")]
        assert sorted(ids) == ["humanApproval/q1", "humanApproval/q2", "humanApproval/q3"]

        # call_system: the answer as the service sent it (the wire format, camelCase).
        raw = await client.call_system("getExecution", "humanApproval/q1", idempotent=True)
        assert raw["id"] == "humanApproval/q1" and raw["workflowName"] == "humanApproval"
        assert raw["status"] == "IN_PROGRESS" and isinstance(raw["startTime"], str)
        assert await client.call_system("listWorkflows") == {
            "workflows": [{"name": "humanApproval"}, {"name": "processOrder"}]
        }
        # The raw answer for an unknown id, as the original's: 200 with no body.
        assert await client.call_system("getExecution", "humanApproval/nope") is None
        with pytest.raises(HttpError) as missing:
            await client.get_execution("humanApproval/nope")
        assert (missing.value.status, missing.value.name) == (404, "ExecutionNotFound")
        with pytest.raises(ValueError):
            await client.call_system("../rpc/x")


def test_sync_raw_system_calls_and_their_retries(live: LiveService, example: Any):
    with SyncEventualClient(live.url, retry=Retry(attempts=2, backoff=0.001)) as client:
        client.start_execution(example.human_approval, "r1", execution_name="r1")
        history = client.call_system("getExecutionHistory", {"executionId": "humanApproval/r1"})
        assert history["events"][0]["type"] == 10  # WorkflowStarted
        # A read marked idempotent is retried on a 503; by default a raw call is not.
        live.fail_next = [503]
        assert client.call_system("listWorkflows", idempotent=True)["workflows"]
        live.fail_next = [503]
        with pytest.raises(HttpError) as unavailable:
            client.call_system("listWorkflows")
        assert unavailable.value.status == 503


@pytest.mark.anyio
async def test_wait_is_one_held_request_answered_as_the_execution_ends(
    live: LiveService, example: Any
):
    async with EventualClient(live.url) as client:
        handle = await client.start_execution(
            example.process_order, example.Order(id="w1", amount=3), execution_name="w1"
        )
        before = len(live.received)

        async def approve_soon() -> None:
            await anyio.sleep(0.3)
            await handle.send_signal(example.approve, "late")

        async with anyio.create_task_group() as tg:
            tg.start_soon(approve_soon)
            # A polling wait would ask every 30 s and miss the deadline; the held request
            # is answered when the execution ends.
            with anyio.fail_after(8):
                done = await handle.wait(timeout=20, interval=30)
        assert done.result == example.Invoice(order_id="w1", total=3, note="late")
        asked = [r.path for r in live.received[before:] if "Execution" in r.path]
        assert asked and set(asked) == {"/rpc/_system/waitExecution"}, asked
        assert len(asked) <= 2


def test_wait_polls_a_server_without_wait_execution():
    """The TypeScript original has no waitExecution (404): wait() polls getExecution."""
    asked: list[str] = []
    statuses = iter(["IN_PROGRESS", "IN_PROGRESS", "SUCCEEDED"])

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path.endswith("/waitExecution"):
            return httpx.Response(404, json={"message": "unknown system command"})
        status = next(statuses)
        body = {"id": "w/1", "status": status, "workflowName": "w"}
        body |= {"startTime": "2024-01-01T00:00:00.000Z", "input": None}
        return httpx.Response(200, json=body | ({"result": 1} if status == "SUCCEEDED" else {}))

    with SyncEventualClient("http://svc.test", transport=httpx.MockTransport(handler)) as client:
        done = SyncRemoteExecution(client, "w/1").wait(timeout=10, interval=0.01)
    assert (done.status, done.result) == (ExecutionStatus.SUCCEEDED, 1)
    assert asked == ["/rpc/_system/waitExecution"] + ["/rpc/_system/getExecution"] * 3
