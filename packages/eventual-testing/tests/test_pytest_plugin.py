"""The pytest plugin, run in a sandbox (a fresh interpreter, so the plugin is found through its
`pytest11` entry point): an `eventual_env` fixture configured from the ini."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

SERVICE = """
import asyncio
from eventual.core import task, workflow

@task("add")
async def add(a: int, b: int) -> int:
    return a + b

@workflow("adder")
async def adder(n: int) -> int:
    total = await add(n, 1)
    await asyncio.sleep(60)
    return total
"""

TESTS = """
import pytest
from datetime import timedelta
from eventual.core import ExecutionStatus
from shop_service import add, adder

pytestmark = pytest.mark.anyio


async def test_runs_with_the_configured_service(eventual_env):
    handle = await eventual_env.start_execution(adder, 1)
    await eventual_env.tick(60)
    status = await handle.get_status()
    assert status.status is ExecutionStatus.SUCCEEDED
    assert status.result == 2


async def test_each_test_gets_a_fresh_environment(eventual_env):
    assert len(await eventual_env.client.list_executions()) == 0
    eventual_env.mock_task(add).succeed(41)
    handle = await eventual_env.start_execution(adder, 1)
    await eventual_env.tick(timedelta(minutes=1))
    assert (await handle.get_status()).result == 41


async def test_the_start_time_comes_from_the_ini(eventual_env, request):
    assert request.config.getini("eventual_start") == "2030-06-01T12:00:00Z"
    assert eventual_env.time.isoformat() == "2030-06-01T12:00:00+00:00"


async def test_core_calls_find_the_environment(eventual_env):
    handle = await adder.start_execution(5)
    await eventual_env.tick(60)
    assert (await handle.get_status()).result == 6
"""

INI = """[pytest]
eventual_entry = shop_service
eventual_start = 2030-06-01T12:00:00Z
"""


def test_the_fixture_runs_the_service_named_in_the_ini(run_pytest: Callable[..., Any]) -> None:
    result = run_pytest({"shop_service.py": SERVICE, "test_shop.py": TESTS, "pytest.ini": INI})
    assert result.outcomes() == {"passed": 4}, result.output


def test_a_missing_entry_says_what_to_set(run_pytest: Callable[..., Any]) -> None:
    test = """
import pytest

@pytest.mark.anyio
async def test_needs_env(eventual_env):
    pass
"""
    result = run_pytest({"test_nothing.py": test, "pytest.ini": "[pytest]\n"})
    assert result.outcomes() == {"error": 1}, result.output
    assert "set eventual_entry in the pytest ini options" in result.output
