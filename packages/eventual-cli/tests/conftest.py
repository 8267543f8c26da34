from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eventual.cli.testing import DevServerProcess

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """`eventual dev` run in-process (CliRunner) installs its rich handler on the root logger,
    as the dev server's process should; a test must not leave it to the tests after it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


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


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's chromium, headless, driven by playwright (skips when it is not installed)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """Where tests save what a person may want to look at (screenshots): $EVENTUAL_ARTIFACTS
    or the test's temporary folder."""
    folder = Path(os.environ.get("EVENTUAL_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
