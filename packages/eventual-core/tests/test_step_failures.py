"""A step that raises an unexpected error (a defect, not the storage being unavailable) on the
local runtimes: its events are kept and it is tried again; after ``step_attempts`` tries in a
row its execution fails with ``StepFailed``, saying why, and the other executions go on."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from eventual.core import ExecutionStatus, signal, workflow
from eventual.core.history import SignalReceived
from eventual.core.runtime import Runtime
from eventual.core.runtime.memory import InMemoryRuntime, VirtualClock
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service

pytestmark = pytest.mark.anyio

go = signal("sfGo", str)


@workflow("sfWait")
async def wait_for_go(_: None) -> str:
    return await go.expect_signal(timeout=3600)


@pytest.fixture(params=["memory", "sqlite"])
async def runtime(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Runtime]:
    service = load_service(sys.modules[__name__], module_only=True, name="step-failures")
    rt: Runtime
    if request.param == "memory":
        rt = InMemoryRuntime(service, clock=VirtualClock(datetime(2026, 1, 1, tzinfo=UTC)))
    else:
        rt = SqliteRuntime(
            service, db_path=tmp_path / "dev.db", retry_delay=0.001, max_retry_delay=0.004
        )
    rt.step_attempts = 4
    async with rt:  # type: ignore[attr-defined]
        yield rt


def fail_signal_steps(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, execution_id: str, times: int | None
) -> list[str]:
    """Make the steps of ``execution_id`` that apply a signal raise (``times`` times, or every
    time): a defect in the store, not an unavailable one. Returns a line per failed try."""
    cls = type(rt.ports.executions)
    original = cls.commit_step
    failed: list[str] = []

    async def failing(store: Any, eid: str, **kwargs: Any) -> None:
        applies_signal = any(isinstance(e, SignalReceived) for e in kwargs["events"])
        if eid == execution_id and applies_signal and (times is None or len(failed) < times):
            failed.append(eid)
            raise RuntimeError("the store's encoder is broken")
        await original(store, eid, **kwargs)

    monkeypatch.setattr(cls, "commit_step", failing)
    return failed


async def settle(rt: Runtime) -> None:
    await rt.idle()  # type: ignore[attr-defined]


async def parked(rt: Runtime, name: str) -> str:
    execution_id = await rt.start_execution("sfWait", None, execution_name=name)
    deadline = time.monotonic() + 10
    while len(await rt.get_history(execution_id)) < 2:  # started, then the signal's timer
        assert time.monotonic() < deadline, "the execution never parked"
        await settle(rt)
        await asyncio.sleep(0.005)
    return execution_id


async def ended(rt: Runtime, execution_id: str, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        await settle(rt)
        execution = await rt.get_execution(execution_id)
        if execution.status is not ExecutionStatus.IN_PROGRESS:
            return execution
        assert time.monotonic() < deadline, f"{execution_id} never ended"
        await asyncio.sleep(0.005)


async def test_a_step_that_fails_twice_then_works_applies_its_signal_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = await parked(runtime, "flaky")
    failed = fail_signal_steps(runtime, monkeypatch, execution_id, times=2)
    await runtime.send_signal(execution_id, "sfGo", "hello", signal_id="s1")
    done = await ended(runtime, execution_id)
    assert failed == [execution_id, execution_id]
    assert done.status is ExecutionStatus.SUCCEEDED and done.result == "hello"
    history = await runtime.get_history(execution_id)
    assert [e.payload for e in history if isinstance(e, SignalReceived)] == ["hello"]
    # Each failed try is reported (a TestEnvironment raises them), none after the success.
    assert [str(e) for e in runtime.errors] == ["the store's encoder is broken"] * 2  # type: ignore[attr-defined]


async def test_a_step_that_always_fails_fails_its_execution_after_the_last_try(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    doomed = await parked(runtime, "doomed")
    other = await parked(runtime, "other")
    failed = fail_signal_steps(runtime, monkeypatch, doomed, times=None)
    await runtime.send_signal(doomed, "sfGo", "never", signal_id="s1")
    await runtime.send_signal(other, "sfGo", "fine", signal_id="s2")
    done = await ended(runtime, doomed)
    assert len(failed) == 4  # step_attempts tries, then no more
    assert done.status is ExecutionStatus.FAILED
    assert done.error == "StepFailed"
    assert done.message.startswith("its step failed 4 times in a row and was given up")
    assert "RuntimeError: the store's encoder is broken" in done.message
    assert "1 event(s) were not applied (SignalReceived)" in done.message
    # The other execution was not held up.
    assert (await ended(runtime, other)).result == "fine"
    await settle(runtime)
    assert len(failed) == 4
    assert "the step of sfWait/doomed failed (try 1 of 4)" in caplog.text
    # Its history ends with the failure; a later signal is dropped, as for any finished one.
    history = await runtime.get_history(doomed)
    assert type(history[-1]).__name__ == "WorkflowFailed"
    await runtime.send_signal(doomed, "sfGo", "late", signal_id="s3")
    await settle(runtime)
    assert await runtime.get_history(doomed) == history
