"""Replay scaling: a workflow of N sequential tasks on the in-memory runtime.

Prints, for N = 500 and N = 5,000 (or --sizes), the total time to run the workflow to
completion, the ratio of the two totals (linear is N2/N1 = 10; the engine must stay under 12),
and the cost of a cold replay of the finished history in microseconds per history event.

Times are the process's CPU time (``time.process_time``), the best of several runs, so that other
work on a shared machine does not distort the ratio; wall-clock totals are printed beside them.
``--instructions`` also counts the instructions each size executes under valgrind (a few
minutes), a figure that machine load and CPU caches do not move (9.6 when last measured).

    uv run python benchmarks/replay_scaling.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

from eventual.core import patched, task, workflow
from eventual.core._context import use_runtime
from eventual.core.engine import WorkflowExecutor
from eventual.core.runtime import InMemoryRuntime, VirtualClock
from eventual.core.service import load_service


@task("step")
async def step(i: int) -> int:
    return i + 1


@workflow("sequential")
async def sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await step(i)
    return total


@workflow("sequentialPatched")
async def sequential_patched(n: int) -> int:
    """The marker-heavy variant: every step is behind a patch of its own, so half the calls
    in the history are patch markers (and replay looks each one up)."""
    total = 0
    for i in range(n):
        if patched(f"step-{i}"):
            total += await step(i)
    return total


async def run_once(n: int, wf: Any = None) -> tuple[float, float, int, float]:
    wf = wf or sequential
    service = load_service(sys.modules[__name__], module_only=True)
    async with InMemoryRuntime(service, clock=VirtualClock()) as rt:
        with use_runtime(rt):
            # Objects that exist before the run (imports, the service, earlier runs) move to the
            # permanent generation, so the collector's full passes scan only what the run made;
            # otherwise one pass over the process's baseline heap, falling in a short run or not,
            # swings the small size's time by half.
            gc.collect()
            gc.freeze()
            w0 = time.perf_counter()
            t0 = time.process_time()
            handle = await wf.start_execution(n)
            await rt.idle()
            total = time.process_time() - t0
            wall = time.perf_counter() - w0
            gc.unfreeze()
            status = await handle.get_status()
            assert status.result == n * (n + 1) // 2, status
            assert rt.stats["cold_replays"] == 1, rt.stats  # warm all the way
            history = await rt.get_history(handle.execution_id)
    t0 = time.process_time()
    replayed = WorkflowExecutor.replay(wf, history)
    cold = time.process_time() - t0
    assert replayed.completion is not None
    replayed.close()
    return total, cold, len(history), wall


def best_of(runs: list[tuple[float, float, int, float]]) -> tuple[float, float, int, float]:
    return (
        min(r[0] for r in runs),
        min(r[1] for r in runs),
        runs[0][2],
        min(r[3] for r in runs),
    )


def measure(
    n1: int, n2: int, repeats: int, wf: Any = None
) -> tuple[tuple[float, float, int, float], ...]:
    """Interleave the two sizes, so that a change in the machine's load hits both alike; the
    small size is cheap, so it runs three times as often."""
    small: list[tuple[float, float, int, float]] = []
    large: list[tuple[float, float, int, float]] = []
    for _ in range(repeats):
        small.extend(asyncio.run(run_once(n1, wf)) for _ in range(3))
        large.append(asyncio.run(run_once(n2, wf)))
    return best_of(small), best_of(large)


def instructions(n1: int, n2: int) -> float | None:
    """The ratio of the instructions a run of N2 steps executes to those of N1 steps, each net
    of a process that only imports (valgrind's callgrind counts instructions, so the figure is
    the same on a busy machine as on an idle one; it runs about 50x slower)."""
    import re
    import shutil
    import subprocess
    import tempfile

    if shutil.which("valgrind") is None:
        return None
    script = (
        "import asyncio, sys; sys.path.insert(0, sys.argv[1]); import replay_scaling as rs; "
        "n = int(sys.argv[2]); n and asyncio.run(rs.run_once(n))"
    )
    here = str(Path(__file__).resolve().parent)
    with tempfile.TemporaryDirectory() as d:
        procs = {
            n: subprocess.Popen(
                [
                    "valgrind",
                    "--tool=callgrind",
                    f"--callgrind-out-file={d}/cg.{n}",
                    sys.executable,
                    "-c",
                    script,
                    here,
                    str(n),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in (0, n1, n2)
        }
        counts: dict[int, int] = {}
        for n, proc in procs.items():
            _, err = proc.communicate()
            found = re.search(r"Collected : (\d+)", err)
            if proc.returncode != 0 or found is None:
                return None
            counts[n] = int(found.group(1))
    return (counts[n2] - counts[0]) / (counts[n1] - counts[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[500, 5000], metavar=("N1", "N2"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--limit", type=float, default=12.0, help="fail above this ratio")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions under valgrind (minutes; immune to machine load)",
    )
    args = parser.parse_args(argv)
    n1, n2 = args.sizes
    asyncio.run(run_once(min(n1, 200)))  # warm up imports and caches
    (t1, c1, h1, w1), (t2, c2, h2, w2) = measure(n1, n2, args.repeats)
    ratio = t2 / t1
    linear = n2 / n1
    print("times are this machine's: CPU time, best of runs (wall clock in brackets)")
    print(f"{'N':>6} {'total':>22} {'history events':>15} {'cold replay us/event':>21}")
    print(f"{n1:>6} {t1 * 1000:>9.1f} ms ({w1 * 1000:>6.1f} ms) {h1:>15} {c1 / h1 * 1e6:>21.2f}")
    print(f"{n2:>6} {t2 * 1000:>9.1f} ms ({w2 * 1000:>6.1f} ms) {h2:>15} {c2 / h2 * 1e6:>21.2f}")
    print(f"ratio of totals {n2}/{n1}: {ratio:.2f} (linear is {linear:.0f}; limit {args.limit:g})")
    print(f"cold replay cost per event, {n2} vs {n1}: {(c2 / h2) / (c1 / h1):.2f}x (flat is 1)")
    if args.instructions:
        counted = instructions(n1, n2)
        if counted is None:
            print("instruction counts: valgrind is not available or failed")
        else:
            print(
                f"ratio of instructions executed {n2}/{n1}: {counted:.2f} (linear is {linear:.0f})"
            )
    # The same with a patch marker before every step (patched() in every iteration).
    (p1, d1, g1, _), (p2, d2, g2, _) = measure(n1, n2, args.repeats, sequential_patched)
    patched_ratio = p2 / p1
    print(
        f"with a patch marker per step: {n1}: {p1 * 1000:.1f} ms ({g1} events), "
        f"{n2}: {p2 * 1000:.1f} ms ({g2} events)"
    )
    print(
        f"ratio of totals {n2}/{n1} with markers: {patched_ratio:.2f} (linear is {linear:.0f}); "
        f"with markers vs without at {n2}: {p2 / t2:.2f}x the time; "
        f"cold replay per event with markers, {n2} vs {n1}: {(d2 / g2) / (d1 / g1):.2f}x"
    )
    if ratio >= args.limit or patched_ratio >= args.limit:
        print("FAIL: the engine is not linear in history length", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
