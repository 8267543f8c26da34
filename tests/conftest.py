"""Shared by the repository-level tests."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_at_root() -> Callable[[str], str]:
    """Run Python ``code`` in a fresh process at the repository's root (where the
    ``benchmarks`` package is, as the suite runs it); its standard output."""

    def run(code: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout

    return run
