"""End to end, as a user's client sees it (issue 18, item 4): N 10-step workflows started over
HTTP and waited for, by 8 and by 32 concurrent callers; ours on ``eventual dev`` (its SQLite
runtime behind uvicorn), Restate through its ingress (see ``_restate.py``), each called the
way its own client calls it:

- ours: ``POST /rpc/_system/startExecution`` then ``POST /rpc/_system/waitExecution`` (one
  request held until the execution ends: what ``eventual start --wait`` and the Python
  client's ``wait()`` send);
- Restate: one blocking ingress call (``POST /Bench/run``: the response is the result).

Each caller is one keep-alive HTTP/1.1 connection driven by a minimal client on asyncio's
streams (the HTTP benchmark's), the same for both sides: a general client such as httpx costs
more CPU per request than either server (measured here: about 4.6 ms of client CPU per
workflow of ours, 7.7 ms at 32 callers, against 4.1-4.5 ms in our server), and on a machine of
two cores it would be the client that is measured.

Figures: workflow steps/s at each number of callers, and for ours how much of the 8-caller
rate is kept at 32 (the target: it does not fall, >= 1.0). Every result is checked. Each side
runs in its own process; the servers are started on free ports and stopped by PID.

    uv run python -m benchmarks end_to_end    # or: uv run python -m benchmarks.end_to_end
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
HOST = "127.0.0.1"


class _Connection:
    """One keep-alive HTTP/1.1 connection: ``await post(path, json)`` -> (status, body)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def open(self) -> None:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        from benchmarks.http_rpc import _read_response

        await self.open()
        assert self._streams is not None
        reader, writer = self._streams
        data = json.dumps(body).encode()
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        status, raw = await _read_response(reader)
        return status, json.loads(raw) if raw else None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()


async def _drive(n: int, callers: int, port: int, one: Any) -> float:
    """``n`` calls of ``one(connection)``, ``callers`` at a time (a connection each); the
    seconds taken."""
    queue = list(range(n))
    connections = [_Connection(HOST, port) for _ in range(callers)]

    async def caller(connection: _Connection) -> None:
        while queue:
            queue.pop()
            await one(connection)

    try:
        await asyncio.gather(*(c.open() for c in connections))  # before the clock starts
        t0 = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in connections))
        return time.perf_counter() - t0
    finally:
        for connection in connections:
            connection.close()


async def _measure(n: int, port: int, one: Any) -> dict[str, float]:
    warm = _Connection(HOST, port)
    try:
        for _ in range(20):
            await one(warm)
    finally:
        warm.close()
    return {str(c): await _drive(n, c, port, one) for c in CALLERS}


def ours(n: int) -> dict[str, Any]:
    """``eventual dev`` serving the benchmark service; n workflows per number of callers."""
    from benchmarks import _eventual_app as app
    from eventual.cli.testing import DevServerProcess

    want = app.expected(STEPS)

    async def one(http: _Connection) -> None:
        status, started = await http.post(
            "/rpc/_system/startExecution", {"workflow": "benchSequential", "input": STEPS}
        )
        assert status == 200, started
        while True:
            status, done = await http.post(
                "/rpc/_system/waitExecution", {"executionId": started["executionId"]}
            )
            assert status == 200, done
            if done["status"] != "IN_PROGRESS":
                break
        assert done["status"] == "SUCCEEDED" and done["result"] == want, done

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
            return {"seconds": asyncio.run(_measure(n, server.port, one))}


def restate(n: int) -> dict[str, Any]:
    """Restate's server and the SDK's service; n invocations per number of callers."""
    from benchmarks._restate import STEPS_SERVICE, RestatePeer, RestateUnavailable

    want = STEPS * (STEPS + 1) // 2

    async def one(http: _Connection) -> None:
        status, result = await http.post(f"/{STEPS_SERVICE}/run", STEPS)
        assert status == 200 and result == want, (status, result)

    try:
        with RestatePeer() as peer:
            seconds = asyncio.run(_measure(n, peer.ingress, one))
            return {"seconds": seconds, "version": peer.version}
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
