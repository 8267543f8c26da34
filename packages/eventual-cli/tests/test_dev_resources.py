"""The dev server when its database runs out of something (issue 21, item 2): what an HTTP
caller and the `eventual dev` command line see, and the server going on, without a restart,
once the cause is removed. The server is the dev server's own ASGI app on its SQLite runtime,
in-process (through httpx's ASGITransport); the lock is held by a real second process."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import cli_demo
import httpx
import pytest
from typer.testing import CliRunner

from eventual.cli.dev import DATA_DIR_ENV
from eventual.cli.main import app
from eventual.cli.server import ServiceApp
from eventual.client import EventualClient, HttpError, Retry
from eventual.core import ExecutionStatus
from eventual.core.runtime.sqlite import SqliteRuntime
from eventual.core.service import load_service

pytestmark = pytest.mark.anyio

URL = "http://dev"

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""


class Holder:
    """A second process holding an exclusive transaction on the database until released."""

    def __init__(self, path: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "locked"
        self.pid = self.process.pid

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            self.process.wait(timeout=10)


Dev = tuple[SqliteRuntime, httpx.AsyncClient, httpx.ASGITransport]


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[Dev]:
    """The dev server's app on its runtime (a short lock wait, quick retries), an HTTP client
    of it, and the transport to make more."""
    service = load_service(cli_demo)
    db = tmp_path / "dev.db"
    runtime = SqliteRuntime(
        service, db_path=db, lock_timeout=0.2, retry_delay=0.02, max_retry_delay=0.1
    )
    async with runtime as rt:
        transport = httpx.ASGITransport(app=ServiceApp(service, rt, service_url=URL))
        async with httpx.AsyncClient(transport=transport, base_url=URL) as http:
            yield rt, http, transport


async def until(predicate: Any, timeout: float = 5.0) -> None:
    with anyio.fail_after(timeout):
        while True:
            if await predicate():
                return
            await anyio.sleep(0.01)


def client(dev: Dev, retry: Retry) -> EventualClient:
    """The Python client of the service's system commands, over the same app."""
    return EventualClient(URL, transport=dev[2], retry=retry)


async def test_locked_database_503_with_the_fix_and_the_server_goes_on(
    dev: Dev,
) -> None:
    rt, http, _ = dev
    once = client(dev, Retry(attempts=1))
    waiting = await once.start_execution("waitForGo", "w", execution_name="w1")
    await waiting.send_signal("go", "early")  # recorded before the lock
    assert (await waiting.wait(5, interval=0.02)).result == "w:early"
    before = await once.start_execution("waitForGo", "b", execution_name="b1")

    await rt.idle()
    holder = await anyio.to_thread.run_sync(Holder, rt.db_path)  # (the loop commits meanwhile)
    try:
        body = {"workflow": "greet", "input": "x", "executionName": "g1"}
        response = await http.post("/rpc/_system/startExecution", json=body)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        error = response.json()
        assert error["error"] == "StorageUnavailable"
        assert error["message"].startswith(f"another process (pid {holder.pid}: ")
        assert error["message"].endswith(
            f"holds the lock on the database {rt.db_path}; stop it or end its transaction "
            "(work already accepted resumes by itself)"
        )
        # The Python client raises it as the HTTP error it is; reads still answer.
        with pytest.raises(HttpError) as raised:
            await once.send_signal(before.execution_id, "go", "late")
        assert (raised.value.status, raised.value.name) == (503, "StorageUnavailable")
        assert (await once.get_execution(before.execution_id)).status is ExecutionStatus.IN_PROGRESS
        listed = (await http.post("/rpc/_system/listExecutions", json={})).json()
        assert {e["id"] for e in listed["executions"]} == {"waitForGo/w1", "waitForGo/b1"}

        # A client that retries 503s rides through: the lock goes while it waits.
        patient = client(dev, Retry(attempts=20, backoff=0.05, max_backoff=0.1))
        results: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def start() -> None:
                results.append(await patient.start_execution("greet", "x", execution_name="g1"))

            tg.start_soon(start)
            await anyio.sleep(0.4)
            assert results == []  # still refused: the lock is held
            holder.release()
    finally:
        holder.release()
    greeting = results[0]
    assert (await greeting.wait(5, interval=0.02)).result == "HELLO X"
    await once.send_signal(before.execution_id, "go", "late")
    assert (await before.wait(5, interval=0.02)).result == "b:late"
    assert rt.errors == []


async def test_corrupted_history_over_http_fails_that_execution_readably(
    dev: Dev,
) -> None:
    rt, http, _ = dev
    once = client(dev, Retry(attempts=1))
    victim = await once.start_execution("waitForGo", "v", execution_name="victim")
    healthy = await once.start_execution("waitForGo", "h", execution_name="healthy")
    for execution in (victim, healthy):
        await until(lambda execution=execution: rt.get_history(execution.execution_id))
    await rt.db.write(
        lambda conn: conn.execute(
            "UPDATE history SET event = '{garbage' WHERE execution_id = ? AND position = 0",
            (victim.execution_id,),
        )
    )
    rt.clear_cache()  # the next step replays the history, as after a restart
    await once.send_signal(victim.execution_id, "go", "now")
    await once.send_signal(healthy.execution_id, "go", "now")

    failed = await victim.wait(5, interval=0.02)
    assert (failed.status, failed.error) == (ExecutionStatus.FAILED, "HistoryCorrupted")
    assert failed.message is not None
    assert failed.message.startswith(
        f"the history of execution 'waitForGo/victim' is corrupted at position 0 in {rt.db_path}"
    )
    assert (await healthy.wait(5, interval=0.02)).result == "h:now"
    # Its history cannot be shown: the error says why, and nothing else is affected.
    response = await http.post(
        "/rpc/_system/getExecutionHistory", json={"executionId": victim.execution_id}
    )
    assert response.status_code == 500
    assert response.json()["error"] == "HistoryCorrupted"
    assert "Traceback" not in response.text
    assert (await http.post("/rpc/add", json={"a": 1, "b": 2})).json() == 3
    assert rt.errors == []


@pytest.fixture
def quiet_logging() -> Iterator[None]:
    """`eventual dev` sets up the root logger for itself; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_eventual_dev_on_a_read_only_database_says_make_it_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, quiet_logging: None
) -> None:
    db = tmp_path / "dev.db"

    async def create() -> None:
        async with SqliteRuntime(load_service(cli_demo), db_path=db, workers=False):
            pass

    asyncio.run(create())
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    # SQLite opens a file it may not write read-only; as root (which may write any file) it
    # is told to, as it would be by the file's mode for anyone else.
    connect = sqlite3.connect

    def read_only(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        if str(database) == str(db):
            return connect(f"file:{database}?mode=ro", *args, uri=True, **kwargs)
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    args = ["dev", "cli_demo", "--db", str(db), "--port", "0", "--no-reload"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    line = " ".join(result.stderr.split())  # one message, however rich wraps it
    assert (
        f"cannot write to the database {db}: it is read-only; make it writable (then start again)"
    ) in line
    assert "Traceback" not in result.output
