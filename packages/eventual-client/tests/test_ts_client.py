"""The real TypeScript client (@eventual/client 0.57, ``../shared/ts-eventual-client/``)
against ``eventual dev``: every public method of ``HttpEventualClient``, both sort
directions and paging, a missing id, a validation error, a task token. Skips only where Node
or the client build is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT / "ts_client"))

import check as ts  # noqa: E402


def test_the_typescript_client_against_eventual_dev(tmp_path: Path) -> None:
    ts.skip_without_node()
    testing = pytest.importorskip("eventual.cli.testing")
    path = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": str(SUPPORT) + (os.pathsep + path if path else "")}
    with testing.DevServerProcess("ts_client_service", tmp_path, env=env) as server:
        ts.check(ts.drive(server.url))
