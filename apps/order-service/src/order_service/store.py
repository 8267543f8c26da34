"""The order store the tasks write to: one SQLite file, so it outlives dev-server restarts.

Its path is ``$ORDER_SERVICE_DB`` when set, else ``orders.db`` in ``$EVENTUAL_DATA_DIR``
(``eventual dev`` sets it to the folder of its own database, ``.eventual/`` beside the
service), else ``.eventual/orders.db`` in the current directory. The path is read on every
call, so tests can point it elsewhere.

Every write is an upsert keyed by the order id: tasks run at least once, so running one
twice must leave the store as running it once did.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_ENV = "ORDER_SERVICE_DB"
DATA_DIR_ENV = "EVENTUAL_DATA_DIR"

_COLUMNS = ("status", "amount", "source", "charge_id", "tracking", "notified", "note")

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


def db_path() -> Path:
    explicit = os.environ.get(DB_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(DATA_DIR_ENV) or ".eventual") / "orders.db"


def _connect() -> sqlite3.Connection:
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute(_SCHEMA)
    return conn


def _update(order_id: str, fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"unknown order fields: {', '.join(sorted(unknown))}")
    now = datetime.now(UTC).isoformat()
    inserted = {"status": "received", **fields, "updated_at": now}
    names = ["id", *inserted]
    updates = ", ".join(f"{n} = excluded.{n}" for n in [*fields, "updated_at"])
    with closing(_connect()) as conn, conn:
        conn.execute(
            f"INSERT INTO orders ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
            f"ON CONFLICT(id) DO UPDATE SET {updates}",
            [order_id, *inserted.values()],
        )


def _get(order_id: str) -> dict[str, Any] | None:
    with closing(_connect()) as conn:
        row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        return None
    out = dict(row)
    out["notified"] = bool(out["notified"])
    return out


async def update_order(order_id: str, **fields: Any) -> None:
    """Create or update an order's row (``status="charged"``, ``charge_id=...``)."""
    await asyncio.to_thread(_update, order_id, fields)


async def get_order(order_id: str) -> dict[str, Any] | None:
    return await asyncio.to_thread(_get, order_id)
