"""Both clients against `eventual dev` (the dev server of eventual-cli, in a subprocess)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

testing = pytest.importorskip("eventual.cli.testing")

from eventual.client import (  # noqa: E402
    EventualClient,
    HttpError,
    ServiceClient,
    SyncEventualClient,
    SyncServiceClient,
)
from eventual.core import ExecutionStatus  # noqa: E402
from eventual.core.history import SignalReceived, WorkflowSucceeded  # noqa: E402

SUPPORT = Path(__file__).parent / "support"


@pytest.fixture(scope="module")
def dev_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = os.environ.get("PYTHONPATH")
    env = {"PYTHONPATH": str(SUPPORT) + (os.pathsep + path if path else "")}
    workdir = tmp_path_factory.mktemp("dev")
    with testing.DevServerProcess("client_example_service", workdir, env=env) as server:
        yield server.url


@pytest.mark.anyio
async def test_async_clients_against_the_dev_server(dev_url: str, example: Any):
    async with ServiceClient(dev_url) as client:
        invoice = await client.call(example.send_invoice, example.Order(id="d1", amount=2))
        assert invoice == example.Invoice(order_id="d1", total=4)
        assert await client.call(example.greet, "dev") == "hello dev from client-example-service"
        with pytest.raises(HttpError) as err:
            await client.call("send_invoice", {"id": "d1"})
        assert (err.value.status, err.value.name) == (400, "ValidationError")

    async with EventualClient(dev_url) as system:
        handle = await system.start_execution(
            example.process_order, example.Order(id="d1", amount=2), execution_name="d1"
        )
        await handle.send_signal(example.approve, "from the client")
        done = await handle.wait(timeout=30, interval=0.05)
        assert done.status is ExecutionStatus.SUCCEEDED
        assert done.result == example.Invoice(order_id="d1", total=2, note="from the client")
        history = await handle.get_history()
        assert isinstance(history[-1], WorkflowSucceeded)
        assert any(isinstance(e, SignalReceived) for e in history)
        assert "processOrder" in await system.list_workflows()


def test_sync_clients_against_the_dev_server(dev_url: str, example: Any):
    with SyncServiceClient(dev_url) as client:
        assert client.call(example.ping) == "pong"
    with SyncEventualClient(dev_url) as system:
        handle = system.start_execution("processOrder", {"id": "d2", "amount": 1})
        system.send_signal(handle, "approve", "sync")
        assert handle.wait(timeout=30, interval=0.05).result == {
            "order_id": "d2",
            "total": 1,
            "note": "sync",
        }
        ids = [e.id for e in system.list_executions(workflow="processOrder")]
        assert handle.execution_id in ids
        with pytest.raises(HttpError) as err:
            system.get_execution("processOrder/missing")
        assert err.value.status == 404
