"""A ``moto.server`` process for tests: :class:`MotoServer` starts one on a free 127.0.0.1
port, waits until it answers, hands out boto3 clients pointed at it, and stops it by its PID.

Its SQS runs on a clock that :meth:`MotoServer.shift_clock` moves forward (delays, visibility
timeouts, the deduplication window): a test that moves the runtime's clock past a delayed
message (a task's timeout timer, a message back after its visibility timeout) moves this one
too, instead of waiting in real time.

Test support only; needs moto's server extra (``moto[server,cloudformation]``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .testing_lambda import REGION, HarnessError

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


# Runs the server with moto's SQS clock ahead of the real one by the number of seconds in the
# file $EVENTUAL_MOTO_CLOCK (read on every look at the clock: a few microseconds).
_SERVER = """
import os, sys
import moto.core.utils as utils
import moto.sqs.models as sqs_models
from moto.server import main

path = os.environ["EVENTUAL_MOTO_CLOCK"]

def offset():
    try:
        with open(path) as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0

def unix_time(dt=None):
    return utils.unix_time(dt) + (offset() if dt is None else 0.0)

def unix_time_millis(dt=None):
    return unix_time(dt) * 1000.0

sqs_models.unix_time = unix_time
sqs_models.unix_time_millis = unix_time_millis
main(sys.argv[1:])
"""


class MotoServer:
    """``with MotoServer() as server: server.client("s3")...`` — a ``moto.server`` process on
    a free loopback port, stopped (by its PID) on exit."""

    def __init__(self, *, log: Path | None = None, start_timeout: float = 60.0) -> None:
        self.log = log
        self.start_timeout = start_timeout
        self.port = 0
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._clock_dir: tempfile.TemporaryDirectory[str] | None = None
        self.clock_offset = 0.0
        """How far (seconds) the server's SQS clock is ahead of the real one."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._log_file = open(self.log, "wb") if self.log else subprocess.DEVNULL
        self._clock_dir = tempfile.TemporaryDirectory(prefix="eventual-moto-clock-")
        self.shift_clock(0)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                **CREDENTIALS,
                "AWS_DEFAULT_REGION": REGION,
                "EVENTUAL_MOTO_CLOCK": self._clock_file(),
            },
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise HarnessError(f"moto server exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise HarnessError(
                        f"moto server did not answer on {self.url} within {self.start_timeout}s"
                    ) from None
                time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()
        self._log_file = None
        if self._clock_dir is not None:
            self._clock_dir.cleanup()
            self._clock_dir = None

    def _clock_file(self) -> str:
        assert self._clock_dir is not None, "the server is not running"
        return str(Path(self._clock_dir.name) / "offset")

    def shift_clock(self, seconds: float) -> None:
        """Move the server's SQS clock ``seconds`` forward: delayed messages and messages
        waiting out a visibility timeout become visible as if that time had passed."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.clock_offset += seconds
        path = Path(self._clock_file())
        tmp = path.with_suffix(".tmp")
        tmp.write_text(repr(self.clock_offset))
        tmp.replace(path)

    def session(self) -> Any:
        import boto3

        return boto3.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )

    def client(self, service: str, session: Any = None) -> Any:
        return (session or self.session()).client(service, endpoint_url=self.url)


__all__ = ["CREDENTIALS", "MotoServer"]
