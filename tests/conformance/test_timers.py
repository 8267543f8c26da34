"""TimerScheduler: a timer delivers its event into its execution when due, not before, in
due order; a timer the workflow cancelled has no effect on it (a runtime may withdraw the
timer, or drop its event on arrival)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conformance_support import Conformant

from eventual.core.history import SignalReceived
from eventual.core.runtime import TimerRequest

pytestmark = pytest.mark.anyio

# Short timers, and (virtual clocks only) timers beyond SQS's 15-minute delay.
SPANS = {"short": [3.0, 1.0, 2.0], "long": [1200.0, 960.0, 1080.0]}


def _durations(rt: Conformant, span: str) -> list[float]:
    if span == "long" and not rt.virtual:
        pytest.skip("long timers need a virtual clock")
    return [d * (rt.unit if span == "short" else 1.0) for d in SPANS[span]]


async def _signals(rt: Conformant, execution_id: str) -> list[object]:
    history = await rt.runtime.get_history(execution_id)
    return [e.payload for e in history if isinstance(e, SignalReceived)]


@pytest.mark.parametrize("span", list(SPANS))
async def test_timers_deliver_their_events_when_due_in_due_order(
    conformant_runtime: Conformant, span: str
) -> None:
    rt = conformant_runtime
    durations = _durations(rt, span)
    eid = await rt.runtime.start_execution("cfCollect", 3, execution_name="timers")
    await rt.settle()
    now = rt.now()
    for i, seconds in enumerate(durations):
        event = SignalReceived(signal_id=f"t{i}", signal="cfGo", payload=i)
        await rt.ports.timers.schedule(
            TimerRequest(f"{eid}|t{i}", eid, now + timedelta(seconds=seconds), event=event)
        )
    await rt.advance(min(durations) * 0.5)
    assert await _signals(rt, eid) == []  # not before it is due
    done = await rt.finished(eid, within=max(durations) * 2)
    assert done.result == [1, 2, 0]
    history = await rt.runtime.get_history(eid)
    for e in history:
        if isinstance(e, SignalReceived):
            due = now + timedelta(seconds=durations[int(e.payload)])
            assert e.timestamp >= due - timedelta(milliseconds=1), (e, due)


@pytest.mark.parametrize("span", list(SPANS))
async def test_workflow_timers_complete_in_due_order(
    conformant_runtime: Conformant, span: str
) -> None:
    rt = conformant_runtime
    durations = _durations(rt, span)
    eid = await rt.runtime.start_execution("cfSleeps", durations, execution_name="sleeps")
    done = await rt.finished(eid, within=max(durations) * 2)
    assert done.result == [1, 2, 0]


@pytest.mark.parametrize("span", list(SPANS))
async def test_a_cancelled_timer_has_no_effect(conformant_runtime: Conformant, span: str) -> None:
    rt = conformant_runtime
    limit = _durations(rt, span)[1]
    eid = await rt.runtime.start_execution("cfCancelled", limit, execution_name="cancel")
    await rt.settle()
    await rt.runtime.send_signal(eid, "cfGo", "in time", signal_id="a")  # cancels the timeout
    await rt.settle()
    await rt.advance(limit * 2)  # past the cancelled timer's due time
    await rt.settle()
    history = await rt.runtime.get_history(eid)
    assert "TimerCompleted" not in [e.type for e in history]
    assert (await rt.runtime.get_execution(eid)).status.value == "IN_PROGRESS"
    await rt.runtime.send_signal(eid, "cfGo", "later", signal_id="b")
    done = await rt.finished(eid)
    assert done.result == ["in time", "later"]
    assert "TimerCompleted" not in [e.type for e in await rt.runtime.get_history(eid)]
