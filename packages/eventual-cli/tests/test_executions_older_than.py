"""``eventual executions --older-than``: only finished executions that ended longer ago than
the duration (what retention removes next); one in progress never, however old."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from eventual.cli import executions as executions_cli
from eventual.cli.client import DevClient
from eventual.cli.main import app
from eventual.core.models import Execution, ExecutionStatus


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


NOW = datetime.now(UTC)
ROWS = [
    {
        "id": "greet/recent",
        "workflowName": "greet",
        "status": "SUCCEEDED",
        "startTime": _iso(NOW - timedelta(hours=2)),
        "endTime": _iso(NOW - timedelta(hours=1)),
    },
    {
        "id": "greet/running",
        "workflowName": "greet",
        "status": "IN_PROGRESS",
        "startTime": _iso(NOW - timedelta(days=90)),
    },
    {
        "id": "greet/old-failed",
        "workflowName": "greet",
        "status": "FAILED",
        "startTime": _iso(NOW - timedelta(days=41)),
        "endTime": _iso(NOW - timedelta(days=40)),
        "error": "Boom",
        "message": "boom",
    },
    {
        "id": "greet/old",
        "workflowName": "greet",
        "status": "SUCCEEDED",
        "startTime": _iso(NOW - timedelta(days=61)),
        "endTime": _iso(NOW - timedelta(days=60)),
    },
]


class _Client:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def list_executions_started_before(
        self, before: datetime, **kwargs: Any
    ) -> list[dict[str, Any]]:
        self.calls.append({"before": before, **kwargs})
        wanted = kwargs.get("statuses")
        rows = [r for r in ROWS if wanted is None or r["status"] in wanted]
        return [r for r in rows if r["startTime"] < _iso(before)]  # (ROWS are newest first)


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Client]:
    fake = _Client()

    @contextmanager
    def command_client(*args: Any, **kwargs: Any) -> Iterator[_Client]:
        yield fake

    monkeypatch.setattr(executions_cli, "command_client", command_client)
    yield fake


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["executions", *args])


def test_only_finished_executions_that_ended_longer_ago_are_listed(client: _Client) -> None:
    result = _run("--older-than", "30d", "--json")
    assert result.exit_code == 0, result.output
    assert [e["id"] for e in json.loads(result.stdout)] == ["greet/old-failed", "greet/old"]
    # Of finished executions only, started before the cutoff (only they can have ended
    # before it).
    assert client.calls[-1]["statuses"] == ["SUCCEEDED", "FAILED"]
    assert abs(client.calls[-1]["before"] - (datetime.now(UTC) - timedelta(days=30))) < timedelta(
        minutes=1
    )
    table = _run("--older-than", "45d")
    assert table.exit_code == 0, table.output
    assert "greet/old" in table.stdout and "greet/old-failed" not in table.stdout
    assert "greet/running" not in table.stdout and "greet/recent" not in table.stdout


def test_limit_and_status_apply_after_the_age(client: _Client) -> None:
    first = _run("--older-than", "1d", "--limit", "1", "--json")
    assert [e["id"] for e in json.loads(first.stdout)] == ["greet/old-failed"]
    failed = _run("--older-than", "1d", "--status", "failed", "--json")
    assert [e["id"] for e in json.loads(failed.stdout)] == ["greet/old-failed"]


def test_nothing_old_enough_says_so(client: _Client) -> None:
    result = _run("--older-than", "365d")
    assert result.exit_code == 0, result.output
    assert "No finished executions that ended more than 365d ago." in result.stdout


def test_bad_uses_say_what_to_do(client: _Client) -> None:
    bad = _run("--older-than", "soon")
    assert bad.exit_code == 1 and "--older-than" in bad.stderr and "not a duration" in bad.stderr
    off = _run("--older-than", "off")
    assert off.exit_code == 1 and "needs a duration" in off.stderr
    running = _run("--older-than", "1d", "--status", "in_progress")
    assert running.exit_code == 1 and "finished executions only" in running.stderr
    assert client.calls == []


def test_the_help_says_it_means_ended_and_finished_only() -> None:
    result = CliRunner().invoke(app, ["executions", "--help"], env={"COLUMNS": "200"})
    assert "--older-than" in result.stdout
    assert "Only finished executions" in result.stdout and "ended longer ago" in result.stdout


class _System:
    """The client's system calls, as the service answers ``listExecutions`` oldest first."""

    def __init__(self, executions: list[Execution]) -> None:
        self.executions = executions
        self.read = 0
        self.sort_direction: str | None = None

    def iter_executions(self, **kwargs: Any) -> Iterator[Execution]:
        self.sort_direction = kwargs["sort_direction"]
        for execution in sorted(self.executions, key=lambda e: e.start_time):
            self.read += 1
            yield execution


def test_the_listing_stops_reading_at_the_first_execution_started_after_the_cutoff() -> None:
    cutoff = NOW - timedelta(days=30)
    executions = [
        Execution(
            id=f"greet/{days}",
            workflow="greet",
            status=ExecutionStatus.SUCCEEDED,
            start_time=NOW - timedelta(days=days),
            end_time=NOW - timedelta(days=days) + timedelta(minutes=1),
        )
        for days in (1, 2, 3, 40, 50, 60, 29, 5)
    ]
    system = _System(executions)
    client = DevClient("http://127.0.0.1:1")
    client._system = system  # type: ignore[assignment]  # (the service's answers)
    rows = client.list_executions_started_before(cutoff)
    assert [r["id"] for r in rows] == ["greet/40", "greet/50", "greet/60"]  # newest first
    assert system.sort_direction == "ASC"
    assert system.read == 4  # the three old ones and the first one after: no more
