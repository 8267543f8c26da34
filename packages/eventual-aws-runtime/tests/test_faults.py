"""Faults: AWS requests failing with throttling and 5xx (before or after AWS applied them),
and every SQS message delivered twice. Executions still finish with the right results and no
history records an event twice."""

from __future__ import annotations

import json
from typing import Any

from _recorded import recorded

from eventual.aws_runtime.testing import AwsHarness
from eventual.core.history import parse_history

ENTRY = "aws_e2e_service"  # put on sys.path by conftest

CASES: list[tuple[str, Any, Any]] = [
    ("pay", "visa", "ch-visa:100"),
    ("fanout", 3, [0, 2, 4]),
    ("steps", 3, 0 + 2 + 4),
    ("sleeper", 30, "slept 30"),
    ("shipper", "o", "shipped"),
    ("retrying", 1, "ok on attempt 2"),
    ("waiter", 5, "Timeout: no signal 'go' arrived within 5s"),
]


def start_with_retries(aws: AwsHarness, workflow: str, input: Any, name: str) -> str:
    """A client that retries 5xx answers, as an SDK would (the same name makes it safe)."""
    body = {"workflow": workflow, "input": input, "executionName": name}
    for _ in range(10):
        response = aws.http("POST", "/rpc/_system/startExecution", body=body)
        if response["statusCode"] == 200:
            return json.loads(response["body"])["executionId"]
        assert response["statusCode"] >= 500, response
    raise AssertionError(f"could not start {name}")


def test_100_executions_survive_faults_and_duplicate_deliveries() -> None:
    with AwsHarness(
        ENTRY, fault_rate=0.05, duplicate_deliveries=True, seed=11, retry_after=5
    ) as aws:
        expected: dict[str, Any] = {}
        for i in range(100):
            workflow, input, result = CASES[i % len(CASES)]
            expected[start_with_retries(aws, workflow, input, f"run-{i}")] = result
        aws.advance(600)  # past the timers and the redeliveries of failed messages
        assert aws.faults["before"] > 20 and aws.faults["after"] > 20, aws.faults
        assert aws.lost_invocations == []
        for execution_id, result in expected.items():
            execution = aws.execution(execution_id)
            assert execution["status"] == "SUCCEEDED", execution
            assert execution["result"] == result
            events = parse_history(recorded(aws, execution_id))
            ids = [e.id for e in events]
            assert len(ids) == len(set(ids)), f"{execution_id} records an event twice: {ids}"
            assert events[-1].type == "WorkflowSucceeded"
