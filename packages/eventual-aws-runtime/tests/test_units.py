"""The shared names, handler import cost and the orchestrator's partial batch failures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _recorded import recorded

from eventual.aws_runtime import names as n
from eventual.aws_runtime.testing import AwsHarness


def test_names_round_trip_through_the_environment() -> None:
    names = n.ServiceNames.for_service("order-service", payload_bucket="my-bucket-123")
    env = names.environment()
    assert env[n.ENV_SERVICE_NAME] == "order-service"
    assert env[n.ENV_PAYLOAD_BUCKET] == "my-bucket-123"
    back = n.ServiceNames.from_env(env)
    assert back.executions_table == names.executions_table
    assert back.payload_bucket == "my-bucket-123"
    assert back.task_function("chargeCreditCard") == "order-service-task-chargeCreditCard"


def test_long_names_fit_aws_limits_and_stay_stable() -> None:
    names = n.ServiceNames.for_service("s" * 70)
    fn = names.task_function("t" * 80)
    assert len(fn) <= 64 and fn == names.task_function("t" * 80)
    assert fn != names.task_function("t" * 79 + "u")
    assert len(names.execution_queue) <= 80 and names.execution_queue.endswith(".fifo")
    assert len(names.schedule_name("x" * 500)) <= 64


def test_from_env_without_service_name_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="EVENTUAL_SERVICE_NAME is not set"):
        n.ServiceNames.from_env({})


def test_tables_describe_the_indexes_the_store_queries() -> None:
    executions, history, claims = n.dynamodb_tables(n.ServiceNames.for_service("svc"))
    assert {i["IndexName"] for i in executions["GlobalSecondaryIndexes"]} == {
        n.EXECUTIONS_INDEX_BY_TIME,
        n.EXECUTIONS_INDEX_BY_WORKFLOW,
    }
    assert [k["AttributeName"] for k in history["KeySchema"]] == [n.HISTORY_PK, n.HISTORY_SK]
    assert claims["KeySchema"][0]["AttributeName"] == n.CLAIMS_PK


@pytest.mark.parametrize(
    "kind", ["orchestrator", "task", "command", "system", "subscription", "timer"]
)
def test_importing_a_handler_loads_no_sdk_and_no_service(kind: str) -> None:
    code = (
        f"import sys, eventual.aws_runtime.handlers.{kind} as h; "
        "print(sorted(m for m in ('boto3', 'botocore', 'pydantic', 'eventual.core', 'asyncio') "
        "if m in sys.modules)); assert callable(h.handler)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_one_bad_execution_does_not_hold_back_the_batch(aws: AwsHarness) -> None:
    from eventual.aws_runtime.handlers import orchestrator

    good = aws.start("pay", "visa", name="good")
    messages = aws.admin.client("sqs").receive_message(
        QueueUrl=aws.names.execution_queue_url, AttributeNames=["All"]
    )["Messages"]
    records = aws._sqs_records(aws.names.execution_queue_url, messages)
    bad = {
        "messageId": "bad-1",
        "body": json.dumps({"executionId": "pay/bad", "event": {"inline": "{not json"}}),
        "attributes": {"MessageGroupId": "pay/bad"},
    }
    response = orchestrator.handler({"Records": [bad, *records]}, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    history = recorded(aws, good)
    assert [e["type"] for e in history] == ["WorkflowStarted", "TaskScheduled"]


def test_enqueue_sends_batches_of_ten_deduplicated_per_event(aws: AwsHarness) -> None:
    import asyncio

    from eventual.aws_runtime.adapters import PayloadStore, SqsExecutionQueue
    from eventual.core.history import SignalReceived

    queue = SqsExecutionQueue(aws.names, PayloadStore(aws.names))
    events = [SignalReceived(signal_id=str(i), signal="go", payload=i) for i in range(23)]
    aws.reset_counts()
    asyncio.run(queue.enqueue("waiter/x", events))
    asyncio.run(queue.enqueue("waiter/x", events[:5]))  # duplicates: dropped by SQS
    assert aws.requests[("sqs", "SendMessageBatch")] == 4
    received = []
    sqs = aws.admin.client("sqs")
    while True:
        batch = sqs.receive_message(
            QueueUrl=aws.names.execution_queue_url, MaxNumberOfMessages=10
        ).get("Messages", [])
        if not batch:
            break
        for m in batch:
            received.append(json.loads(json.loads(m["Body"])["event"]["inline"])["payload"])
            sqs.delete_message(
                QueueUrl=aws.names.execution_queue_url, ReceiptHandle=m["ReceiptHandle"]
            )
    assert received == list(range(23))


def test_put_events_retries_the_entries_eventbridge_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from eventual.aws_runtime import adapters
    from eventual.core.history import EmittedEvent

    calls: list[list[str]] = []

    class FlakyEvents:
        def put_events(self, Entries: list[dict]) -> dict:
            calls.append([e["Detail"] for e in Entries])
            if len(calls) == 1:  # the first request: entries 1 and 3 fail
                results = [
                    {"ErrorCode": "InternalFailure"} if i in (1, 3) else {"EventId": "x"}
                    for i in range(len(Entries))
                ]
                return {"FailedEntryCount": 2, "Entries": results}
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"}] * len(Entries)}

    monkeypatch.setattr(adapters.event_bus, "client", lambda service: FlakyEvents())
    names = n.ServiceNames.for_service("svc")
    bus = adapters.EventBridgeBus(names, adapters.PayloadStore(names))
    asyncio.run(bus.publish([EmittedEvent(name="E", payload={"i": i}) for i in range(12)]))
    assert [len(c) for c in calls] == [10, 2, 2]
    assert calls[1] == ['{"i": 1}', '{"i": 3}']  # only the failed entries, sent again
    assert calls[2] == ['{"i": 10}', '{"i": 11}']


def test_batches_respect_the_count_and_the_request_size() -> None:
    from eventual.aws_runtime.adapters import BATCH_BYTES, _batches

    small = [{"Detail": "x"} for _ in range(23)]
    assert [len(b) for b in _batches(small, "Detail")] == [10, 10, 3]
    big = [{"Detail": "y" * 100_000} for _ in range(5)]
    batches = _batches(big, "Detail")
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(len(e["Detail"]) for e in b) <= BATCH_BYTES for b in batches)


def test_a_forwarded_event_whose_payload_spilled_is_read_from_the_producers_bucket() -> None:
    from moto import mock_aws

    from eventual.aws_runtime import adapters, clients

    with mock_aws():
        clients.configure(None)
        producer = n.ServiceNames.for_service("orders", payload_bucket="orders-payloads")
        consumer = n.ServiceNames.for_service("shipping", payload_bucket="shipping-payloads")
        s3 = clients.client("s3")
        for bucket in ("orders-payloads", "shipping-payloads"):
            s3.create_bucket(Bucket=bucket)
        big = {"order_id": "o-1", "lines": ["x" * 1000] * 300}  # beyond EventBridge's limit
        detail = adapters.encode_detail(big, adapters.PayloadStore(producer))
        assert len(detail) < 1000 and "orders-payloads" in detail
        # The consumer service decodes it with its own store: the event names the bucket.
        assert adapters.decode_detail(detail, adapters.PayloadStore(consumer)) == big
        assert s3.list_objects_v2(Bucket="shipping-payloads")["KeyCount"] == 0
    clients.configure(None)
