"""``benchmarks.throughput.step_sql``: the SQL of a step alone, on the runtime's own schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_each_commit_stores_a_steps_two_history_rows_that_the_runtime_reads_back() -> None:
    # A fresh process, as the suite runs it (and the benchmarks package is at the root).
    code = (
        "import json; from benchmarks.throughput import step_sql; "
        "print(json.dumps(step_sql(commits=50, synchronous='NORMAL')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    result = json.loads(out)
    assert result["rows"] == 2 * (100 + 50)  # the warm-up's steps and the measured ones
    assert result["seconds"] > 0
    # 150 steps of 10 per execution: the last execution has all its 10 steps' rows.
    assert result["read_back"] == ["TaskSucceeded", "TaskScheduled"] * 10
