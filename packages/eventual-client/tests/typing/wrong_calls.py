# ruff: noqa: E501, B018, F401, F841, I001
"""Calls pyright must reject. Each `# E: rule | text` marks an error pyright must report on that
line, with that rule and that text in its message; tests/test_typing.py also checks that no
unmarked line has an error."""

# fmt: off
from __future__ import annotations

from typing import TYPE_CHECKING

from client_example_service import Invoice, Order, greet, ping, send_invoice

from eventual.client import EventualClient, ServiceClient, SyncServiceClient

if TYPE_CHECKING:
    import client_example_service as example
    from client_example_service import no_such_command  # E: reportAttributeAccessIssue | unknown import symbol


async def wrong_input(client: ServiceClient) -> None:
    await client.call(send_invoice, 42)  # E: reportArgumentType | "Literal[42]" is not assignable to "Order"
    await client.call(send_invoice, Invoice(order_id="o1", total=1))  # E: reportArgumentType | "Invoice" is not assignable to "Order"
    await client.call(greet, Order(id="o1", amount=1))  # E: reportArgumentType | "Order" is not assignable to "str"
    await client.call(example.send_invoice, "o1")  # E: reportArgumentType | "Order"
    await client.call(send_invoice)  # E: reportCallIssue | No overloads
    await client.call(ping, "unexpected")  # E: reportArgumentType | is not assignable to "None"


async def unknown_command(client: ServiceClient) -> None:
    await client.call(example.send_invoices, Order(id="o1", amount=1))  # E: reportAttributeAccessIssue | "send_invoices" is not a known attribute


async def misused_result(client: ServiceClient) -> None:
    invoice = await client.call(send_invoice, Order(id="o1", amount=1))
    print(invoice.amount)  # E: reportAttributeAccessIssue | "amount" for class "Invoice"
    total: str = invoice.total  # E: reportAssignmentType | "int" is not assignable to declared type "str"
    greeting: int = await client.call(greet, "Ada")  # E: reportAssignmentType | "str" is not assignable to declared type "int"


def sync_misuse(client: SyncServiceClient) -> None:
    client.call(send_invoice, "o1")  # E: reportArgumentType | "Order"
    answer = client.call(ping)
    answer.total  # E: reportAttributeAccessIssue | "total" for class "str"


async def system_misuse(client: EventualClient) -> None:
    await client.start_execution(example.process_order, "not an order")  # E: reportArgumentType | "Order"
    handle = await client.start_execution(example.process_order, Order(id="o1", amount=1))
    handle.result  # E: reportAttributeAccessIssue | "RemoteExecution[Invoice]"
    status = await handle.get_status()
    status.state  # E: reportAttributeAccessIssue | "state" for class "Execution"
