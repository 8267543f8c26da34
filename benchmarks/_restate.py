"""Restate as a peer: its server (the binary that the npm package ``@restatedev/restate-server``
ships), and a Python service of the same 10-step workflow, written as Restate's documentation
writes one (a ``restate.Service`` handler whose steps are ``ctx.run_typed`` calls), served over
HTTP/2 by hypercorn from the ``restate-sdk`` package.

``RestatePeer()`` is a context manager: it installs the server into a cache folder (once;
``npm install`` from the registry), starts it and the service on free ports of 127.0.0.1,
registers the service with the server's admin API, and stops both by PID on exit.
``invoke(client, n)`` is the blocking ingress call a user's client makes
(``POST /Bench/run`` on the ingress port: the response is the handler's result).

Restate keeps its journal in its own log (RocksDB with its write-ahead log fsynced: the
server's defaults, left as they are).

Where Restate cannot be installed or started, ``RestateUnavailable`` says why, and the
benchmarks print that instead of its figures.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VERSION = "1.7"
"""The server release line measured (``@restatedev/restate-server@~1.7``)."""
CACHE = Path(os.environ.get("EVENTUAL_BENCH_CACHE") or Path.home() / ".cache" / "eventual-bench")
STEPS_SERVICE = "Bench"


class RestateUnavailable(RuntimeError):
    """Restate cannot run here; the message says why."""


def server_binary() -> Path:
    """The ``restate-server`` binary, installed from the npm registry into the cache."""
    folder = CACHE / f"restate-server-{VERSION}"
    found = sorted(folder.glob("node_modules/@restatedev/restate-server-*/bin/restate-server"))
    if found:
        return found[0]
    npm = shutil.which("npm")
    if npm is None:
        raise RestateUnavailable("npm is not installed (Restate's server comes from npm)")
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent",
         f"@restatedev/restate-server@~{VERSION}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    found = sorted(folder.glob("node_modules/@restatedev/restate-server-*/bin/restate-server"))
    if proc.returncode != 0 or not found:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RestateUnavailable(f"npm install @restatedev/restate-server failed: {tail[0]}")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RestateUnavailable(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RestateUnavailable(f"{what} did not listen on port {port} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class RestatePeer:
    def __init__(self) -> None:
        self.ingress = 0
        self.admin = 0
        self._server: subprocess.Popen[bytes] | None = None
        self._service: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Any = None
        self.version = ""

    def __enter__(self) -> RestatePeer:
        try:
            import hypercorn  # noqa: F401
            import restate  # noqa: F401
        except ImportError as exc:
            raise RestateUnavailable(f"the Python SDK is not installed ({exc.name})") from None
        binary = server_binary()
        self.version = (
            subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
            .stdout.strip()
            .removeprefix("restate-server ")
        )
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-restate-")
        base = Path(self._tmp.name)
        self.ingress, self.admin, fabric, sdk = (_free_port() for _ in range(4))
        env = {
            **os.environ,
            "RESTATE_BASE_DIR": str(base / "data"),
            "RESTATE_NODE_NAME": "bench",
            "RESTATE_LISTEN_MODE": "tcp",
            "RESTATE_BIND_ADDRESS": f"127.0.0.1:{fabric}",
            "RESTATE_ADVERTISED_ADDRESS": f"http://127.0.0.1:{fabric}",
            "RESTATE_INGRESS__BIND_ADDRESS": f"127.0.0.1:{self.ingress}",
            "RESTATE_ADMIN__BIND_ADDRESS": f"127.0.0.1:{self.admin}",
            "RESTATE_ADMIN__QUERY_ENGINE__PGSQL_BIND_ADDRESS": f"127.0.0.1:{_free_port()}",
            "RESTATE_DISABLE_TELEMETRY": "true",
            "RESTATE_LOG_FILTER": "error",
        }
        log = self._log = open(base / "server.log", "wb")  # closed by __exit__
        try:
            self._server = subprocess.Popen(
                [str(binary), "--no-logo"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            self._service = subprocess.Popen(
                [sys.executable, "-m", "benchmarks._restate_app", str(sdk)],
                cwd=Path(__file__).resolve().parent.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            _wait_port(self.admin, self._server, "restate-server", 60)
            _wait_port(self.ingress, self._server, "restate-server", 60)
            _wait_port(sdk, self._service, "the Restate service (hypercorn)", 60)
            self._register(f"http://127.0.0.1:{sdk}")
        except BaseException as exc:
            log.flush()
            text = (base / "server.log").read_text(errors="replace")[-600:]
            self.__exit__()
            if isinstance(exc, RestateUnavailable):
                raise RestateUnavailable(f"{exc}; log: {text}") from None
            raise
        return self

    def _register(self, uri: str) -> None:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{self.admin}/deployments", json={"uri": uri}, timeout=10
                )
                if r.status_code < 300:
                    return
                error = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                error = str(exc)
            if time.monotonic() > deadline:
                raise RestateUnavailable(f"registering the service failed: {error}")
            time.sleep(0.2)

    def url(self, handler: str = "run") -> str:
        return f"http://127.0.0.1:{self.ingress}/{STEPS_SERVICE}/{handler}"

    def __exit__(self, *exc: object) -> None:
        _stop(self._service)
        _stop(self._server)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


async def invoke(client: Any, url: str, steps: int) -> int:
    """One blocking ingress call (``client``: an ``httpx.AsyncClient``): start the handler
    and wait for its result."""
    r = await client.post(url, json=steps)
    r.raise_for_status()
    return int(r.json())
