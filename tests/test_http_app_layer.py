"""The HTTP benchmark's in-process figure drives both apps the way uvicorn does and checks
their answers (``benchmarks.http_rpc.app_layer``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.mark.parametrize("kind", ["ours", "starlette"])
def test_the_app_layer_answers_the_benchmark_request(
    kind: str, run_at_root: Callable[[str], str]
) -> None:
    code = (
        "from benchmarks.http_rpc import app_layer; "
        f"print(app_layer({kind!r}, requests=50, rounds=2)['us'])"
    )
    out = run_at_root(code)
    assert 0 < float(out.strip()) < 100_000  # microseconds per request, answer checked
