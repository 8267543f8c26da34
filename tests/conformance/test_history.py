"""ExecutionStore histories: ``commit_step`` appends a step's events and stores the record
together, only if the history still has the length the step was computed from (a stale writer
loses and changes nothing); events read back in order; large payloads round-trip."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conformance_support import START, Conformant

from eventual.core.history import (
    SignalReceived,
    TaskScheduled,
    TaskSucceeded,
    TimerCompleted,
    TimerScheduled,
    WorkflowStarted,
    WorkflowSucceeded,
)
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.runtime import ConflictError

pytestmark = pytest.mark.anyio


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


async def _created(rt: Conformant, execution_id: str) -> Execution:
    execution = Execution(
        id=execution_id,
        workflow=execution_id.split("/", 1)[0],
        status=ExecutionStatus.IN_PROGRESS,
        input=[1, 2],
        start_time=START,
    )
    await rt.ports.executions.create(execution)
    return execution


def _steps(execution_id: str) -> list[list]:
    return [
        [
            WorkflowStarted(
                timestamp=at(0), workflow="wfH", execution_id=execution_id, input=[1, 2]
            ),
            TaskScheduled(timestamp=at(0), seq=0, name="t", args=[1]),
            TimerScheduled(timestamp=at(0), seq=1, until=at(60)),
        ],
        [TaskSucceeded(timestamp=at(1), seq=0, result={"r": 1})],
        [
            SignalReceived(timestamp=at(2), signal_id="a", signal="go", payload="A"),
            SignalReceived(timestamp=at(2), signal_id="b", signal="go", payload="B"),
        ],
        [TimerCompleted(timestamp=at(60), seq=1)],
    ]


async def test_steps_append_in_order_and_the_length_counts_events(
    conformant_runtime: Conformant,
) -> None:
    store = conformant_runtime.ports.executions
    execution = await _created(conformant_runtime, "wfH/order")
    assert await store.read_history("wfH/order") == []
    expected: list = []
    for step in _steps("wfH/order"):
        await store.commit_step(
            "wfH/order", expected_length=len(expected), events=step, execution=execution
        )
        expected += step
        assert await store.read_history("wfH/order") == expected
        stored = await store.get("wfH/order")
        assert stored is not None and stored.history_length == len(expected)


async def test_a_stale_writer_loses_and_changes_nothing(conformant_runtime: Conformant) -> None:
    store = conformant_runtime.ports.executions
    execution = await _created(conformant_runtime, "wfH/race")
    steps = _steps("wfH/race")
    await store.commit_step("wfH/race", expected_length=0, events=steps[0], execution=execution)
    # Two writers computed their step from a history of 3 events; the first one commits.
    winner = [TaskSucceeded(timestamp=at(1), seq=0, result="winner")]
    await store.commit_step("wfH/race", expected_length=3, events=winner, execution=execution)
    done = execution.model_copy(update={"status": ExecutionStatus.SUCCEEDED, "result": "loser"})
    loser = [TaskSucceeded(timestamp=at(1), seq=0, result="loser"), WorkflowSucceeded(result=1)]
    with pytest.raises(ConflictError):
        await store.commit_step("wfH/race", expected_length=3, events=loser, execution=done)
    # Neither can a writer ahead of the history, nor one rewriting its start.
    with pytest.raises(ConflictError):
        await store.commit_step("wfH/race", expected_length=9, events=loser, execution=done)
    with pytest.raises(ConflictError):
        await store.commit_step("wfH/race", expected_length=0, events=loser, execution=done)
    assert await store.read_history("wfH/race") == steps[0] + winner
    stored = await store.get("wfH/race")
    assert stored is not None
    assert (stored.execution, stored.history_length) == (execution, 4)


async def test_the_record_is_stored_with_the_step(conformant_runtime: Conformant) -> None:
    store = conformant_runtime.ports.executions
    execution = await _created(conformant_runtime, "wfH/record")
    steps = _steps("wfH/record")
    await store.commit_step("wfH/record", expected_length=0, events=steps[0], execution=execution)
    done = execution.model_copy(
        update={"status": ExecutionStatus.SUCCEEDED, "result": {"v": 1}, "end_time": at(5)}
    )
    await store.commit_step(
        "wfH/record", expected_length=3, events=[WorkflowSucceeded(result={"v": 1})], execution=done
    )
    stored = await store.get("wfH/record")
    assert stored is not None and (stored.execution, stored.history_length) == (done, 4)


async def test_large_payloads_round_trip(conformant_runtime: Conformant) -> None:
    store = conformant_runtime.ports.executions
    execution = await _created(conformant_runtime, "wfH/large")
    big = {"blob": "y" * 700_000, "n": list(range(1000))}
    steps = _steps("wfH/large")
    large = [SignalReceived(timestamp=at(3), signal_id="big", signal="go", payload=big)]
    done = execution.model_copy(update={"status": ExecutionStatus.SUCCEEDED, "result": big})
    await store.commit_step("wfH/large", expected_length=0, events=steps[0], execution=execution)
    await store.commit_step("wfH/large", expected_length=3, events=large, execution=execution)
    await store.commit_step(
        "wfH/large", expected_length=4, events=[WorkflowSucceeded(result=big)], execution=done
    )
    history = await store.read_history("wfH/large")
    assert history == [*steps[0], *large, WorkflowSucceeded(result=big)]
    stored = await store.get("wfH/large")
    assert stored is not None and stored.execution.result == big


async def test_a_large_signal_reaches_the_history_through_the_queue(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 1, execution_name="large")
    await rt.settle()
    big = {"blob": "z" * 400_000}
    await rt.runtime.send_signal(eid, "cfGo", big, signal_id="big")
    done = await rt.finished(eid)
    assert done.result == [big]
    signals = [e for e in await rt.runtime.get_history(eid) if e.type == "SignalReceived"]
    assert [e.payload for e in signals] == [big]
