"""Workflows and their executions: ``eventual start`` (and ``--follow``), ``executions``,
``execution``, ``history``, ``logs`` and ``workflows``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .common import (
    JsonOption,
    RegionOption,
    ServiceOption,
    UrlOption,
    command_client,
    emit_json,
    emit_json_line,
    err,
    friendly,
    out,
)
from .errors import CliError
from .formatting import history_table, outcome, status_text, when
from .parsing import input_value, parse_statuses

if TYPE_CHECKING:
    from .client import DevClient

POLL_INTERVAL = 0.3
FINISHED = ["SUCCEEDED", "FAILED"]


def _ended_before(execution: dict[str, Any], cutoff: datetime) -> bool:
    """Whether a listed (wire) execution finished before ``cutoff``."""
    ended = execution.get("endTime")
    if execution.get("status") not in FINISHED or not ended:
        return False
    return datetime.fromisoformat(str(ended).replace("Z", "+00:00")) < cutoff


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
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Wait for the end and print the result (the server holds the request until "
            "then; exit status 1 if it fails).",
        ),
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

    With --follow, print its history events as they happen and end with its result; with
    --wait, print only the result (exit status 1 if it fails).
    """
    if follow and wait:
        raise CliError("--follow already waits for the end; give one of --follow and --wait")
    value = input_value(input, file)
    with command_client(ctx, url, service, region) as client:
        result = client.start_execution(workflow, value, name=name, timeout=timeout)
        execution_id = result["executionId"]
        if json_out and not (follow or wait):
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
        if follow or wait:
            if follow:
                final = follow_execution(client, execution_id, json_out=json_out)
            else:
                try:
                    final = client.wait(execution_id)
                except KeyboardInterrupt:
                    raise typer.Exit(130) from None
                print_outcome(execution_id, final, json_out=json_out)
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
    print_outcome(execution_id, execution, json_out=json_out)
    return execution


def print_outcome(execution_id: str, execution: dict[str, Any], *, json_out: bool) -> None:
    """The end of an execution: its record as a JSON line, or its result or error."""
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
    build: Annotated[
        str | None,
        typer.Option(
            "--build",
            "-b",
            help="Only the executions started on this build (the Build column): what still "
            "runs on old code before a patch is removed.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", help="At most this many, newest first.", min=1)
    ] = 100,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Only finished executions (SUCCEEDED, FAILED) that ended longer ago than "
            "this (30d, 12h, 90m, 45s, 2w): what retention removes next. Executions in "
            "progress are never listed with it, however long they have run.",
        ),
    ] = None,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """List executions, newest first, with the build each started on."""
    statuses = parse_statuses(status)
    cutoff = None
    if older_than is not None:
        from .dev import parse_duration

        try:
            period = parse_duration(older_than)
        except ValueError as exc:
            raise CliError(f"--older-than: {exc}") from None
        if period is None:
            raise CliError("--older-than needs a duration (30d, 12h, 90m)")
        finished = [s for s in (statuses or FINISHED) if s in FINISHED]
        if not finished:
            raise CliError("--older-than lists finished executions only; drop --status IN_PROGRESS")
        statuses = finished
        cutoff = datetime.now(UTC) - period
    with command_client(ctx, url, service, region) as client:
        if cutoff is None:
            rows = client.list_executions(
                workflow=workflow, statuses=statuses, limit=limit, build=build
            )
        else:
            # Only those started before the cutoff can have ended before it.
            started = client.list_executions_started_before(
                cutoff, workflow=workflow, statuses=statuses, build=build
            )
            rows = [e for e in started if _ended_before(e, cutoff)][:limit]
    if json_out:
        emit_json(rows)
        return
    if not rows:
        if older_than is not None:
            out.print(f"No finished executions that ended more than {older_than} ago.")
        else:
            out.print("No executions.")
        return
    table = Table(box=None, pad_edge=False)
    # Ids are copied into other commands: never cut them.
    table.add_column("Execution", no_wrap=True, min_width=max(len(e["id"]) for e in rows))
    table.add_column("Status", no_wrap=True, min_width=11)
    table.add_column("Started", no_wrap=True, style="dim")
    table.add_column("Ended", no_wrap=True, style="dim")
    table.add_column("Build", no_wrap=True, style="cyan")
    table.add_column("Outcome", overflow="fold")
    for e in rows:
        table.add_row(
            escape(e["id"]),
            status_text(e["status"]),
            when(e.get("startTime")),
            when(e.get("endTime")),
            escape(e.get("build") or "-"),
            outcome(e),
        )
    out.print(table)


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
    with command_client(ctx, url, service, region) as client:
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
    if e.get("build"):
        table.add_row("Build", escape(str(e["build"])))
    table.add_row("Input", escape(json.dumps(e.get("input"))))
    if e["status"] == "SUCCEEDED":
        table.add_row("Result", escape(json.dumps(e.get("result"))))
    if e["status"] == "FAILED":
        table.add_row("Error", f"[red]{escape(str(e.get('error')))}[/]")
        table.add_row("Message", escape(str(e.get("message") or "")))
    if e.get("parent"):
        table.add_row("Parent", escape(str(e["parent"].get("executionId"))))
    out.print(table)


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
    with command_client(ctx, url, service, region) as client:
        events = client.history(execution_id)
        if not events:
            client.get_execution(execution_id)  # no such execution: say so, not an empty table
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
    with command_client(ctx, url, service, region) as client:
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


@friendly
def workflows(
    ctx: typer.Context,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """List the workflows the service defines."""
    with command_client(ctx, url, service, region) as client:
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
