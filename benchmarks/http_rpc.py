"""4. HTTP: an RPC command served by the dev server (``eventual dev``: uvicorn, our ASGI adapter,
core's HttpHandler with routing, input validation and the error contract) against a bare
Starlette app with one JSON route on the same uvicorn settings (uvicorn's "auto": uvloop and
httptools, the CLI's dependencies, as ``eventual dev --loop auto`` runs; one process, no access
log, lifespan off, 127.0.0.1).

Each server runs in its own process; a third process loads it over loopback with a fixed number
of keep-alive connections for a fixed time (after a warm-up), each connection sending the next
request when the previous answer is in. Figures: requests/s, p50 and p99 latency. The runs
alternate between the two servers. Target: at least 1.0 of bare Starlette's requests/s (issue
18, item 5).

    uv run python -m benchmarks http      # or: uv run python -m benchmarks.http_rpc
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    NOT_YET,
    ROOT,
    Row,
    Section,
    WorkerError,
    find_module,
    log,
    percentile,
    render_text,
    run_worker,
)

NAME = "http"
TITLE = "HTTP: one RPC command over loopback"
PATH = "/rpc/add"
BODY = b'{"a": 20, "b": 22}'
EXPECTED = {"sum": 42}
HOST = "127.0.0.1"
MAX_REQUESTS = 5_000_000  # a bound on top of the time bound


# ---------------------------------------------------------------- the peer: bare Starlette


def starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def add(request: Request) -> JSONResponse:
        numbers = await request.json()
        return JSONResponse({"sum": numbers["a"] + numbers["b"]})

    return Starlette(routes=[Route(PATH, add, methods=["POST"])])


def serve_starlette(port: int) -> None:
    """Serve the bare app as ``uvicorn app --host 127.0.0.1 --port PORT`` does (uvicorn binds
    the socket), with the dev server's uvicorn settings (eventual/cli/dev.py:
    ``uvicorn.Config(app, lifespan="off", log_config=None, access_log=...)``), access log off
    as for the dev server under test."""
    import uvicorn

    config = uvicorn.Config(
        starlette_app(),
        host=HOST,
        port=port,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


# ---------------------------------------------------------------- the app layer, in process


def _asgi_scope() -> dict[str, Any]:
    """What uvicorn hands an app for the benchmark's request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", f"{HOST}:8000".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "server": (HOST, 8000),
        "client": (HOST, 50000),
    }


def app_layer(kind: str, requests: int, rounds: int) -> dict[str, Any]:
    """The app's own CPU per request, no server or socket: the request handed to the ASGI app
    (``ours``: the dev server's ``ServiceApp`` over the SQLite runtime; ``starlette``: the bare
    app) as uvicorn hands it, the answer checked. The least of ``rounds`` rounds, in
    microseconds per request."""

    async def main() -> dict[str, Any]:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": BODY, "more_body": False}

        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        async def measure(app: Any) -> float:
            best = float("inf")
            for _ in range(200):  # warm-up: first-use costs stay out
                await app(_asgi_scope(), receive, send)
            for _ in range(rounds):
                sent.clear()
                c0 = time.process_time()
                for _ in range(requests):
                    await app(_asgi_scope(), receive, send)
                best = min(best, (time.process_time() - c0) / requests * 1e6)
                if json.loads(sent[-1]["body"]) != EXPECTED:
                    raise AssertionError(f"{kind} answered {sent[-1]!r}")
            return best

        if kind == "starlette":
            return {"us": await measure(starlette_app())}
        from eventual.cli.server import ServiceApp
        from eventual.core.runtime.sqlite import SqliteRuntime
        from eventual.core.service import load_service

        service = load_service("benchmarks._http_service")
        with tempfile.TemporaryDirectory(prefix="bench-http-app-") as d:
            async with SqliteRuntime(service, db_path=Path(d) / "dev.db") as runtime:
                return {"us": await measure(ServiceApp(service, runtime))}

    return asyncio.run(main())


# ---------------------------------------------------------------- the load generator


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, body
            body += chunk[:-2]
    raise RuntimeError(f"response without a length: {head!r}")


def load(port: int, seconds: float, warmup: float, connections: int) -> dict[str, Any]:
    """Keep ``connections`` keep-alive connections busy for ``warmup + seconds``; latencies and
    counts of the last ``seconds`` only. Every answer is checked."""
    request = (
        f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode() + BODY

    async def main() -> dict[str, Any]:
        start = time.perf_counter()
        measure_from = start + warmup
        end = measure_from + seconds
        latencies: list[float] = []
        errors: list[str] = []
        sent = 0

        async def connection() -> None:
            nonlocal sent
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                while sent < MAX_REQUESTS:
                    t0 = time.perf_counter()
                    if t0 >= end:
                        return
                    sent += 1
                    writer.write(request)
                    await writer.drain()
                    status, body = await _read_response(reader)
                    t1 = time.perf_counter()
                    if status != 200 or json.loads(body) != EXPECTED:
                        errors.append(f"{status} {body[:200]!r}")
                        return
                    if t0 >= measure_from and t1 <= end:
                        latencies.append(t1 - t0)
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        await asyncio.wait_for(
            asyncio.gather(*(connection() for _ in range(connections))),
            timeout=warmup + seconds + 60,
        )
        latencies.sort()
        return {
            "total": sent,
            "requests": len(latencies),
            "seconds": seconds,
            "rps": len(latencies) / seconds,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "errors": errors[:5],
        }

    return asyncio.run(main())


# ---------------------------------------------------------------- servers


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _ready(port: int) -> bool:
    """Whether the server answers the benchmark's request correctly."""
    try:
        with socket.create_connection((HOST, port), timeout=2) as s:
            s.sendall(
                (
                    f"POST {PATH} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
                ).encode()
                + BODY
            )
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.startswith(b"HTTP/1.1 200") and b'"sum"' in data
    except OSError:
        return False


@contextlib.contextmanager
def server(kind: str, workdir: Path):
    """Start one server process (``ours``: ``eventual dev``; ``starlette``),
    wait until it answers, yield its port and pid, stop it."""
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if kind == "ours":
        cmd = [
            sys.executable,
            "-c",
            "from eventual.cli.main import main; main()",
            "dev",
            "benchmarks._http_service",
            "--host",
            HOST,
            "--port",
            str(port),
            "--no-reload",
            "--no-access-log",
            "--db",
            str(workdir / f"dev-{port}.db"),
        ]
    else:
        cmd = [sys.executable, "-m", "benchmarks.http_rpc", "--serve-starlette", str(port)]
    out = (workdir / f"{kind}-{port}.log").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not _ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                out.flush()
                tail = (workdir / f"{kind}-{port}.log").read_text()[-2000:]
                raise WorkerError(f"the {kind} server did not come up:\n{tail}")
            time.sleep(0.1)
        yield port, proc.pid
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        out.close()


# ---------------------------------------------------------------- the comparison


def available() -> str | None:
    if not (find_module("eventual.cli.dev") and find_module("eventual.cli.server")):
        return NOT_YET
    return None


def run(quick: bool = False, rounds: int | None = None) -> Section:
    seconds = 2.0 if quick else 5.0
    warmup = 0.5 if quick else 1.0
    rounds = rounds or (1 if quick else 3)
    connections = 16
    section = Section(NAME, TITLE, "bare Starlette on the same uvicorn")
    missing = available()
    kinds = ["starlette"] if missing else ["ours", "starlette"]
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "starlette": []}
    with tempfile.TemporaryDirectory(prefix="bench-http-") as d:
        for r in range(rounds):
            for kind in kinds if r % 2 == 0 else kinds[::-1]:
                log(f"[{NAME}] round {r + 1}/{rounds}: {kind}, {connections} connections")
                try:
                    with server(kind, Path(d)) as (port, pid):
                        cpu0 = process_cpu(pid)
                        result = run_worker(
                            "benchmarks.http_rpc:load",
                            port=port,
                            seconds=seconds,
                            warmup=warmup,
                            connections=connections,
                            timeout=seconds + warmup + 120,
                        )
                        cpu = process_cpu(pid) - cpu0
                        result["cpu_ms"] = cpu / max(1, result["total"]) * 1000
                except WorkerError as exc:
                    if kind == "starlette":
                        raise
                    missing = "failed"
                    section.notes.append(f"our server failed: {str(exc).splitlines()[0]}")
                    log(str(exc))
                    kinds = ["starlette"]
                    continue
                if result["errors"]:
                    raise WorkerError(f"{kind} answered wrongly: {result['errors']}")
                log(
                    f"[{NAME}]   {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
                    f"p99 {result['p99_ms']:.2f} ms, server CPU {result['cpu_ms']:.3f} ms/request"
                )
                results[kind].append(result)

    # The app layer alone, each side in a fresh process (the HTTP figures above are mostly
    # uvicorn and its HTTP parser, the same code on both sides, so they move with the machine).
    app_us: dict[str, float | None] = {"ours": None, "starlette": None}
    for kind in kinds:
        log(f"[{NAME}] app layer in process: {kind}")
        try:
            app_us[kind] = run_worker(
                "benchmarks.http_rpc:app_layer",
                kind=kind,
                requests=2_000 if quick else 5_000,
                rounds=3 if quick else 9,
                timeout=300,
            )["us"]
        except WorkerError as exc:
            if kind == "starlette":
                raise
            log(str(exc))
            section.notes.append(f"our app layer failed: {str(exc).splitlines()[0]}")

    def best(kind: str) -> dict[str, Any] | None:
        runs = results[kind]
        return max(runs, key=lambda x: x["rps"]) if runs else None

    def pick(result: dict[str, Any] | None, key: str) -> float | None:
        return None if result is None else float(result[key])

    def least_cpu(kind: str) -> float | None:
        runs = results[kind]
        return min(x["cpu_ms"] for x in runs) if runs else None

    ours, peer = best("ours"), best("starlette")
    assert peer is not None
    import starlette
    import uvicorn

    section.peer = f"Starlette {starlette.__version__} on uvicorn {uvicorn.__version__}"
    m = missing or ""
    section.rows += [
        Row(NAME, "requests/s", "req/s", pick(ours, "rps"), peer["rps"], target=1.0, missing=m),
        Row(NAME, "p50 latency", "ms", pick(ours, "p50_ms"), peer["p50_ms"], False, missing=m),
        Row(NAME, "p99 latency", "ms", pick(ours, "p99_ms"), peer["p99_ms"], False, missing=m),
        Row(
            NAME,
            "server CPU per request",
            "ms",
            least_cpu("ours"),
            least_cpu("starlette"),
            False,
            missing=m,
            note="the capacity figure least disturbed by a shared machine",
        ),
        Row(
            NAME,
            "app layer CPU per request, in process",
            "us",
            app_us["ours"],
            app_us["starlette"],
            False,
            missing=m or ("failed" if app_us["ours"] is None else ""),
            note="the request handed to the ASGI app directly, no server: what differs",
        ),
    ]
    section.notes.append(
        f"{connections} keep-alive connections from a separate process, {seconds:g} s measured "
        f"after {warmup:g} s of warm-up, best of {rounds} alternating run(s) per server; ours "
        "validates the input with pydantic, the bare route does not"
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs, to check it runs")
    parser.add_argument("--rounds", type=int, help="runs per server (default 3)")
    parser.add_argument("--serve-starlette", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_starlette:
        serve_starlette(args.serve_starlette)
        return 0
    print(render_text([run(quick=args.quick, rounds=args.rounds)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
