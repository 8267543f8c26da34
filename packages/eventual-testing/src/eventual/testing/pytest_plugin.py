"""The pytest plugin (entry point ``pytest11``): an ``eventual_env`` fixture.

Configure the service once, in the ini file::

    [tool.pytest.ini_options]
    eventual_entry = "order_service"
    eventual_start = "2024-01-01T00:00:00Z"   # optional; the default start otherwise

and request the fixture from an async test (run by anyio's pytest plugin, asyncio backend)::

    @pytest.mark.anyio
    async def test_order(eventual_env):
        execution = await eventual_env.start_execution(process_order, order)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when the fixture is used, so pytest starts without eventual
    from ._environment import TestEnvironment

ENTRY_OPTION = "eventual_entry"
START_OPTION = "eventual_start"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        ENTRY_OPTION,
        "the service entry (module name or path) that the eventual_env fixture runs",
        default="",
    )
    parser.addini(
        START_OPTION,
        "the virtual start time of eventual_env (ISO 8601, UTC if no offset)",
        default="",
    )


def _start_time(config: pytest.Config) -> datetime | None:
    raw = str(config.getini(START_OPTION) or "").strip()
    if not raw:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise pytest.UsageError(
            f"{START_OPTION} = {raw!r} is not an ISO 8601 time; write e.g. 2024-01-01T00:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@pytest.fixture
async def eventual_env(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[TestEnvironment]:
    """A fresh :class:`TestEnvironment` for the service named by the ``eventual_entry`` ini
    option, open for the duration of the test."""
    backend = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]
    if backend != "asyncio":
        pytest.skip("eventual_env runs on the asyncio backend only")
    entry = str(request.config.getini(ENTRY_OPTION) or "").strip()
    if not entry:
        raise pytest.UsageError(
            f"the eventual_env fixture needs the service: set {ENTRY_OPTION} in the pytest ini "
            f'options (for example `{ENTRY_OPTION} = "order_service"`)'
        )
    from ._environment import TestEnvironment

    async with TestEnvironment(entry, start=_start_time(request.config)) as env:
        yield env
