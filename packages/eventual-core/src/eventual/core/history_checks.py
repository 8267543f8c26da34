"""Checks that a recorded history is well formed: what crash and fault tests assert.

:func:`history_problems` returns one sentence per rule a history breaks (an empty list for a
sound history). The rules hold for every history any runtime records, however often it was
killed, retried or handed a duplicate message:

- no event id appears twice (the orchestrator drops ids already recorded);
- ``WorkflowStarted`` comes first and only once (or the history is empty: not started yet);
  a ``WorkflowSucceeded`` or ``WorkflowFailed`` comes at most once, and last;
- no two calls share a seq (but every attempt of a task records ``TaskScheduled`` at its seq);
- a task seq succeeds at most once, a child workflow reports at most one result, and every
  result (task outcome, retry due, timer, child result) answers an earlier call of its kind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from .history import (
    ChildWorkflowFailed,
    ChildWorkflowScheduled,
    ChildWorkflowSucceeded,
    EventsEmitted,
    HistoryEvent,
    PatchMarked,
    SignalSent,
    TaskFailed,
    TaskHeartbeatTimedOut,
    TaskRetryDue,
    TaskScheduled,
    TaskSucceeded,
    TaskTimedOut,
    TimerCompleted,
    TimerScheduled,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSucceeded,
)

_CALLS = (
    TaskScheduled,
    TimerScheduled,
    ChildWorkflowScheduled,
    SignalSent,
    EventsEmitted,
    PatchMarked,
)
_TASK_RESULTS = (TaskSucceeded, TaskFailed, TaskTimedOut, TaskHeartbeatTimedOut, TaskRetryDue)
_CHILD_RESULTS = (ChildWorkflowSucceeded, ChildWorkflowFailed)


def history_problems(events: Sequence[HistoryEvent]) -> list[str]:
    """What is wrong with ``events`` (one sentence each); ``[]`` if nothing is."""
    problems: list[str] = []
    ids = Counter(e.id for e in events)
    problems += [f"event id {i!r} is recorded {n} times" for i, n in ids.items() if n > 1]

    starts = [i for i, e in enumerate(events) if isinstance(e, WorkflowStarted)]
    if events and starts != [0]:
        problems.append(f"WorkflowStarted must be the first event, once; it is at {starts}")
    ends = [i for i, e in enumerate(events) if isinstance(e, WorkflowSucceeded | WorkflowFailed)]
    if len(ends) > 1 or (ends and ends[0] != len(events) - 1):
        problems.append(f"the outcome must be the last event, once; it is at {ends}")

    calls: dict[int, HistoryEvent] = {}
    successes: Counter[int] = Counter()
    child_results: Counter[int] = Counter()
    for i, e in enumerate(events):
        if isinstance(e, _CALLS):
            earlier = calls.get(e.seq)
            if isinstance(e, TaskScheduled) and isinstance(earlier, TaskScheduled):
                continue  # a retry: another attempt of the same task (ids tell attempts apart)
            if earlier is not None:
                problems.append(f"seq {e.seq} has two calls: {earlier.type} and {e.type}")
            else:
                calls[e.seq] = e
            continue
        if isinstance(e, _TASK_RESULTS):
            wanted, seq = TaskScheduled, e.seq
            if isinstance(e, TaskSucceeded):
                successes[seq] += 1
        elif isinstance(e, TimerCompleted):
            wanted, seq = TimerScheduled, e.seq
        elif isinstance(e, _CHILD_RESULTS):
            wanted, seq = ChildWorkflowScheduled, e.seq
            child_results[seq] += 1
        else:
            continue
        if not isinstance(calls.get(seq), wanted):
            problems.append(f"event {i} ({e.id}) answers no earlier {wanted.__name__} at seq {seq}")
    problems += [f"task seq {s} succeeded {n} times" for s, n in successes.items() if n > 1]
    problems += [
        f"child workflow seq {s} reported {n} results" for s, n in child_results.items() if n > 1
    ]
    return problems


__all__ = ["history_problems"]
