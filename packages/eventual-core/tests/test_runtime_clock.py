"""`now()` outside workflows reads the clock of the runtime serving the code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventual.core import command, now, task, workflow
from eventual.core.runtime import InMemoryRuntime

pytestmark = pytest.mark.anyio

START = datetime(2024, 1, 1, tzinfo=UTC)


@task("stamp")
async def stamp() -> datetime:
    return now()


@workflow("stamped")
async def stamped(_: None) -> list[datetime]:
    return [now(), await stamp()]


@command
async def what_time(_: None) -> datetime:
    return now()


async def test_tasks_and_commands_see_the_runtime_clock(rt: InMemoryRuntime) -> None:
    await rt.advance(90)
    handle = await stamped.start_execution(None)
    await rt.idle()
    status = await handle.get_status()
    assert status.result == [START + timedelta(seconds=90)] * 2
    assert await what_time(None) == START + timedelta(seconds=90)


async def test_without_a_runtime_now_is_the_system_clock() -> None:
    before = datetime.now(UTC)
    assert before <= now() <= datetime.now(UTC)
