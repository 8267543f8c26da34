"""The HTTP benchmark's in-process figure drives both apps the way uvicorn does and checks
their answers (``benchmarks.http_rpc.app_layer``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind", ["ours", "starlette"])
def test_the_app_layer_answers_the_benchmark_request(kind: str) -> None:
    # A fresh process, as the suite runs it (and the benchmarks package is at the root).
    code = (
        "from benchmarks.http_rpc import app_layer; "
        f"print(app_layer({kind!r}, requests=50, rounds=2)['us'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert 0 < float(out.strip()) < 100_000  # microseconds per request, answer checked
