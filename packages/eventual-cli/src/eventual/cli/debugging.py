"""Time-machine debugging and project commands: ``eventual replay``, ``eventual timeline``,
``eventual init``. Registered on the main app when ``eventual.cli.main`` is imported."""

from __future__ import annotations

import os
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from eventual.core.service import load_service

from .client import CliError
from .main import UrlOption, _client, app, emit_json, err, fail, friendly, out
from .replaying import ENTRY_ENV, entry_from_project, replay_execution
from .scaffold import ScaffoldError, scaffold
from .timeline import EXECUTIONS_PATH, timeline_path


def out_line(text: str) -> None:
    """One line of output, never wrapped (scripts and tests read it)."""
    out.print(text, soft_wrap=True)


def _entry(entry: str | None) -> str:
    found = entry or os.environ.get(ENTRY_ENV) or entry_from_project(Path.cwd())
    if not found:
        raise CliError(
            "which service should replay it? pass --entry (a module like order_service or a "
            f'path), set ${ENTRY_ENV}, or add [tool.eventual] entry = "..." to pyproject.toml'
        )
    return found


@app.command()
@friendly
def replay(
    ctx: typer.Context,
    execution_id: Annotated[str, typer.Argument(metavar="ID", help="The execution id.")],
    entry: Annotated[
        str | None,
        typer.Option(
            "--entry",
            help=f"The service whose current code replays it (default: ${ENTRY_ENV} or "
            "[tool.eventual] entry in pyproject.toml).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--pdb", help="Stop in pdb at the first line of the workflow.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Replay a recorded execution against the current code, with no side effects.

    The history is fetched from the server and the workflow re-run in this process: a
    `breakpoint()` in the workflow stops there with the values of that past run. Exits 0 when
    the replay reaches the recorded outcome, 1 when it does not (with the seq that differs)."""
    service = load_service(_entry(entry))
    with _client(ctx, url) as client:
        execution = client.get_execution(execution_id)
        events = client.history(execution_id)
    report = replay_execution(service, execution, events, debug=debug)
    if report.determinism_error is not None:
        e = report.determinism_error
        out_line(f"[red]The current code does not reproduce {escape(execution_id)}.[/]")
        out_line(f"  at seq {e.seq}: recorded {escape(str(e.recorded))}")
        out_line(f"  {' ' * len(str(e.seq))}         the code did {escape(str(e.actual))}")
        raise typer.Exit(1)
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
        return
    out_line(
        f"[red]Replayed {report.events} events of {escape(execution_id)}: the outcome differs.[/]"
    )
    out_line(f"  recorded: {report.recorded_status} {escape(str(report.recorded))}")
    out_line(f"  replayed: {replayed.status.value} {escape(str(got))}")
    raise typer.Exit(1)


@app.command()
@friendly
def timeline(
    ctx: typer.Context,
    execution_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The execution id; none for the list.")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")
    ] = False,
    url: UrlOption = None,
) -> None:
    """Print the URL of an execution's timeline page (served by the dev server)."""
    with _client(ctx, url) as client:
        if execution_id is not None:
            client.get_execution(execution_id)  # a clear error if there is no such execution
        base = client.url
    page = base + (timeline_path(execution_id) if execution_id else EXECUTIONS_PATH)
    out_line(page)
    if open_browser:
        webbrowser.open(page)


@app.command()
def init(
    name: Annotated[str, typer.Argument(help="The project's name (a new directory).")],
    frontend: Annotated[
        bool, typer.Option("--frontend", help="Add apps/frontend, a page calling the service.")
    ] = False,
    git: Annotated[bool, typer.Option("--git/--no-git", help="Run `git init`.")] = True,
    dev_source: Annotated[
        Path | None,
        typer.Option(
            "--dev-source",
            help="Use the eventual packages of this local checkout of Eventual for Python.",
        ),
    ] = None,
    directory: Annotated[
        Path, typer.Option("--directory", "-C", help="Where to create the project.")
    ] = Path("."),
    json_out: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Scaffold a new Eventual project: a uv workspace with a service package, its tests and a
    CDK app (and with --frontend, a web page calling the service)."""
    try:
        result = scaffold(name, directory, frontend=frontend, git=git, dev_source=dev_source)
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    files = [str(p.relative_to(result.root)) for p in result.files]
    if json_out:
        emit_json({"root": str(result.root), "files": files, "git": result.git})
        return
    out_line(f"[green]Created {escape(str(result.root))}[/] ({len(files)} files)")
    for f in files:
        out_line(f"  {escape(f)}")
    err.print(
        f"\nNext:\n  cd {escape(str(result.root))}\n  uv sync\n  uv run pytest\n"
        "  uv run eventual dev packages/service"
    )
