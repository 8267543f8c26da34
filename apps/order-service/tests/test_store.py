"""``order_service.store``: the SQLite backend (``eventual dev``, the tests) and the DynamoDB
one (AWS, here against moto) behave the same."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from order_service import store

TABLE = "orders-test"


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(
    request: pytest.FixtureRequest, order_db: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "sqlite":
        yield "sqlite"
        assert order_db.is_file()
        return
    from moto import mock_aws

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(store.TABLE_ENV, TABLE)
    store._client_for.cache_clear()
    with mock_aws():
        import boto3

        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield "dynamodb"
    store._client_for.cache_clear()
    # With a table set, nothing goes to the SQLite file.
    assert not order_db.exists()


def _without_time(row: dict[str, Any] | None) -> dict[str, Any]:
    assert row is not None
    assert isinstance(row.pop("updated_at"), str)
    return row


EMPTY = {
    "id": "o1",
    "status": "received",
    "amount": None,
    "source": None,
    "charge_id": None,
    "tracking": None,
    "notified": False,
    "note": None,
}


@pytest.mark.anyio
async def test_an_unknown_order_is_none(backend: str) -> None:
    assert await store.get_order("nope") is None


@pytest.mark.anyio
async def test_a_first_write_creates_the_order_with_the_defaults(backend: str) -> None:
    await store.update_order("o1", note="hello")
    assert _without_time(await store.get_order("o1")) == {**EMPTY, "note": "hello"}


@pytest.mark.anyio
async def test_an_update_sets_the_fields_given_and_keeps_the_others(backend: str) -> None:
    await store.update_order("o1", status="invoiced", source="visa-4242", amount=900)
    await store.update_order("o1", status="charged", charge_id="ch_o1")
    await store.update_order("o1", notified=1)
    row = _without_time(await store.get_order("o1"))
    assert row == {
        **EMPTY,
        "status": "charged",
        "source": "visa-4242",
        "amount": 900,
        "charge_id": "ch_o1",
        "notified": True,
    }
    assert isinstance(row["amount"], int) and row["notified"] is True
    assert await store.get_order("o2") is None


@pytest.mark.anyio
async def test_a_repeated_write_leaves_the_store_as_one_did(backend: str) -> None:
    for _ in range(2):
        await store.update_order("o1", status="dispatched", tracking="track_o1")
    assert _without_time(await store.get_order("o1")) == {
        **EMPTY,
        "status": "dispatched",
        "tracking": "track_o1",
    }


@pytest.mark.anyio
async def test_none_clears_a_field(backend: str) -> None:
    await store.update_order("o1", note="x", amount=5)
    await store.update_order("o1", note=None)
    assert _without_time(await store.get_order("o1")) == {**EMPTY, "amount": 5}


@pytest.mark.anyio
async def test_updated_at_moves_on_every_write(backend: str) -> None:
    await store.update_order("o1", status="invoiced")
    first = await store.get_order("o1")
    await store.update_order("o1", status="charged")
    second = await store.get_order("o1")
    assert first is not None and second is not None
    assert second["updated_at"] >= first["updated_at"]


@pytest.mark.anyio
async def test_an_unknown_field_is_refused(backend: str) -> None:
    with pytest.raises(ValueError, match="unknown order fields: colour"):
        await store.update_order("o1", colour="red")
    assert await store.get_order("o1") is None


def test_the_store_does_not_import_boto3_without_a_table(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != store.TABLE_ENV}
    code = (
        "import asyncio, sys, order_service\n"
        "from order_service import store\n"
        "asyncio.run(store.update_order('o1', status='charged'))\n"
        "assert asyncio.run(store.get_order('o1'))['status'] == 'charged'\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, store.DB_ENV: str(tmp_path / "orders.db")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
