"""6. AWS requests per task step, and the cost per million steps.

Counts the AWS API requests the runtime makes (DynamoDB, SQS, Lambda, S3, EventBridge,
Scheduler, ...) per completed task step, orchestration included, with AWS played by moto
(``eventual.aws_runtime.testing.AwsHarness``: the real handlers, Lambda's deliveries simulated;
no AWS account), the orchestrator warm. Two figures:

- marginal (the AWS runtime's own ``benchmarks/aws_requests_per_step.py``, wrapped: the
  requests of a 60-step execution minus those of a 10-step one, over 50): what one more step
  costs; it carries the target (the AWS runtime issue): at most 4 requests per step. The same
  script prices the requests at public on-demand prices (cost per million steps, Lambda duration
  excluded).
- amortized: all requests of 20 executions of 10 steps (starting and finishing included) over
  their 200 steps.

The peer column holds the target of 4 (the TypeScript Eventual is said to need 6 or more; it is
not measured here).

    uv run python -m benchmarks aws_requests
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from typing import Any

from benchmarks._common import (
    NOT_YET,
    ROOT,
    Row,
    Section,
    WorkerError,
    find_module,
    log,
    render_text,
    run_worker,
)

NAME = "aws_requests"
TITLE = "AWS requests per task step (moto), warm orchestrator"
TARGET = 4.0
SCRIPT = ROOT / "benchmarks" / "aws_requests_per_step.py"


def ours(executions: int, steps: int) -> dict[str, Any]:
    from eventual.aws_runtime.testing import AwsHarness

    with AwsHarness("benchmarks._eventual_app", service_name="bench") as aws:
        first = aws.start("benchSequential", steps)
        aws.run_until_idle()
        assert aws.execution(first)["status"] == "SUCCEEDED", aws.execution(first)
        aws.reset_counts()
        ids = [aws.start("benchSequential", steps) for _ in range(executions)]
        aws.run_until_idle()
        for execution_id in ids:
            found = aws.execution(execution_id)
            assert found["status"] == "SUCCEEDED", found
        requests: Counter[str] = Counter()
        for (service, operation), count in aws.requests.items():
            requests[f"{service}:{operation}"] += count
    return {"requests": dict(requests), "steps": executions * steps, "executions": executions}


def theirs() -> dict[str, Any]:
    """The marginal figure and its price, from benchmarks/aws_requests_per_step.py."""
    import logging

    from benchmarks import aws_requests_per_step as script

    logging.basicConfig(level=logging.CRITICAL)
    short, long = script.run(script.SHORT), script.run(script.LONG)
    span = script.LONG - script.SHORT
    per_step = {
        key: (long[key] - short[key]) / span
        for key in set(long) | set(short)
        if long[key] != short[key]
    }
    cost, _lines = script.cost_per_step(per_step)
    return {
        "per_step": sum(per_step.values()),
        "by_operation": {f"{s}:{o}": c for (s, o), c in per_step.items()},
        "cost_per_million": cost * 1e6,
        "prices": script.PRICES_DATE,
        "span": span,
    }


def run_script() -> list[str]:
    """The AWS runtime's own benchmark, if it exists: its output, last lines."""
    if not SCRIPT.exists():
        return []
    log(f"[{NAME}] running {SCRIPT.relative_to(ROOT)}")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0:
        return [f"{SCRIPT.name} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"]
    return [f"{SCRIPT.name}: {line}" for line in lines[-12:]]


def run(quick: bool = False) -> Section:
    executions = 5 if quick else 20
    steps = 10
    section = Section(NAME, TITLE, f"the target ({TARGET:g} requests per step)")
    missing = None if find_module("eventual.aws_runtime.testing") else NOT_YET
    result: dict[str, Any] | None = None
    if missing is None:
        log(f"[{NAME}] ours (moto): {executions} executions x {steps} steps")
        try:
            result = run_worker("benchmarks.aws_requests:ours", executions=executions, steps=steps)
        except WorkerError as exc:
            missing = "failed"
            section.notes.append(f"our side failed: {str(exc).splitlines()[-1]}")
            log(str(exc))
    per_step = None
    if result is not None:
        total = sum(result["requests"].values())
        per_step = total / result["steps"]
        by_service: Counter[str] = Counter()
        for key, count in result["requests"].items():
            by_service[key.split(":", 1)[0]] += count
        section.notes.append(
            "per step, by service: "
            + ", ".join(f"{s} {c / result['steps']:.2f}" for s, c in by_service.most_common())
        )
        section.notes.append(
            "per step, by operation: "
            + ", ".join(
                f"{k} {c / result['steps']:.2f}"
                for k, c in sorted(result["requests"].items(), key=lambda kv: -kv[1])
            )
        )
    marginal: dict[str, Any] | None = None
    script_note: list[str] = []
    if missing is None and SCRIPT.exists():
        log(f"[{NAME}] marginal requests per step ({SCRIPT.name})")
        try:
            marginal = run_worker("benchmarks.aws_requests:theirs")
        except WorkerError as exc:
            script_note = run_script()  # at least quote what the script prints
            log(str(exc))
    elif missing is None:
        script_note = [f"{SCRIPT.name} is not there yet: no marginal figure, no cost"]
    section.rows.append(
        Row(
            NAME,
            "AWS requests per task step, marginal",
            "requests",
            None if marginal is None else marginal["per_step"],
            TARGET,
            higher_is_better=False,
            target=1.0,
            missing=missing or "not available yet",
            note="peer column: the issue's target; ratio >= 1 meets it",
        )
    )
    section.rows.append(
        Row(
            NAME,
            f"AWS requests per task step, amortized over {steps}-step executions",
            "requests",
            per_step,
            TARGET,
            higher_is_better=False,
            missing=missing or "",
            note="starting and finishing included",
        )
    )
    if marginal is not None:
        section.rows.append(
            Row(
                NAME,
                "cost per million steps (requests only)",
                "USD",
                marginal["cost_per_million"],
                None,
                higher_is_better=False,
                peer_missing="not measured",
                note=f"public on-demand prices, {marginal['prices']}; Lambda duration excluded",
            )
        )
        section.notes.append(
            f"marginal, per step, by operation (60 - 10 steps, over {marginal['span']}): "
            + ", ".join(
                f"{k} {c:.2f}"
                for k, c in sorted(marginal["by_operation"].items(), key=lambda kv: -kv[1])
            )
        )
    section.notes.extend(script_note)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer executions, to check it runs")
    args = parser.parse_args(argv)
    print(render_text([run(quick=args.quick)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
