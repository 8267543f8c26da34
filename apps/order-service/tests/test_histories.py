"""Determinism over time: every recorded history of processOrder replays on today's code.

The files in tests/histories/ were recorded by record_histories.py from an earlier version of
the service. A change that would make running executions fail with DeterminismError (a task
renamed, reordered, given other arguments) fails here first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from order_service import process_order

from eventual.core.history import WorkflowFailed, WorkflowSucceeded, parse_history
from eventual.testing import replay

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert len(HISTORIES) >= 4


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_a_recorded_history_replays_to_its_recorded_outcome(path: Path) -> None:
    data = json.loads(path.read_text())
    recorded = parse_history(data)[-1]
    outcome = replay(process_order, data)  # raises DeterminismError if the code diverged
    if isinstance(recorded, WorkflowSucceeded):
        assert outcome.succeeded and outcome.result == recorded.result
    else:
        assert isinstance(recorded, WorkflowFailed)
        assert (outcome.error, outcome.message) == (recorded.error, recorded.message)
