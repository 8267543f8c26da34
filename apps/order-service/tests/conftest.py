from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def order_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test writes its orders to its own store."""
    path = tmp_path / "orders.db"
    monkeypatch.setenv("ORDER_SERVICE_DB", str(path))
    return path
