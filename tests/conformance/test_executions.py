"""ExecutionStore: records created once, listed newest or oldest first, paged by tokens,
filtered by workflow, status and build; and, through the system operations, an execution's
start (create-once) and its status transitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conformance_support import START, Conformant

from eventual.core.errors import ExecutionAlreadyExists
from eventual.core.history import WorkflowFailed, WorkflowStarted, WorkflowSucceeded
from eventual.core.models import Execution, ExecutionStatus

pytestmark = pytest.mark.anyio


def record(
    execution_id: str,
    *,
    at: int = 0,
    status: ExecutionStatus = ExecutionStatus.IN_PROGRESS,
    build: str | None = None,
    input: object = None,
) -> Execution:
    return Execution(
        id=execution_id,
        workflow=execution_id.split("/", 1)[0],
        status=status,
        input=input,
        start_time=START + timedelta(seconds=at),
        build=build,
    )


async def finish(rt: Conformant, execution: Execution, status: ExecutionStatus) -> Execution:
    """Commit a step that starts and ends ``execution`` with ``status``."""
    end = execution.start_time + timedelta(seconds=1)
    outcome = (
        WorkflowSucceeded(timestamp=end, result="ok")
        if status is ExecutionStatus.SUCCEEDED
        else WorkflowFailed(timestamp=end, error="Boom", message="boom")
    )
    done = execution.model_copy(update={"status": status, "end_time": end})
    started = WorkflowStarted(
        timestamp=execution.start_time, workflow=execution.workflow, execution_id=execution.id
    )
    await rt.ports.executions.commit_step(
        execution.id, expected_length=0, events=[started, outcome], execution=done
    )
    return done


# ---------------------------------------------------------------- create and get


async def test_create_is_once_and_returns_the_stored_record(conformant_runtime: Conformant) -> None:
    store = conformant_runtime.ports.executions
    first = record("wfA/one", input={"n": 1})
    stored, created = await store.create(first)
    assert created and (stored.execution, stored.history_length) == (first, 0)
    again, created = await store.create(record("wfA/one", at=5, input={"n": 2}))
    assert not created
    assert (again.execution, again.history_length) == (first, 0)  # the first one, untouched
    got = await store.get("wfA/one")
    assert got is not None and (got.execution, got.history_length) == (first, 0)
    assert await store.get("wfA/none") is None


async def test_a_large_record_round_trips(conformant_runtime: Conformant) -> None:
    store = conformant_runtime.ports.executions
    big = record("wfA/big", input={"blob": "x" * 600_000})
    await store.create(big)
    got = await store.get("wfA/big")
    assert got is not None and got.execution == big
    listed, _ = await store.list(workflow="wfA")
    assert listed == [big]


# ---------------------------------------------------------------- listing


def _population() -> list[Execution]:
    """Ten executions of two workflows; three of them start at the same instant."""
    executions = [record(f"wfA/a{i}", at=i * 10, build="b1" if i % 2 else "b2") for i in range(6)]
    executions += [record(f"wfB/b{i}", at=i * 10 + 5, build="b1") for i in range(3)]
    executions += [record("wfB/tie", at=20, build="b2")]  # same start as wfA/a2: by id then
    return executions


async def _create(rt: Conformant, executions: list[Execution]) -> None:
    for e in executions:
        _, created = await rt.ports.executions.create(e)
        assert created


def _expected(executions: list[Execution], *, ascending: bool) -> list[str]:
    ordered = sorted(executions, key=lambda e: (e.start_time, e.id), reverse=not ascending)
    return [e.id for e in ordered]


async def _all_pages(rt: Conformant, limit: int, **filters: object) -> list[list[str]]:
    pages: list[list[str]] = []
    token: str | None = None
    for _ in range(50):
        page, token = await rt.ports.executions.list(limit=limit, next_token=token, **filters)  # type: ignore[arg-type]
        assert len(page) <= limit
        pages.append([e.id for e in page])
        if token is None:
            return pages
    raise AssertionError("the listing never ends")


async def test_listing_order_by_start_time_then_id(conformant_runtime: Conformant) -> None:
    executions = _population()
    await _create(conformant_runtime, executions)
    for ascending in (False, True):
        await _check_order(conformant_runtime, executions, ascending)


async def _check_order(
    conformant_runtime: Conformant, executions: list[Execution], ascending: bool
) -> None:
    page, token = await conformant_runtime.ports.executions.list(ascending=ascending)
    assert [e.id for e in page] == _expected(executions, ascending=ascending)
    assert token is None
    assert sorted(page, key=lambda e: e.id) == sorted(executions, key=lambda e: e.id)


async def test_paging_with_tokens_covers_the_listing_once_in_order(
    conformant_runtime: Conformant,
) -> None:
    executions = _population()
    await _create(conformant_runtime, executions)
    for ascending in (False, True):
        for limit in (1, 3, 10):
            await _check_paging(conformant_runtime, executions, ascending, limit)


async def _check_paging(
    conformant_runtime: Conformant, executions: list[Execution], ascending: bool, limit: int
) -> None:
    pages = await _all_pages(conformant_runtime, limit, ascending=ascending)
    flat = [i for p in pages for i in p]
    assert flat == _expected(executions, ascending=ascending)
    # Every page but the last is full (a last empty page is allowed: the store may not know
    # that nothing follows).
    assert all(len(p) == limit for p in pages[:-1] if pages[-1]) or not pages[-1]


async def test_filters_by_workflow_status_and_build_with_paging(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    executions = _population()
    await _create(rt, executions)
    by_id = {e.id: e for e in executions}
    for eid in ("wfA/a1", "wfA/a4", "wfB/b2"):
        by_id[eid] = await finish(rt, by_id[eid], ExecutionStatus.SUCCEEDED)
    by_id["wfA/a3"] = await finish(rt, by_id["wfA/a3"], ExecutionStatus.FAILED)
    everything = list(by_id.values())
    for ascending in (False, True):
        await _check_filters(rt, everything, ascending)
    listed, _ = await rt.ports.executions.list(statuses=[ExecutionStatus.FAILED])
    assert listed == [by_id["wfA/a3"]]  # the record as last committed


async def _check_filters(rt: Conformant, everything: list[Execution], ascending: bool) -> None:
    def expect(keep: object) -> list[str]:
        return _expected([e for e in everything if keep(e)], ascending=ascending)  # type: ignore[operator]

    cases: list[tuple[dict[str, object], list[str]]] = [
        ({"workflow": "wfA"}, expect(lambda e: e.workflow == "wfA")),
        ({"workflow": "wfB"}, expect(lambda e: e.workflow == "wfB")),
        (
            {"statuses": [ExecutionStatus.SUCCEEDED]},
            expect(lambda e: e.status is ExecutionStatus.SUCCEEDED),
        ),
        (
            {"statuses": [ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED]},
            expect(lambda e: e.status is not ExecutionStatus.IN_PROGRESS),
        ),
        (
            {"statuses": [ExecutionStatus.IN_PROGRESS], "workflow": "wfA"},
            expect(lambda e: e.workflow == "wfA" and e.status is ExecutionStatus.IN_PROGRESS),
        ),
        ({"build": "b1"}, expect(lambda e: e.build == "b1")),
        (
            {"build": "b2", "workflow": "wfA"},
            expect(lambda e: e.build == "b2" and e.workflow == "wfA"),
        ),
        ({"workflow": "wfNone"}, []),
    ]
    for filters, expected in cases:
        whole, _ = await rt.ports.executions.list(ascending=ascending, **filters)  # type: ignore[arg-type]
        assert [e.id for e in whole] == expected, (filters, ascending)
        paged = await _all_pages(rt, 2, ascending=ascending, **filters)
        assert [i for p in paged for i in p] == expected, (filters, ascending)


async def test_system_listing_pages_like_the_store(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    ids = [await rt.runtime.start_execution("cfEcho", i, execution_name=f"n{i}") for i in range(4)]
    await rt.settle()
    seen: list[str] = []
    token: str | None = None
    while True:
        page, token = await rt.runtime.list_executions(
            workflow="cfEcho", limit=3, next_token=token, ascending=True
        )
        seen += [e.id for e in page]
        if token is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    done, _ = await rt.runtime.list_executions(
        workflow="cfEcho", statuses=[ExecutionStatus.SUCCEEDED]
    )
    assert sorted(e.id for e in done) == sorted(ids)


# ---------------------------------------------------------------- through the runtime


async def test_start_is_once_per_name(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfCollect", 1, execution_name="once")
    assert eid == "cfCollect/once"
    await rt.settle()
    assert await rt.runtime.start_execution("cfCollect", 1, execution_name="once") == eid
    with pytest.raises(ExecutionAlreadyExists):
        await rt.runtime.start_execution("cfCollect", 2, execution_name="once")
    await rt.settle()
    history = await rt.runtime.get_history(eid)
    assert [e.type for e in history].count("WorkflowStarted") == 1
    executions, _ = await rt.runtime.list_executions(workflow="cfCollect")
    assert [e.id for e in executions] == [eid]


async def test_status_moves_from_in_progress_to_a_final_one_and_stays(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    waiting = await rt.runtime.start_execution("cfCollect", 1, execution_name="w")
    failing = await rt.runtime.start_execution("cfFail", "no luck", execution_name="f")
    await rt.settle()
    before = await rt.runtime.get_execution(waiting)
    assert (before.status, before.end_time, before.result) == (
        ExecutionStatus.IN_PROGRESS,
        None,
        None,
    )
    await rt.runtime.send_signal(waiting, "cfGo", "hello", signal_id="s1")
    done = await rt.finished(waiting)
    assert (done.status, done.result) == (ExecutionStatus.SUCCEEDED, ["hello"])
    assert done.end_time is not None and done.end_time >= done.start_time
    failed = await rt.finished(failing)
    assert (failed.status, failed.error, failed.message) == (
        ExecutionStatus.FAILED,
        "CfFailure",
        "no luck",
    )
    # A final status is final: later signals change neither the record nor the history.
    history = await rt.runtime.get_history(waiting)
    await rt.runtime.send_signal(waiting, "cfGo", "late", signal_id="s2")
    await rt.settle()
    assert await rt.runtime.get_execution(waiting) == done
    assert await rt.runtime.get_history(waiting) == history
