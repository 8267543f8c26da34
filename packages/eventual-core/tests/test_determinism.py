"""Replay and determinism: the engine driven directly, and through the runtime."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventual.core import (
    DeterminismError,
    EventualError,
    ExecutionStatus,
    Timeout,
    condition,
    event,
    signal,
    task,
    workflow,
)
from eventual.core.engine import (
    DispatchTask,
    ScheduleTimer,
    StartChild,
    WorkflowExecutor,
)
from eventual.core.history import (
    ChildWorkflowSucceeded,
    HistoryEvent,
    SignalReceived,
    TaskFailed,
    TaskSucceeded,
    TimerCompleted,
    WorkflowStarted,
    history_adapter,
)
from eventual.core.runtime import InMemoryRuntime

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def started(input: Any, execution_id: str = "wf/1") -> WorkflowStarted:
    return WorkflowStarted(timestamp=T0, workflow="wf", execution_id=execution_id, input=input)


def dump(history: list[HistoryEvent]) -> str:
    return json.dumps(history_adapter.dump_python(history, mode="json"))


# ---------------------------------------------------------------- changed code


@task("a")
async def task_a(x: int) -> int:
    return x


@task("b")
async def task_b(x: int) -> int:
    return x


@workflow("v1")
async def v1(x: int) -> int:
    first = await task_a(x)
    await asyncio.sleep(10)
    return first + await task_a(x + 1)


@workflow("v2")
async def v2(x: int) -> int:  # the second call changed from task "a" to task "b"
    first = await task_a(x)
    await asyncio.sleep(10)
    return first + await task_b(x + 1)


@workflow("v3")
async def v3(x: int) -> int:  # the first call's input changed
    first = await task_a(x * 100)
    await asyncio.sleep(10)
    return first + await task_a(x + 1)


@workflow("v4")
async def v4(x: int) -> int:  # a new call before the timer
    first = await task_a(x)
    await task_a(0)
    await asyncio.sleep(10)
    return first + await task_a(x + 1)


def v1_history() -> list[HistoryEvent]:
    ex = WorkflowExecutor(v1)
    h: list[HistoryEvent] = []
    h += ex.step([started(1)]).events
    h += ex.step([TaskSucceeded(timestamp=T0, seq=0, result=1)]).events
    h += ex.step([TimerCompleted(timestamp=T0 + timedelta(seconds=10), seq=1)]).events
    h += ex.step([TaskSucceeded(timestamp=T0, seq=2, result=2)]).events
    assert ex.completion is not None and ex.completion.result == 3
    return h


def test_replaying_unchanged_code_gives_the_same_outcome() -> None:
    history = v1_history()
    ex = WorkflowExecutor.replay(v1, history)
    assert ex.completion is not None and ex.completion.result == 3
    assert ex.history_length == len(history)


def test_changed_task_name_raises_determinism_error_naming_the_seq() -> None:
    with pytest.raises(DeterminismError) as info:
        WorkflowExecutor.replay(v2, v1_history())
    err = info.value
    assert err.seq == 2
    assert err.recorded == "task 'a' with arguments [2]"
    assert err.actual == "task 'b' with arguments [2]"
    assert "seq 2" in err.message


def test_changed_task_input_raises_determinism_error() -> None:
    with pytest.raises(DeterminismError) as info:
        WorkflowExecutor.replay(v3, v1_history())
    assert info.value.seq == 0
    assert info.value.recorded == "task 'a' with arguments [1]"
    assert info.value.actual == "task 'a' with arguments [100]"


def test_an_extra_call_is_a_determinism_error() -> None:
    with pytest.raises(DeterminismError) as info:
        WorkflowExecutor.replay(v4, v1_history())
    assert info.value.seq == 1
    assert "task 'a'" in str(info.value.actual)
    assert "timer" in str(info.value.recorded)


def test_a_result_for_a_seq_never_issued_is_a_determinism_error() -> None:
    history = [*v1_history()[:4], TaskSucceeded(timestamp=T0, seq=7, result=0)]
    with pytest.raises(DeterminismError, match="seq 7: the history has TaskSucceeded for a call"):
        WorkflowExecutor.replay(v1, history)


def test_live_step_drops_duplicate_and_unknown_events() -> None:
    ex = WorkflowExecutor(v1)
    ex.step([started(1)])
    first = ex.step([TaskSucceeded(timestamp=T0, seq=0, result=1)])
    assert [e.type for e in first.events] == ["TaskSucceeded", "TimerScheduled"]
    again = ex.step(
        [
            TaskSucceeded(timestamp=T0, seq=0, result=1),  # duplicate id
            TaskSucceeded(timestamp=T0, seq=42, result=0),  # never issued
        ]
    )
    assert again.events == []
    assert len(again.dropped) == 2


# ---------------------------------------------------------------- through the runtime


def workflow_replaced(name: str, body: Any) -> Any:
    from eventual.core.definitions import _REGISTRY, WorkflowDefinition

    wf = WorkflowDefinition(name, body.fn)
    _REGISTRY.remove(wf)
    return wf


@workflow("waiter")
async def waiter(x: int) -> int:
    first = await task_a(x)
    await asyncio.sleep(100)
    second = await task_a(x + 1)
    await asyncio.sleep(100)
    return first + second


@workflow("waiterChanged")
async def waiter_changed(x: int) -> int:
    first = await task_a(x)
    await asyncio.sleep(100)
    second = await task_b(x + 1)
    await asyncio.sleep(100)
    return first + second


@pytest.mark.anyio
async def test_changed_workflow_meets_old_history(rt: InMemoryRuntime) -> None:
    old = await waiter.start_execution(1, execution_name="old")
    await rt.advance(100)  # "old" has recorded task 'a' at seq 2 and sleeps at seq 3
    # A redeploy: the same workflow name now runs changed code, in a fresh process.
    rt.service.workflows["waiter"] = workflow_replaced("waiter", waiter_changed)
    rt.clear_cache()
    fresh = await waiter.start_execution(2, execution_name="fresh")
    await rt.advance(200)
    status = await old.get_status()
    assert status.status is ExecutionStatus.FAILED
    assert status.error == "DeterminismError"
    assert "seq 2" in (status.message or "")
    assert "task 'a' with arguments [2]" in (status.message or "")
    assert "task 'b' with arguments [2]" in (status.message or "")
    # The execution started under the new code runs to completion.
    assert (await fresh.get_status()).status is ExecutionStatus.SUCCEEDED


@pytest.mark.anyio
@pytest.mark.parametrize("cache_size", [1024, 0])
async def test_duplicate_deliveries_are_dropped(cache_size: int) -> None:
    import sys

    from eventual.core._context import use_runtime
    from eventual.core.runtime import VirtualClock
    from eventual.core.service import load_service

    service = load_service(sys.modules[__name__], module_only=True)
    async with InMemoryRuntime(service, clock=VirtualClock(T0), cache_size=cache_size) as rt:
        with use_runtime(rt):
            handle = await waiter.start_execution(3)
            await rt.idle()
            # Every event delivered a second time (at-least-once delivery).
            await rt.queue.enqueue(handle.execution_id, [TaskSucceeded(seq=0, result=3)])
            await rt.advance(100)
            await rt.queue.enqueue(
                handle.execution_id,
                [TimerCompleted(seq=1), TaskSucceeded(seq=2, result=4)],
            )
            await rt.advance(100)
            status = await handle.get_status()
            history = await rt.get_history(handle.execution_id)
    assert status.result == 7
    ids = [e.id for e in history]
    assert len(ids) == len(set(ids))
    assert [e.type for e in history].count("TaskSucceeded") == 2


PROGRAM: list[Any] = [
    ["par", [1, 2, 3]],
    ["sleep", 5],
    ["race", 4, 3],
    ["expect", 20],
    ["child", [1, 2]],
    ["emit", 1],
    ["cond", 1, 30],
    ["bg", 5, 2],
    ["task", 6],
]


@pytest.mark.anyio
async def test_warm_and_cold_orchestrators_record_the_same_history() -> None:
    """With the engine cache on (warm: only new events applied) and off (cold: a full replay
    on every step) the same execution records the same history."""
    import sys

    from eventual.core._context import use_runtime
    from eventual.core.runtime import VirtualClock
    from eventual.core.service import load_service

    service = load_service(sys.modules[__name__], module_only=True)
    histories = []
    results = []
    for cache_size in (1024, 0):
        async with InMemoryRuntime(service, clock=VirtualClock(T0), cache_size=cache_size) as rt:
            with use_runtime(rt):
                handle = await interp.start_execution(PROGRAM, execution_name="same")
                await rt.advance(10)
                await rt.send_signal(handle.execution_id, "poke", 1, signal_id="s1")
                await rt.advance(60)
                status = await handle.get_status()
                results.append(status.result)
                histories.append(dump(await rt.get_history(handle.execution_id)))
                if cache_size == 0:
                    assert rt.stats["warm_steps"] == 0
                else:
                    assert rt.stats["cold_replays"] == 2  # the parent and its child, once each
    assert results[0] == results[1]
    assert results[0] == [[2, 4, 6], "slept", 8, 1, 2, "emitted", True, 10, 12]
    assert histories[0] == histories[1]


# ---------------------------------------------------------------- generated workflows

sig = signal("poke", int)
ping = event("Ping")


@task("work")
async def work(x: int) -> int:
    return x * 2


@workflow("child")
async def child_wf(program: list[Any]) -> int:
    return len(program)


@workflow("interp")
async def interp(program: list[Any]) -> list[Any]:
    """Runs a generated program of workflow operations; records what it saw."""
    out: list[Any] = []
    pokes = 0

    def on_poke(v: int) -> None:
        nonlocal pokes
        pokes += 1

    handle = sig.on_signal(on_poke)
    for op in program:
        kind = op[0]
        try:
            if kind == "task":
                out.append(await work(op[1]))
            elif kind == "par":
                out.append(list(await asyncio.gather(*(work(x) for x in op[1]))))
            elif kind == "sleep":
                await asyncio.sleep(op[1])
                out.append("slept")
            elif kind == "race":
                out.append(await asyncio.wait_for(work(op[1]), op[2]))
            elif kind == "expect":
                out.append(await sig.expect_signal(timeout=op[1]))
            elif kind == "cond":
                out.append(await condition(lambda k=op[1]: pokes >= k, timeout=op[2]))
            elif kind == "child":
                out.append(await child_wf(op[1]))
            elif kind == "emit":
                await ping.emit(op[1])
                out.append("emitted")
            elif kind == "dispose":
                handle.dispose()
                out.append("disposed")
            elif kind == "bg":
                t = asyncio.create_task(work(op[1]))
                await asyncio.sleep(op[2])
                out.append(await t)
        except (TimeoutError, Timeout):
            out.append("timeout")
        except EventualError as e:
            out.append(f"error:{e.name}")
    return out


ops = st.one_of(
    st.tuples(st.just("task"), st.integers(0, 20)),
    st.tuples(st.just("par"), st.lists(st.integers(0, 20), min_size=1, max_size=3)),
    st.tuples(st.just("sleep"), st.integers(1, 50)),
    st.tuples(st.just("race"), st.integers(0, 20), st.integers(1, 50)),
    st.tuples(st.just("expect"), st.integers(1, 50)),
    st.tuples(st.just("cond"), st.integers(1, 3), st.integers(1, 50)),
    st.tuples(st.just("child"), st.lists(st.integers(0, 3), max_size=3)),
    st.tuples(st.just("emit"), st.integers(0, 5)),
    st.tuples(st.just("dispose")),
    st.tuples(st.just("bg"), st.integers(0, 20), st.integers(1, 50)),
).map(list)


class Simulation:
    """Plays the runtime: turns commands into deliverable input events, in an order and in
    batches that hypothesis chooses."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.now = T0
        self.deliverable: list[HistoryEvent] = []
        self.signal_count = 0

    def take(self, commands: list[Any]) -> None:
        for c in commands:
            if isinstance(c, DispatchTask):
                x = c.args[0]
                if x % 7 == 6:
                    ev: HistoryEvent = TaskFailed(
                        seq=c.seq, attempt=c.attempt, error="Boom", message=str(x)
                    )
                else:
                    ev = TaskSucceeded(seq=c.seq, attempt=c.attempt, result=x * 2)
                self.deliverable.append(ev)
            elif isinstance(c, ScheduleTimer):
                self.deliverable.append(c.event.model_copy(update={"timestamp": c.due}))
            elif isinstance(c, StartChild):
                self.deliverable.append(
                    ChildWorkflowSucceeded(seq=c.parent.seq, result=len(c.input))
                )

    def next_batch(self) -> list[HistoryEvent]:
        options = len(self.deliverable) + (1 if self.signal_count < 6 else 0)
        size = self.data.draw(st.integers(1, 3), label="batch")
        batch: list[HistoryEvent] = []
        for _ in range(size):
            options = len(self.deliverable) + (1 if self.signal_count < 6 else 0)
            if options == 0:
                break
            i = self.data.draw(st.integers(0, options - 1), label="pick")
            if i == len(self.deliverable):
                self.signal_count += 1
                ev: HistoryEvent = SignalReceived(
                    signal_id=f"s{self.signal_count}", signal="poke", payload=self.signal_count
                )
            else:
                ev = self.deliverable.pop(i)
            # Time moves forward: timers bring their due time, others come "now".
            if isinstance(ev, TimerCompleted) and ev.timestamp > self.now:
                self.now = ev.timestamp
            self.now += timedelta(milliseconds=1)
            batch.append(ev.model_copy(update={"timestamp": self.now}))
        return batch


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(program=st.lists(ops, min_size=1, max_size=6), data=st.data())
def test_replay_after_every_prefix_yields_the_same_history(
    program: list[Any], data: st.DataObject
) -> None:
    sim = Simulation(data)
    ex = WorkflowExecutor(interp)
    history: list[HistoryEvent] = []
    batches: list[list[HistoryEvent]] = []
    first = ex.step([started(program)])
    history += first.events
    sim.take(first.commands)
    for _ in range(200):
        if ex.completed:
            break
        batch = sim.next_batch()
        if not batch:
            break
        batches.append(batch)
        result = ex.step(batch)
        history += result.events
        sim.take(result.commands)
    ex.close()

    # A full cold replay gives the same outcome.
    replayed = WorkflowExecutor.replay(interp, history)
    assert replayed.completion == ex.completion
    replayed.close()

    # Cut the history before every input event; replay the prefix cold, then apply the rest
    # live, one event at a time: the history comes out the same, event for event.
    inputs = [i for i, e in enumerate(history) if e.is_input]
    expected = dump(history)
    for cut in [*inputs[1:], len(history)]:
        prefix = history[:cut]
        ex2 = WorkflowExecutor.replay(interp, prefix)
        rest: list[HistoryEvent] = []
        for e in history[cut:]:
            if e.is_input:
                rest += ex2.step([e]).events
        assert dump(prefix + rest) == expected, f"diverged after a cut at event {cut}"
        assert ex2.completion == ex.completion
        ex2.close()
