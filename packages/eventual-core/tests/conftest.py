from __future__ import annotations

import sqlite3
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from eventual.core._context import use_runtime
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.runtime import InMemoryRuntime, VirtualClock
from eventual.core.service import load_service

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def runtime_for(module_name: str, **kwargs: Any) -> AsyncIterator[InMemoryRuntime]:
    """An in-memory runtime with a virtual clock, for the definitions of one test module."""
    service = load_service(sys.modules[module_name], module_only=True, name="test")
    async with InMemoryRuntime(service, clock=VirtualClock(START), **kwargs) as rt:
        with use_runtime(rt):
            yield rt
        assert rt.errors == []


async def finished(rt: InMemoryRuntime, execution_id: str) -> Execution:
    await rt.idle()
    execution = await rt.get_execution(execution_id)
    assert execution.status is not ExecutionStatus.IN_PROGRESS, execution
    return execution


def types_of(history: list[Any], keep: Callable[[Any], bool] = lambda e: True) -> list[str]:
    return [e.type for e in history if keep(e)]


@pytest.fixture
async def rt(request: pytest.FixtureRequest) -> AsyncIterator[InMemoryRuntime]:
    """A virtual-clock runtime over the definitions of the requesting test module."""
    async with runtime_for(request.module.__name__) as runtime:
        yield runtime


@pytest.fixture
def wait_finished() -> Callable[[InMemoryRuntime, str], Any]:
    return finished


class FullDisk:
    """A SQLite runtime's writer connection whose statements containing ``failing`` raise
    what SQLite raises on a full disk (None: every statement runs)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.failing: str | None = None

    def _check(self, sql: str) -> None:
        if self.failing is not None and self.failing in sql:
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self.conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self.conn.executemany(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


@pytest.fixture
def full_disk() -> Callable[[Any], FullDisk]:
    """Put a :class:`FullDisk` in place of a (started, inline) SQLite runtime's writer."""

    def install(rt: Any) -> FullDisk:
        full = FullDisk(rt.db._writer)
        rt.db._writer = full
        return full

    return install
