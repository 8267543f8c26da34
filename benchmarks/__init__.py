"""Eventual for Python against its peers, side by side, in one run.

``uv run python -m benchmarks`` runs every benchmark and prints one table;
``uv run python -m benchmarks NAME [NAME...]`` runs some. Each benchmark measures the peer in the
same run on the same machine and prints our figure, the peer's and the ratio (above 1: ours is
better). Absolute figures are this machine's; only the ratios are claimed. See
docs/benchmarks.md.

The standalone scripts beside these modules (replay_scaling.py, testenv_time_skipping.py,
aws_*.py) keep working on their own: ``uv run python benchmarks/replay_scaling.py``.
"""

# name -> module, in the order of the table (docs/benchmarks.md numbers them the same way).
BENCHMARKS = {
    "throughput": "benchmarks.throughput",
    "replay": "benchmarks.replay",
    "time_skipping": "benchmarks.time_skipping",
    "http": "benchmarks.http_rpc",
    "cold_start": "benchmarks.cold_start",
    "aws_requests": "benchmarks.aws_requests",
    "load": "benchmarks.load",
    "end_to_end": "benchmarks.end_to_end",
    "scale": "benchmarks.scale",
}
