"""3. Time skipping: 200 executions of a workflow of 10 steps and a 30-day wait, driven to
completion in a unit test: ours under ``eventual.testing.TestEnvironment`` (virtual clock,
``tick``) against the AWS durable-execution SDK's local test runner
(``DurableFunctionTestRunner``, time skipping on). Figure: executions/s. Target: 20x.

"sequential" runs one execution to completion after the other (as a test suite does, one test
after the other); "concurrent" starts all 200 and then drives them all to completion. Each side
uses one environment (one runner) for all its executions. Neither side waits 30 real days.

    uv run python -m benchmarks time_skipping
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from benchmarks._common import (
    NOT_YET,
    Row,
    Section,
    WorkerError,
    find_module,
    log,
    render_text,
    run_worker,
)

NAME = "time_skipping"
TITLE = "time skipping in unit tests: 10 steps + a 30-day wait"
DAY = 86400


# ---------------------------------------------------------------- workers (child processes)


def ours(n: int, steps: int, days: int) -> dict[str, Any]:
    from benchmarks import _eventual_app as app
    from eventual.core import ExecutionStatus
    from eventual.testing import TestEnvironment

    wait = days * DAY
    args: dict[str, float] = {"steps": steps, "wait": wait}
    want = app.expected(steps)

    async def main() -> dict[str, Any]:
        async with TestEnvironment(app.service()) as env:

            async def one() -> None:
                execution = await env.start_execution(app.bench_steps_then_wait, args)
                await env.tick(wait)
                status = await execution.get_status()
                assert status.status is ExecutionStatus.SUCCEEDED, status
                assert status.result == want, status

            await one()  # warm up
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                await one()
            sequential = time.perf_counter() - t0
            sequential_cpu = time.process_time() - c0

            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            executions = [
                await env.start_execution(app.bench_steps_then_wait, args) for _ in range(n)
            ]
            await env.tick(wait)
            for execution in executions:
                status = await execution.get_status()
                assert status.status is ExecutionStatus.SUCCEEDED, status
            concurrent = time.perf_counter() - t0
            concurrent_cpu = time.process_time() - c0
        return {
            "sequential": sequential,
            "concurrent": concurrent,
            "sequential_cpu": sequential_cpu,
            "concurrent_cpu": concurrent_cpu,
        }

    return asyncio.run(main())


def aws(n: int, steps: int, days: int) -> dict[str, Any]:
    from importlib.metadata import version

    from aws_durable_execution_sdk_python.config import Duration
    from aws_durable_execution_sdk_python.context import DurableContext, durable_step
    from aws_durable_execution_sdk_python.execution import durable_execution
    from aws_durable_execution_sdk_python.lambda_service import InvocationStatus
    from aws_durable_execution_sdk_python.types import StepContext
    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    @durable_step
    def bench_step(_ctx: StepContext, i: int) -> int:
        return i + 1

    @durable_execution
    def handler(event: Any, context: DurableContext) -> int:
        total = 0
        for i in range(steps):
            total += context.step(bench_step(i))
        context.wait(Duration.from_days(days))
        return total

    want = str(steps * (steps + 1) // 2)
    # The execution's own timeout is on the runner's (skipping) clock: beyond the wait.
    timeout = (days + 10) * DAY
    with DurableFunctionTestRunner(handler=handler, execution_timeout=timeout) as runner:

        def check(result: Any) -> None:
            assert result.status is InvocationStatus.SUCCEEDED, result.status
            assert result.result == want, result.result

        check(runner.run(input="{}", execution_timeout=timeout, execution_name="warm-up"))
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            check(runner.run(input="{}", execution_timeout=timeout, execution_name=f"s{i}"))
        sequential = time.perf_counter() - t0
        sequential_cpu = time.process_time() - c0

        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        arns = [
            runner.run_async(input="{}", execution_timeout=timeout, execution_name=f"c{i}")
            for i in range(n)
        ]
        for arn in arns:
            check(runner.wait_for_result(arn, timeout=600))
        concurrent = time.perf_counter() - t0
        concurrent_cpu = time.process_time() - c0
    return {
        "sequential": sequential,
        "concurrent": concurrent,
        "sequential_cpu": sequential_cpu,
        "concurrent_cpu": concurrent_cpu,
        "version": version("aws-durable-execution-sdk-python-testing"),
    }


# ---------------------------------------------------------------- the comparison


def run(quick: bool = False) -> Section:
    n = 20 if quick else 200
    steps, days = 10, 30
    section = Section(NAME, TITLE, "AWS durable-execution SDK local test runner")
    missing = None if find_module("eventual.testing") else NOT_YET
    our: dict[str, Any] | None = None
    if missing is None:
        log(f"[{NAME}] ours (TestEnvironment): {n} executions, sequential then concurrent")
        try:
            our = run_worker("benchmarks.time_skipping:ours", n=n, steps=steps, days=days)
        except WorkerError as exc:
            missing = "failed"
            section.notes.append(f"our side failed: {str(exc).splitlines()[0]}")
            log(str(exc))
    log(f"[{NAME}] AWS DurableFunctionTestRunner (skip_time): {n} executions")
    peer = run_worker("benchmarks.time_skipping:aws", n=n, steps=steps, days=days)
    section.peer = (
        f"aws-durable-execution-sdk-python-testing {peer['version']} "
        "(DurableFunctionTestRunner, skip_time)"
    )
    for mode in ("sequential", "concurrent"):
        section.rows.append(
            Row(
                NAME,
                f"{mode} executions/s",
                "exec/s",
                None if our is None else n / our[mode],
                n / peer[mode],
                target=20,
                missing=missing or "",
            )
        )
    for mode in ("sequential", "concurrent"):
        section.rows.append(
            Row(
                NAME,
                f"{mode}: process CPU per execution",
                "ms",
                None if our is None else our[f"{mode}_cpu"] / n * 1000,
                peer[f"{mode}_cpu"] / n * 1000,
                higher_is_better=False,
                missing=missing or "",
                note="all threads; least disturbed by a shared machine",
            )
        )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, to check it runs")
    args = parser.parse_args(argv)
    print(render_text([run(quick=args.quick)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
