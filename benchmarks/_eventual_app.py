"""Our side's service for the durable benchmarks: a task and workflows of sequential steps.

Kept apart from the peers' modules so that a worker measuring us never imports a peer."""

from __future__ import annotations

import sys
from datetime import timedelta

from eventual.core import signal, sleep, task, workflow
from eventual.core.service import Service, load_service


@task("benchStep")
async def bench_step(i: int) -> int:
    return i + 1


@workflow("benchSequential")
async def bench_sequential(n: int) -> int:
    """n sequential steps (task calls); returns the sum of i + 1."""
    total = 0
    for i in range(n):
        total += await bench_step(i)
    return total


@workflow("benchStepsThenWait")
async def bench_steps_then_wait(args: dict[str, float]) -> int:
    """``args["steps"]`` sequential steps, then a durable wait of ``args["wait"]`` seconds."""
    total = 0
    for i in range(int(args["steps"])):
        total += await bench_step(i)
    await sleep(timedelta(seconds=args["wait"]))
    return total


resume = signal("benchResume", int)


@workflow("benchParked")
async def bench_parked(n: int) -> int:
    """Parked on a signal; then one step: the signal's value plus n + 1."""
    value = await resume.expect_signal()
    return value + await bench_step(n)


def expected(n: int) -> int:
    return n * (n + 1) // 2


def service() -> Service:
    return load_service(sys.modules[__name__], module_only=True, name="bench")
