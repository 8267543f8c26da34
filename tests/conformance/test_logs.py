"""LogSink: a workflow's log lines are kept once each, in order, per execution, whatever
replays the execution went through and however its writes were retried."""

from __future__ import annotations

import pytest
from conformance_support import Conformant

pytestmark = pytest.mark.anyio


async def _lines(rt: Conformant, execution_id: str) -> list[str]:
    return [entry.message for _, entry in await rt.runtime.get_logs(execution_id)]


async def test_each_line_is_kept_once_in_order_across_replays(
    conformant_runtime: Conformant,
) -> None:
    rt = conformant_runtime
    a = await rt.runtime.start_execution("cfLogs", 3, execution_name="a")
    b = await rt.runtime.start_execution("cfLogs", 1, execution_name="b")
    await rt.settle()
    for i in range(3):
        if i == 1:
            await rt.cold()  # the next steps replay the history first
        await rt.runtime.send_signal(a, "cfGo", i, signal_id=f"s{i}")
        await rt.settle()
    await rt.runtime.send_signal(b, "cfGo", 0, signal_id="s0")
    assert (await rt.finished(a)).result == 3
    assert (await rt.finished(b)).result == 1
    assert await _lines(rt, a) == ["line 0", "line 1", "line 2", "line 3"]
    assert await _lines(rt, b) == ["line 0", "line 1"]
    everyone = await rt.runtime.get_logs(workflow="cfLogs")
    assert sorted(eid for eid, _ in everyone) == sorted([a] * 4 + [b] * 2)


async def test_a_retried_log_write_keeps_each_line_once(conformant_runtime: Conformant) -> None:
    rt = conformant_runtime
    eid = await rt.runtime.start_execution("cfLogs", 1, execution_name="retried")
    await rt.settle()
    rt.lose_next_log_answer()  # the next write is applied, its answer lost, and retried
    await rt.runtime.send_signal(eid, "cfGo", 0, signal_id="s0")
    assert (await rt.finished(eid)).result == 1
    assert await _lines(rt, eid) == ["line 0", "line 1"]
