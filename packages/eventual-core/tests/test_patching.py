"""Workflow versioning in the engine: ``patched`` and ``deprecate_patch`` against histories
recorded before, with and after a patch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventual.core import (
    DeterminismError,
    EventualError,
    condition,
    deprecate_patch,
    patched,
    task,
)
from eventual.core.definitions import _REGISTRY, WorkflowDefinition
from eventual.core.engine import DispatchTask, ScheduleTimer, WorkflowExecutor
from eventual.core.history import (
    HistoryEvent,
    PatchMarked,
    TaskScheduled,
    TaskSucceeded,
    TimerCompleted,
    WorkflowStarted,
    export_history,
    parse_history,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@task("pOld")
async def old_step(x: int) -> int:
    return x


@task("pNew")
async def new_step(x: int) -> int:
    return x * 10


def wf(body: Callable[[int], Coroutine[Any, Any, Any]]) -> WorkflowDefinition[int, Any]:
    """The workflow "patchWf" with ``body`` as its code: one version of a deploy."""
    definition = WorkflowDefinition("patchWf", body)
    _REGISTRY.remove(definition)
    return definition


async def _v1(x: int) -> int:
    a = await old_step(x)
    await asyncio.sleep(10)
    return a + await old_step(x + 1)


async def _v2(x: int) -> int:  # the second call changes, behind a patch
    a = await old_step(x)
    await asyncio.sleep(10)
    if patched("second-v2"):
        return a + await new_step(x + 1)
    return a + await old_step(x + 1)


async def _v3(x: int) -> int:  # the old branch is gone
    a = await old_step(x)
    await asyncio.sleep(10)
    deprecate_patch("second-v2")
    return a + await new_step(x + 1)


async def _v4(x: int) -> int:  # the deprecation is gone too
    a = await old_step(x)
    await asyncio.sleep(10)
    return a + await new_step(x + 1)


V1, V2, V3, V4 = wf(_v1), wf(_v2), wf(_v3), wf(_v4)


def started(x: int = 1) -> WorkflowStarted:
    return WorkflowStarted(timestamp=T0, workflow="patchWf", execution_id="patchWf/1", input=x)


def drive(ex: WorkflowExecutor, first: list[Any] | None = None) -> list[HistoryEvent]:
    """Run ``ex`` live to completion from ``first`` (default: the start), answering each task
    with its handler's result (``x``, or ``x * 10`` for "pNew") and firing each timer when
    it falls due; returns the events recorded."""
    queue: list[Any] = list(first or [started()])
    h: list[HistoryEvent] = []
    while queue and ex.completion is None:
        result = ex.step([queue.pop(0)])
        h += result.events
        for c in result.commands:
            if isinstance(c, DispatchTask):
                value = c.args[0] * (10 if c.name == "pNew" else 1)
                queue.append(TaskSucceeded(timestamp=T0, seq=c.seq, result=value))
            elif isinstance(c, ScheduleTimer):
                queue.append(c.event.model_copy(update={"timestamp": c.due}))
    assert ex.completion is not None, types(h)
    return h


def history_of(definition: WorkflowDefinition[Any, Any]) -> list[HistoryEvent]:
    return drive(WorkflowExecutor(definition))


def until_sleeping(definition: WorkflowDefinition[Any, Any]) -> list[HistoryEvent]:
    """The history of an execution that has done its first step and sleeps (the timer not yet
    fired): where a deploy finds a running execution."""
    ex = WorkflowExecutor(definition)
    h = ex.step([started()]).events
    h += ex.step([TaskSucceeded(timestamp=T0, seq=0, result=1)]).events
    ex.close()
    assert h[-1].type == "TimerScheduled"
    return h


def result_of(ex: WorkflowExecutor) -> Any:
    assert ex.completion is not None
    return ex.completion.model_dump()["result"]


def types(h: list[HistoryEvent]) -> list[str]:
    return [e.type for e in h]


# ---------------------------------------------------------------- the semantics


def test_a_new_execution_takes_the_new_branch_and_records_a_marker() -> None:
    h = history_of(V2)
    markers = [e for e in h if isinstance(e, PatchMarked)]
    assert [(m.seq, m.patch) for m in markers] == [(2, "second-v2")]
    assert [e.name for e in h if isinstance(e, TaskScheduled)] == ["pOld", "pNew"]
    assert h[-1].result == 1 + 20  # type: ignore[union-attr]
    # ... and replaying it takes the new branch again.
    assert result_of(WorkflowExecutor.replay(V2, h)) == 21


def test_a_history_recorded_before_the_patch_replays_on_the_old_branch() -> None:
    old = history_of(V1)
    ex = WorkflowExecutor.replay(V2, old)
    assert result_of(ex) == 1 + 2


def test_an_execution_in_flight_when_the_patch_deploys_takes_the_new_branch_from_there() -> None:
    # Started on v1, sleeping before the patched point: it reaches patched() live on v2.
    h = until_sleeping(V1)
    ex = WorkflowExecutor.replay(V2, h)
    done = drive(ex, [TimerCompleted(timestamp=T0 + timedelta(seconds=10), seq=1)])
    assert "PatchMarked" in types(done)
    assert done[-1].result == 21  # type: ignore[union-attr]


def test_an_execution_past_the_patched_point_stays_on_the_old_branch() -> None:
    async def v1_slow(x: int) -> int:
        a = await old_step(x)
        b = await old_step(x + 1)
        await asyncio.sleep(10)
        return a + b

    async def v2_slow(x: int) -> int:
        a = await old_step(x)
        b = await (new_step(x + 1) if patched("p") else old_step(x + 1))
        await asyncio.sleep(10)
        if patched("p"):  # memoized: the first answer holds
            return -1
        return a + b

    ex = WorkflowExecutor(wf(v1_slow))
    h = ex.step([started()]).events
    h += ex.step([TaskSucceeded(timestamp=T0, seq=0, result=1)]).events
    h += ex.step([TaskSucceeded(timestamp=T0, seq=1, result=2)]).events
    ex.close()
    replayed = WorkflowExecutor.replay(wf(v2_slow), h)
    done = replayed.step([TimerCompleted(timestamp=T0 + timedelta(seconds=10), seq=2)])
    assert "PatchMarked" not in types(done.events)
    assert result_of(replayed) == 3


def test_patched_twice_records_one_marker() -> None:
    async def twice(x: int) -> list[bool]:
        first = patched("p")
        await old_step(x)
        return [first, patched("p"), patched("p")]

    h = history_of(wf(twice))
    assert types(h).count("PatchMarked") == 1
    assert h[-1].result == [True, True, True]  # type: ignore[union-attr]


def test_two_patches_at_one_point_replay_in_either_history() -> None:
    answers: list[bool] = []

    async def one(x: int) -> int:
        answers.append(patched("b"))
        return await old_step(x)

    async def both(x: int) -> int:
        answers.extend([patched("a"), patched("b")])
        return await old_step(x)

    h = history_of(wf(one))
    answers.clear()
    # "a" was added later in front of "b": the history's marker at seq 0 is b's.
    assert result_of(WorkflowExecutor.replay(wf(both), h)) == 1
    assert answers == [False, True]


def test_deprecate_patch_consumes_the_marker_and_records_none() -> None:
    with_marker = history_of(V2)
    assert result_of(WorkflowExecutor.replay(V3, with_marker)) == 21
    fresh = history_of(V3)
    assert "PatchMarked" not in types(fresh)
    assert fresh[-1].result == 21  # type: ignore[union-attr]
    # Once no execution holds a marker, the call can go.
    assert result_of(WorkflowExecutor.replay(V4, fresh)) == 21


def test_outside_a_workflow_patched_is_true_and_deprecate_patch_does_nothing() -> None:
    assert patched("anything") is True
    assert deprecate_patch("anything") is None
    with pytest.raises(TypeError, match="non-empty string"):
        patched("")


def test_the_marker_survives_export_and_parse() -> None:
    h = history_of(V2)
    again = parse_history(export_history(h))
    assert again == h
    assert result_of(WorkflowExecutor.replay(V2, again)) == 21


# ---------------------------------------------------------------- misuse


def test_without_the_patch_the_old_history_fails_with_a_readable_error() -> None:
    with pytest.raises(DeterminismError) as info:
        WorkflowExecutor.replay(V4, history_of(V1))
    assert info.value.seq == 2
    assert info.value.recorded == "task 'pOld' with arguments [2]"
    assert info.value.actual == "task 'pNew' with arguments [2]"


def test_removing_the_patch_while_marked_histories_run_names_the_patch() -> None:
    marked = history_of(V2)
    with pytest.raises(DeterminismError) as info:
        WorkflowExecutor.replay(V4, marked)
    err = info.value
    assert err.seq == 2
    assert err.recorded == "patch marker 'second-v2'"
    assert err.actual == "task 'pNew' with arguments [2]"
    assert err.message == (
        "seq 2: the history records patch marker 'second-v2', but the code did task 'pNew' "
        "with arguments [2]: the patch 'second-v2' was removed (or moved) while executions "
        "that took it still run; keep patched('second-v2') or deprecate_patch('second-v2') "
        "at that point until none runs (`eventual executions --status IN_PROGRESS --build "
        "BUILD` lists them by build)"
    )


def test_a_history_ending_with_an_unconsumed_marker_is_an_error() -> None:
    async def marks_last(x: int) -> int:
        await old_step(x)
        patched("tail")
        await condition(lambda: False)  # waits, taking no seq: the marker is the last call
        return x

    async def without(x: int) -> int:
        await old_step(x)
        await condition(lambda: False)
        return x

    ex = WorkflowExecutor(wf(marks_last))
    h = ex.step([started()]).events
    h += ex.step([TaskSucceeded(timestamp=T0, seq=0, result=1)]).events
    ex.close()
    assert h[-1].type == "PatchMarked"
    with pytest.raises(DeterminismError) as info:
        WorkflowExecutor.replay(wf(without), h)
    assert info.value.seq == 1
    assert info.value.actual is None
    assert info.value.message.startswith(
        "seq 1: the history records patch marker 'tail', but the code made no call there: "
        "the patch 'tail' was removed (or moved)"
    )


def test_one_id_for_patched_and_deprecate_patch_is_an_error_even_if_caught() -> None:
    async def mixed(x: int) -> str:
        use_new = patched("p")
        await old_step(x)
        with contextlib.suppress(EventualError):  # the engine fails the step all the same
            deprecate_patch("p")
        return str(use_new)

    ex = WorkflowExecutor(wf(mixed))
    ex.step([started()])
    with pytest.raises(DeterminismError) as info:
        ex.step([TaskSucceeded(timestamp=T0, seq=1, result=1)])
    err = info.value
    assert err.seq == 2
    assert err.recorded == "patch marker 'p' at seq 0"
    assert err.actual == "deprecate_patch('p')"
    assert "patch 'p' is used by both patched() and deprecate_patch() in this execution" in (
        err.message
    )
