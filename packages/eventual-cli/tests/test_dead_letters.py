"""``eventual dlq list|redrive`` against moto's SSM and SQS (in-process ``mock_aws``): the
queues come from the discovery record's ``deadLetters``, as the construct writes it; an
asynchronous ``lambda:Invoke`` (moto's Lambda cannot run one) is caught by a botocore hook.
The same commands run against a deployed stack in apps/order-service/infra/tests/test_deploy.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from eventual.cli import deployed
from eventual.cli.deployed import service_parameter
from eventual.cli.main import app

REGION = "eu-west-1"
SERVICE = "shop"


class Invokes:
    """The asynchronous invocations the CLI makes, answered as Lambda answers them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self._params: dict[str, Any] = {}

    def remember(self, params: dict[str, Any], **kwargs: Any) -> None:
        self._params = dict(params)

    def invoke(self, **kwargs: Any) -> Any:
        class Answer:
            status_code = 202
            headers: dict[str, str] = {}

        assert self._params["InvocationType"] == "Event"
        self.calls.append((self._params["FunctionName"], json.loads(self._params["Payload"])))
        return Answer(), {"StatusCode": 202}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Moto with a service's discovery record and its four kinds of dead-letter queue."""
    import boto3
    from botocore.session import Session

    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "EVENTUAL_SERVICE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    invokes = Invokes()

    def session() -> Session:
        s = Session()
        s.register("before-parameter-build.lambda.Invoke", invokes.remember)
        s.register("before-call.lambda.Invoke", invokes.invoke)
        return s

    monkeypatch.setattr(deployed, "_botocore_session", session)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        fifo = {"FifoQueue": "true", "ContentBasedDeduplication": "false"}
        urls = {
            "executions": sqs.create_queue(QueueName="shop-executions.fifo", Attributes=fifo),
            "executions-dlq": sqs.create_queue(QueueName="shop-dlq.fifo", Attributes=fifo),
            "timers": sqs.create_queue(QueueName="shop-timers"),
            "timers-dlq": sqs.create_queue(QueueName="shop-timers-dlq"),
            "tasks-dlq": sqs.create_queue(QueueName="shop-tasks-dlq"),
            "onOrder-dlq": sqs.create_queue(QueueName="shop-on-order-dlq"),
        }
        urls = {k: v["QueueUrl"] for k, v in urls.items()}
        record = {
            "version": 1,
            "service": SERVICE,
            "apiUrl": "https://example.invalid/",
            "region": REGION,
            "deadLetters": [
                {"kind": "execution", "name": "executions", "queueUrl": urls["executions-dlq"],
                 "source": urls["executions"]},
                {"kind": "timer", "name": "timers", "queueUrl": urls["timers-dlq"],
                 "source": urls["timers"]},
                {"kind": "task", "name": "tasks", "queueUrl": urls["tasks-dlq"],
                 "source": {"charge": "shop-task-charge"}},
                {"kind": "subscription", "name": "onOrder", "queueUrl": urls["onOrder-dlq"],
                 "source": "shop-sub-onOrder"},
            ],
        }  # fmt: skip
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=service_parameter(SERVICE), Value=json.dumps(record), Type="String"
        )
        yield {"sqs": sqs, "urls": urls, "invokes": invokes, "record": record}


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["dlq", *args, "--service", SERVICE, "--region", REGION])


def dead_letter(aws: dict[str, Any], queue: str, body: Any, **extra: Any) -> str:
    return aws["sqs"].send_message(
        QueueUrl=aws["urls"][queue], MessageBody=json.dumps(body), **extra
    )["MessageId"]


def messages(aws: dict[str, Any], queue: str) -> list[dict[str, Any]]:
    return (
        aws["sqs"]
        .receive_message(
            QueueUrl=aws["urls"][queue],
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            VisibilityTimeout=0,  # a look, as a test's: the CLI still sees them
        )
        .get("Messages", [])
    )


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def fill(aws: dict[str, Any]) -> dict[str, str]:
    """One message in each dead-letter queue, as each kind of queue dead-letters it."""
    return {
        "executions": dead_letter(
            aws,
            "executions-dlq",
            {"executionId": "checkout/a1", "event": {"type": "SignalReceived"}},
            MessageGroupId="checkout/a1",
            MessageDeduplicationId="d-1",
        ),
        "timers": dead_letter(
            aws, "timers-dlq", {"timer": {"id": "checkout/a1|3", "executionId": "checkout/a1"}}
        ),
        "tasks": dead_letter(
            aws,
            "tasks-dlq",
            {"task": {"executionId": "checkout/a2", "name": "charge", "seq": 2, "attempt": 1}},
            MessageAttributes={
                "ErrorCode": {"DataType": "String", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": "card service down"},
            },
        ),
        "onOrder": dead_letter(
            aws, "onOrder-dlq", {"detail-type": "Order", "detail": {"order_id": "o-1"}}
        ),
    }


def test_list_shows_every_queue_and_leaves_the_messages(aws: dict[str, Any]) -> None:
    ids = fill(aws)
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["queues"] == {"executions": 1, "timers": 1, "tasks": 1, "onOrder": 1}
    by_queue = {m["queue"]: m for m in listed["messages"]}
    assert {q: m["messageId"] for q, m in by_queue.items()} == ids
    assert by_queue["executions"]["executionId"] == "checkout/a1"
    assert by_queue["executions"]["what"] == "event SignalReceived"
    assert by_queue["timers"]["executionId"] == "checkout/a1"
    assert by_queue["tasks"]["what"] == "task charge attempt 1"
    assert by_queue["tasks"]["error"] == "200: card service down"
    assert by_queue["onOrder"]["what"] == "event Order"
    # Nothing was removed, and nothing stays hidden: the next read sees them all at once.
    assert len(messages(aws, "executions-dlq")) == 1
    table = run("list")
    assert table.exit_code == 0, table.output
    assert "Dead letters of shop: executions 1, timers 1, tasks 1, onOrder 1" in table.stdout
    assert "Execution" in table.stdout and "event Order" in table.stdout


def test_an_empty_queue_says_so(aws: dict[str, Any]) -> None:
    result = run("list", "--queue", "timers")
    assert result.exit_code == 0, result.output
    assert "Dead letters of shop: timers 0" in result.stdout
    assert "No messages" in result.stdout


def test_redrive_sends_each_message_back_where_it_came_from(aws: dict[str, Any]) -> None:
    ids = fill(aws)
    result = run("redrive", "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["problems"] == []
    assert {r["queue"]: r["to"] for r in answer["redriven"]} == {
        "executions": "queue shop-executions.fifo",
        "timers": "queue shop-timers",
        "tasks": "function shop-task-charge",
        "onOrder": "function shop-sub-onOrder",
    }
    (event,) = messages(aws, "executions")
    assert json.loads(event["Body"])["executionId"] == "checkout/a1"
    assert event["Attributes"]["MessageGroupId"] == "checkout/a1"  # its execution's order
    assert event["Attributes"]["MessageDeduplicationId"] == f"redrive-{ids['executions']}"
    (timer,) = messages(aws, "timers")
    assert json.loads(timer["Body"])["timer"]["id"] == "checkout/a1|3"
    calls = dict(aws["invokes"].calls)
    assert calls["shop-task-charge"]["task"]["name"] == "charge"
    assert calls["shop-sub-onOrder"]["detail"] == {"order_id": "o-1"}
    for queue in ("executions-dlq", "timers-dlq", "tasks-dlq", "onOrder-dlq"):
        assert messages(aws, queue) == [], queue


def test_redrive_of_one_message_leaves_the_others(aws: dict[str, Any]) -> None:
    ids = fill(aws)
    second = dead_letter(aws, "onOrder-dlq", {"detail-type": "Order", "detail": {"order_id": "2"}})
    result = run("redrive", "--queue", "onOrder", "--message", second)
    assert result.exit_code == 0, result.output
    assert f"redrove {second} from onOrder to function shop-sub-onOrder" in result.stdout
    assert "1 message(s) redriven" in result.stdout
    assert [m["MessageId"] for m in messages(aws, "onOrder-dlq")] == [ids["onOrder"]]
    assert len(messages(aws, "tasks-dlq")) == 1


def test_a_task_message_naming_no_task_stays(aws: dict[str, Any]) -> None:
    stray = dead_letter(aws, "tasks-dlq", {"task": {"name": "refund", "executionId": "x/1"}})
    result = run("redrive", "--queue", "tasks")
    error = one_line_error(result)
    assert f"message {stray} in tasks names no task of this service ('refund')" in error
    assert aws["invokes"].calls == []
    assert [m["MessageId"] for m in messages(aws, "tasks-dlq")] == [stray]


def test_bad_requests_are_one_sentence(aws: dict[str, Any]) -> None:
    error = one_line_error(run("list", "--queue", "payments"))
    assert "shop has no dead-letter queue 'payments': its queues are executions, timers" in error
    error = one_line_error(run("redrive", "--message", "no-such-id"))
    assert "no such message in the dead-letter queues: no-such-id" in error
    local = CliRunner().invoke(app, ["dlq", "list"])
    assert "dead-letter queues exist on AWS only: pass --service NAME" in one_line_error(local)


def test_a_record_without_dead_letters_says_to_redeploy(aws: dict[str, Any]) -> None:
    import boto3

    record = {k: v for k, v in aws["record"].items() if k != "deadLetters"}
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=service_parameter(SERVICE), Value=json.dumps(record), Type="String", Overwrite=True
    )
    error = one_line_error(run("list"))
    assert "lists no dead-letter queues: redeploy its stack" in error
