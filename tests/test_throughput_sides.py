"""``benchmarks.throughput``: a side whose worker fails leaves the other sides' figures."""

from __future__ import annotations

import json
from collections.abc import Callable

# Runs the section with its workers replaced: every side answers with made-up timings, and
# DBOS with our pragmas fails in every round (as its worker sometimes does on a busy
# machine). Prints each row as [figure, ours, peer, peer_missing] and the notes.
SCRIPT = """
import json
import benchmarks.throughput as t
from benchmarks._common import WorkerError

def fake(target, **params):
    name = target.split(":")[1]
    if name == "dbos" and params.get("pragmas") == "same":
        raise WorkerError("DBOS worker exited with 1\\nTraceback ...")
    if name in ("floor", "step_sql"):
        return {"seconds": 0.01}
    timings = {"sequential": 0.5, "concurrent": 0.25}
    if name == "ours":
        return {**timings, "sequential_cpu": 0.4, "concurrent_cpu": 0.2,
                "pragmas": {"synchronous": "NORMAL"}}
    return {**timings, "sequential_cpu": 1.0, "concurrent_cpu": 1.0, "version": "9.9"}

t.run_worker = fake
t.log = lambda *a, **k: None
section = t.run(quick=True)
from benchmarks._common import render_text
text = render_text([section])
print(json.dumps({
    "rows": [[r.figure, r.ours, r.peer, r.peer_missing] for r in section.rows],
    "notes": section.notes,
    "table": [line for line in text.splitlines() if line.startswith("sequential steps/s [")],
}))
"""


def test_a_failing_dbos_worker_leaves_ours_restate_and_the_floor(
    run_at_root: Callable[[str], str],
) -> None:
    out = json.loads(run_at_root(SCRIPT).strip().splitlines()[-1])
    rows = {figure: [ours, peer, why] for figure, ours, peer, why in out["rows"]}
    # Ours: 20 executions x 10 steps in 0.5 s and 0.25 s.
    assert rows["sequential steps/s"] == [400.0, None, "failed: DBOS worker exited with 1"]
    assert rows["concurrent steps/s"][0] == 800.0
    assert rows["concurrent: process CPU per step"][1] is None
    assert rows["sequential steps/s vs Restate"][:2] == [400.0, 400.0]
    assert rows["concurrent steps/s vs DBOS as shipped"][1] == 5 * 10 / 0.25
    assert rows["our steps/s vs plain SQLite commits/s"][:2] == [800.0, 500 / 0.01]
    # Ours with synchronous=FULL (5 executions, quick) against FULL's own floor (50 commits).
    full = rows["our steps/s vs plain SQLite commits/s, both synchronous=FULL"]
    assert full[:2] == [5 * 10 / 0.25, 50 / 0.01]
    assert "DBOS with our pragmas did not run: failed: DBOS worker exited with 1" in out["notes"]
    # The table shows our figure, and why the peer's is missing, where its figure would be.
    (line,) = out["table"]
    assert "400" in line and "failed: DBOS worker exited with 1" in line
