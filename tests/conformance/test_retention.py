"""Retention: finished executions that ended longer ago than the period go, with their history;
executions in progress, and those that finished within the period, are never touched."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from conformance_support import START, Conformant, runtimes
from test_executions import finish, record

from eventual.core.models import Execution, ExecutionStatus

pytestmark = pytest.mark.anyio


@runtimes(
    aws="on AWS DynamoDB TTL attributes and the bucket's lifecycle rules remove finished "
    "executions; the store has no purge (the markings are checked below)"
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


BIG = "x" * 300_000  # larger than an item, a queue message: spills to the payload bucket


async def _finished_and_running(rt: Conformant) -> tuple[list[Execution], list[str]]:
    """Two finished executions of several steps (one with large signals and a large result,
    one that logged) and two running ones (a large signal received; logs written)."""
    done = await rt.runtime.start_execution("cfCollect", 2, execution_name="done")
    logged = await rt.runtime.start_execution("cfLogs", 1, execution_name="logged")
    running = await rt.runtime.start_execution("cfCollect", 3, execution_name="running")
    talking = await rt.runtime.start_execution("cfLogs", 2, execution_name="talking")
    await rt.settle()
    for i in range(2):
        await rt.runtime.send_signal(done, "cfGo", {"i": i, "blob": BIG}, signal_id=f"s{i}")
        await rt.settle()
    await rt.runtime.send_signal(logged, "cfGo", 0, signal_id="s0")
    await rt.runtime.send_signal(running, "cfGo", {"blob": BIG}, signal_id="s0")
    await rt.runtime.send_signal(talking, "cfGo", 0, signal_id="s0")
    finished = [await rt.finished(done), await rt.finished(logged)]
    await rt.settle()
    for execution_id in (running, talking):
        got = await rt.runtime.get_execution(execution_id)
        assert got.status is ExecutionStatus.IN_PROGRESS
    return finished, [running, talking]


def _aws(rt: Conformant) -> Any:
    from eventual.aws_runtime import names as n
    from eventual.aws_runtime.clients import client

    harness = rt.harness  # type: ignore[attr-defined]

    class Look:
        def record(self, execution_id: str) -> dict[str, Any]:
            return client("dynamodb").get_item(
                TableName=harness.names.executions_table,
                Key={n.EXECUTIONS_PK: {"S": execution_id}},
            )["Item"]

        def history(self, execution_id: str) -> list[dict[str, Any]]:
            return client("dynamodb").query(
                TableName=harness.names.history_table,
                KeyConditionExpression="#pk = :id",
                ExpressionAttributeNames={"#pk": n.HISTORY_PK},
                ExpressionAttributeValues={":id": {"S": execution_id}},
            )["Items"]

        def payload_tags(self, execution_id: str) -> dict[str, dict[str, str]]:
            s3 = client("s3")
            bucket = harness.names.payload_bucket
            listed = s3.list_objects_v2(
                Bucket=bucket, Prefix=n.execution_payload_prefix(execution_id)
            )
            return {
                o["Key"]: {
                    t["Key"]: t["Value"]
                    for t in s3.get_object_tagging(Bucket=bucket, Key=o["Key"])["TagSet"]
                }
                for o in listed.get("Contents", [])
            }

    return Look()


def _expiry(execution: Execution, days: int) -> dict[str, str]:
    assert isinstance(execution.end_time, datetime)
    return {"N": str(int((execution.end_time + timedelta(days=days)).timestamp()))}


@runtimes()
async def test_finished_executions_are_marked_or_purged_and_running_ones_never_touched(
    conformant_runtime: Conformant,
) -> None:
    """On AWS a finished execution's record, every history item and every payload object
    under its prefix carry the expiry (TTL attribute, tag), the marking done; a running
    execution's carry none. Elsewhere a purge removes the finished executions with their
    history and logs, and keeps the running ones whole."""
    rt = conformant_runtime
    finished, running = await _finished_and_running(rt)
    done, logged = finished
    if getattr(rt, "harness", None) is None:
        before = {e: await rt.runtime.get_history(e) for e in running}
        assert await rt.runtime.get_logs(logged.id) != []
        await rt.advance(rt.unit)  # they ended a moment ago
        assert await rt.runtime.purge_finished(timedelta(0)) == 2
        for execution in finished:
            assert await rt.ports.executions.get(execution.id) is None
            assert await rt.ports.executions.read_history(execution.id) == []
            assert await rt.runtime.get_logs(execution.id) == []
        for execution_id in running:
            stored = await rt.ports.executions.get(execution_id)
            assert stored is not None
            assert stored.execution.status is ExecutionStatus.IN_PROGRESS
            assert await rt.runtime.get_history(execution_id) == before[execution_id]
        assert [e.message for _, e in await rt.runtime.get_logs(running[1])] == [
            "line 0",
            "line 1",
        ]
        return
    from eventual.aws_runtime import names as n

    look = _aws(rt)
    for execution in finished:
        expiry = _expiry(execution, n.RETENTION_DAYS)
        item = look.record(execution.id)
        assert item[n.RETENTION_TTL] == expiry
        assert n.RETENTION_PENDING not in item
        history = look.history(execution.id)
        assert len(history) >= 2  # several steps: started; (signals and) the end
        assert all(h[n.RETENTION_TTL] == expiry for h in history)
    assert len(look.history(done.id)) == 3  # started; a signal; a signal and the end
    tags = look.payload_tags(done.id)
    assert "data_ref" in look.record(done.id)  # its large result is a payload too
    assert len(tags) >= 3  # two signals (queued, in history), its record
    assert all(t == {n.PAYLOAD_EXPIRE_TAG: "true"} for t in tags.values())
    for execution_id in running:
        item = look.record(execution_id)
        assert n.RETENTION_TTL not in item and n.RETENTION_PENDING not in item
        assert all(n.RETENTION_TTL not in h for h in look.history(execution_id))
    untagged = look.payload_tags(running[0])
    assert untagged and all(t == {} for t in untagged.values())


@runtimes()
async def test_a_finished_execution_carries_its_expiry_and_a_running_one_none(
    conformant_runtime: Conformant,
) -> None:
    """A step committed outside a unit of work (the store used directly) marks at once."""
    rt = conformant_runtime
    store = rt.ports.executions
    stored, _ = await store.create(record("wfT/done"))
    done = await finish(rt, stored.execution, ExecutionStatus.SUCCEEDED)
    await store.create(record("wfT/running"))
    if getattr(rt, "harness", None) is None:
        return
    from eventual.aws_runtime import names as n

    look = _aws(rt)
    assert look.record("wfT/done")[n.RETENTION_TTL] == _expiry(done, n.RETENTION_DAYS)
    assert n.RETENTION_PENDING not in look.record("wfT/done")
    assert n.RETENTION_TTL not in look.record("wfT/running")


@pytest.mark.parametrize("conformant_runtime", ["aws"], indirect=True)
async def test_the_retention_period_is_the_functions_setting(
    conformant_runtime: Conformant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventual.aws_runtime import names as n

    rt = conformant_runtime
    monkeypatch.setenv(n.RETENTION_DAYS_ENV, "7")
    await rt.cold()  # new containers read it
    eid = await rt.runtime.start_execution("cfEcho", {"blob": BIG}, execution_name="week")
    done = await rt.finished(eid)
    look = _aws(rt)
    assert look.record(eid)[n.RETENTION_TTL] == _expiry(done, 7)
    assert all(h[n.RETENTION_TTL] == _expiry(done, 7) for h in look.history(eid))


@pytest.mark.parametrize("conformant_runtime", ["aws"], indirect=True)
async def test_a_marking_cut_short_is_finished_by_the_next_read(
    conformant_runtime: Conformant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The finishing step commits, then tagging the payloads fails (as if the orchestrator
    died): the record keeps RETENTION_PENDING and the message returns to the queue; the
    orchestrator that reads the execution again, in a new container, finishes the marking."""
    from eventual.aws_runtime import names as n
    from eventual.aws_runtime.adapters import PayloadStore

    rt = conformant_runtime
    original = PayloadStore.tag_finished
    failures: list[str] = []

    def failing_once(store: PayloadStore, execution_id: str) -> int:
        if not failures:
            failures.append(execution_id)
            raise RuntimeError("injected: the orchestrator dies while tagging")
        return original(store, execution_id)

    monkeypatch.setattr(PayloadStore, "tag_finished", failing_once)
    eid = await rt.runtime.start_execution("cfCollect", 1, execution_name="cut")
    await rt.settle()
    await rt.runtime.send_signal(eid, "cfGo", {"blob": BIG}, signal_id="s0")
    done = await rt.finished(eid)
    assert failures == [eid]
    look = _aws(rt)
    expiry = _expiry(done, n.RETENTION_DAYS)
    assert look.record(eid)[n.RETENTION_PENDING] == expiry
    assert all(t == {} for t in look.payload_tags(eid).values())
    await rt.cold()  # the container that failed is gone

    async def marked() -> bool:
        return n.RETENTION_PENDING not in look.record(eid)

    await rt.until(marked, within=3600, what="the marking finished")
    assert look.record(eid)[n.RETENTION_TTL] == expiry
    assert all(h[n.RETENTION_TTL] == expiry for h in look.history(eid))
    tags = look.payload_tags(eid)
    assert tags and all(t == {n.PAYLOAD_EXPIRE_TAG: "true"} for t in tags.values())


@pytest.mark.parametrize("conformant_runtime", ["aws"], indirect=True)
async def test_a_late_events_payload_is_tagged_too(conformant_runtime: Conformant) -> None:
    """A signal too large for a message, sent after its execution finished (and after the
    marking listed the execution's payloads): the orchestrator drops the event and tags its
    payload, so the bucket keeps nothing of the execution beyond the period."""
    from eventual.aws_runtime import names as n

    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 1, execution_name="late")
    await rt.settle()
    await rt.runtime.send_signal(eid, "cfGo", "small", signal_id="s0")
    await rt.finished(eid)
    await rt.settle()
    look = _aws(rt)
    before = look.payload_tags(eid)
    assert all(t == {n.PAYLOAD_EXPIRE_TAG: "true"} for t in before.values())
    steps = len(look.history(eid))
    await rt.runtime.send_signal(eid, "cfGo", {"blob": BIG}, signal_id="late")
    await rt.settle()
    after = look.payload_tags(eid)
    assert len(after) == len(before) + 1  # the late signal's payload, under the prefix
    assert all(t == {n.PAYLOAD_EXPIRE_TAG: "true"} for t in after.values()), after
    assert len(look.history(eid)) == steps  # the event was dropped, not recorded
