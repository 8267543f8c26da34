"""The engine's commands and the runtime's requests are Records, not dataclasses (so that an AWS
handler's cold start does not compile their methods); they must behave as the dataclasses did."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime

import pytest

from eventual.core.definitions import TaskContext
from eventual.core.engine.commands import CancelTimer, DispatchTask, ScheduleTimer
from eventual.core.history import TimerCompleted
from eventual.core.runtime.ports import TaskRequest, TimerRequest

DUE = datetime(2030, 1, 1, tzinfo=UTC)


def test_frozen_records_compare_hash_and_refuse_changes() -> None:
    timer = ScheduleTimer("wf/1", DUE, TimerCompleted(seq=3))
    same = ScheduleTimer(execution_id="wf/1", due=DUE, event=TimerCompleted(seq=3))
    assert timer == same
    assert hash(timer) == hash(same)
    assert timer != ScheduleTimer("wf/2", DUE, TimerCompleted(seq=3))
    assert CancelTimer("wf/1", "x") != ("wf/1", "x")
    assert {CancelTimer("wf/1", "x"), CancelTimer("wf/1", "x")} == {CancelTimer("wf/1", "x")}
    assert timer.timer_id == "wf/1|3:TimerCompleted"
    with pytest.raises(FrozenInstanceError):
        timer.due = DUE  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del timer.due  # type: ignore[misc]
    with pytest.raises(AttributeError):
        timer.other = 1  # type: ignore[attr-defined]


def test_records_repr_copy_pickle_and_match_like_dataclasses() -> None:
    ctx = TaskContext("wf/1", "wf", "charge", 2, 1)
    assert repr(ctx) == (
        "TaskContext(execution_id='wf/1', workflow_name='wf', task_name='charge', seq=2, attempt=1)"
    )
    for value in (ctx, CancelTimer("wf/1", "x"), TimerRequest("t", "wf/1", DUE)):
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.copy(value) == value
        assert copy.deepcopy(value) == value
    match TimerRequest("t", "wf/1", DUE, heartbeat=(2, 1, 5.0)):
        case TimerRequest(timer_id, execution_id, due, event, heartbeat):
            assert (timer_id, execution_id, due, event, heartbeat) == (
                "t",
                "wf/1",
                DUE,
                None,
                (2, 1, 5.0),
            )
        case _:
            pytest.fail("TimerRequest did not match its positional pattern")


def test_per_step_records_are_mutable_and_unhashable() -> None:
    request = TaskRequest("wf/1", "wf", 1, 1, "charge", [1, 2])
    assert request.timeout is None and request.heartbeat_timeout is None
    assert request == TaskRequest("wf/1", "wf", 1, 1, "charge", [1, 2], None, None)
    assert request.token == TaskRequest("wf/1", "other", 1, 1, "x", []).token
    request.attempt = 2
    assert request != TaskRequest("wf/1", "wf", 1, 1, "charge", [1, 2])
    dispatch = DispatchTask("wf/1", "wf", 1, 1, "charge", [], None, None)
    with pytest.raises(TypeError):
        hash(dispatch)
    with pytest.raises(AttributeError):
        dispatch.other = 1  # type: ignore[attr-defined]
