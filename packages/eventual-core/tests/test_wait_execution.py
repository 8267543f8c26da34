"""``waitExecution``: one request held until the execution ends (woken by the runtime's own
commit, not by polling), or answered as the execution is after its timeout."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from eventual.core import Request, Response, signal, workflow
from eventual.core.http import system
from eventual.core.http.handler import HttpHandler
from eventual.core.runtime import InMemoryRuntime, runtime

pytestmark = pytest.mark.anyio

release = signal("release", str)


@workflow("held")
async def held(_: None) -> str:
    return f"released: {await release.expect_signal()}"


async def post(h: HttpHandler, name: str, body: Any) -> Response:
    raw = json.dumps(body).encode()
    return await h.handle(Request("POST", f"http://svc/rpc/_system/{name}", body=raw))


@pytest.fixture
async def http(rt: InMemoryRuntime) -> HttpHandler:
    return HttpHandler(rt.service, rt, service_url="http://svc")


async def start(h: HttpHandler, rt: InMemoryRuntime, name: str) -> str:
    r = await post(h, "startExecution", {"workflow": "held", "executionName": name})
    await rt.idle()
    return r.json_body()["executionId"]


async def test_the_request_is_answered_when_the_execution_ends(
    http: HttpHandler, rt: InMemoryRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Polling would only look again after a minute: an answer within the test's few seconds
    # comes from the wake-up of the runtime's own commit.
    monkeypatch.setattr(runtime, "WAIT_POLL", 60.0)
    eid = await start(http, rt, "h1")
    answer: dict[str, Any] = {}

    async def wait() -> None:
        r = await post(http, "waitExecution", {"executionId": eid, "timeout": 20})
        answer.update(r.json_body())

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.05)
        assert answer == {} and rt.waiting == 1
        with anyio.fail_after(10):
            await rt.send_signal(eid, "release", "now")
            await rt.idle()
    assert (answer["status"], answer["result"]) == ("SUCCEEDED", "released: now")
    assert rt.waiting == 0


async def test_after_its_timeout_the_answer_is_the_running_execution(
    http: HttpHandler, rt: InMemoryRuntime
) -> None:
    eid = await start(http, rt, "h2")
    r = await post(http, "waitExecution", {"executionId": eid, "timeout": 0.05})
    assert (r.status, r.json_body()["status"]) == (200, "IN_PROGRESS")
    # A bare id as the body, as getExecution takes it, and an unknown one: an empty 200.
    r = await post(http, "waitExecution", "held/nobody")
    assert (r.status, r.body) == (200, b"")


async def test_bad_timeouts_and_too_many_waiters(
    http: HttpHandler, rt: InMemoryRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    eid = await start(http, rt, "h3")
    for bad in ("soon", -1, None, True):
        r = await post(http, "waitExecution", {"executionId": eid, "timeout": bad})
        assert r.status == 400, bad
        assert r.json_body()["message"].startswith("timeout must be a number of seconds")
    monkeypatch.setattr(system, "MAX_WAITERS", 0)
    r = await post(http, "waitExecution", {"executionId": eid, "timeout": 1})
    assert (r.status, r.json_body()["error"]) == (503, "TooManyWaiters")


async def test_a_runtime_without_waiting_is_polled(rt: InMemoryRuntime) -> None:
    """A RuntimeClient without wait_execution (a proxy) is polled by the system command."""

    class Proxy:
        def __init__(self) -> None:
            self.reads = 0

        async def get_execution(self, execution_id: str) -> Any:
            self.reads += 1
            if self.reads == 2:
                await rt.send_signal(execution_id, "release", "polled")
                await rt.idle()
            return await rt.get_execution(execution_id)

    proxy = Proxy()
    commands = system.SystemCommands(rt.service, proxy)  # type: ignore[arg-type]
    await rt.start_execution("held", None, execution_name="h4")
    await rt.idle()
    with anyio.fail_after(10):
        answer = await commands.wait_execution({"executionId": "held/h4", "timeout": 5})
    assert answer["result"] == "released: polled" and proxy.reads == 2


async def test_wait_for_execution_in_process(
    http: HttpHandler, rt: InMemoryRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The in-process form every runtime shares: the execution once ended (woken by the
    # commit, not a poll), TimeoutError while it is still in progress.
    monkeypatch.setattr(runtime, "WAIT_POLL", 60.0)
    eid = await start(http, rt, "h5")
    with pytest.raises(TimeoutError, match="still in progress"):
        await rt.wait_for_execution(eid, timeout=0.05)
    assert rt.waiting == 0

    async def release_soon() -> None:
        await anyio.sleep(0.05)
        await rt.send_signal(eid, "release", "later")

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_soon)
        with anyio.fail_after(10):
            done = await rt.wait_for_execution(eid, timeout=20)
    assert (done.status.value, done.result) == ("SUCCEEDED", "released: later")
    assert (await rt.wait_for_execution(eid, timeout=0)).result == "released: later"
