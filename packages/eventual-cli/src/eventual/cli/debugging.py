"""Time-machine debugging: ``eventual replay`` and ``eventual timeline``."""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from eventual.core.service import load_service

from .common import (
    RegionOption,
    ServiceOption,
    UrlOption,
    command_client,
    command_target,
    err,
    friendly,
    importing_service,
    out_line,
)
from .errors import CliError
from .replaying import (
    ENTRY_ENV,
    ReplayReport,
    entry_from_project,
    history_files,
    replay_execution,
    replay_file,
)
from .timeline import EXECUTIONS_PATH, timeline_path


def _entry(entry: str | None) -> str:
    found = entry or os.environ.get(ENTRY_ENV) or entry_from_project(Path.cwd())
    if not found:
        raise CliError(
            "which service should replay it? pass --entry (a module like order_service or a "
            f'path), set ${ENTRY_ENV}, or add [tool.eventual] entry = "..." to pyproject.toml'
        )
    return found


@friendly
def replay(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None,
        typer.Argument(metavar="[ID]", help="The execution id (fetched from the service)."),
    ] = None,
    history: Annotated[
        list[Path] | None,
        typer.Option(
            "--history",
            "-H",
            metavar="FILE|DIR",
            help="An exported history (`eventual history ID --export FILE`) to replay instead "
            "of a live execution; repeat it, or give a folder for every *.json in it.",
        ),
    ] = None,
    entry: Annotated[
        str | None,
        typer.Option(
            "--entry",
            help=f"The service whose current code replays it (default: ${ENTRY_ENV} or "
            "\\[tool.eventual] entry in pyproject.toml).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--pdb", help="Stop in pdb at the first line of the workflow.")
    ] = False,
    url: UrlOption = None,
    service_name: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Replay recorded executions against the current code, with no side effects.

    With an ID, the history is fetched from the server; with --history, it is read from
    exported files (run it in CI before a deploy: every history must still replay). The
    workflow re-runs in this process: a `breakpoint()` in it stops there with the values of
    that past run. Exits 0 when every replay reaches the recorded outcome, 1 when one does not
    (with the seq that differs)."""
    if (execution_id is None) == (not history):
        raise CliError("give an execution ID or --history FILE (one of the two)")
    found = _entry(entry)
    with importing_service(found):
        service = load_service(found)
    if history:
        files = history_files(history)
        failed = [f for f in files if not _report(replay_file(service, f, debug=debug))]
        if failed:
            out_line(
                f"[red]{len(failed)} of {len(files)} histories do not replay on this code:[/] "
                + ", ".join(escape(str(f)) for f in failed)
            )
            raise typer.Exit(1)
        out_line(f"[green]All {len(files)} histories replay on this code.[/]")
        return
    assert execution_id is not None
    with command_client(ctx, url, service_name, region) as client:
        execution = client.get_execution(execution_id)
        events = client.history(execution_id)
    if not _report(replay_execution(service, execution, events, debug=debug)):
        raise typer.Exit(1)


def _ignored_for_dev_server(ctx: typer.Context) -> None:
    """Say so when options that shape the local timeline server were given for a service
    that serves its pages itself."""
    # (The source by its name: typer carries its own copy of click's ParameterSource.)
    given = [
        flag
        for name, flag in (("port", "--port"), ("read_only", "--read-only/--allow-actions"))
        if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
    ]
    if given:
        err.print(
            f"Note: {' and '.join(given)} apply to a deployed service (--service) only: this "
            "server serves the pages itself, actions included.",
            soft_wrap=True,
        )


def _report(report: ReplayReport) -> bool:
    """Print what the replay of one execution found; True when it matches the recorded run."""
    execution_id = report.execution_id
    if report.determinism_error is not None:
        e = report.determinism_error
        out_line(f"[red]The current code does not reproduce {escape(execution_id)}.[/]")
        out_line(f"  at seq {e.seq}: recorded {escape(str(e.recorded))}")
        out_line(f"  {' ' * len(str(e.seq))}         the code did {escape(str(e.actual))}")
        return False
    replayed = report.replayed
    assert replayed is not None
    got = (
        replayed.result
        if replayed.succeeded
        else f"{replayed.error}: {replayed.message}"
        if replayed.failed
        else "still in progress"
    )
    if report.matches:
        out_line(
            f"[green]Replayed {report.events} events of {escape(execution_id)}: the outcome "
            f"matches the recorded one[/] ({report.recorded_status}: {escape(str(got))})"
        )
        return True
    out_line(
        f"[red]Replayed {report.events} events of {escape(execution_id)}: the outcome differs.[/]"
    )
    out_line(f"  recorded: {report.recorded_status} {escape(str(report.recorded))}")
    out_line(f"  replayed: {replayed.status.value} {escape(str(got))}")
    return False


@friendly
def timeline(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The execution id; none for the list.")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")
    ] = False,
    port: Annotated[
        int,
        typer.Option(
            "--port",
            help="For a deployed service: the local port of the timeline server (default: a "
            "free one).",
            min=0,
            max=65535,
        ),
    ] = 0,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only/--allow-actions",
            help="For a deployed service: refuse the dashboard's actions (signal, start, emit) "
            "in the local server (the default), or forward them signed.",
        ),
    ] = True,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Show an execution's page in the dashboard (or, with no ID, the list of executions).

    Against the dev server (or --url) it prints the URL of the page the server serves. For a
    deployed service (--service) it serves the page itself on 127.0.0.1, forwarding the
    page's requests to the service signed with your AWS credentials (only the read-only ones
    unless --allow-actions), prints the local URL and runs until Ctrl-C."""
    from .deployed import connect_target

    target = command_target(ctx, url, service, region)
    with connect_target(target) as client:
        if execution_id is not None:
            client.get_execution(execution_id)  # a clear error if there is no such execution
        if target.service is None:
            _ignored_for_dev_server(ctx)
            page = client.url + (timeline_path(execution_id) if execution_id else EXECUTIONS_PATH)
            out_line(page)
            if open_browser:
                webbrowser.open(page)
            return
        from .timeline_proxy import TimelineServer

        label = client.label or client.url
        server = TimelineServer(client, port=port, label=label, read_only=read_only).start()
        try:
            page = server.page_url(execution_id)
            out_line(page)
            err.print(
                f"Serving the timeline of {escape(label)} on {server.url} (requests are "
                "signed with your AWS credentials"
                + ("; read-only: --allow-actions to signal, start and emit" if read_only else "")
                + "). Press Ctrl-C to stop.",
                soft_wrap=True,
            )
            if open_browser:
                webbrowser.open(page)
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
