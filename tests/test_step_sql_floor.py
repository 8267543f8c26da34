"""``benchmarks.throughput.step_sql``: the SQL of a step alone, on the runtime's own schema."""

from __future__ import annotations

import json
from collections.abc import Callable


def test_each_commit_stores_a_steps_two_history_rows_that_the_runtime_reads_back(
    run_at_root: Callable[[str], str],
) -> None:
    code = (
        "import json; from benchmarks.throughput import step_sql; "
        "print(json.dumps(step_sql(commits=50, synchronous='NORMAL')))"
    )
    result = json.loads(run_at_root(code))
    assert result["rows"] == 2 * (100 + 50)  # the warm-up's steps and the measured ones
    assert result["seconds"] > 0
    # 150 steps of 10 per execution: the last execution has all its 10 steps' rows.
    assert result["read_back"] == ["TaskSucceeded", "TaskScheduled"] * 10
