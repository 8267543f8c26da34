"""Recovery on start: the task attempts a previous process dispatched and never finished."""

from __future__ import annotations

import sqlite3

from ...history import TaskScheduled
from ..ports import TaskRequest
from .claims import _TASK_RESULTS
from .codec import _event_from


def _outstanding_attempts(conn: sqlite3.Connection) -> list[TaskRequest]:
    """The task attempts a previous process dispatched and never finished: ``TaskScheduled``
    in the history of an execution in progress, with no result in its history or its queue,
    and no claim row (one is written for an attempt left waiting for its token, and for one
    finished by a timeout or by token). In dispatch order within each execution."""
    scheduled: dict[tuple[str, int, int], TaskRequest] = {}
    finished: set[tuple[str, int, int]] = set()
    rows = conn.execute(
        "SELECT h.execution_id, e.workflow, h.event FROM history h "
        "JOIN executions e ON e.id = h.execution_id WHERE e.status = 'IN_PROGRESS' AND "
        f"json_extract(h.event, '$.type') IN ('TaskScheduled', {_TASK_RESULTS}) "
        "ORDER BY h.execution_id, h.position"
    ).fetchall()
    queued = conn.execute(
        "SELECT execution_id, NULL, event FROM queue "
        f"WHERE json_extract(event, '$.type') IN ({_TASK_RESULTS})"
    ).fetchall()
    for execution_id, workflow, text in [*rows, *queued]:
        event = _event_from(text)
        key = (execution_id, event.seq, event.attempt)
        if isinstance(event, TaskScheduled):
            scheduled[key] = TaskRequest(
                execution_id,
                workflow,
                event.seq,
                event.attempt,
                event.name,
                event.args,
                event.timeout,
                event.heartbeat_timeout,
            )
        else:
            finished.add(key)
    claimed = conn.execute(
        "SELECT c.execution_id, c.seq, c.attempt FROM claims c "
        "JOIN executions e ON e.id = c.execution_id WHERE e.status = 'IN_PROGRESS'"
    ).fetchall()
    finished.update(tuple(r) for r in claimed)
    return [request for key, request in scheduled.items() if key not in finished]
