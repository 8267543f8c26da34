"""Recovery on start: the task attempts a previous process dispatched and never finished, the
executions it started and never stepped, and the executions in progress whose history has a
row that cannot be read."""

from __future__ import annotations

import sqlite3

from ...history import TaskScheduled
from ...models import Execution
from ..ports import TaskRequest
from .claims import _TASK_RESULTS
from .codec import _event_from, _unreadable

# The type of a stored event, or NULL when the row is not JSON text (json_extract would raise
# "malformed JSON" and fail the whole query).
_TYPE = "CASE WHEN json_valid({0}) THEN json_extract({0}, '$.type') END"


def _outstanding_attempts(conn: sqlite3.Connection) -> list[TaskRequest]:
    """The task attempts a previous process dispatched and never finished: ``TaskScheduled``
    in the history of an execution in progress, with no result in its history or its queue,
    and no claim row (one is written for an attempt left waiting for its token, and for one
    finished by a timeout or by token). In dispatch order within each execution."""
    return _scan_history(conn)[0]


def _scan_history(
    conn: sqlite3.Connection,
) -> tuple[list[TaskRequest], dict[str, tuple[int, str]]]:
    """The outstanding task attempts (see :func:`_outstanding_attempts`), and the executions in
    progress with a history row that cannot be read (not JSON, not UTF-8, not an event): each
    with the first such row's position and what is wrong with it. The attempts of those
    executions are left out (they fail instead)."""
    scheduled: dict[tuple[str, int, int], TaskRequest] = {}
    finished: set[tuple[str, int, int]] = set()
    corrupted: dict[str, tuple[int, str]] = {}
    # Both joins start from the executions in progress, found through the executions_by_status
    # index, and read only their history and claim rows: finished executions cost start-up
    # nothing (tests/test_sqlite_startup.py counts the steps; benchmarks/dev_startup.py times
    # it). Without that index SQLite would scan every history row.
    # As bytes: a row that is not UTF-8 text would fail the whole fetch.
    rows = conn.execute(
        "SELECT h.execution_id, e.workflow, CAST(h.event AS BLOB), h.position FROM history h "
        "JOIN executions e ON e.id = h.execution_id WHERE e.status = 'IN_PROGRESS' AND "
        f"COALESCE({_TYPE.format('h.event')} IN ('TaskScheduled', {_TASK_RESULTS}), 1) "
        "ORDER BY h.execution_id, h.position"
    ).fetchall()
    queued = conn.execute(
        "SELECT execution_id, NULL, CAST(event AS BLOB), NULL FROM queue "
        f"WHERE {_TYPE.format('event')} IN ({_TASK_RESULTS})"
    ).fetchall()
    for execution_id, workflow, raw, position in [*rows, *queued]:
        try:
            event = _event_from(raw)
        except ValueError:
            if position is not None and execution_id not in corrupted:
                corrupted[execution_id] = (position, _unreadable(raw) or "unreadable")
            continue
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
    outstanding = [
        request
        for key, request in scheduled.items()
        if key not in finished and request.execution_id not in corrupted
    ]
    return outstanding, corrupted


def _unstarted(conn: sqlite3.Connection) -> list[Execution]:
    """The executions in progress with no history and no queued ``WorkflowStarted``: started
    by a process that stopped before their first step committed (it handed the event over in
    memory). Found through the executions_by_status index; their first event is rebuilt
    from the record. (A file written before that hand-over queued the event as a row: such
    an execution is left to its row.)"""
    rows = conn.execute(
        "SELECT e.record FROM executions e WHERE e.status = 'IN_PROGRESS' "
        "AND NOT EXISTS (SELECT 1 FROM history h WHERE h.execution_id = e.id) "
        "AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.execution_id = e.id "
        f"AND {_TYPE.format('q.event')} = 'WorkflowStarted') ORDER BY e.start_ts, e.id"
    ).fetchall()
    return [Execution.model_validate_json(r[0]) for r in rows]
