"""A deploy on the AWS runtime: a new Lambda code version (another entry, a new
``EVENTUAL_BUILD``, every container cold) with executions in flight. The executions started on
the old code finish on the old branch of a ``patched()`` change, new ones take the new one,
``listExecutions`` filters by build, and the same change made without the patch fails the old
executions with a readable DeterminismError."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from eventual.aws_runtime import names as n
from eventual.aws_runtime.handlers import _common
from eventual.aws_runtime.testing import AwsHarness
from eventual.core.service import BUILD_ENV


@pytest.fixture
def aws() -> Iterator[AwsHarness]:
    previous = os.environ.pop(BUILD_ENV, None)
    os.environ[BUILD_ENV] = "v1"
    try:
        with AwsHarness("aws_versioned_v1") as harness:
            yield harness
    finally:
        os.environ.pop(BUILD_ENV, None)
        if previous is not None:
            os.environ[BUILD_ENV] = previous


def deploy(aws: AwsHarness, entry: str, build: str) -> None:
    """What a deploy does: the functions' code and EVENTUAL_BUILD change, and every container
    is new (the next invocation of each handler is a cold start on the new code)."""
    os.environ[n.ENV_SERVICE_ENTRY] = entry  # the harness puts it back when it exits
    os.environ[BUILD_ENV] = build
    _common.configure(clock=aws.clock)


def charged(aws: AwsHarness, name: str, amount: int) -> str:
    execution_id = aws.start("vOrder", amount, name=name)
    aws.advance(1)
    assert aws.execution(execution_id)["status"] == "IN_PROGRESS"
    return execution_id


def kinds(aws: AwsHarness, execution_id: str) -> list[Any]:
    # Our history events on the wire: their own ``type`` or, in the TypeScript wire format,
    # ``kind`` beside a numeric type.
    return [e.get("kind") or e.get("type") for e in aws.history(execution_id)]


def finish(aws: AwsHarness, execution_id: str) -> dict[str, Any]:
    aws.signal(execution_id, "go")
    aws.advance(1)
    return aws.execution(execution_id)


def listed(aws: AwsHarness, **body: Any) -> dict[str, Any]:
    return {e["id"]: e.get("build") for e in aws.system("listExecutions", body)["executions"]}


def test_a_new_code_version_with_executions_in_flight(aws: AwsHarness) -> None:
    old1, old2 = charged(aws, "old1", 1), charged(aws, "old2", 1)

    deploy(aws, "aws_versioned_v2", "v2")
    new1 = charged(aws, "new1", 2)
    assert "PatchMarked" in kinds(aws, new1)
    assert "PatchMarked" not in kinds(aws, old1)
    assert listed(aws) == {old1: "v1", old2: "v1", new1: "v2"}
    assert listed(aws, build="v1") == {old1: "v1", old2: "v1"}
    assert listed(aws, build="v2", statuses=["IN_PROGRESS"]) == {new1: "v2"}

    done = finish(aws, old1)
    assert (done["status"], done["result"]) == ("SUCCEEDED", "shipped after charged 1")
    done = finish(aws, new1)
    assert (done["status"], done["result"]) == ("SUCCEEDED", "shipped after charged 200 cents")

    # The same change without the patch: what still runs on v1 cannot replay.
    deploy(aws, "aws_versioned_v3", "v3")
    failed = finish(aws, old2)
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "DeterminismError"
    assert failed["message"] == (
        "seq 0: the history records task 'charge' with arguments [1], but the code did "
        "task 'chargeCents' with arguments [1]"
    )
