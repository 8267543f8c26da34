"""The order service on the AWS runtime (``eventual.aws_runtime.testing.AwsHarness``, moto)
with its orders in a DynamoDB table, as the CDK stack deploys it (``ORDER_SERVICE_TABLE``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from order_service import store

from eventual.aws_runtime.testing import AwsHarness

TABLE = "order-service-orders"


@pytest.fixture
def aws(order_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsHarness]:
    monkeypatch.setenv(store.TABLE_ENV, TABLE)
    store._client_for.cache_clear()
    with AwsHarness("order_service") as harness:
        harness.admin.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield harness
    store._client_for.cache_clear()
    assert not order_db.exists(), "an order went to SQLite"


def test_orders_live_in_the_table(aws: AwsHarness) -> None:
    body = {"id": "o1", "source": "visa-4242", "amount": 500, "items": ["book"]}
    response = aws.http("POST", "/rpc/sendInvoice", body=body)
    assert response["statusCode"] == 200, response
    cancelled = {"id": "o2", "source": "visa-1", "amount": 7, "dispatch_after": 3600}
    o2 = json.loads(aws.http("POST", "/rpc/sendInvoice", body=cancelled)["body"])
    aws.signal(o2, "cancel", "changed my mind")
    aws.advance(2)
    record = json.loads(aws.http("GET", "/orders/o1")["body"])
    assert record == {
        "id": "o1",
        "status": "dispatched",
        "amount": 500,
        "source": "visa-4242",
        "charge_id": "ch_o1",
        "tracking": "track_o1",
        "notified": True,
        "note": None,
    }
    record = json.loads(aws.http("POST", "/rpc/getOrder", body={"id": "o2"})["body"])
    assert (record["status"], record["note"]) == (
        "charged back",
        "cancelled: changed my mind (ch_o2)",
    )
    assert aws.http("GET", "/orders/nope")["statusCode"] == 404
    items = aws.admin.client("dynamodb").scan(TableName=TABLE)["Items"]
    assert sorted(i["id"]["S"] for i in items) == ["o1", "o2"]
