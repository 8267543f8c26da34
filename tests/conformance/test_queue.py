"""ExecutionQueue: events reach their execution in the order they were enqueued, at least
once (a batch whose step did not commit is delivered again), and an event whose id is already
in the history is not applied twice (the id of a signal is the caller's ``signal_id``)."""

from __future__ import annotations

import pytest
from conformance_support import Conformant, runtimes

from eventual.core.history import SignalReceived, WorkflowStarted

pytestmark = pytest.mark.anyio


def _signal(payload: object, signal_id: str | None = None) -> SignalReceived:
    return SignalReceived(signal_id=signal_id or str(payload), signal="cfGo", payload=payload)


async def _received(rt: Conformant, execution_id: str) -> list[object]:
    history = await rt.runtime.get_history(execution_id)
    return [e.payload for e in history if isinstance(e, SignalReceived)]


async def test_events_of_one_execution_arrive_in_enqueue_order(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    a = await rt.runtime.start_execution("cfCollect", 8, execution_name="a")
    b = await rt.runtime.start_execution("cfCollect", 8, execution_name="b")
    await rt.settle()
    # One enqueue of several events, several enqueues, two executions interleaved.
    await rt.ports.queue.enqueue(a, [_signal(i) for i in range(3)])
    await rt.ports.queue.enqueue(b, [_signal(i) for i in range(10, 14)])
    for i in range(3, 8):
        await rt.ports.queue.enqueue(a, [_signal(i)])
        await rt.runtime.send_signal(b, "cfGo", 10 + i + 1, signal_id=f"b{i}")
    assert (await rt.finished(a)).result == list(range(8))
    assert (await rt.finished(b)).result == list(range(10, 18))


async def test_a_batch_whose_step_failed_is_delivered_again(
    conformant_runtime: Conformant, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 1, execution_name="redeliver")
    await rt.settle()
    failed = rt.fail_next_commits(monkeypatch)
    # Queued as a row (a timer's or a child's event is; a signal may take another way: the
    # SQLite runtime hands it to the step, and its sender queues it when the step fails).
    await rt.ports.queue.enqueue(eid, [_signal("only", "one")])
    done = await rt.finished(eid, within=600)
    assert failed == [eid]  # the step was attempted, failed, and its events came back
    assert done.result == ["only"]
    assert await _received(rt, eid) == ["only"]


@runtimes(
    aws=(
        "moto, not SQS: when a failed FIFO batch becomes visible again, moto's receive_message "
        "skips the group's first message while the next one is still marked pending, so the "
        "second signal is delivered (and applied) before the first; SQS FIFO redelivers a "
        "message group in order"
    ),
)
async def test_a_redelivered_batch_keeps_its_order(
    conformant_runtime: Conformant, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 2, execution_name="redeliver")
    await rt.settle()
    failed = rt.fail_next_commits(monkeypatch)
    await rt.runtime.send_signal(eid, "cfGo", "first", signal_id="one")
    await rt.runtime.send_signal(eid, "cfGo", "second", signal_id="two")
    done = await rt.finished(eid, within=600)
    assert failed == [eid]
    assert done.result == ["first", "second"]
    assert await _received(rt, eid) == ["first", "second"]


async def test_an_event_id_already_in_the_history_is_applied_once(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 3, execution_name="dedup")
    await rt.settle()
    # Twice in a row (one batch, or two), then again once it is in the history.
    await rt.runtime.send_signal(eid, "cfGo", "x", signal_id="same")
    await rt.runtime.send_signal(eid, "cfGo", "x", signal_id="same")
    await rt.settle()
    await rt.ports.queue.enqueue(eid, [_signal("x", "same")])
    await rt.runtime.send_signal(eid, "cfGo", "y", signal_id="other")
    await rt.settle()
    assert await _received(rt, eid) == ["x", "y"]
    assert (await rt.runtime.get_execution(eid)).status.value == "IN_PROGRESS"
    await rt.runtime.send_signal(eid, "cfGo", "z", signal_id="third")
    assert (await rt.finished(eid)).result == ["x", "y", "z"]


async def test_a_repeated_start_is_applied_once(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 1, execution_name="twice")
    await rt.settle()
    history = await rt.runtime.get_history(eid)
    started = history[0]
    assert isinstance(started, WorkflowStarted)
    await rt.ports.queue.enqueue(eid, [started])  # a WorkflowStarted delivered again
    await rt.settle()
    assert await rt.runtime.get_history(eid) == history
