from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventual.cli.testing import DevServerProcess

FIXTURES = Path(__file__).parent / "fixtures"
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _fixture_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(FIXTURES) + (os.pathsep + path if path else "")}


@pytest.fixture(scope="session")
def fixture_env() -> dict[str, str]:
    """The environment a dev-server subprocess needs to import the fixture services."""
    return _fixture_env()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServerProcess]:
    """`eventual dev cli_demo --no-reload` in a subprocess, shared by a test module."""
    workdir = tmp_path_factory.mktemp("demo")
    server = DevServerProcess(
        "cli_demo", workdir, env=_fixture_env(), extra_args=["--max-body", "4096"]
    )
    with server:
        yield server
