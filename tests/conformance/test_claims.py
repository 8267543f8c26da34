"""TaskClaimStore: an attempt is claimed once (the first caller, never again), heartbeats are
recorded on the claim, an attempt is finished (or timed out) once; and, through the runtime, a
task that outlives its timeout or its heartbeat timeout times out, and learns it on its next
heartbeat."""

from __future__ import annotations

from datetime import timedelta

import conformance_service
import pytest
from conformance_support import Conformant

pytestmark = pytest.mark.anyio

MS = timedelta(milliseconds=1)


async def test_an_attempt_is_claimed_once(conformant_runtime: Conformant) -> None:
    claims = conformant_runtime.ports.claims
    now = conformant_runtime.now()
    assert await claims.claim("wfC/x", 0, 1, now) is True
    assert await claims.claim("wfC/x", 0, 1, now) is False
    assert await claims.claim("wfC/x", 0, 2, now) is True  # another attempt
    assert await claims.claim("wfC/x", 1, 1, now) is True  # another task
    assert await claims.claim("wfC/y", 0, 1, now) is True  # another execution
    claim = await claims.get("wfC/x", 0, 1)
    assert claim is not None
    assert (claim.execution_id, claim.seq, claim.attempt, claim.done) == ("wfC/x", 0, 1, False)
    assert abs(claim.claimed_at - now) <= MS
    assert await claims.get("wfC/x", 5, 1) is None


async def test_a_finished_attempt_is_never_claimed_again(conformant_runtime: Conformant) -> None:
    claims = conformant_runtime.ports.claims
    now = conformant_runtime.now()
    assert await claims.claim("wfC/done", 0, 1, now) is True
    assert await claims.finish("wfC/done", 0, 1) is True
    assert await claims.claim("wfC/done", 0, 1, now) is False


async def test_heartbeats_are_recorded_on_the_claim(conformant_runtime: Conformant) -> None:
    claims = conformant_runtime.ports.claims
    now = conformant_runtime.now()
    assert await claims.heartbeat("wfC/none", 0, 1, now) is None  # nothing claimed
    await claims.claim("wfC/hb", 0, 1, now)
    later = now + timedelta(seconds=5)
    beat = await claims.heartbeat("wfC/hb", 0, 1, later, {"progress": 1})
    assert beat is not None and beat.last_heartbeat is not None
    assert abs(beat.last_heartbeat - later) <= MS
    assert beat.heartbeat_details == {"progress": 1}
    got = await claims.get("wfC/hb", 0, 1)
    assert got is not None and got.heartbeat_details == {"progress": 1}
    assert got.last_heartbeat is not None and abs(got.last_heartbeat - later) <= MS


async def test_an_attempt_is_finished_once(conformant_runtime: Conformant) -> None:
    claims = conformant_runtime.ports.claims
    now = conformant_runtime.now()
    assert await claims.finish("wfC/none", 0, 1) is False  # nothing claimed
    await claims.claim("wfC/fin", 0, 1, now)
    await claims.claim("wfC/fin", 1, 1, now)
    assert await claims.finish("wfC/fin", 0, 1) is True
    assert await claims.finish("wfC/fin", 0, 1) is False
    assert await claims.finish("wfC/fin", 0, 1, timed_out=True) is False
    done = await claims.get("wfC/fin", 0, 1)
    assert done is not None and (done.done, done.timed_out) == (True, False)
    assert await claims.finish("wfC/fin", 1, 1, timed_out=True) is True
    assert await claims.finish("wfC/fin", 1, 1) is False
    timed_out = await claims.get("wfC/fin", 1, 1)
    assert timed_out is not None and (timed_out.done, timed_out.timed_out) == (True, True)


# ---------------------------------------------------------------- through the runtime


async def test_a_task_past_its_timeout_times_out(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfTaskTimeouts", "timeout", execution_name="t")
    done = await rt.finished(eid, within=10)
    assert done.result == "timed out"
    types = [e.type for e in await rt.runtime.get_history(eid)]
    assert types.count("TaskTimedOut") == 1


async def test_heartbeats_keep_a_task_alive_until_they_stop(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    tokens = conformance_service.seen["tokens"]
    eid = await rt.runtime.start_execution("cfTaskTimeouts", "heartbeat", execution_name="h")
    await rt.until(lambda: _has(tokens), within=10, what="the task ran")
    # A heartbeat every half timeout keeps it running past its heartbeat timeout (1 s).
    for _ in range(3):
        await rt.advance(0.5)
        assert await rt.runtime.send_task_heartbeat(tokens[0], {"beat": 1}) is False
    assert (await rt.runtime.get_execution(eid)).status.value == "IN_PROGRESS"
    done = await rt.finished(eid, within=10)  # then they stop
    assert done.result == "heartbeat timed out"
    types = [e.type for e in await rt.runtime.get_history(eid)]
    assert types.count("TaskHeartbeatTimedOut") == 1
    # The task learns it was cancelled on its next heartbeat; its late result is ignored.
    assert await rt.runtime.send_task_heartbeat(tokens[0]) is True
    history = await rt.runtime.get_history(eid)
    await rt.runtime.send_task_success(tokens[0], "late")
    await rt.settle()
    assert await rt.runtime.get_history(eid) == history


async def test_a_task_completed_by_token_in_time_finishes(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    tokens = conformance_service.seen["tokens"]
    eid = await rt.runtime.start_execution("cfTaskTimeouts", "heartbeat", execution_name="ok")
    await rt.until(lambda: _has(tokens), within=10, what="the task ran")
    await rt.runtime.send_task_success(tokens[0], "done")
    done = await rt.finished(eid, within=10)
    assert done.result == "finished: done"
    claim = await rt.ports.claims.get(eid, 0, 1)
    assert claim is not None and claim.done and not claim.timed_out


async def _has(values: list[object]) -> bool:
    return bool(values)
