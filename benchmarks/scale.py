"""Flat at scale (issue 18, item 3): what a busy, long-lived dev database costs a step.

1. Steps/s of 10-step workflows (``throughput``'s workload, sequential and 200 at once) on a
   database that already holds 100,000 finished executions and 1,000,000 history events,
   against the same workload on an empty database, in the same run. The full database is
   cloned in SQL from one real finished execution (its record, history and claims rows, with
   the ids rewritten), so it has the runtime's own schema and indexes. Target: >= 0.9x.
2. 10,000 executions parked on a signal: resident memory per parked execution (the process's
   RSS before and after parking them), and the time to resume them all (a signal each, each
   then runs one step to its end) against the time of 10,000 fresh steps (1,000 executions of
   10 steps, 200 at once) on the same runtime. Target: resuming within 2x.

Both run on the SQLite runtime of ``eventual dev`` in-process (no HTTP), each side in a fresh
process, with its defaults (10,000 warm executions kept); the parked run settles the garbage
collector once started, as ``eventual dev`` does (``settle_after_startup``).

    uv run python -m benchmarks scale       # or: uv run python -m benchmarks.scale [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import Row, Section, WorkerError, log, render_text, run_worker

NAME = "scale"
TITLE = "flat at scale: a database of 100,000 finished executions; 10,000 parked executions"
STEPS = 10


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE")


def build(db: str, finished: int, template_steps: int) -> dict[str, Any]:
    """A database holding ``finished`` finished executions of ``template_steps`` steps each:
    one real run, cloned ``finished - 1`` times in SQL. Returns the counts."""
    from benchmarks import _eventual_app as app
    from eventual.core._context import use_runtime
    from eventual.core.runtime.sqlite import SqliteRuntime

    async def template() -> str:
        async with SqliteRuntime(app.service(), db_path=Path(db)) as rt:
            with use_runtime(rt):
                handle = await app.bench_sequential.start_execution(
                    template_steps, execution_name="template"
                )
                await rt.wait_for_execution(handle.execution_id, timeout=60)
                return handle.execution_id

    source = asyncio.run(template())
    conn = sqlite3.connect(db)
    if finished > 1:
        clones = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        new_id = "(? || '-' || n.i)"
        conn.execute(
            clones + "INSERT INTO executions (id, workflow, status, start_ts, history_length, "
            f"record, build) SELECT {new_id}, workflow, status, start_ts - n.i, history_length, "
            f"replace(record, ?, {new_id}), build FROM executions, n WHERE id = ?",
            (finished - 1, source, source, source, source),
        )
        conn.execute(
            clones + f"INSERT INTO history (execution_id, position, event) SELECT {new_id}, "
            f"position, replace(event, ?, {new_id}) FROM history, n WHERE execution_id = ?",
            (finished - 1, source, source, source, source),
        )
        extra = "".join(f", {column}" for column in _extra_claim_columns(conn))
        conn.execute(
            clones + f"INSERT INTO claims SELECT {new_id}, seq, attempt, run_id, claimed_at, "
            f"last_heartbeat, details, done{extra} FROM claims, n WHERE execution_id = ?",
            (finished - 1, source, source),
        )
        conn.commit()
    executions = conn.execute("SELECT count(*) FROM executions").fetchone()[0]
    events = conn.execute("SELECT count(*) FROM history").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"executions": executions, "events": events}


def _extra_claim_columns(conn: sqlite3.Connection) -> list[str]:
    known = {"execution_id", "seq", "attempt", "run_id", "claimed_at", "last_heartbeat"}
    known |= {"details", "done"}
    return [r[1] for r in conn.execute("PRAGMA table_info(claims)") if r[1] not in known]


def steps(db: str, n: int) -> dict[str, Any]:
    """``n`` executions of 10 steps one after the other, then ``n`` at once, on ``db``."""
    from benchmarks import _eventual_app as app
    from eventual.core._context import use_runtime
    from eventual.core.runtime.sqlite import SqliteRuntime

    async def main() -> dict[str, Any]:
        async with SqliteRuntime(app.service(), db_path=Path(db)) as rt:
            with use_runtime(rt):
                want = app.expected(STEPS)

                async def one() -> None:
                    handle = await app.bench_sequential.start_execution(STEPS)
                    done = await rt.wait_for_execution(handle.execution_id, timeout=120)
                    assert done.result == want, done

                for _ in range(5):
                    await one()  # warm up
                gc.collect()
                t0 = time.perf_counter()
                for _ in range(n):
                    await one()
                sequential = time.perf_counter() - t0
                t0 = time.perf_counter()
                handles = [await app.bench_sequential.start_execution(STEPS) for _ in range(n)]
                for handle in handles:
                    done = await rt.wait_for_execution(handle.execution_id, timeout=300)
                    assert done.result == want, done
                concurrent = time.perf_counter() - t0
                assert rt.errors == [], rt.errors
        return {"sequential": sequential, "concurrent": concurrent}

    return asyncio.run(main())


def parked(parked: int, fresh: int) -> dict[str, Any]:
    """``parked`` executions waiting for a signal: RSS per execution, the time to resume them
    all; and the time of ``fresh`` 10-step executions, 200 at once, on the same runtime."""
    from benchmarks import _eventual_app as app
    from eventual.core._context import use_runtime
    from eventual.core.runtime.collector import settle_after_startup
    from eventual.core.runtime.sqlite import SqliteRuntime

    async def main(db: Path) -> dict[str, Any]:
        async with SqliteRuntime(app.service(), db_path=db) as rt:
            settle_after_startup()  # as ``eventual dev`` does once it has started
            with use_runtime(rt):
                want = app.expected(STEPS)
                # Fresh steps first (the same runtime, nothing parked yet): the baseline.
                for _ in range(5):
                    h = await app.bench_sequential.start_execution(STEPS)
                    await rt.wait_for_execution(h.execution_id, timeout=60)
                gc.collect()
                t0 = time.perf_counter()
                for start in range(0, fresh, 200):
                    handles = [
                        await app.bench_sequential.start_execution(STEPS)
                        for _ in range(min(200, fresh - start))
                    ]
                    for handle in handles:
                        done = await rt.wait_for_execution(handle.execution_id, timeout=300)
                        assert done.result == want, done
                fresh_seconds = time.perf_counter() - t0

                gc.collect()
                before = _rss_bytes()
                ids = []
                for i in range(parked):
                    h = await app.bench_parked.start_execution(i)
                    ids.append(h.execution_id)
                await rt.idle()
                gc.collect()
                after = _rss_bytes()
                t0 = time.perf_counter()
                for start in range(0, parked, 200):  # 200 senders at once, as fresh starts
                    await asyncio.gather(
                        *(rt.send_signal(e, "benchResume", 1) for e in ids[start : start + 200])
                    )
                for i, execution_id in enumerate(ids):
                    done = await rt.wait_for_execution(execution_id, timeout=600)
                    assert done.result == 1 + i + 1, done
                resume_seconds = time.perf_counter() - t0
                assert rt.errors == [], rt.errors
        return {
            "fresh_seconds": fresh_seconds,
            "resume_seconds": resume_seconds,
            "rss_per_execution": (after - before) / parked,
        }

    with tempfile.TemporaryDirectory(prefix="bench-parked-") as d:
        return asyncio.run(main(Path(d) / "dev.db"))


def run(quick: bool = False) -> Section:
    finished = 5_000 if quick else 100_000
    template_steps = 4  # 10 history events per execution: 1,000,000 for 100,000
    n = 20 if quick else 200
    parked_count, fresh = (1_000, 100) if quick else (10_000, 1_000)
    section = Section(NAME, TITLE, "the same workload on an empty database / fresh steps")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as d:
        empty, full = str(Path(d) / "empty.db"), str(Path(d) / "full.db")
        log(f"[{NAME}] building a database of {finished:,} finished executions")
        try:
            build(empty, 1, template_steps)
            counts = build(full, finished, template_steps)
        except (sqlite3.Error, AssertionError) as exc:
            section.notes.append(f"building the databases failed: {exc}")
            return section
        section.notes.append(
            f"the full database: {counts['executions']:,} executions, "
            f"{counts['events']:,} history events"
        )
        best: dict[str, dict[str, float]] = {"empty": {}, "full": {}}
        for round_ in range(2):
            for name, db in (("empty", empty), ("full", full)):
                copy = str(Path(d) / f"run-{name}-{round_}.db")
                shutil.copy(db, copy)
                log(f"[{NAME}] {name} database, round {round_ + 1}: {n} x {STEPS} steps")
                try:
                    r = run_worker("benchmarks.scale:steps", db=copy, n=n)
                except WorkerError as exc:
                    section.notes.append(f"{name}: {str(exc).splitlines()[0]}")
                    return section
                for mode in ("sequential", "concurrent"):
                    best[name][mode] = min(best[name].get(mode, 1e9), r[mode])
                Path(copy).unlink()
    for mode in ("sequential", "concurrent"):
        section.rows.append(
            Row(
                NAME,
                f"{mode} steps/s, full database vs empty",
                "steps/s",
                n * STEPS / best["full"][mode],
                n * STEPS / best["empty"][mode],
                target=0.9,
                note=f"{finished:,} finished executions already recorded; best of 2",
            )
        )
    log(f"[{NAME}] {parked_count:,} executions parked on a signal, then resumed")
    try:
        p = run_worker("benchmarks.scale:parked", parked=parked_count, fresh=fresh)
    except WorkerError as exc:
        section.notes.append(f"parked executions: {str(exc).splitlines()[0]}")
        return section
    section.rows.append(
        Row(
            NAME,
            f"resume {parked_count:,} parked vs {parked_count:,} fresh steps",
            "s",
            p["resume_seconds"],
            p["fresh_seconds"],
            higher_is_better=False,
            target=0.5,
            note="each resumed by a signal and one step; the baseline: "
            f"{fresh:,} executions x {STEPS} steps, 200 at once (target: within 2x)",
        )
    )
    section.notes.append(
        f"resident memory per parked execution: {p['rss_per_execution'] / 1024:.1f} KiB "
        f"(RSS before and after parking {parked_count:,})"
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, to check it runs")
    args = parser.parse_args(argv)
    print(render_text([run(quick=args.quick)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
