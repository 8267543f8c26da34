"""history_problems: a sound history has none; each broken rule is named."""

from __future__ import annotations

from datetime import UTC, datetime

from eventual.core.history import (
    ChildWorkflowFailed,
    ChildWorkflowScheduled,
    ChildWorkflowSucceeded,
    HistoryEvent,
    SignalReceived,
    TaskFailed,
    TaskScheduled,
    TaskSucceeded,
    TimerCompleted,
    TimerScheduled,
    WorkflowStarted,
    WorkflowSucceeded,
)
from eventual.core.history_checks import history_problems

START = WorkflowStarted(workflow="wf", execution_id="wf/1", input=1)
UNTIL = datetime(2024, 1, 1, tzinfo=UTC)


def sound() -> list[HistoryEvent]:
    return [
        START,
        TaskScheduled(seq=0, name="t", args=[1]),
        TaskFailed(seq=0, attempt=1, error="Boom"),
        TaskScheduled(seq=0, name="t", args=[1], attempt=2),  # a retry: same seq
        TaskSucceeded(seq=0, attempt=2, result=2),
        TimerScheduled(seq=1, until=UNTIL),
        SignalReceived(signal_id="s1", signal="go", payload=3),
        TimerCompleted(seq=1),
        ChildWorkflowScheduled(seq=2, name="kid", input=2, execution_id="kid/1"),
        ChildWorkflowSucceeded(seq=2, result=6),
        WorkflowSucceeded(result=6),
    ]


def test_a_sound_history_has_no_problems() -> None:
    assert history_problems(sound()) == []
    assert history_problems([]) == []  # started, not yet run
    assert history_problems(sound()[:5]) == []  # in progress


def test_a_duplicated_event_is_named() -> None:
    events = sound()
    events.insert(7, SignalReceived(signal_id="s1", signal="go", payload=3))
    assert history_problems(events) == ["event id 'signal:s1' is recorded 2 times"]


def test_a_task_seq_that_succeeded_twice_is_named() -> None:
    events = sound()
    events.insert(5, TaskSucceeded(seq=0, attempt=1, result=2))
    assert history_problems(events) == ["task seq 0 succeeded 2 times"]


def test_start_and_outcome_out_of_place_are_named() -> None:
    events = sound()
    assert history_problems(events[1:]) == [
        "WorkflowStarted must be the first event, once; it is at []"
    ]
    assert history_problems([*events, WorkflowSucceeded(result=7)]) == [
        "event id 'WorkflowSucceeded' is recorded 2 times",
        "the outcome must be the last event, once; it is at [10, 11]",
    ]
    assert history_problems([*events, TimerCompleted(seq=9)]) == [
        "the outcome must be the last event, once; it is at [10]",
        "event 11 (9:TimerCompleted) answers no earlier TimerScheduled at seq 9",
    ]


def test_calls_sharing_a_seq_and_results_without_a_call_are_named() -> None:
    events = sound()
    events.insert(6, TimerScheduled(seq=0, until=UNTIL))
    events.insert(1, ChildWorkflowFailed(seq=2, error="Boom"))
    assert history_problems(events) == [
        "event 1 (2:ChildWorkflowFailed) answers no earlier ChildWorkflowScheduled at seq 2",
        "seq 0 has two calls: TaskScheduled and TimerScheduled",
        "child workflow seq 2 reported 2 results",
    ]
