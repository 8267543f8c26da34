"""Messages to a service: ``eventual signal`` (to an execution), ``emit`` (events to its
subscriptions) and ``invoke`` (one of its commands)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from eventual.core.serialization import JsonTooDeep, loads

from .common import (
    RegionOption,
    ServiceOption,
    UrlOption,
    command_client,
    emit_json,
    friendly,
    out,
)
from .errors import CliError
from .parsing import input_value, parse_headers, parse_value, read_text

if TYPE_CHECKING:
    from .client import DevClient


@friendly
def signal(
    ctx: typer.Context,
    execution_id: Annotated[
        str, typer.Argument(metavar="ID", help="The execution id (workflow/name).")
    ],
    signal_name: Annotated[str, typer.Argument(metavar="SIGNAL", help="The signal's name.")],
    payload: Annotated[
        str | None,
        typer.Argument(help="The payload as JSON (text that is not JSON is sent as a string)."),
    ] = None,
    signal_id: Annotated[
        str | None,
        typer.Option("--id", help="A deduplication id: sending the same id twice delivers once."),
    ] = None,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Send a signal to a running execution."""
    with command_client(ctx, url, service, region) as client:
        _refuse_ended(client, execution_id)
        client.send_signal(execution_id, signal_name, parse_value(payload), signal_id=signal_id)
    out.print(f"Sent signal [bold]{escape(signal_name)}[/] to {escape(execution_id)}")


def _refuse_ended(client: DevClient, execution_id: str) -> None:
    """An execution that has ended drops the signals sent to it: say so instead of sending.
    (An unknown one is left to the service, whose answer names what is wrong.)"""
    from .client import RemoteError  # (httpx loads only when a command needs it)

    try:
        execution = client.get_execution(execution_id)
    except RemoteError as exc:
        if exc.status == 404:
            return
        raise
    status = execution.get("status")
    if status != "IN_PROGRESS":
        raise CliError(
            f"{execution_id} has already ended ({str(status).lower()}): a signal to it would be "
            "dropped; start a new execution to send it to"
        )


@friendly
def emit(
    ctx: typer.Context,
    event: Annotated[str, typer.Argument(help="The event's name.")],
    payloads: Annotated[
        list[str] | None,
        typer.Argument(help="One or more payloads as JSON (each one is an event)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="Read payloads from a file: one JSON value, or JSON Lines."
        ),
    ] = None,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Emit events to the service's subscriptions."""
    values = [parse_value(p) for p in payloads or []]
    if file is not None:
        text = read_text(file)
        try:
            values.append(loads(text))
        except JsonTooDeep as exc:
            raise CliError(f"{file} is refused: {exc}") from None
        except ValueError:
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    values.append(loads(line))
                except ValueError as exc:
                    raise CliError(f"{file} line {n} is not valid JSON: {exc}") from None
    if not values:
        raise CliError("give at least one payload, as an argument or with --file")
    with command_client(ctx, url, service, region) as client:
        client.emit(event, values)
    out.print(f"Emitted {len(values)} [bold]{escape(event)}[/] event(s)")


@friendly
def invoke(
    ctx: typer.Context,
    command: Annotated[str, typer.Argument(help="The command's name.")],
    input: Annotated[
        str | None,
        typer.Argument(help="The input as JSON (text that is not JSON is sent as a string)."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="An HTTP header, 'Name: value' (repeatable)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the JSON input from a file (- for stdin)."),
    ] = None,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Call a command (POST /rpc/COMMAND) and print its JSON output."""
    value = input_value(input, file)
    headers = parse_headers(header)
    with command_client(ctx, url, service, region) as client:
        result = client.invoke(command, value, headers)
    emit_json(result)
