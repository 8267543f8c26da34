"""replay(): a recorded history against today's code, without side effects."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from eventual.core import (
    DeterminismError,
    EventualError,
    ExecutionStatus,
    Service,
    event,
    export_history,
    task,
    workflow,
)
from eventual.testing import TestEnvironment, replay

pytestmark = pytest.mark.anyio

side_effects: list[str] = []


class Receipt(BaseModel):
    order: str
    total: int


@task("price")
async def price(item: str) -> int:
    side_effects.append(f"price:{item}")
    return len(item)


@task("notify")
async def notify(msg: str) -> None:
    side_effects.append(f"notify:{msg}")


checked_out = event("CheckedOut")


@workflow("checkout")
async def checkout(items: list[str]) -> Receipt:
    prices = await asyncio.gather(*(price(i) for i in items))
    await asyncio.sleep(60)
    await checked_out.emit({"items": items})
    await notify(f"{len(items)} items")
    if not items:
        raise EventualError("empty basket", name="EmptyBasket")
    return Receipt(order="-".join(items), total=sum(prices))


# Today's code, changed: notify() is called with another message.
async def _checkout_v2(items: list[str]) -> Receipt:
    prices = await asyncio.gather(*(price(i) for i in items))
    await asyncio.sleep(60)
    await checked_out.emit({"items": items})
    await notify(f"{len(items)} item(s)")
    return Receipt(order="-".join(items), total=sum(prices))


# Today's code, compatible: the same calls, a different way of writing them.
async def _checkout_v3(items: list[str]) -> Receipt:
    prices = list(await asyncio.gather(*[price(item) for item in items]))
    await asyncio.sleep(60)
    await checked_out.emit({"items": items})
    await notify(f"{len(items)} items")
    if not items:
        raise EventualError("empty basket", name="EmptyBasket")
    return Receipt(order="-".join(items), total=sum(prices))


SERVICE = Service("replay-test", [price, notify, checked_out, checkout])


async def record(items: list[str], *, finish: bool = True) -> list:  # type: ignore[type-arg]
    async with TestEnvironment(SERVICE) as env:
        handle = await env.start_execution(checkout, items)
        if finish:
            await env.tick(60)
        return await handle.get_history()


async def test_replay_returns_the_outcome_and_runs_no_side_effect() -> None:
    history = await record(["ab", "cde"])
    side_effects.clear()
    outcome = replay(checkout, history)
    assert outcome.status is ExecutionStatus.SUCCEEDED and outcome.succeeded
    assert outcome.result == Receipt(order="ab-cde", total=5)  # typed
    assert outcome.events == len(history)
    assert side_effects == []


async def test_replay_takes_the_json_and_export_forms() -> None:
    history = await record(["x"])
    exported = export_history(history)
    assert replay(checkout, exported).result == Receipt(order="x", total=1)
    assert replay(checkout, exported["events"]).succeeded
    assert replay(checkout, json.dumps(exported)).succeeded


async def test_replay_of_a_failed_and_of_an_unfinished_execution() -> None:
    failed = replay(checkout, await record([]))
    assert failed.status is ExecutionStatus.FAILED and failed.failed
    assert (failed.error, failed.message) == ("EmptyBasket", "empty basket")
    waiting = replay(checkout, await record(["a"], finish=False))
    assert waiting.status is ExecutionStatus.IN_PROGRESS
    assert waiting.result is None


async def test_changed_code_raises_determinism_error_naming_the_seq() -> None:
    history = await record(["ab"])
    v2 = workflow("checkoutV2", _checkout_v2)
    with pytest.raises(DeterminismError) as info:
        replay(v2, history)
    assert info.value.seq == 3
    assert "notify" in info.value.message
    assert "1 items" in info.value.message and "1 item(s)" in info.value.message
    v3 = workflow("checkoutV3", _checkout_v3)
    assert replay(v3, history).result == Receipt(order="ab", total=2)


async def test_replay_by_workflow_name_with_a_service() -> None:
    history = await record(["abc"])
    assert replay("checkout", history, service=SERVICE).result == Receipt(order="abc", total=3)
    with pytest.raises(ValueError, match="service="):
        replay("checkout", history)
    with pytest.raises(EventualError, match="no workflow 'nope'"):
        replay("nope", history, service=SERVICE)
