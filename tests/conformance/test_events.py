"""EventBus and subscriptions: a published event reaches each subscription to its name once,
and only those; a subscription that fails is delivered again alone (the others are not run
twice)."""

from __future__ import annotations

import conformance_service
import pytest
from conformance_support import Conformant

pytestmark = pytest.mark.anyio

seen = conformance_service.seen


async def test_each_subscription_gets_each_event_once(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    await rt.runtime.emit_events("CfParcel", [{"id": "p1"}, {"id": "p2"}])
    await rt.runtime.emit_events("CfOther", [{"id": "o1"}])
    eid = await rt.runtime.start_execution("cfEmit", ["w1", "w2"], execution_name="emit")
    assert (await rt.finished(eid)).result == "emitted"
    await rt.settle()
    assert sorted(seen["cfFirst"]) == ["p1", "p2", "w1", "w2"]
    assert sorted(seen["cfSecond"]) == ["p1", "p2", "w1", "w2"]
    assert seen["cfOther"] == ["o1"]
    # An execution's step that emitted is not re-run by replay: nothing is emitted again.
    await rt.cold()
    await rt.runtime.send_signal(eid, "cfGo", 1, signal_id="after")
    await rt.settle()
    assert sorted(seen["cfFirst"]) == ["p1", "p2", "w1", "w2"]


async def test_a_failing_subscription_is_retried_alone(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    await rt.runtime.emit_events("CfParcel", [{"id": "flaky-1"}])

    async def delivered() -> bool:
        return seen["cfFirst"] == ["flaky-1"]

    await rt.until(delivered, within=600, what="the retry delivered")
    await rt.settle()
    assert conformance_service.flaky == {"cfFirst:flaky-1"}  # it did fail once
    assert seen["cfFirst"] == ["flaky-1"]
    assert seen["cfSecond"] == ["flaky-1"]  # once, though the other one was retried
