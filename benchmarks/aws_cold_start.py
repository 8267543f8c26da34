"""Cold start of the AWS runtime's Lambda handler modules: ``python -X importtime``.

For each handler module, the interpreter imports ``eventual.aws_runtime.handlers.<kind>`` with
``-X importtime``; the figure is the sum of the modules' own import times (median of several
runs), printed against ``python -c pass`` measured the same way in the same run (the
interpreter's own start-up imports) and, for scale, against ``import boto3``, which a handler
defers until its first request. Only ratios are claimed.

    uv run python benchmarks/aws_cold_start.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KINDS = ["orchestrator", "task", "command", "system", "subscription", "timer"]
RUNS = 7


def _env() -> dict[str, str]:
    # With bytecode, as benchmarks/cold_start.py measures (see its docstring): an inherited
    # PYTHONDONTWRITEBYTECODE would add the compilation of every module to its import time.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "eventual-bench-pycache")
    return env


def importtime(code: str) -> tuple[float, float, set[str]]:
    """Microseconds spent importing (sum of each module's own time), the process's wall time
    in microseconds, and the modules imported."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    )
    wall = (time.perf_counter() - started) * 1e6
    total = 0.0
    modules: set[str] = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line[len("import time:") :].split("|")
        total += float(self_us)
        modules.add(name.strip())
    return total, wall, modules


def measure(code: str) -> tuple[float, float, set[str]]:
    times = []
    walls = []
    modules: set[str] = set()
    importtime(code)  # writes the bytecode
    for _ in range(RUNS):
        t, wall, modules = importtime(code)
        times.append(t)
        walls.append(wall)
    return statistics.median(times), statistics.median(walls), modules


def main() -> None:
    base, base_wall, base_modules = measure("pass")
    boto, boto_wall, boto_modules = measure("import boto3")
    print(f"handler import, python -X importtime, median of {RUNS} runs; ratios to the baseline")
    print("`python -c pass` (import time = sum of the modules' own times; process = wall time")
    print("of the whole interpreter run)")
    print(
        f"  reference `import boto3`: import time {boto / base:6.1f}x, process "
        f"{boto_wall / base_wall:4.2f}x, {len(boto_modules - base_modules)} extra modules"
    )
    for kind in KINDS:
        t, wall, modules = measure(f"import eventual.aws_runtime.handlers.{kind}")
        extra = modules - base_modules
        heavy = sorted(m for m in ("boto3", "botocore", "pydantic", "eventual.core") if m in extra)
        print(
            f"  handlers.{kind:<13} import time {t / base:6.1f}x ({t / boto:4.2f}x boto3's), "
            f"process {wall / base_wall:4.2f}x, {len(extra):3d} extra modules, "
            f"heavy: {', '.join(heavy) or 'none'}"
        )


if __name__ == "__main__":
    main()
