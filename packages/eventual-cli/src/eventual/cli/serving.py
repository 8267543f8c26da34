"""``eventual dev``: serve a service locally (the server itself is in ``dev.py`` and
``server.py``), with its start-up banner and log set-up."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .common import friendly, importing_service, out
from .errors import CliError


@friendly
def dev(
    entry: Annotated[
        str,
        typer.Argument(
            help="The service: a module name (order_service) or a path to its package or "
            "project folder (apps/order-service).",
        ),
    ] = ".",
    port: Annotated[
        int,
        typer.Option(
            "--port", "-p", help="The port to listen on (0 picks a free one).", min=0, max=65535
        ),
    ] = 3111,
    host: Annotated[str, typer.Option("--host", help="The interface to listen on.")] = "127.0.0.1",
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help="The SQLite database (default: .eventual/dev.db beside the service)."
        ),
    ] = None,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload/--no-reload",
            help="Reload the handlers when a source file changes (executions keep running).",
        ),
    ] = True,
    max_body: Annotated[
        int, typer.Option("--max-body", help="The largest request body accepted, in bytes.")
    ] = 1024 * 1024,
    access_log: Annotated[
        bool, typer.Option("--access-log/--no-access-log", help="Log every HTTP request.")
    ] = True,
    retention: Annotated[
        str,
        typer.Option(
            "--retention",
            help="How long finished executions are kept (30d, 12h, 90m, off); older ones "
            "are swept from the database, never one in progress.",
        ),
    ] = "30d",
    loop: Annotated[
        str,
        typer.Option(
            "--loop",
            help="The event loop: auto (uvloop where it is installed, as it is with the CLI "
            "on Linux and macOS; else asyncio's), uvloop, or asyncio (Python's own, e.g. for "
            "its debug mode).",
        ),
    ] = "auto",
) -> None:
    """Serve a service locally: its commands, routes and workflows on a durable local runtime.

    Prints the URL and what the service defines, then serves until Ctrl-C. With --reload (the
    default) a change to the service's source files reloads its handlers in place; the
    database and running executions are kept.
    """
    from .dev import (
        DevOptions,
        DevServerError,
        bind_socket,
        event_loop_factory,
        parse_duration,
        prepare,
        serve,
    )

    _configure_logging()
    try:
        kept = parse_duration(retention)
    except ValueError as exc:
        raise CliError(f"--retention: {exc}") from None
    try:
        loop_factory = event_loop_factory(loop)
    except ValueError as exc:
        raise CliError(f"--loop: {exc}") from None
    options = DevOptions(
        entry=entry, host=host, port=port, db=db, reload=reload, max_body=max_body,
        access_log=access_log, retention=kept,
    )  # fmt: skip
    with importing_service(entry):
        session = prepare(options)
    try:
        sock = bind_socket(host, port)
    except DevServerError as exc:
        raise CliError(str(exc)) from None
    if port == 0:
        actual = sock.getsockname()[1]
        session.url = session.url.rsplit(":", 1)[0] + f":{actual}"
    from eventual.core.runtime.sqlite import DatabaseError

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(session, sock, on_ready=_banner))
    except KeyboardInterrupt:
        pass
    except DatabaseError as exc:  # in use, read-only, locked, not a database...: one line
        raise CliError(str(exc)) from None
    finally:
        sock.close()
    out.print("[dim]Stopped.[/]")


class _QuietSystemCalls(logging.Filter):
    """Leave the CLI's own successful system-command calls out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5:
            path, status = str(args[2]), args[4]
            if path.startswith("/rpc/_system/") and isinstance(status, int) and status < 400:
                return False
        return True


def _configure_logging() -> None:
    import sys

    from rich.logging import RichHandler

    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(
            console=Console(stderr=True),
            show_path=False,
            rich_tracebacks=False,
            markup=False,
            log_time_format="%H:%M:%S",
        )
    else:  # a log file or a pipe: one line per record, never wrapped or padded
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # INFO, so the service's own logging (and workflow logs, which `eventual logs` reads)
    # is recorded; the servers' chatter stays quiet.
    root.setLevel(logging.INFO)
    for name in ("uvicorn.error", "watchfiles", "httpx", "httpcore", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").addFilter(_QuietSystemCalls())


def _banner(session: Any) -> None:
    from .dev import describe, runtime_is_durable

    service = session.service
    out.print(f"[bold]Eventual dev server[/] for service [bold cyan]{escape(service.name)}[/]")
    out.print(f"  URL       [bold]{session.url}[/]")
    out.print(f"  OpenAPI   {session.url}/openapi.json")
    if runtime_is_durable(session.runtime):
        out.print(f"  Database  {escape(str(session.db_path))}")
    else:
        out.print("  Database  [yellow]in memory (executions are lost when it stops)[/]")
    if session.options.host not in ("127.0.0.1", "localhost", "::1"):
        out.print(
            f"  [yellow]Listening on {escape(session.options.host)}: the system commands "
            "(start, signal, history...) need no authentication; keep this to trusted "
            "networks.[/]"
        )
    if session.options.reload:
        watched = ", ".join(str(p) for p in session.location.source_paths)
        out.print(f"  Reload    on, watching {escape(watched)}")
    else:
        out.print("  Reload    off")
    running = type(asyncio.get_running_loop()).__module__.split(".")[0]
    out.print(f"  Loop      {escape(running)}")
    table = Table(box=None, pad_edge=False)
    table.add_column("Kind", style="dim")
    table.add_column("Name", style="bold")
    table.add_column("Details")
    for kind, name, details in describe(service):
        table.add_row(kind, escape(name), escape(details))
    out.print()
    out.print(table)
    out.print()
    out.print("[dim]Press Ctrl-C to stop.[/]")
