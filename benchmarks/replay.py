"""2. Replay scaling: one workflow of N sequential steps, N = 100, 1,000 and 5,000, ours against
DBOS; milliseconds per step at each N, and how much that grows from N = 100 to the largest N.

A durable workflow engine that re-runs the workflow's code from the start for every new event
costs O(N^2) for N steps unless it keeps the workflow warm; ours keeps executions warm and must
stay flat. Both sides run on SQLite with the same pragmas (WAL, synchronous=NORMAL) and persist
every step. Beside them, our in-memory runtime (``benchmarks/replay_scaling.py``, the engine
alone: what TestEnvironment pays) and the cost of a cold replay of the finished history.

    uv run python -m benchmarks replay          # or: uv run python -m benchmarks.replay
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    NOT_YET,
    Row,
    Section,
    WorkerError,
    find_module,
    log,
    render_text,
    run_worker,
)

NAME = "replay"
TITLE = "replay scaling, one workflow of N sequential steps"
SIZES = [100, 1000, 5000]


# ---------------------------------------------------------------- workers (child processes)


def ours_sqlite(sizes: list[int]) -> dict[str, Any]:
    from benchmarks import _eventual_app as app
    from eventual.core._context import use_runtime
    from eventual.core.runtime.sqlite import SqliteRuntime

    async def main(db: Path) -> dict[str, Any]:
        seconds: dict[str, float] = {}
        cpu: dict[str, float] = {}
        async with SqliteRuntime(app.service(), db_path=db) as rt:
            with use_runtime(rt):
                for n in [10, *sizes]:  # the first, small one warms up
                    gc.collect()
                    t0, c0 = time.perf_counter(), time.process_time()
                    handle = await app.bench_sequential.start_execution(n)
                    done = await rt.wait_for_execution(handle.execution_id, timeout=1800)
                    seconds[str(n)] = time.perf_counter() - t0
                    cpu[str(n)] = time.process_time() - c0
                    assert done.result == app.expected(n), done
                assert rt.errors == [], rt.errors
        return {"seconds": seconds, "cpu": cpu}

    with tempfile.TemporaryDirectory(prefix="bench-ours-") as d:
        return asyncio.run(main(Path(d) / "dev.db"))


def ours_memory(sizes: list[int]) -> dict[str, Any]:
    """The lead's replay_scaling.py, one run per size: wall and CPU time of the whole run on the
    in-memory runtime, and the CPU time of a cold replay of the finished history."""
    from benchmarks import replay_scaling

    asyncio.run(replay_scaling.run_once(10))  # warm up
    result: dict[str, Any] = {}
    for n in sizes:
        total, cold, events, wall = asyncio.run(replay_scaling.run_once(n))
        result[str(n)] = {"wall": wall, "cpu": total, "cold_replay": cold, "events": events}
    return result


def dbos(sizes: list[int], synchronous: str = "NORMAL") -> dict[str, Any]:
    from benchmarks import _dbos_app as app

    async def main() -> dict[str, Any]:
        from dbos import DBOS

        seconds: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for n in [10, *sizes]:
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            handle = await DBOS.start_workflow_async(app.bench_sequential, n)
            assert await handle.get_result() == n * (n + 1) // 2
            seconds[str(n)] = time.perf_counter() - t0
            cpu[str(n)] = time.process_time() - c0
        return {"seconds": seconds, "cpu": cpu}

    with tempfile.TemporaryDirectory(prefix="bench-dbos-") as d:
        app.launch(Path(d) / "dbos.sqlite", "same", synchronous)
        try:
            result: dict[str, Any] = asyncio.run(main())
        finally:
            app.destroy()
    result["version"] = app.version()
    return result


# ---------------------------------------------------------------- the comparison


def run(quick: bool = False) -> Section:
    sizes = [50, 200, 500] if quick else SIZES
    section = Section(NAME, TITLE, "DBOS (SQLite, our pragmas)")
    missing = None if find_module("eventual.core.runtime.sqlite") else NOT_YET

    ours: dict[str, Any] | None = None
    if missing is None:
        log(f"[{NAME}] ours (SQLite runtime): N = {sizes}")
        try:
            ours = run_worker("benchmarks.replay:ours_sqlite", sizes=sizes, timeout=1800)
        except WorkerError as exc:
            missing = "failed"
            section.notes.append(f"our side failed: {str(exc).splitlines()[0]}")
            log(str(exc))
    log(f"[{NAME}] ours (in-memory runtime, replay_scaling.py): N = {sizes}")
    memory = run_worker("benchmarks.replay:ours_memory", sizes=sizes, timeout=1800)
    log(f"[{NAME}] DBOS: N = {sizes}")
    peer = run_worker("benchmarks.replay:dbos", sizes=sizes, timeout=1800)
    section.peer = f"DBOS {peer['version']} (SQLite, our pragmas)"

    def ms_per_step(result: dict[str, Any] | None, n: int, key: str = "seconds") -> float | None:
        return None if result is None else result[key][str(n)] / n * 1000

    for n in sizes:
        section.rows.append(
            Row(
                NAME,
                f"N={n:,}: ms per step, SQLite",
                "ms",
                ms_per_step(ours, n),
                ms_per_step(peer, n),
                higher_is_better=False,
                missing=missing or "",
            )
        )
    for n in sizes:
        section.rows.append(
            Row(
                NAME,
                f"N={n:,}: process CPU ms per step, SQLite",
                "ms",
                ms_per_step(ours, n, "cpu"),
                ms_per_step(peer, n, "cpu"),
                higher_is_better=False,
                missing=missing or "",
            )
        )
    first, last = sizes[0], sizes[-1]
    ours_growth = (
        None if ours is None else ms_per_step(ours, last) / ms_per_step(ours, first)  # type: ignore[operator]
    )
    section.rows.append(
        Row(
            NAME,
            f"growth of ms/step, N={last:,} / N={first:,}",
            "x",
            ours_growth,
            ms_per_step(peer, last) / ms_per_step(peer, first),  # type: ignore[operator]
            higher_is_better=False,
            missing=missing or "",
            note="1 = flat (linear total); N/100 = quadratic",
        )
    )
    for n in sizes:
        m = memory[str(n)]
        section.rows.append(
            Row(
                NAME,
                f"N={n:,}: ms per step, our in-memory runtime vs DBOS",
                "ms",
                m["wall"] / n * 1000,
                ms_per_step(peer, n),
                higher_is_better=False,
                note="what TestEnvironment pays; not durable, so not a like-for-like ratio",
            )
        )

    def cold_us(n: int) -> float:
        m = memory[str(n)]
        return m["cold_replay"] / m["events"] * 1e6

    section.notes.append(
        "our cold replay of the finished history (in-memory, CPU): "
        + ", ".join(f"N={n:,}: {cold_us(n):.1f} us/event" for n in sizes)
        + f" (growth {cold_us(last) / cold_us(first):.2f}x; flat is 1)"
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    args = parser.parse_args(argv)
    print(render_text([run(quick=args.quick)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
