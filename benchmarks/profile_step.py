"""Where a durable step's time goes on `eventual dev`'s SQLite runtime.

Runs the throughput benchmark's workload (``benchmarks.throughput.ours``: executions of 10
sequential task steps, then as many at once) under ``cProfile`` and prints each part's share
of the profiled CPU time: the engine, the runtime, the SQLite adapter's Python code, sqlite3's
own calls (SQL and commits), pydantic, json and the asyncio loop. A warm-up run first, so
that imports are not in the profile. Shares, not times: the profiler slows Python calls more
than C calls, so Python's share is overstated by about the same factor on every line.

    uv run python benchmarks/profile_step.py [--executions 400] [--top 12]
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
from pathlib import Path

PARTS: tuple[tuple[str, str], ...] = (
    ("eventual/core/engine", "engine (replay, commands)"),
    ("eventual/core/runtime/sqlite", "SQLite adapter (Python)"),
    ("eventual/core/runtime", "runtime (orchestrate, run tasks)"),
    ("eventual/core", "core, other (models, serialization)"),
)


def part_of(filename: str, function: str) -> str:
    """The part of the step a profiled function belongs to."""
    for needle, part in PARTS:
        if needle in filename:
            return part
    if filename == "~" and "sqlite3." in function:  # "<method 'execute' of 'sqlite3...'>"
        return "sqlite3 (SQL, commit)"
    if "pydantic" in filename or "pydantic" in function:
        return "pydantic (encode, validate)"
    if "asyncio" in filename or "selectors" in filename or "_contextvars" in function:
        return "asyncio loop"
    if "contextlib" in filename:
        return "contextlib (the adapter's context managers)"
    if "json" in filename:
        return "json"
    return "other"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=400, help="executions per phase")
    parser.add_argument("--top", type=int, default=12, help="the slowest functions listed")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from benchmarks import throughput

    throughput.ours(n=20, steps=10)  # warm-up: imports and first-use costs stay out
    profile = cProfile.Profile()
    profile.enable()
    throughput.ours(n=args.executions, steps=10)
    profile.disable()
    stats = pstats.Stats(profile)
    shares: collections.Counter[str] = collections.Counter()
    functions: list[tuple[float, str]] = []
    for (filename, line, function), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        shares[part_of(filename, function)] += own
        functions.append((own, f"{Path(filename).name}:{line} {function}"))
    total = sum(shares.values()) or 1.0
    steps = 2 * args.executions * 10
    print(f"{steps:,} steps ({args.executions} executions x 10 steps, sequential then at once)")
    print(f"{'part':48s} share of CPU")
    for part, seconds in shares.most_common():
        print(f"{part:48s} {100 * seconds / total:5.1f}%")
    print(f"\nthe {args.top} functions with the most own time")
    for seconds, where in sorted(functions, reverse=True)[: args.top]:
        print(f"{100 * seconds / total:5.1f}%  {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
