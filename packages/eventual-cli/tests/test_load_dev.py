"""Load on ``eventual dev`` (issue 21, item 4), at CI's size: 100 workflow starts sent at once
while 1,000 events are emitted in batches, fanned out to two subscriptions. Every execution
succeeds with its exact result, each subscription receives each event (those sent and the one
each execution emits) exactly once, no request fails and the server logs nothing alarming.
The latency line (start p50/p99/max, and p99 as a multiple of an unloaded baseline measured on
the same server in the same run) is printed; ``pytest -s`` shows it.

The full counts (1,000 starts and 10,000 events) run in the benchmark suite:
``uv run python -m benchmarks.load``. The scenario is
tests/fixtures/load_service/scenario.py.
"""

from __future__ import annotations

from pathlib import Path

# tests/fixtures is on sys.path (conftest), not on pyright's.
from load_service import SUBSCRIPTIONS, scenario  # pyright: ignore[reportMissingImports]

STARTS = 100
EVENTS = 1_000


def test_concurrent_starts_and_events_fanned_out_exactly_once(tmp_path: Path) -> None:
    report = scenario.run_dev(STARTS, EVENTS, workdir=tmp_path, timeout=120)
    print(report.summary())
    assert report.problems() == [], report.summary()
    assert report.notes == []
    assert len(report.start_latencies) == STARTS
    assert report.deliveries == {sub: EVENTS + report.executions for sub in SUBSCRIPTIONS}
