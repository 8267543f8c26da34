"""Calls pyright must accept, with the output types it must infer (checked by assert_type)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, assert_type

# 1. The service's definitions imported normally (the client reads only their names and types).
from client_example_service import Invoice, Order, add_all, greet, ping, send_invoice

from eventual.client import (
    EventualClient,
    RemoteExecution,
    ServiceClient,
    SyncEventualClient,
    SyncRemoteExecution,
    SyncServiceClient,
    command_ref,
    service_ref,
)
from eventual.core import Execution

# 2. The service module imported for the type checker only: nothing of it runs in the client.
if TYPE_CHECKING:
    import client_example_service as example
else:
    example = service_ref(greet="getGreeting")

# 3. One command at a time, for the type checker only.
if TYPE_CHECKING:
    from client_example_service import process_order
    from client_example_service import send_invoice as remote_send_invoice
else:
    process_order = "processOrder"
    remote_send_invoice = command_ref("send_invoice", output=Invoice)


async def service_calls(client: ServiceClient) -> None:
    invoice = await client.call(send_invoice, Order(id="o1", amount=1))
    assert_type(invoice, Invoice)
    print(invoice.total + 1)
    assert_type(await client.call(greet, "Ada"), str)
    assert_type(await client.call(ping), str)
    assert_type(await client.call(add_all, [1, 2]), int)
    assert_type(await client.call(example.send_invoice, Order(id="o2", amount=2)), Invoice)
    assert_type(await client.call(example.greet, "Bob"), str)
    assert_type(await client.call(remote_send_invoice, Order(id="o3", amount=3)), Invoice)
    assert_type(await client.call("send_invoice", {"id": "o4", "amount": 4}), Any)
    typed = command_ref("send_invoice", input=Order, output=Invoice)
    assert_type(await client.call(typed, Order(id="o5", amount=5)), Invoice)


def sync_calls(client: SyncServiceClient) -> None:
    assert_type(client.call(send_invoice, Order(id="o1", amount=1)), Invoice)
    assert_type(client.call(example.ping), str)


async def system_calls(client: EventualClient, sync: SyncEventualClient) -> None:
    handle = await client.start_execution(process_order, Order(id="o1", amount=1))
    assert_type(handle, RemoteExecution[Invoice])
    assert_type(await handle.get_status(), Execution)
    by_name = await client.start_execution("processOrder", {"id": "o1", "amount": 1})
    assert_type(by_name, RemoteExecution[Any])
    assert_type(await client.get_execution(handle), Execution)
    await client.send_signal(handle, "approve", "ok")
    sync_handle = sync.start_execution(process_order, Order(id="o2", amount=1))
    assert_type(sync_handle, SyncRemoteExecution[Invoice])
    assert_type(sync.list_workflows(), list[str])
