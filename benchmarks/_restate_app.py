"""Restate's side of the durable benchmarks: the same workflow of sequential steps, written as
Restate's documentation writes one (a service handler whose steps are ``ctx.run_typed``
calls, each journaled by the server before the next runs), served by hypercorn over HTTP/2.

    python -m benchmarks._restate_app PORT
"""

from __future__ import annotations

import asyncio
import sys

import restate

bench = restate.Service("Bench")


async def step(i: int) -> int:
    return i + 1


@bench.handler()
async def run(ctx: restate.Context, n: int) -> int:
    """n sequential steps; returns the sum of i + 1 (as ``_eventual_app.bench_sequential``)."""
    total = 0
    for i in range(n):
        total += await ctx.run_typed(f"step-{i}", step, i=i)
    return total


app = restate.app(services=[bench])


def main() -> None:
    import hypercorn.asyncio
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{int(sys.argv[1])}"]
    config.h2_max_concurrent_streams = 1000
    config.accesslog = None
    config.errorlog = None
    asyncio.run(hypercorn.asyncio.serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
