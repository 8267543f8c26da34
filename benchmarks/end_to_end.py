"""End to end, as a user's client sees it (issue 18, item 4): N 10-step workflows started over
HTTP and waited for, by 8 and by 32 concurrent callers; ours on ``eventual dev`` (its SQLite
runtime behind uvicorn), Restate through its ingress (see ``_restate.py``), each called the
way its own client calls it:

- ours: ``POST /rpc/_system/startExecution`` then ``POST /rpc/_system/waitExecution`` (one
  request held until the execution ends: what ``eventual start --wait`` and the Python
  client's ``wait()`` send);
- Restate: one blocking ingress call (``POST /Bench/run``: the response is the result).

Figures: workflow steps/s at each number of callers, and for ours how much of the 8-caller
rate is kept at 32 (the target: it does not fall, >= 1.0). Every result is checked. Each side
runs in its own process; the servers are started on free ports and stopped by PID.

    uv run python -m benchmarks end_to_end    # or: uv run python -m benchmarks.end_to_end
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, Row, Section, WorkerError, log, render_text, run_worker

NAME = "end_to_end"
TITLE = "10-step workflows started and waited for over HTTP, by 8 and 32 concurrent callers"
STEPS = 10
CALLERS = (8, 32)


async def _drive(n: int, callers: int, call: Any) -> float:
    """``n`` calls of ``call()``, ``callers`` at a time; the seconds taken."""
    queue = list(range(n))

    async def caller() -> None:
        while queue:
            queue.pop()
            await call()

    t0 = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return time.perf_counter() - t0


def ours(n: int) -> dict[str, Any]:
    """``eventual dev`` serving the benchmark service; n workflows per number of callers."""
    import httpx

    from benchmarks import _eventual_app as app
    from eventual.cli.testing import DevServerProcess

    want = app.expected(STEPS)

    async def main(url: str) -> dict[str, float]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

            async def one() -> None:
                r = await http.post(
                    "/rpc/_system/startExecution",
                    json={"workflow": "benchSequential", "input": STEPS},
                )
                r.raise_for_status()
                execution_id = r.json()["executionId"]
                while True:
                    r = await http.post(
                        "/rpc/_system/waitExecution", json={"executionId": execution_id}
                    )
                    r.raise_for_status()
                    done = r.json()
                    if done["status"] != "IN_PROGRESS":
                        break
                assert done["status"] == "SUCCEEDED" and done["result"] == want, done

            for _ in range(20):  # warm up
                await one()
            return {str(c): await _drive(n, c, one) for c in CALLERS}

    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as d:
        path = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {"PYTHONPATH": os.pathsep.join(path)}
        server = DevServerProcess(
            "benchmarks._eventual_app",
            Path(d),
            db=Path(d) / "dev.db",
            env=env,
            extra_args=["--no-access-log"],
        )
        with server:
            return {"seconds": asyncio.run(main(server.url))}


def restate(n: int) -> dict[str, Any]:
    """Restate's server and the SDK's service; n invocations per number of callers."""
    import httpx

    from benchmarks._restate import RestatePeer, RestateUnavailable, invoke

    want = STEPS * (STEPS + 1) // 2

    async def main(url: str) -> dict[str, float]:
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=120, limits=limits) as http:

            async def one() -> None:
                assert await invoke(http, url, STEPS) == want

            for _ in range(20):  # warm up
                await one()
            return {str(c): await _drive(n, c, one) for c in CALLERS}

    try:
        with RestatePeer() as peer:
            return {"seconds": asyncio.run(main(peer.url())), "version": peer.version}
    except RestateUnavailable as exc:
        return {"missing": str(exc)}


def run(quick: bool = False) -> Section:
    n = 60 if quick else 300
    section = Section(NAME, TITLE, "Restate (blocking ingress calls)")
    log(f"[{NAME}] ours: eventual dev, {n} workflows x {STEPS} steps at {CALLERS} callers")
    our: dict[str, Any] | None
    missing = ""
    try:
        our = run_worker("benchmarks.end_to_end:ours", n=n)
    except WorkerError as exc:
        our, missing = None, "failed"
        section.notes.append(f"our side failed: {str(exc).splitlines()[0]}")
    log(f"[{NAME}] Restate: {n} invocations x {STEPS} steps at {CALLERS} callers")
    try:
        peer = run_worker("benchmarks.end_to_end:restate", n=n)
    except WorkerError as exc:
        peer = {"missing": str(exc).splitlines()[0]}
    peer_missing = str(peer.get("missing") or "")
    if peer_missing:
        section.notes.append(f"Restate did not run: {peer_missing}")
    else:
        section.peer = f"Restate {peer['version']} (blocking ingress calls)"

    def rate(side: dict[str, Any] | None, callers: int) -> float | None:
        if side is None or "seconds" not in side:
            return None
        return n * STEPS / side["seconds"][str(callers)]

    for callers in CALLERS:
        section.rows.append(
            Row(
                NAME,
                f"{callers} callers: steps/s",
                "steps/s",
                rate(our, callers),
                rate(peer, callers),
                target=5,
                missing=missing,
                peer_missing=peer_missing[:60],
                note="ours: startExecution + waitExecution on eventual dev",
            )
        )
    section.rows.append(
        Row(
            NAME,
            f"ours at {CALLERS[-1]} callers vs ours at {CALLERS[0]}",
            "steps/s",
            rate(our, CALLERS[-1]),
            rate(our, CALLERS[0]),
            target=1.0,
            missing=missing,
            note="the baseline is our own rate at 8 callers: more callers must not slow it",
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
