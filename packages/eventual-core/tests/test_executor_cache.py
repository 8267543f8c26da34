"""The warm executors a runtime keeps: which go first when the cache is full, and that a
discarded executor is freed by reference counting, not left for the cyclic collector."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from eventual.core import signal, task, workflow
from eventual.core.engine import WorkflowExecutor
from eventual.core.engine.cache import ExecutorCache
from eventual.core.engine.loop import WorkflowLoop
from eventual.core.history import TaskSucceeded, WorkflowStarted

T0 = datetime(2024, 1, 1, tzinfo=UTC)
go = signal("go", int)


@task("double")
async def double(x: int) -> int:
    return 2 * x


@workflow("on_task")
async def on_task(x: int) -> int:
    return await double(x)


@workflow("on_signal")
async def on_signal(x: int) -> int:
    return x + await go.expect_signal()


def begun(definition: Any, execution_id: str) -> WorkflowExecutor:
    ex = WorkflowExecutor(definition)
    ex.step(
        [
            WorkflowStarted(
                timestamp=T0, workflow=definition.name, execution_id=execution_id, input=1
            )
        ]
    )
    return ex


def test_executors_parked_on_signals_are_evicted_before_those_awaiting_a_task() -> None:
    cache = ExecutorCache(3)
    busy = [begun(on_task, f"t{i}") for i in range(2)]
    assert all(ex.awaiting_task for ex in busy)
    for i, ex in enumerate(busy):
        cache.keep(f"t{i}", ex)
    # A burst of parked executions, newer than the busy ones: plain LRU would push the busy
    # ones out, and their task results would each need a replay.
    parked = [begun(on_signal, f"s{i}") for i in range(5)]
    assert not any(ex.awaiting_task for ex in parked)
    for i, ex in enumerate(parked):
        cache.keep(f"s{i}", ex)
    assert len(cache) == 3
    assert cache.take("t0") is busy[0] and cache.take("t1") is busy[1]
    assert cache.take("s4") is parked[4]  # the newest parked one stayed
    assert [cache.take(f"s{i}") for i in range(4)] == [None] * 4
    assert all(ex._closed for ex in parked[:4])  # evicted executors are closed


def test_when_every_executor_awaits_a_task_the_least_recent_goes() -> None:
    cache = ExecutorCache(2)
    executors = [begun(on_task, f"t{i}") for i in range(3)]
    for i, ex in enumerate(executors):
        cache.keep(f"t{i}", ex)
    assert cache.take("t0") is None and executors[0]._closed
    # A step that took an executor keeps it again in the tier its state now belongs to: t1's
    # task answered, so it goes before t2 (least recent, but still awaiting its task).
    ex = cache.take("t1")
    assert ex is executors[1]
    ex.step([TaskSucceeded(timestamp=T0, seq=0, result=2)])
    assert not ex.awaiting_task
    cache.keep("t1", ex)
    cache.keep("t3", begun(on_task, "t3"))
    assert cache.take("t1") is None and ex._closed
    assert cache.take("t2") is executors[2]


@pytest.fixture
def saved_garbage() -> Iterator[list[Any]]:
    # Until a pass finds nothing: the finalizers of what earlier tests left (an unclosed
    # executor's pending task) can leave objects that only the next pass frees, and the test
    # would count them as its own.
    for _ in range(5):
        if not gc.collect():
            break
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _engine_garbage(garbage: list[Any]) -> list[str]:
    return [
        type(o).__qualname__
        for o in garbage
        if isinstance(o, WorkflowExecutor | WorkflowLoop)
        or (isinstance(o, asyncio.Future) and isinstance(o.get_loop(), WorkflowLoop))
    ]


def test_closed_executors_leave_no_reference_cycles(saved_garbage: list[Any]) -> None:
    """A finished execution and one discarded while parked on a signal are both freed the
    moment they are closed; with thousands kept, the collector's passes over such cycles
    cost more than the steps themselves."""
    gc.disable()
    try:
        for i in range(20):
            done = begun(on_task, f"t{i}")
            done.step([TaskSucceeded(timestamp=T0, seq=0, result=2)])
            assert done.completion is not None
            done.close()
            parked = begun(on_signal, f"s{i}")
            parked.close()  # evicted while its main task still awaits the signal
        del done, parked
        gc.collect()
    finally:
        gc.enable()
    assert _engine_garbage(saved_garbage) == []


def test_a_closed_loop_refuses_new_work() -> None:
    ex = begun(on_signal, "s")
    loop = ex.loop
    ex.close()
    assert loop.is_closed() and getattr(loop, "eventual_ops", None) is None
    with pytest.raises(RuntimeError, match="discarded"):
        loop.call_later(10, lambda: None)  # a durable timer: nothing records it any more


@pytest.fixture
def collector_settings() -> Iterator[None]:
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        (gc.enable if enabled else gc.disable)()


def test_settling_the_collector_freezes_start_up_and_raises_the_young_threshold(
    collector_settings: None,
) -> None:
    from eventual.core.runtime.collector import YOUNG_THRESHOLD, settle_after_startup

    gc.enable()
    gc.set_threshold(700, 10, 10)
    settle_after_startup()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 20, 10)
    assert gc.get_freeze_count() > 0
    gc.set_threshold(YOUNG_THRESHOLD * 2, 10, 10)
    settle_after_startup()  # a process that set a higher threshold keeps it
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    gc.unfreeze()
    gc.disable()
    settle_after_startup()  # a process that turned the collector off is left alone
    assert not gc.isenabled() and gc.get_freeze_count() == 0
