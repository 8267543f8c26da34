"""The order store the tasks, the subscription and the commands use.

Two backends with the same interface and the same semantics, chosen from the environment on
every call (so tests can switch):

- ``$ORDER_SERVICE_TABLE`` set (the CDK stack sets it to its table's name on the functions
  that use the store): that DynamoDB table, partition key ``id`` (a string), through boto3.
  boto3 is imported, and its client created, on first use; one client per process.
- otherwise (``eventual dev``, the tests): one SQLite file, so it outlives dev-server
  restarts. Its path is ``$ORDER_SERVICE_DB`` when set, else ``orders.db`` in
  ``$EVENTUAL_DATA_DIR`` (``eventual dev`` sets it to the folder of its own database,
  ``.eventual/`` beside the service), else ``.eventual/orders.db`` in the current directory.

Every write is an upsert keyed by the order id that sets only the fields given (a new order
starts as ``status="received"``, ``notified=False``): tasks run at least once, so running one
twice must leave the store as running it once did. A read returns every field (``None`` where
unset) and ``updated_at``, or ``None`` for an unknown order.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Protocol

DB_ENV = "ORDER_SERVICE_DB"
TABLE_ENV = "ORDER_SERVICE_TABLE"
DATA_DIR_ENV = "EVENTUAL_DATA_DIR"

COLUMNS = ("status", "amount", "source", "charge_id", "tracking", "notified", "note")
"""The fields of an order besides ``id`` and ``updated_at``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    amount INTEGER,
    source TEXT,
    charge_id TEXT,
    tracking TEXT,
    notified INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    updated_at TEXT NOT NULL
)
"""


class Backend(Protocol):
    def update(self, order_id: str, fields: dict[str, Any]) -> None: ...

    def get(self, order_id: str) -> dict[str, Any] | None: ...


def _check(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown order fields: {', '.join(sorted(unknown))}")


def _now() -> str:
    return datetime.now(UTC).isoformat()


# ---------------------------------------------------------------- SQLite


def db_path() -> Path:
    explicit = os.environ.get(DB_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or ".eventual") / "orders.db"


class SqliteBackend:
    """The SQLite file at :func:`db_path` (read on every call)."""

    def _connect(self) -> sqlite3.Connection:
        path = db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute(_SCHEMA)
        return conn

    def update(self, order_id: str, fields: dict[str, Any]) -> None:
        _check(fields)
        inserted = {"status": "received", **fields, "updated_at": _now()}
        names = ["id", *inserted]
        updates = ", ".join(f"{n} = excluded.{n}" for n in [*fields, "updated_at"])
        with closing(self._connect()) as conn, conn:
            conn.execute(
                f"INSERT INTO orders ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
                f"ON CONFLICT(id) DO UPDATE SET {updates}",
                [order_id, *inserted.values()],
            )

    def get(self, order_id: str) -> dict[str, Any] | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        out = dict(row)
        out["notified"] = bool(out["notified"])
        return out


# ---------------------------------------------------------------- DynamoDB


def _dynamodb_client() -> Any:
    """One boto3 client per process (region and credentials from the environment), made
    again if the endpoint or the region changes, as between tests in one process."""
    return _client_for(os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION"))


@cache
def _client_for(endpoint: str | None, region: str | None) -> Any:
    import boto3

    return boto3.client("dynamodb")


class DynamoBackend:
    """The DynamoDB table ``table`` (partition key ``id``): ``UpdateItem`` and ``GetItem``."""

    def __init__(self, table: str) -> None:
        self.table = table

    def update(self, order_id: str, fields: dict[str, Any]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        _check(fields)
        values = {**fields, "updated_at": _now()}
        if "notified" in values:
            values["notified"] = bool(values["notified"])
        names: dict[str, str] = {}
        data: dict[str, Any] = {}
        sets: list[str] = []
        removes: list[str] = []
        for i, (field, value) in enumerate(values.items()):
            names[f"#f{i}"] = field
            if value is None:
                removes.append(f"#f{i}")
            else:
                data[f":v{i}"] = value
                sets.append(f"#f{i} = :v{i}")
        # A new order starts as the SQLite schema's defaults.
        for default, value in (("status", "received"), ("notified", False)):
            if default not in values:
                names[f"#{default}"] = default
                data[f":{default}"] = value
                sets.append(f"#{default} = if_not_exists(#{default}, :{default})")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        serialize = TypeSerializer().serialize
        _dynamodb_client().update_item(
            TableName=self.table,
            Key={"id": {"S": order_id}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={k: serialize(v) for k, v in data.items()},
        )

    def get(self, order_id: str) -> dict[str, Any] | None:
        from boto3.dynamodb.types import TypeDeserializer

        found = _dynamodb_client().get_item(
            TableName=self.table, Key={"id": {"S": order_id}}, ConsistentRead=True
        )
        if "Item" not in found:
            return None
        deserialize = TypeDeserializer().deserialize
        item = {k: deserialize(v) for k, v in found["Item"].items()}
        out: dict[str, Any] = {"id": item["id"]}
        for field in (*COLUMNS, "updated_at"):
            value = item.get(field)
            if isinstance(value, Decimal):
                value = int(value) if value == value.to_integral_value() else float(value)
            out[field] = value
        out["notified"] = bool(out["notified"])
        return out


# ---------------------------------------------------------------- the interface


def backend() -> Backend:
    """The DynamoDB table named by ``$ORDER_SERVICE_TABLE`` if set, else the SQLite file."""
    table = os.environ.get(TABLE_ENV)
    return DynamoBackend(table) if table else SqliteBackend()


async def update_order(order_id: str, **fields: Any) -> None:
    """Create or update an order (``status="charged"``, ``charge_id=...``): the fields given
    are set, the others kept."""
    await asyncio.to_thread(backend().update, order_id, fields)


async def get_order(order_id: str) -> dict[str, Any] | None:
    """The order's fields and ``updated_at``, or ``None`` if there is no such order."""
    return await asyncio.to_thread(backend().get, order_id)
