from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eventual.testing import TestEnvironment

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def env(request: pytest.FixtureRequest, anyio_backend: str) -> AsyncIterator[TestEnvironment]:
    """A TestEnvironment over the definitions of the requesting test module."""
    async with TestEnvironment(request.module, module_only=True, start=START) as environment:
        yield environment
        assert environment.runtime.errors == []


@dataclass
class PytestRun:
    returncode: int
    output: str

    def outcomes(self) -> dict[str, int]:
        """The counts of pytest's summary line: {"passed": 3, "error": 1, ...}."""
        last = self.output.strip().splitlines()[-1] if self.output.strip() else ""
        found = re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", last)
        return {kind.rstrip("s") if kind == "errors" else kind: int(n) for n, kind in found}


@pytest.fixture
def run_pytest(tmp_path: Path) -> Callable[..., PytestRun]:
    """Write files into a sandbox and run pytest there in a fresh interpreter, which finds the
    eventual plugin through its `pytest11` entry point. (A subprocess, rather than pytester
    in-process, so the sandbox's definitions and error classes do not leak into this session;
    pytester also cannot be enabled from a non-root conftest.)"""

    def run(files: dict[str, str], *args: str) -> PytestRun:
        for name, body in files.items():
            (tmp_path / name).write_text(body)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
        env.pop("PYTEST_ADDOPTS", None)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        return PytestRun(done.returncode, done.stdout + done.stderr)

    return run
