"""The ``eventual`` command line (typer + rich).

``eventual dev`` serves a service locally; the other commands talk to a running dev server
over HTTP (the system commands of the wire protocol), or to a deployed service found with
``--service NAME`` (see ``deployed.py``): tables for people, ``--json`` for scripts, and every
error as one red line with exit status 1.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import DEFAULT_URL, SERVICE_ENV, URL_ENV, CliError

if TYPE_CHECKING:
    from .client import DevClient
    from .deployed import Target

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(
    name="eventual",
    help=(
        "Eventual: run a service locally with `eventual dev`, then start workflows, send "
        "signals, emit events and read histories against it."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")
_STATUS_ALIASES = {"SUCCESS": "SUCCEEDED", "RUNNING": "IN_PROGRESS", "FAILURE": "FAILED"}
_STATUS_STYLE = {"IN_PROGRESS": "yellow", "SUCCEEDED": "green", "FAILED": "red"}
POLL_INTERVAL = 0.3


class State:
    def __init__(
        self, url: str | None = None, service: str | None = None, region: str | None = None
    ) -> None:
        self.url = url
        self.service = service
        self.region = region


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"The service URL (default: the global --url, ${URL_ENV} or {DEFAULT_URL}).",
        show_default=False,
    ),
]
ServiceOption = Annotated[
    str | None,
    typer.Option(
        "--service",
        help="A deployed service's name: its API URL is read from its discovery record in SSM "
        "and system requests are signed with SigV4 (default: the global --service or "
        f"${SERVICE_ENV}).",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="The AWS region of --service (default: the global --region, $AWS_REGION, "
        "$AWS_DEFAULT_REGION or the AWS profile's region).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help=f"The URL of the dev server (or of a service's API); env {URL_ENV}, "
            f"default {DEFAULT_URL}.",
            show_default=False,
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help="A deployed service's name, instead of --url: the CLI reads its API URL from "
            f"the SSM discovery record and signs system requests with SigV4; env {SERVICE_ENV}.",
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="The AWS region of --service; env AWS_REGION or AWS_DEFAULT_REGION, default "
            "the AWS profile's region.",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = State(url, service, region)


def _target(
    ctx: typer.Context,
    url: str | None,
    service: str | None = None,
    region: str | None = None,
) -> Target:
    """Where a command goes: its own --url/--service/--region, else the global ones, else
    $EVENTUAL_URL/$EVENTUAL_SERVICE, else the local dev server."""
    from .deployed import resolve_target

    state = ctx.find_object(State) or State()
    return resolve_target(
        url=url,
        service=service,
        region=region,
        global_url=state.url,
        global_service=state.service,
        global_region=state.region,
    )


def _client(
    ctx: typer.Context,
    url: str | None,
    service: str | None = None,
    region: str | None = None,
) -> DevClient:
    """The client every command talks through, for :func:`_target`'s target."""
    from .deployed import connect_target  # httpx loads only when needed

    return connect_target(_target(ctx, url, service, region))


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]Error:[/] [red]{escape(message)}[/]", soft_wrap=True)
    return typer.Exit(1)


def friendly(fn: F) -> F:
    """Print a :class:`CliError` as one red line and exit with status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            raise fail(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def emit_json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- input parsing


def parse_value(text: str | None, *, what: str = "input") -> Any:
    """JSON if it parses, else the text as a JSON string (``hello`` -> ``"hello"``)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_json_file(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None


def _read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def _input(text: str | None, file: Path | None) -> Any:
    if text is not None and file is not None:
        raise CliError("give the input as an argument or with --file, not both")
    if file is not None:
        return read_json_file(file)
    return parse_value(text)


def parse_headers(values: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values or []:
        sep = ":" if ":" in value else "=" if "=" in value else None
        if sep is None:
            raise CliError(f"cannot read header {value!r}: write it as 'Name: value'")
        name, _, v = value.partition(sep)
        if not name.strip():
            raise CliError(f"cannot read header {value!r}: the name is empty")
        headers[name.strip()] = v.strip()
    return headers


def parse_statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        for part in v.split(","):
            s = part.strip().upper().replace("-", "_")
            s = _STATUS_ALIASES.get(s, s)
            if s not in STATUSES:
                raise CliError(f"unknown status {part!r}: use one of {', '.join(STATUSES)}")
            out.append(s)
    return out


# ---------------------------------------------------------------- formatting


def short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: str | None) -> str:
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return t.strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def outcome(execution: dict[str, Any]) -> str:
    status = execution.get("status")
    if status == "SUCCEEDED":
        return escape(short_json(execution.get("result")))
    if status == "FAILED":
        return escape(f"{execution.get('error')}: {execution.get('message') or ''}".strip())
    return ""


def event_details(e: dict[str, Any]) -> str:
    t = e.get("type")
    seq = f"#{e['seq']} " if "seq" in e else ""
    attempt = f" (attempt {e['attempt']})" if e.get("attempt", 1) not in (1, None) else ""
    if t == "WorkflowStarted":
        return f"input {short_json(e.get('input'))}"
    if t == "TaskScheduled":
        args = ", ".join(short_json(a, 30) for a in e.get("args", []))
        return f"{seq}{e.get('name')}({args}){attempt}"
    if t == "TaskSucceeded":
        return f"{seq}result {short_json(e.get('result'))}{attempt}"
    if t in ("TaskFailed", "ChildWorkflowFailed", "WorkflowFailed"):
        return f"{seq}{e.get('error')}: {e.get('message', '')}{attempt}".strip()
    if t == "TaskRetryScheduled":
        return f"{seq}retry at {when(e.get('until'))} after {e.get('error')}{attempt}"
    if t == "TimerScheduled":
        return f"{seq}until {when(e.get('until'))}"
    if t == "ChildWorkflowScheduled":
        return f"{seq}{e.get('name')} as {e.get('execution_id')}"
    if t == "ChildWorkflowSucceeded":
        return f"{seq}result {short_json(e.get('result'))}"
    if t == "SignalReceived":
        return f"{e.get('signal')} {short_json(e.get('payload'))}"
    if t == "SignalSent":
        return f"{seq}{e.get('signal')} to {e.get('execution_id')}"
    if t == "EventsEmitted":
        names = ", ".join(ev.get("name", "?") for ev in e.get("events", []))
        return f"{seq}{names}"
    if t == "WorkflowSucceeded":
        return f"result {short_json(e.get('result'))}"
    return seq.strip()


def history_table(events: list[dict[str, Any]], start: int = 0) -> Table:
    # Fixed widths, so the tables `start --follow` prints one after another line up.
    table = Table(box=None, pad_edge=False, show_header=start == 0)
    table.add_column("#", justify="right", style="dim", min_width=3)
    table.add_column("Time", style="dim", no_wrap=True, min_width=19)
    table.add_column("Event", no_wrap=True, min_width=22)
    table.add_column("Details", overflow="fold")
    for i, e in enumerate(events, start=start):
        style = (
            "red"
            if e.get("type") in ("WorkflowFailed", "TaskFailed", "ChildWorkflowFailed")
            else "green"
            if e.get("type") == "WorkflowSucceeded"
            else ""
        )
        name = f"[{style}]{e.get('type')}[/]" if style else str(e.get("type"))
        table.add_row(str(i), when(e.get("timestamp")), name, escape(event_details(e)))
    return table


# ---------------------------------------------------------------- eventual dev


@app.command()
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
        int, typer.Option("--port", "-p", help="The port to listen on (0 picks a free one).")
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
) -> None:
    """Serve a service locally: its commands, routes and workflows on a durable local runtime.

    Prints the URL and what the service defines, then serves until Ctrl-C. With --reload (the
    default) a change to the service's source files reloads its handlers in place; the
    database and running executions are kept.
    """
    from eventual.core.errors import ServiceError

    from .dev import DevOptions, DevServerError, bind_socket, prepare, serve

    _configure_logging()
    options = DevOptions(
        entry=entry, host=host, port=port, db=db, reload=reload, max_body=max_body,
        access_log=access_log,
    )  # fmt: skip
    try:
        session = prepare(options)
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(f"cannot import the service {entry!r}: {exc}") from None
    except Exception as exc:
        # An error in the service's own code: its traceback is what the user needs.
        err.print_exception(max_frames=20)
        raise CliError(
            f"importing the service {entry!r} failed with {type(exc).__name__}: {exc}"
        ) from None
    try:
        sock = bind_socket(host, port)
    except DevServerError as exc:
        raise CliError(str(exc)) from None
    if port == 0:
        actual = sock.getsockname()[1]
        session.url = session.url.rsplit(":", 1)[0] + f":{actual}"
    from eventual.core.runtime.sqlite import DatabaseLocked

    try:
        asyncio.run(serve(session, sock, on_ready=_banner))
    except KeyboardInterrupt:
        pass
    except DatabaseLocked as exc:
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
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True),
        show_path=False,
        rich_tracebacks=False,
        markup=False,
        log_time_format="%H:%M:%S",
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


# ---------------------------------------------------------------- workflows and executions


@app.command()
@friendly
def start(
    ctx: typer.Context,
    workflow: Annotated[str, typer.Argument(help="The workflow's name.")],
    input: Annotated[
        str | None,
        typer.Argument(help="The input as JSON (text that is not JSON is sent as a string)."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="The execution name (starting it again is a no-op)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the JSON input from a file (- for stdin)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Print the history as it grows until the end.")
    ] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="The execution's timeout in seconds.")
    ] = None,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Start a workflow execution and print its id.

    With --follow, print its history events as they happen and end with its result (exit
    status 1 if it fails).
    """
    value = _input(input, file)
    with _client(ctx, url, service, region) as client:
        result = client.start_execution(workflow, value, name=name, timeout=timeout)
        execution_id = result["executionId"]
        if json_out and not follow:
            emit_json(result)
            return
        if json_out:
            emit_json_line(
                {"executionId": execution_id, "alreadyRunning": result["alreadyRunning"]}
            )
        elif result.get("alreadyRunning"):
            out.print(f"Execution [bold]{escape(execution_id)}[/] already exists")
        else:
            out.print(f"Started [bold]{escape(execution_id)}[/]")
        if follow:
            final = follow_execution(client, execution_id, json_out=json_out)
            if final.get("status") == "FAILED":
                raise typer.Exit(1)


def follow_execution(client: DevClient, execution_id: str, *, json_out: bool) -> dict[str, Any]:
    """Print new history events until the execution ends; return it."""
    seen = 0
    try:
        while True:
            execution = client.get_execution(execution_id)
            events = client.history(execution_id)
            new = events[seen:]
            if new:
                if json_out:
                    for e in new:
                        emit_json_line(e)
                else:
                    out.print(history_table(new, start=seen))
                seen = len(events)
            if execution.get("status") != "IN_PROGRESS":
                # The history may have grown between the two reads: print the rest.
                rest = client.history(execution_id)[seen:]
                if rest:
                    if json_out:
                        for e in rest:
                            emit_json_line(e)
                    else:
                        out.print(history_table(rest, start=seen))
                break
            time.sleep(POLL_INTERVAL)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if json_out:
        emit_json_line(execution)
    elif execution.get("status") == "SUCCEEDED":
        out.print(
            f"[green]{escape(execution_id)} succeeded:[/] "
            f"{escape(json.dumps(execution.get('result')))}"
        )
    else:
        error = f"{execution.get('error')}: {execution.get('message') or ''}"
        err.print(
            f"[bold red]Error:[/] [red]{escape(execution_id)} failed: {escape(error)}[/]",
            soft_wrap=True,
        )
    return execution


@app.command()
@friendly
def executions(
    ctx: typer.Context,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only this workflow's executions.")
    ] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            "-s",
            help="Only these statuses: IN_PROGRESS, SUCCEEDED, FAILED (repeatable).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """List executions, newest first."""
    statuses = parse_statuses(status)
    with _client(ctx, url, service, region) as client:
        rows = client.list_executions(workflow=workflow, statuses=statuses, limit=limit)
    if json_out:
        emit_json(rows)
        return
    if not rows:
        out.print("No executions.")
        return
    table = Table(box=None, pad_edge=False)
    # Ids are copied into other commands: never cut them.
    table.add_column("Execution", no_wrap=True, min_width=max(len(e["id"]) for e in rows))
    table.add_column("Status", no_wrap=True, min_width=11)
    table.add_column("Started", no_wrap=True, style="dim")
    table.add_column("Ended", no_wrap=True, style="dim")
    table.add_column("Outcome", overflow="fold")
    for e in rows:
        table.add_row(
            escape(e["id"]),
            status_text(e["status"]),
            when(e.get("startTime")),
            when(e.get("endTime")),
            outcome(e),
        )
    out.print(table)


@app.command()
@friendly
def execution(
    ctx: typer.Context,
    execution_id: Annotated[
        str, typer.Argument(metavar="ID", help="The execution id (workflow/name).")
    ],
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Show one execution: its status, input and result or error."""
    with _client(ctx, url, service, region) as client:
        e = client.get_execution(execution_id)
    if json_out:
        emit_json(e)
        return
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("Execution", escape(e["id"]))
    table.add_row("Workflow", escape(e.get("workflowName", "")))
    table.add_row("Status", status_text(e["status"]))
    table.add_row("Started", when(e.get("startTime")))
    if e.get("endTime"):
        table.add_row("Ended", when(e.get("endTime")))
    table.add_row("Input", escape(json.dumps(e.get("input"))))
    if e["status"] == "SUCCEEDED":
        table.add_row("Result", escape(json.dumps(e.get("result"))))
    if e["status"] == "FAILED":
        table.add_row("Error", f"[red]{escape(str(e.get('error')))}[/]")
        table.add_row("Message", escape(str(e.get("message") or "")))
    if e.get("parent"):
        table.add_row("Parent", escape(str(e["parent"].get("executionId"))))
    out.print(table)


@app.command()
@friendly
def history(
    ctx: typer.Context,
    execution_id: Annotated[
        str, typer.Argument(metavar="ID", help="The execution id (workflow/name).")
    ],
    json_out: JsonOption = False,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Write the history to FILE as versioned JSON, for regression tests that "
            "replay it with eventual.testing.replay.",
            metavar="FILE",
        ),
    ] = None,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Print an execution's recorded history, oldest event first."""
    with _client(ctx, url, service, region) as client:
        events = client.history(execution_id)
    if export is not None:
        from eventual.core.history import export_history, parse_history

        try:
            export.write_text(json.dumps(export_history(parse_history(events)), indent=2) + "\n")
        except OSError as exc:
            raise CliError(f"cannot write {export}: {exc.strerror or exc}") from None
        err.print(f"Wrote {len(events)} events of {escape(execution_id)} to {escape(str(export))}")
        return
    if json_out:
        emit_json(events)
        return
    out.print(history_table(events))


@app.command()
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
    with _client(ctx, url, service, region) as client:
        client.send_signal(execution_id, signal_name, parse_value(payload), signal_id=signal_id)
    out.print(f"Sent signal [bold]{escape(signal_name)}[/] to {escape(execution_id)}")


@app.command()
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
        text = _read_text(file)
        try:
            values.append(json.loads(text))
        except ValueError:
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    values.append(json.loads(line))
                except ValueError as exc:
                    raise CliError(f"{file} line {n} is not valid JSON: {exc}") from None
    if not values:
        raise CliError("give at least one payload, as an argument or with --file")
    with _client(ctx, url, service, region) as client:
        client.emit(event, values)
    out.print(f"Emitted {len(values)} [bold]{escape(event)}[/] event(s)")


@app.command()
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
    value = _input(input, file)
    headers = parse_headers(header)
    with _client(ctx, url, service, region) as client:
        result = client.invoke(command, value, headers)
    emit_json(result)


@app.command()
@friendly
def logs(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Option("--execution", "-e", help="Only this execution's logs.")
    ] = None,
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", help="Only this workflow's logs.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Print the log lines workflows wrote (logging from workflow code)."""
    seen = 0
    with _client(ctx, url, service, region) as client:
        try:
            while True:
                lines = client.logs(execution_id=execution_id, workflow=workflow)
                for line in lines[seen:]:
                    if json_out:
                        emit_json_line(line)
                    else:
                        out.print(
                            f"[dim]{when(line.get('timestamp'))}[/] "
                            f"[cyan]{escape(str(line.get('source')))}[/] "
                            f"{escape(str(line.get('level')))} {escape(str(line.get('message')))}"
                        )
                seen = max(seen, len(lines))
                if not follow:
                    break
                time.sleep(POLL_INTERVAL * 3)
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    if not seen and not json_out and not follow:
        out.print("No log lines.")


@app.command()
@friendly
def workflows(
    ctx: typer.Context,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """List the workflows the service defines."""
    with _client(ctx, url, service, region) as client:
        names = client.workflows()
    if json_out:
        emit_json(names)
        return
    if not names:
        out.print("The service defines no workflows.")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("Workflow", style="bold")
    for n in names:
        table.add_row(escape(n))
    out.print(table)


# replay/timeline, synth/deploy and init live in their own modules; importing them registers
# them on `app`.
from . import debugging as _debugging  # noqa: E402
from . import deploying as _deploying  # noqa: E402
from . import initializing as _initializing  # noqa: E402

del _debugging, _deploying, _initializing


def main() -> None:
    """The ``eventual`` console script."""
    app()


if __name__ == "__main__":
    main()
