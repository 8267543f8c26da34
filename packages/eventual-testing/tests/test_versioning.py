"""Deploying new workflow code under TestEnvironment: executions started on the old code
finish on the old branch of a ``patched()`` change, new ones take the new branch, and each
records the build it started on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from eventual.core import (
    ExecutionStatus,
    Service,
    deprecate_patch,
    patched,
    task,
)
from eventual.core.definitions import _REGISTRY, Definition, WorkflowDefinition
from eventual.testing import TestEnvironment

pytestmark = pytest.mark.anyio


@task("vCharge")
async def charge(amount: int) -> str:
    return f"charged {amount}"


@task("vChargeV2")
async def charge_v2(amount: int) -> str:
    return f"charged {amount} in cents: {amount * 100}"


@task("vShip")
async def ship(receipt: str) -> str:
    return f"shipped after {receipt}"


def version(body: Callable[[int], Coroutine[Any, Any, str]], build: str) -> Service:
    """The service with ``body`` as the code of the workflow "vOrder": one deploy."""
    wf = WorkflowDefinition("vOrder", body)
    _REGISTRY.remove(wf)
    definitions: list[Definition] = [wf, charge, charge_v2, ship]
    service = Service("versioned", definitions)
    service._build = build  # what EVENTUAL_BUILD would set
    return service


async def _v1(amount: int) -> str:
    receipt = await charge(amount)
    await asyncio.sleep(60)  # where a deploy finds the running executions
    return await ship(receipt)


async def _v2(amount: int) -> str:  # the charge changed, behind a patch
    if patched("charge-v2"):
        receipt = await charge_v2(amount)
    else:
        receipt = await charge(amount)
    await asyncio.sleep(60)
    return await ship(receipt)


async def _v3(amount: int) -> str:  # no execution runs the old branch: deprecated
    deprecate_patch("charge-v2")
    receipt = await charge_v2(amount)
    await asyncio.sleep(60)
    return await ship(receipt)


async def _unpatched(amount: int) -> str:  # the change made without a patch
    receipt = await charge_v2(amount)
    await asyncio.sleep(60)
    return await ship(receipt)


OLD = "shipped after charged 1"
NEW = "shipped after charged 2 in cents: 200"


async def test_a_patched_deploy_completes_old_executions_on_the_old_branch() -> None:
    async with TestEnvironment(version(_v1, "v1")) as env:
        old = [await env.start_execution("vOrder", 1, execution_name=f"old{i}") for i in (1, 2)]
        await env.tick(10)  # both charged and asleep

        await env.replace_service(version(_v2, "v2"))
        new = await env.start_execution("vOrder", 2, execution_name="new")
        await env.tick(60)
        for handle in old:
            status = await handle.get_status()
            assert (status.status, status.result, status.build) == (
                ExecutionStatus.SUCCEEDED,
                OLD,
                "v1",
            )
        status = await new.get_status()
        assert (status.result, status.build) == (NEW, "v2")
        history = await env.client.get_execution_history(new)
        assert [(e.seq, e.patch) for e in history if e.type == "PatchMarked"] == [(0, "charge-v2")]  # type: ignore[union-attr]
        old_history = await env.client.get_execution_history(old[0])
        assert "PatchMarked" not in [e.type for e in old_history]

        # What still runs on a build: what a user checks before removing the old branch.
        v1 = await env.client.list_executions(build="v1")
        assert sorted(e.id for e in v1) == ["vOrder/old1", "vOrder/old2"]


async def test_deprecating_then_removing_the_patch() -> None:
    async with TestEnvironment(version(_v2, "v2")) as env:
        marked = await env.start_execution("vOrder", 2, execution_name="marked")
        await env.tick(10)
        # No execution of v1 is left: v3 deprecates the patch; "marked" consumes its marker.
        await env.replace_service(version(_v3, "v3"))
        fresh = await env.start_execution("vOrder", 2, execution_name="fresh")
        await env.tick(10)
        history = await env.client.get_execution_history(fresh)
        assert "PatchMarked" not in [e.type for e in history]
        await env.tick(60)
        assert (await marked.get_status()).result == NEW
        # "fresh" (v3, no marker) replays on code without the call at all.
        again = await env.start_execution("vOrder", 2, execution_name="again")
        await env.tick(10)
        in_progress = await env.client.list_executions(statuses=["IN_PROGRESS"])
        assert [e.id for e in in_progress] == ["vOrder/again"]
        await env.replace_service(version(_unpatched, "v4"))
        await env.tick(60)
        assert (await fresh.get_status()).result == NEW
        assert (await again.get_status()).result == NEW


async def test_without_the_patch_old_executions_fail_with_a_readable_error() -> None:
    async with TestEnvironment(version(_v1, "v1")) as env:
        old = await env.start_execution("vOrder", 1, execution_name="old")
        await env.tick(10)
        await env.replace_service(version(_unpatched, "v2"))
        new = await env.start_execution("vOrder", 2, execution_name="new")
        await env.tick(60)
        status = await old.get_status()
        assert status.status is ExecutionStatus.FAILED
        assert status.error == "DeterminismError"
        assert status.message == (
            "seq 0: the history records task 'vCharge' with arguments [1], but the code did "
            "task 'vChargeV2' with arguments [1]"
        )
        assert (await new.get_status()).result == NEW


async def test_removing_a_patch_too_early_names_the_patch() -> None:
    async with TestEnvironment(version(_v2, "v2")) as env:
        marked = await env.start_execution("vOrder", 2, execution_name="marked")
        await env.tick(10)
        await env.replace_service(version(_unpatched, "v3"))
        await env.tick(60)
        status = await marked.get_status()
        assert status.status is ExecutionStatus.FAILED
        assert status.error == "DeterminismError"
        assert (status.message or "").startswith(
            "seq 0: the history records patch marker 'charge-v2', but the code did task "
            "'vChargeV2' with arguments [2]: the patch 'charge-v2' was removed (or moved)"
        )


async def test_the_build_is_the_package_version_and_a_hash_of_the_workflow_code() -> None:
    one, two = version(_v1, "x"), version(_v2, "x")
    one._build = two._build = None
    assert one.build.startswith("0+") and len(one.build) == len("0+") + 12
    assert one.build != two.build  # another workflow function: another build
    assert version(_v1, "x").build == "x"
