"""AWS requests per completed task step on the AWS runtime, and what a million steps cost.

The real Lambda handlers and AWS adapters run against moto (``AwsHarness``), and every request
the runtime makes is counted through botocore's ``before-send`` event. The figure is marginal:
(requests of an execution of 60 task steps - requests of one of 10 steps) / 50, both run after
a first execution warmed the orchestrator, so starting and finishing an execution cancel out
and what remains is the price of one more step: orchestration (the commit of the step and the
dispatch of the next task) and the task worker (claim, result). The baseline is the issue's
target of 4 requests a step (the TypeScript Eventual reads and rewrites the execution's whole
history object on every step, 6 or more requests, and bytes that grow with the history).

    uv run python benchmarks/aws_requests_per_step.py
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packages" / "eventual-aws-runtime" / "tests" / "services"))

TARGET = 4.0
SHORT, LONG = 10, 60

# Public on-demand list prices, us-east-1, as published on the AWS pricing pages in 2025
# (DynamoDB on-demand after its November 2024 reduction). USD.
PRICES_DATE = "2025 (AWS public pricing pages, us-east-1)"
PRICE = {
    "dynamodb_wru": 0.625 / 1e6,  # on-demand write request unit
    "dynamodb_rru": 0.125 / 1e6,  # on-demand read request unit
    "sqs_fifo_request": 0.50 / 1e6,
    "sqs_standard_request": 0.40 / 1e6,
    "lambda_request": 0.20 / 1e6,  # per invocation (duration not included)
    "eventbridge_event": 1.00 / 1e6,
    "scheduler_invocation": 1.00 / 1e6,
    "s3_put": 0.005 / 1000,
    "s3_get": 0.0004 / 1000,
}


def run(steps: int) -> Counter[tuple[str, str]]:
    from eventual.aws_runtime.testing import AwsHarness

    with AwsHarness("aws_e2e_service", service_name="bench") as aws:
        warm = aws.start("steps", 2)
        aws.run_until_idle()
        assert aws.execution(warm)["status"] == "SUCCEEDED"
        aws.reset_counts()
        eid = aws.start("steps", steps)
        aws.run_until_idle()
        found = aws.execution(eid)
        assert found["status"] == "SUCCEEDED", found
        assert found["result"] == sum(2 * i for i in range(steps))
        return Counter(aws.requests)


def cost_per_step(per_step: dict[tuple[str, str], float]) -> tuple[float, list[str]]:
    """USD per step: the counted requests priced by what they bill, plus what Lambda bills
    around them (each task attempt is an invocation; the orchestrator's invocation and its
    event source mapping's ReceiveMessage + DeleteMessageBatch, at worst one batch a step)."""
    lines = []
    total = 0.0
    for (service, op), count in sorted(per_step.items()):
        if service == "dynamodb":
            # A transaction bills 2 units per item-KB; a step's two items stay near 1 KB.
            units = {"TransactWriteItems": 4, "PutItem": 1, "UpdateItem": 1, "GetItem": 1}
            price = units.get(op, 1) * (
                PRICE["dynamodb_rru"] if op in ("GetItem", "Query") else PRICE["dynamodb_wru"]
            )
        elif service == "sqs":
            price = PRICE["sqs_fifo_request"]
        elif service == "lambda":
            price = PRICE["lambda_request"]  # the async invoke bills as the task's invocation
        elif service == "eventbridge":
            price = PRICE["eventbridge_event"]
        elif service == "scheduler":
            price = PRICE["scheduler_invocation"]
        elif service == "s3":
            price = PRICE["s3_put"] if op == "PutObject" else PRICE["s3_get"]
        else:
            price = 0.0
        total += count * price
        label = f"{service}:{op}"
        lines.append(f"  {label:<32} {count:5.2f}/step  ${count * price * 1e6:7.3f}/M steps")
    around = PRICE["lambda_request"] + 2 * PRICE["sqs_fifo_request"]
    lines.append(
        f"  lambda orchestrator invocation + SQS receive/delete (worst case, batch of 1): "
        f"${around * 1e6:.3f}/M steps"
    )
    return total + around, lines


def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)
    short = run(SHORT)
    long = run(LONG)
    per_step = {
        key: (long[key] - short[key]) / (LONG - SHORT)
        for key in set(long) | set(short)
        if long[key] != short[key]
    }
    requests = sum(per_step.values())
    cost, lines = cost_per_step(per_step)
    print(f"AWS requests per task step, warm orchestrator (moto, marginal over {LONG - SHORT})")
    for line in lines:
        print(line)
    print(
        f"requests per step: {requests:.2f} (target {TARGET:.0f}: ratio target/ours "
        f"{TARGET / requests:.2f}x)"
    )
    print(
        f"cost per million steps: ${cost * 1e6:.2f} (requests and invocations only, Lambda "
        f"duration excluded; prices: {PRICES_DATE})"
    )


if __name__ == "__main__":
    main()
