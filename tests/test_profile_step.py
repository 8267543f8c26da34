"""``benchmarks/profile_step.py`` runs and accounts for the whole profiled time."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_step_profile_shares_add_up_to_the_whole() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "profile_step.py"), "--executions", "5"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert out.startswith("100 steps (5 executions x 10 steps")
    table = out.split("\n\n")[0]
    shares = {
        m.group(1).strip(): float(m.group(2))
        for m in re.finditer(r"^(\S.*?)\s+([\d.]+)%$", table, re.M)
    }
    assert {"engine (replay, commands)", "SQLite adapter (Python)", "asyncio loop"} <= set(shares)
    assert abs(sum(shares.values()) - 100) < 1
    assert shares["sqlite3 (SQL, commit)"] > 0
