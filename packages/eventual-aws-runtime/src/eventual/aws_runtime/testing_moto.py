"""A ``moto.server`` process for tests: :class:`MotoServer` starts one on a free 127.0.0.1
port, waits until it answers, hands out boto3 clients pointed at it, and stops it by its PID.

Test support only; needs moto's server extra (``moto[server,cloudformation]``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._log_file = open(self.log, "wb") if self.log else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION},
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
