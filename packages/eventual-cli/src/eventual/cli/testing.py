"""Run ``eventual dev`` as a subprocess in end-to-end tests.

::

    from eventual.cli.testing import DevServerProcess

    with DevServerProcess("apps/order-service", tmp_path) as server:
        httpx.post(f"{server.url}/rpc/sendInvoice", json=order)

The server gets a free port from the OS, its database and log file live in ``workdir``, and
it is always stopped (SIGINT, then SIGKILL after a deadline) when the block ends. Nothing
here sleeps and hopes: every wait polls with a deadline and fails with the server's log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def free_port() -> int:
    """A TCP port the OS says is free on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    check: Callable[[], T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Call ``check`` until it returns something other than ``None``/``False``; fail with
    ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {text}")
        time.sleep(interval)


class DevServerProcess:
    """``eventual dev`` in a subprocess: ``url``, ``log()``, ``stop()``, ``kill()``."""

    def __init__(
        self,
        entry: str,
        workdir: Path,
        *,
        port: int | None = None,
        db: Path | None = None,
        reload: bool = False,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.entry = entry
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db or (self.workdir / "dev.db")
        self.reload = reload
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / f"dev-server-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # ------------------------------------------------------------ lifecycle

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "eventual.cli.main",
            "dev",
            self.entry,
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--reload" if self.reload else "--no-reload",
            *self.extra_args,
        ]

    def start(self) -> DevServerProcess:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the dev server is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **self.env}
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts}: {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                env=env,
            )
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        def up() -> bool:
            proc = self.process
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"the dev server exited with status {proc.returncode}:\n{self.log()}"
                )
            try:
                return httpx.get(f"{self.url}/openapi.json", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(
            up,
            timeout=self.startup_timeout,
            interval=0.1,
            message=lambda: f"the dev server at {self.url}; its log:\n{self.log()}",
        )

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C (SIGINT) and wait; SIGKILL if it has not stopped by ``timeout``."""
        proc = self.process
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL: the crash the local runtime must survive."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> DevServerProcess:
        try:
            return self.start()
        except BaseException:
            self.kill()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ HTTP helpers

    def system(self, name: str, body: Any = None, *, timeout: float = 10.0) -> Any:
        response = httpx.post(
            f"{self.url}/rpc/_system/{name}", json=body if body is not None else {}, timeout=timeout
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's recorded events in our own JSON form (``{"type": "TaskScheduled",
        ...}``), decoded from the wire format of ``getExecutionWorkflowHistory``."""
        from eventual.core.history import event_dict
        from eventual.core.wire import events_from_wire

        wire = self.system("getExecutionWorkflowHistory", execution_id)["events"]
        return [event_dict(e) for e in events_from_wire(wire)]

    def wait_finished(self, execution_id: str, *, timeout: float = 30.0) -> dict[str, Any]:
        """Poll an execution until it is no longer IN_PROGRESS."""

        def done() -> dict[str, Any] | None:
            execution = self.system("getExecution", execution_id)
            return execution if execution["status"] != "IN_PROGRESS" else None

        return wait_for(done, timeout=timeout, interval=0.1, message=f"{execution_id} to finish")
