"""Retention: finished executions that ended longer ago than the period go, with their history;
executions in progress, and those that finished within the period, are never touched."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conformance_support import START, Conformant, runtimes
from test_executions import finish, record

from eventual.core.models import ExecutionStatus

pytestmark = pytest.mark.anyio


@runtimes(
    aws="on AWS DynamoDB TTL attributes remove finished records; the store has no purge "
    "(issue 23, item 2: TTL attributes not written yet)"
)
async def test_purge_removes_only_finished_executions_older_than_the_period(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    store = rt.ports.executions
    # Ten old finished executions, one running since the start, one that finished recently.
    for i in range(10):
        stored, _ = await store.create(record(f"wfR/old-{i}", at=i))
        status = ExecutionStatus.SUCCEEDED if i % 2 else ExecutionStatus.FAILED
        await finish(rt, stored.execution, status)
    await store.create(record("wfR/running", at=0))
    now = START + timedelta(days=31)
    while rt.now() < now:
        await rt.advance((now - rt.now()).total_seconds())
    recent, _ = await store.create(
        record("wfR/recent", at=int((rt.now() - START).total_seconds()) - 3600)
    )
    await finish(rt, recent.execution, ExecutionStatus.SUCCEEDED)
    # A batch smaller than what is to go: several batches, each its own write.
    removed = await rt.runtime.purge_finished(timedelta(days=30), batch=3)
    assert removed == 10
    for i in range(10):
        assert await store.get(f"wfR/old-{i}") is None
        assert await store.read_history(f"wfR/old-{i}") == []
    kept = await store.get("wfR/running")
    assert kept is not None and kept.execution.status is ExecutionStatus.IN_PROGRESS
    assert await store.get("wfR/recent") is not None
    assert len(await store.read_history("wfR/recent")) == 2
    assert await rt.runtime.purge_finished(timedelta(days=30)) == 0


@runtimes()
async def test_a_finished_execution_carries_its_expiry_and_a_running_one_none(
    conformant_runtime: Conformant,
) -> None:
    """On AWS the store marks a finished execution's record (and its last history item) with
    the TTL attribute, RETENTION_DAYS after it ended; one in progress has none. The other
    runtimes need no mark (their purge reads the end time)."""
    rt = conformant_runtime
    harness = getattr(rt, "harness", None)
    store = rt.ports.executions
    stored, _ = await store.create(record("wfT/done"))
    done = await finish(rt, stored.execution, ExecutionStatus.SUCCEEDED)
    await store.create(record("wfT/running"))
    if harness is None:
        return
    from eventual.aws_runtime import names as n
    from eventual.aws_runtime.clients import client

    def item(execution_id: str) -> dict[str, object]:
        return client("dynamodb").get_item(
            TableName=harness.names.executions_table,
            Key={n.EXECUTIONS_PK: {"S": execution_id}},
        )["Item"]

    assert done.end_time is not None
    expected = int((done.end_time + timedelta(days=n.RETENTION_DAYS)).timestamp())
    assert item("wfT/done")[n.RETENTION_TTL] == {"N": str(expected)}
    assert n.RETENTION_TTL not in item("wfT/running")
