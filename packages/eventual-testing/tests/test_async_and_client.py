"""Async tasks by token, the client, commands, HTTP and reset()."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from eventual.core import (
    CommandContext,
    EventualError,
    ExecutionStatus,
    HttpError,
    InvalidTaskToken,
    Request,
    Response,
    api,
    async_result,
    command,
    event,
    send_task_success,
    signal,
    subscription,
    task,
    workflow,
)
from eventual.core.history import TaskSucceeded
from eventual.testing import TestEnvironment, TestExecutionHandle

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)

tokens: list[str] = []


@task("approveByHuman", timeout=timedelta(hours=1))
async def approve_by_human(request_id: str) -> str:
    return async_result(tokens.append)


@workflow("humanApproval")
async def human_approval(request_id: str) -> str:
    try:
        answer = await approve_by_human(request_id)
    except EventualError as e:
        return f"{e.name}: {e.message}"
    return f"answer {answer}"


@workflow("impatient")
async def impatient(seconds: int) -> str:
    try:
        return await asyncio.wait_for(approve_by_human("r"), timeout=seconds)
    except TimeoutError:
        await asyncio.sleep(100)
        return "stopped waiting"


token_sink = event("TokenIssued")


@task("issueToken")
async def issue_token(n: int) -> int:
    async def register(token: str) -> None:
        await token_sink.emit({"token": token, "n": n})

    return async_result(register)


@subscription("completeTokens", events=[token_sink])
async def complete_tokens(payload: dict[str, Any]) -> None:
    await send_task_success(payload["token"], payload["n"] * 100)


@workflow("tokenRoundTrip")
async def token_round_trip(n: int) -> int:
    return await issue_token(n)


async def test_an_async_task_completed_by_token(env: TestEnvironment) -> None:
    tokens.clear()
    handle = await env.start_execution(human_approval, "r1")
    (token,) = tokens
    await env.tick(600)
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    await env.send_task_success(token, "yes")
    status = await handle.get_status()
    assert status.result == "answer yes"
    assert status.end_time == START + timedelta(minutes=10)


async def test_an_async_task_failed_by_token(env: TestEnvironment) -> None:
    tokens.clear()
    handle = await env.start_execution(human_approval, "r2")
    await env.send_task_failure(tokens[0], "Rejected", "not today")
    assert (await handle.get_status()).result == "Rejected: not today"
    tokens.clear()
    handle = await env.start_execution(human_approval, "r3")
    await env.send_task_failure(tokens[0], PermissionError("no rights"))
    assert (await handle.get_status()).result == "PermissionError: no rights"


async def test_an_async_task_times_out_and_a_late_completion_is_ignored(
    env: TestEnvironment,
) -> None:
    tokens.clear()
    handle = await env.start_execution(human_approval, "r4")
    await env.tick(timedelta(hours=1))
    status = await handle.get_status()
    assert status.result == "Timeout: task 'approveByHuman' did not complete within 3600s"
    await env.send_task_success(tokens[0], "too late")
    assert (await handle.get_status()).result == status.result
    history = await env.client.get_execution_history(handle)
    assert not any(isinstance(e, TaskSucceeded) for e in history)


async def test_a_completion_after_the_workflow_stopped_waiting(env: TestEnvironment) -> None:
    tokens.clear()
    handle = await env.start_execution(impatient, 30)
    await env.tick(30)
    # The workflow gave up on the task and is sleeping; the answer arrives now.
    await env.send_task_success(tokens[0], "late answer")
    await env.tick(100)
    status = await handle.get_status()
    assert status.result == "stopped waiting"


async def test_a_bad_token_is_refused(env: TestEnvironment) -> None:
    with pytest.raises(InvalidTaskToken, match="not a task token"):
        await env.send_task_success("garbage", 1)


async def test_async_result_mock_hands_out_tokens(env: TestEnvironment) -> None:
    handed: list[str] = []
    mock = env.mock_task(approve_by_human).async_result(handed.append)
    handle = await env.start_execution(human_approval, "r5")
    assert handed == mock.tokens and len(handed) == 1
    await env.client.send_task_success(handed[0], "via client")
    assert (await handle.get_status()).result == "answer via client"


async def test_tokens_completed_by_a_subscription(env: TestEnvironment) -> None:
    handle = await env.start_execution(token_round_trip, 4)
    assert (await handle.get_status()).result == 400


# ---------------------------------------------------------------- commands and the client


class Greeting(BaseModel):
    name: str
    times: int = 1


nudge = signal("nudge", str)


@workflow("greeter")
async def greeter(g: Greeting) -> str:
    extra = await nudge.expect_signal()
    return " ".join([f"hello {g.name}"] * g.times) + f" ({extra})"


@command
async def start_greeting(g: Greeting) -> str:
    handle = await greeter.start_execution(g, execution_name=g.name)
    return handle.execution_id


@command(path="/whoami", method="GET")
async def whoami(_: Any, context: CommandContext) -> str:
    return context.get("user", "anonymous")


async def auth(request: Request, context: CommandContext, next: Any) -> Response:
    if request.headers.get("authorization") != "Bearer ok":
        raise HttpError(401, "log in first", name="Unauthorized")
    return await next({**context, "user": "alice"})


@api.use(auth).get("/secret")
async def secret(request: Request, context: CommandContext) -> Response:
    return Response(f"secret for {context['user']}")


async def test_invoke_a_command_that_starts_a_workflow(env: TestEnvironment) -> None:
    execution_id = await env.invoke(start_greeting, Greeting(name="ann", times=2))
    assert execution_id == "greeter/ann"
    # Dict input is validated like HTTP input.
    assert await env.invoke("start_greeting", {"name": "bo"}) == "greeter/bo"
    with pytest.raises(ValidationError):
        await env.invoke(start_greeting, {"times": "x"})
    await env.send_signal("greeter/ann", nudge, "hi")
    assert (await env.get_execution("greeter/ann")).result == "hello ann hello ann (hi)"
    with pytest.raises(EventualError, match="no command 'nope'"):
        await env.invoke("nope", None)


async def test_http_requests_go_through_routes_and_middleware(env: TestEnvironment) -> None:
    response = await env.http("POST", "/rpc/start_greeting", json={"name": "cy"})
    assert response.status == 200
    assert response.json_body() == "greeter/cy"
    assert (await env.http("GET", "/whoami")).json_body() == "anonymous"
    assert (await env.http("GET", "/secret")).status == 401
    ok = await env.http("GET", "/secret", headers={"authorization": "Bearer ok"})
    assert ok.text() == "secret for alice"
    bad = await env.http("POST", "/rpc/start_greeting", json={"times": 1})
    assert bad.status == 400
    listed = await env.http("POST", "/rpc/_system/listExecutions", json={})
    assert [e["id"] for e in listed.json_body()["executions"]] == ["greeter/cy"]


async def test_the_client(env: TestEnvironment) -> None:
    client = env.client
    assert "greeter" in await client.list_workflows()
    handle = await client.start_execution(greeter, Greeting(name="di"), execution_name="di")
    assert isinstance(handle, TestExecutionHandle)
    other = await client.start_execution("greeter", {"name": "ed"}, execution_name="ed")
    # Same name and same input: the running execution comes back.
    again = await client.start_execution(greeter, Greeting(name="di"), execution_name="di")
    assert again.execution_id == handle.execution_id
    await env.tick(5)
    await client.send_signal(handle.execution_id, "nudge", "bye")
    execution = await client.get_execution(handle.execution_id)
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.result == "hello di (bye)"
    assert execution.start_time == START and execution.end_time == START + timedelta(seconds=5)
    running = await client.list_executions(statuses=["IN_PROGRESS"])
    assert [e.id for e in running] == [other.execution_id]
    page = await client.list_executions(workflow="greeter", limit=1)
    assert len(page) == 1 and page.next_token is not None
    rest = await client.list_executions(workflow=greeter, limit=1, next_token=page.next_token)
    assert {page.executions[0].id, rest.executions[0].id} == {"greeter/di", "greeter/ed"}
    history = await client.get_execution_history(handle.execution_id)
    assert [e.type for e in history] == [
        "WorkflowStarted",
        "SignalReceived",
        "WorkflowSucceeded",
    ]
    with pytest.raises(EventualError, match="no execution"):
        await client.get_execution("greeter/nobody")


async def test_core_api_calls_from_the_test_body_use_the_environment(env: TestEnvironment) -> None:
    """Inside the test, `wf.start_execution` and `sig.send_signal` find the environment."""
    handle = await greeter.start_execution(Greeting(name="fay"))
    await nudge.send_signal(handle, "core")
    status = await handle.get_status()
    assert status.result == "hello fay (core)"
    assert await start_greeting(Greeting(name="gil")) == "greeter/gil"


async def test_reset_forgets_everything_and_rewinds_the_clock(env: TestEnvironment) -> None:
    seen: list[Any] = []
    env.subscribe_events([token_sink], seen.append)
    env.mock_task(approve_by_human).succeed("mocked")
    env.disable_service_subscriptions()
    handle = await env.start_execution(human_approval, "x")
    assert (await handle.get_status()).result == "answer mocked"
    await env.tick(3600)
    await env.reset()
    assert env.time == START
    assert len(await env.client.list_executions()) == 0
    with pytest.raises(EventualError, match="no execution"):
        await handle.get_status()
    tokens.clear()
    handle = await env.start_execution(human_approval, "y")
    assert (await handle.get_status()).status is ExecutionStatus.IN_PROGRESS
    assert len(tokens) == 1  # the real task ran: the mock is gone
    # Service subscriptions are on again and the test subscription is gone.
    round_trip = await env.start_execution(token_round_trip, 1)
    assert (await round_trip.get_status()).result == 100
    assert seen == []


async def test_open_and_close_by_hand() -> None:
    import sys

    env = TestEnvironment(sys.modules[__name__], module_only=True, name="by-hand")
    assert repr(env) == "<TestEnvironment 'by-hand' closed>"
    await env.open()
    try:
        with pytest.raises(RuntimeError, match="already open"):
            await env.open()
        env.mock_task(approve_by_human).succeed("ok")
        handle = await env.start_execution(human_approval, "z")
        assert (await handle.get_status()).result == "answer ok"
    finally:
        await env.close()
    with pytest.raises(RuntimeError, match="not open"):
        await handle.get_status()


def test_an_entry_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="module name, a module or a Service"):
        TestEnvironment(42)  # type: ignore[arg-type]
