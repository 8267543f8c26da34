"""1. Durable local throughput: ours (the SQLite runtime of ``eventual dev``) against DBOS on its
SQLite system database, and against Restate (its server and Python SDK, see ``_restate.py``).

200 executions of a workflow of 10 sequential steps (task calls; DBOS steps), run one after the
other ("sequential": start one, wait for its result, start the next) and all at once
("concurrent": start all 200, then wait for every result). Figures: executions/s and steps/s.
Both sides persist every step before the next one runs, so both survive ``kill -9``.

DBOS runs twice: with the same SQLite pragmas as ours (WAL, ``synchronous=NORMAL``: the fair
comparison, which carries the target of 10x DBOS's steps/s), and as DBOS ships (rollback journal,
``synchronous=FULL``: an fsync per commit, on a smaller count because it is slow). The floor
quoted beside them: plain SQLite commits/s of one small row, on one Python connection, with our
pragmas; no durable engine that commits each step can beat it.

The machine is shared and its speed moves between minutes by more than the gaps the targets
ask about, so the comparison runs in rounds (three; one with ``--quick``): each round starts
ours, DBOS with our pragmas, Restate, the floor and our step's SQL, each in a fresh process,
one after the other; each side's figure is its best round (the least disturbed one), the same
rule for every side.

    uv run python -m benchmarks throughput        # or: uv run python -m benchmarks.throughput
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    NOT_YET,
    Row,
    Section,
    WorkerError,
    best_round,
    find_module,
    log,
    render_text,
    run_worker,
)

NAME = "throughput"
VERSION_UNKNOWN = "1.7"
TITLE = "durable local throughput, 10-step workflows on SQLite"


# ---------------------------------------------------------------- workers (child processes)


def _our_pragmas() -> dict[str, str]:
    """The pragmas of our SQLite runtime (see ``Database._open`` in
    eventual/core/runtime/sqlite/database.py); ``synchronous`` is read from the runtime's
    default."""
    from eventual.core.runtime.sqlite import SqliteRuntime

    default = inspect.signature(SqliteRuntime).parameters["synchronous"].default
    return {"journal_mode": "WAL", "synchronous": str(default).upper(), "temp_store": "MEMORY"}


def ours(n: int, steps: int, synchronous: str | None = None) -> dict[str, Any]:
    """Our SQLite runtime: n executions of ``steps`` steps, sequential then concurrent (with
    ``synchronous``: that setting instead of the runtime's default)."""
    from benchmarks import _eventual_app as app
    from eventual.core._context import use_runtime
    from eventual.core.runtime.sqlite import SqliteRuntime

    async def main(db: Path) -> dict[str, Any]:
        options: dict[str, Any] = {} if synchronous is None else {"synchronous": synchronous}
        async with SqliteRuntime(app.service(), db_path=db, **options) as rt:
            with use_runtime(rt):
                want = app.expected(steps)

                async def one() -> None:
                    handle = await app.bench_sequential.start_execution(steps)
                    done = await rt.wait_for_execution(handle.execution_id, timeout=120)
                    assert done.result == want, done

                await one()  # warm up
                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(n):
                    await one()
                sequential = time.perf_counter() - t0
                sequential_cpu = time.process_time() - c0

                gc.collect()
                t0, c0 = time.perf_counter(), time.process_time()
                handles = [await app.bench_sequential.start_execution(steps) for _ in range(n)]
                for handle in handles:
                    done = await rt.wait_for_execution(handle.execution_id, timeout=300)
                    assert done.result == want, done
                concurrent = time.perf_counter() - t0
                concurrent_cpu = time.process_time() - c0
                assert rt.errors == [], rt.errors
        return {
            "sequential": sequential,
            "concurrent": concurrent,
            "sequential_cpu": sequential_cpu,
            "concurrent_cpu": concurrent_cpu,
            "pragmas": _our_pragmas(),
        }

    with tempfile.TemporaryDirectory(prefix="bench-ours-") as d:
        return asyncio.run(main(Path(d) / "dev.db"))


def dbos(n: int, steps: int, pragmas: str, synchronous: str = "NORMAL") -> dict[str, Any]:
    """DBOS on SQLite: n executions of ``steps`` steps, sequential then concurrent (async
    workflows, ``DBOS.start_workflow_async`` and ``handle.get_result``)."""
    from benchmarks import _dbos_app as app

    want = steps * (steps + 1) // 2

    async def main() -> dict[str, Any]:
        from dbos import DBOS

        assert await app.bench_sequential(steps) == want  # warm up
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            handle = await DBOS.start_workflow_async(app.bench_sequential, steps)
            assert await handle.get_result() == want
        sequential = time.perf_counter() - t0
        sequential_cpu = time.process_time() - c0

        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        handles = [await DBOS.start_workflow_async(app.bench_sequential, steps) for _ in range(n)]
        for handle in handles:
            assert await handle.get_result() == want
        concurrent = time.perf_counter() - t0
        concurrent_cpu = time.process_time() - c0
        return {
            "sequential": sequential,
            "concurrent": concurrent,
            "sequential_cpu": sequential_cpu,
            "concurrent_cpu": concurrent_cpu,
        }

    with tempfile.TemporaryDirectory(prefix="bench-dbos-") as d:
        app.launch(Path(d) / "dbos.sqlite", pragmas, synchronous)
        try:
            result = asyncio.run(main())
        finally:
            app.destroy()
    result["version"] = app.version()
    return result


def restate(n: int, steps: int, concurrency: int) -> dict[str, Any]:
    """Restate: n invocations of the ``steps``-step handler over its ingress (the blocking
    call: the response is the result), one after the other, then ``concurrency`` at a time.
    Its server and the SDK's service are separate processes; their CPU is not counted."""
    import httpx

    from benchmarks._restate import RestatePeer, RestateUnavailable, invoke

    want = steps * (steps + 1) // 2

    async def main(url: str) -> dict[str, Any]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(timeout=120, limits=limits) as client:
            assert await invoke(client, url, steps) == want  # warm up
            t0 = time.perf_counter()
            for _ in range(n):
                assert await invoke(client, url, steps) == want
            sequential = time.perf_counter() - t0
            gate = asyncio.Semaphore(concurrency)

            async def one() -> None:
                async with gate:
                    assert await invoke(client, url, steps) == want

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            concurrent = time.perf_counter() - t0
        return {"sequential": sequential, "concurrent": concurrent}

    try:
        with RestatePeer() as peer:
            result = asyncio.run(main(peer.url()))
            result["version"] = peer.version
            return result
    except RestateUnavailable as exc:
        return {"missing": str(exc)}


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """A plain connection with our runtime's pragmas (``synchronous`` as given)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    for name, value in {**_our_pragmas(), "synchronous": synchronous}.items():
        conn.execute(f"PRAGMA {name} = {value}")
    return conn


_WARM_UP = 100  # commits before the timed ones


def _commit_seconds(
    conn: sqlite3.Connection, statement: str, params: list[Any], *, many: bool = False
) -> float:
    """One transaction per item of ``params`` (``statement`` run with it, or ``executemany``
    over it): the first :data:`_WARM_UP` untimed, then the seconds the rest take."""
    run = conn.executemany if many else conn.execute

    def commit_each(items: list[Any]) -> None:
        for item in items:
            conn.execute("BEGIN IMMEDIATE")
            run(statement, item)
            conn.execute("COMMIT")

    commit_each(params[:_WARM_UP])
    t0 = time.perf_counter()
    commit_each(params[_WARM_UP:])
    return time.perf_counter() - t0


def floor(commits: int, synchronous: str) -> dict[str, Any]:
    """Plain SQLite: ``commits`` transactions of one small INSERT each, our pragmas."""
    payload = json.dumps({"type": "TaskSucceeded", "seq": 1, "result": 1, "pad": "x" * 120})
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as d:
        conn = _connect(Path(d) / "floor.db", synchronous)
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, execution TEXT, body TEXT)")
        params = [(f"w/{i}", payload) for i in range(_WARM_UP + commits)]
        seconds = _commit_seconds(conn, "INSERT INTO t (execution, body) VALUES (?, ?)", params)
        conn.close()
    return {"seconds": seconds}


def step_sql(commits: int, synchronous: str) -> dict[str, Any]:
    """Our runtime's own SQL for one sequential step, and nothing else: ``commits``
    transactions that each append a step's two history rows (the task's result and the next
    task's scheduling, encoded by the runtime's codec) to the runtime's own schema, our
    pragmas. What our steps/s would be if the Python around a step cost nothing."""
    from datetime import UTC, datetime

    from eventual.core.history import TaskScheduled, TaskSucceeded
    from eventual.core.runtime.sqlite.codec import _event_from, _event_json
    from eventual.core.runtime.sqlite.schema import _SCHEMA

    now = datetime.now(UTC)
    result = _event_json(TaskSucceeded(seq=1, result=2, timestamp=now))
    scheduled = _event_json(TaskScheduled(seq=2, name="benchStep", args=[2], timestamp=now))
    per_execution = 10

    def rows(i: int) -> list[tuple[str, int, str]]:
        execution = f"benchSequential/{i // per_execution:026d}"
        position = 2 * (i % per_execution)
        return [(execution, position, result), (execution, position + 1, scheduled)]

    steps = [rows(i) for i in range(_WARM_UP + commits)]
    with tempfile.TemporaryDirectory(prefix="bench-step-sql-") as d:
        conn = _connect(Path(d) / "steps.db", synchronous)
        conn.executescript(_SCHEMA)
        insert = "INSERT INTO history (execution_id, position, event) VALUES (?,?,?)"
        seconds = _commit_seconds(conn, insert, steps, many=True)
        stored = conn.execute("SELECT COUNT(*) FROM history").fetchone()[0]
        last = conn.execute(
            "SELECT event FROM history WHERE execution_id = ? ORDER BY position",
            (steps[-1][0][0],),
        ).fetchall()
        conn.close()
    # What the runtime reads back from the last execution's rows (as a check they are real).
    read_back = [type(_event_from(text)).__name__ for (text,) in last]
    return {"seconds": seconds, "rows": stored, "read_back": read_back}


# ---------------------------------------------------------------- the comparison


def available() -> str | None:
    """``None`` when our side can run, else why not."""
    if not find_module("eventual.core.runtime.sqlite"):
        return NOT_YET
    return None


def _attempt(target: str, **params: Any) -> dict[str, Any]:
    """``run_worker``, or, when the worker fails, ``{"missing": why}``: one side that fails
    (a round of it, or all) leaves the other sides' figures standing."""
    try:
        return run_worker(target, **params)
    except WorkerError as exc:
        log(str(exc))
        return {"missing": f"failed: {str(exc).splitlines()[0]}"[:60]}


def _missing(result: dict[str, Any]) -> str:
    return str(result.get("missing") or "")


def run(quick: bool = False) -> Section:
    n = 20 if quick else 200
    shipped_n = 5 if quick else 30
    steps = 10
    commits = 500 if quick else 5000

    rounds = 1 if quick else 3
    section = Section(NAME, TITLE, "DBOS (SQLite system database)")

    missing = available()
    ours_rounds: list[dict[str, Any]] = []
    same_rounds: list[dict[str, Any]] = []
    rest_rounds: list[dict[str, Any]] = []
    base_rounds: list[dict[str, Any]] = []
    sql_rounds: list[dict[str, Any]] = []
    synchronous = "NORMAL"
    for r in range(1, rounds + 1):
        tag = f"[{NAME}] round {r}/{rounds}:"
        if missing is None:
            log(f"{tag} ours, {n} executions x {steps} steps, sequential then concurrent")
            try:
                ours_rounds.append(run_worker("benchmarks.throughput:ours", n=n, steps=steps))
            except WorkerError as exc:
                missing = "failed"
                section.notes.append(f"our side failed: {str(exc).splitlines()[0]}")
                log(str(exc))
        if ours_rounds:
            synchronous = ours_rounds[0]["pragmas"]["synchronous"]
        log(f"{tag} DBOS with our pragmas, {n} executions x {steps} steps")
        same_rounds.append(
            _attempt(
                "benchmarks.throughput:dbos",
                n=n,
                steps=steps,
                pragmas="same",
                synchronous=synchronous,
            )
        )
        log(f"{tag} Restate, {n} invocations x {steps} steps, sequential then {n} at once")
        rest_rounds.append(
            _attempt("benchmarks.throughput:restate", n=n, steps=steps, concurrency=n)
        )
        log(f"{tag} plain SQLite, {commits} commits; our step's SQL alone, {commits} steps")
        base_rounds.append(
            _attempt("benchmarks.throughput:floor", commits=commits, synchronous=synchronous)
        )
        sql_rounds.append(
            _attempt("benchmarks.throughput:step_sql", commits=commits, synchronous=synchronous)
        )
    our = best_round(ours_rounds) if ours_rounds else None
    same = best_round(same_rounds)
    rest = best_round(rest_rounds)
    base = best_round(base_rounds)
    own_sql = best_round(sql_rounds)
    if rounds > 1:
        section.notes.append(
            f"each side's figures: its best of {rounds} rounds, the sides interleaved in each "
            "round, each in a fresh process (DBOS as shipped and ours with synchronous=FULL: "
            "one round)"
        )

    log(f"[{NAME}] DBOS as shipped: {shipped_n} executions x {steps} steps")
    shipped = _attempt("benchmarks.throughput:dbos", n=shipped_n, steps=steps, pragmas="shipped")
    full: dict[str, Any] | None = None
    if our is not None:
        log(f"[{NAME}] ours with synchronous=FULL: {shipped_n} executions x {steps} steps")
        try:
            full = run_worker(
                "benchmarks.throughput:ours", n=shipped_n, steps=steps, synchronous="FULL"
            )
        except WorkerError as exc:
            section.notes.append(f"ours with synchronous=FULL failed: {str(exc).splitlines()[0]}")
    full_commits = 50 if quick else 500
    full_base: dict[str, Any] = {}
    if full is not None:  # (its floor only beside it)
        log(f"[{NAME}] plain SQLite with synchronous=FULL, {full_commits} commits")
        full_base = _attempt(
            "benchmarks.throughput:floor", commits=full_commits, synchronous="FULL"
        )

    def rate(result: dict[str, Any] | None, key: str, count: int) -> float | None:
        return None if result is None or _missing(result) else count / float(result[key])

    same_missing, shipped_missing = _missing(same), _missing(shipped)
    base_missing, sql_missing = _missing(base), _missing(own_sql)
    for side, why in (
        ("DBOS with our pragmas", same_missing),
        ("DBOS as shipped", shipped_missing),
        ("plain SQLite", base_missing),
        ("our step's SQL alone", sql_missing),
    ):
        if why:
            section.notes.append(f"{side} did not run: {why}")
    section.peer = f"DBOS {same.get('version', VERSION_UNKNOWN)} (SQLite system database)"
    for mode in ("sequential", "concurrent"):
        ours_exec = rate(our, mode, n)
        peer_exec = rate(same, mode, n)
        section.rows.append(
            Row(
                NAME,
                f"{mode} executions/s",
                "exec/s",
                ours_exec,
                peer_exec,
                missing=missing or "",
                peer_missing=same_missing,
            )
        )
        section.rows.append(
            Row(
                NAME,
                f"{mode} steps/s",
                "steps/s",
                None if ours_exec is None else ours_exec * steps,
                None if peer_exec is None else peer_exec * steps,
                target=15 if mode == "sequential" else 20,
                missing=missing or "",
                peer_missing=same_missing,
                note=f"DBOS with our pragmas (WAL, synchronous={synchronous})",
            )
        )
    rest_missing = _missing(rest)
    if rest_missing:
        section.notes.append(f"Restate did not run: {rest_missing}")
    for mode in ("sequential", "concurrent"):
        section.rows.append(
            Row(
                NAME,
                f"{mode} steps/s vs Restate",
                "steps/s",
                rate(our, mode, n * steps),
                rate(rest, mode, n * steps),
                target=10,
                missing=missing or "",
                peer_missing=rest_missing[:60],
                note=f"Restate {rest.get('version', VERSION_UNKNOWN)} (its server's own log, "
                "fsynced), blocking ingress calls"
                + (f", {n} at once" if mode == "concurrent" else ""),
            )
        )
    for mode in ("sequential", "concurrent"):
        ours_steps = rate(our, mode, n * steps)
        section.rows.append(
            Row(
                NAME,
                f"{mode} steps/s vs DBOS as shipped",
                "steps/s",
                ours_steps,
                rate(shipped, mode, shipped_n * steps),
                missing=missing or "",
                peer_missing=shipped_missing,
                note=f"DBOS defaults: rollback journal, synchronous=FULL; {shipped_n} executions",
            )
        )
    if full is not None:
        for mode in ("sequential", "concurrent"):
            section.rows.append(
                Row(
                    NAME,
                    f"{mode} steps/s, both synchronous=FULL",
                    "steps/s",
                    shipped_n * steps / full[mode],
                    rate(shipped, mode, shipped_n * steps),
                    peer_missing=shipped_missing,
                    note=f"ours (WAL) vs DBOS as shipped: fsync per commit; {shipped_n} executions",
                )
            )
    for mode in ("sequential", "concurrent"):
        section.rows.append(
            Row(
                NAME,
                f"{mode}: process CPU per step",
                "ms",
                None if our is None else our[f"{mode}_cpu"] / (n * steps) * 1000,
                None if same_missing else same[f"{mode}_cpu"] / (n * steps) * 1000,
                higher_is_better=False,
                missing=missing or "",
                peer_missing=same_missing,
                note="vs DBOS with our pragmas; all threads; least disturbed by a shared machine",
            )
        )
    best = (
        None if our is None else max(n * steps / our["sequential"], n * steps / our["concurrent"])
    )
    section.rows.append(
        Row(
            NAME,
            "our steps/s vs plain SQLite commits/s",
            "per s",
            best,
            rate(base, "seconds", commits),
            missing=missing or "",
            peer_missing=base_missing,
            target=0.4,
            note="the floor: one INSERT per commit, same pragmas; ratio = fraction of it",
        )
    )
    if full is not None:
        section.rows.append(
            Row(
                NAME,
                "our steps/s vs plain SQLite commits/s, both synchronous=FULL",
                "per s",
                max(shipped_n * steps / full["sequential"], shipped_n * steps / full["concurrent"]),
                rate(full_base, "seconds", full_commits),
                peer_missing=_missing(full_base),
                note=f"an fsync per commit: the disk's own limit; ours {shipped_n} executions",
            )
        )
    section.rows.append(
        Row(
            NAME,
            "our steps/s vs our step's SQL alone",
            "per s",
            best,
            rate(own_sql, "seconds", commits),
            missing=missing or "",
            peer_missing=sql_missing,
            note="a step's own statements (2 history rows, our schema) with no Python around",
        )
    )
    section.rows.append(
        Row(
            NAME,
            "our step's SQL alone vs plain SQLite commits/s",
            "per s",
            rate(own_sql, "seconds", commits),
            rate(base, "seconds", commits),
            missing=sql_missing,
            peer_missing=base_missing,
            note="what our schema and rows cost against the floor's one small row",
        )
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
