"""``eventual purge`` and ``eventual dev --retention``'s durations: the finished executions of a
dev database older than the period go; one in progress stays."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventual.cli.dev import parse_duration
from eventual.cli.main import app
from eventual.core import ExecutionStatus, signal, workflow
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service

go = signal("purge.go")


@workflow("purge.quick")
async def purge_quick(n: int) -> int:
    return n


@workflow("purge.waits")
async def purge_waits(n: int) -> int:
    await go.expect_signal()
    return n


def test_durations() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("90") == timedelta(seconds=90)
    assert parse_duration("off") is None
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


async def _build(path: Path) -> None:
    service = load_service(sys.modules[__name__], module_only=True)
    async with SqliteRuntime(service, db_path=path) as rt:
        for i in range(3):
            done = await rt.start_execution("purge.quick", i, execution_name=f"q{i}")
            await rt.wait_for_execution(done)
        await rt.start_execution("purge.waits", 1, execution_name="w")
        await rt.idle()


def test_purge_removes_finished_executions_and_keeps_the_running_one(tmp_path: Path) -> None:
    db = tmp_path / "dev.db"
    asyncio.run(_build(db))
    runner = CliRunner()
    kept = runner.invoke(app, ["purge", "--db", str(db), "--older-than", "1d", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.output)["removed"] == 0  # all finished within the last day
    result = runner.invoke(app, ["purge", "--db", str(db), "--older-than", "0s", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["removed"] == 3

    async def left() -> list[tuple[str, ExecutionStatus]]:
        service = load_service(sys.modules[__name__], module_only=True)
        async with SqliteRuntime(service, db_path=db, workers=False) as rt:
            listed, _ = await rt.list_executions()
            return [(e.id, e.status) for e in listed]

    assert asyncio.run(left()) == [("purge.waits/w", ExecutionStatus.IN_PROGRESS)]


def test_purge_says_what_is_wrong(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["purge", "--db", str(tmp_path / "none.db")])
    assert missing.exit_code != 0 and "no database" in missing.output
    bad = runner.invoke(app, ["purge", "--db", str(tmp_path), "--older-than", "soon"])
    assert bad.exit_code != 0 and "not a duration" in bad.output
