"""Load on the AWS runtime in moto (issue 21, item 4), at CI's size: 50 workflow starts and
200 emitted events through the system handler, all in flight on the execution queue and the
event bus before the harness plays Lambda's deliveries. Every execution succeeds with its
exact result, each of the two subscriptions receives each event (those sent and the one each
execution emits) exactly once, no call fails and no delivery fails. The latency line is
printed (``pytest -s``).

The full count (200 concurrent) runs in the benchmark suite: ``uv run python -m
benchmarks.load``. The scenario is packages/eventual-cli/tests/fixtures/load_service/scenario.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[2] / "eventual-cli" / "tests" / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from load_service import SUBSCRIPTIONS, scenario  # noqa: E402  # pyright: ignore[reportMissingImports]

STARTS = 50
EVENTS = 200


def test_concurrent_starts_and_events_fanned_out_exactly_once() -> None:
    report = scenario.run_aws(STARTS, EVENTS)
    print(report.summary())
    assert report.problems() == [], report.summary()
    assert report.deliveries == {sub: EVENTS + report.executions for sub in SUBSCRIPTIONS}
