"""Project commands: ``eventual init`` (a new project, or ``--into`` an existing repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from .common import emit_json, err, fail, out_line
from .into import KIND_LABELS, apply, plan_into
from .scaffold import ScaffoldError, scaffold
from .sources import package_source


def init(
    name: Annotated[
        str,
        typer.Argument(help="The project's name (a new directory), or with --into the service's."),
    ],
    frontend: Annotated[
        bool, typer.Option("--frontend", help="Add apps/frontend, a page calling the service.")
    ] = False,
    git: Annotated[bool, typer.Option("--git/--no-git", help="Run `git init`.")] = True,
    infra: Annotated[
        str,
        typer.Option(
            "--infra",
            help="What infra/ deploys the service with: cdk (a CDK app) or pulumi (a Pulumi "
            "program).",
        ),
    ] = "cdk",
    dev_source: Annotated[
        Path | None,
        typer.Option(
            "--dev-source",
            help="Take the eventual packages from this clone of Eventual for Python (default: "
            "the clone this CLI runs from; the packages are not on a package index yet).",
        ),
    ] = None,
    directory: Annotated[
        Path, typer.Option("--directory", "-C", help="Where to create the project.")
    ] = Path("."),
    into: Annotated[
        Path | None,
        typer.Option(
            "--into",
            help="Add the service to this existing repository instead (a Python or TypeScript "
            "CDK app, an SST app, a uv workspace...), editing only the lines it reports.",
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path", help="With --into: the new package's folder (default: services/NAME)."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="With --into: print what would change, change nothing."),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Scaffold a new Eventual project: a uv workspace with a service package, its tests and a
    CDK app (and with --frontend, a web page calling the service).

    With --into DIR: add a service package (and a Python CDK stack's construct) to a repository."""
    if into is not None and infra != "cdk":
        raise fail(
            "--infra only applies to a new project: with --into, the repository's own "
            "infrastructure (a CDK app, a Pulumi program, an SST app) decides"
        )
    if into is not None and frontend:
        raise fail("--frontend only applies to a new project: leave it out with --into")
    if into is None and (path is not None or dry_run):
        raise fail("--path and --dry-run only apply with --into DIR")
    try:
        dev_source = package_source(dev_source)
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    if into is not None:
        _init_into(name, into, path=path, dry_run=dry_run, dev_source=dev_source, json_out=json_out)
        return
    try:
        result = scaffold(
            name, directory, frontend=frontend, git=git, dev_source=dev_source, infra=infra
        )
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    files = [str(p.relative_to(result.root)) for p in result.files]
    if json_out:
        emit_json({"root": str(result.root), "files": files, "git": result.git})
        return
    out_line(f"[green]Created {escape(str(result.root))}[/] ({len(files)} files)")
    for f in files:
        out_line(f"  {escape(f)}")
    out_line(f"Using the eventual packages of {escape(str(dev_source))}")
    err.print(
        f"\nNext:\n  cd {escape(str(result.root))}\n  uv sync\n  uv run pytest\n"
        "  uv run eventual dev packages/service"
    )


def _init_into(
    name: str,
    repo: Path,
    *,
    path: str | None,
    dry_run: bool,
    dev_source: Path | None,
    json_out: bool,
) -> None:
    try:
        plan = plan_into(name, repo, path=path, dev_source=dev_source)
        if not dry_run:
            apply(plan)
    except ScaffoldError as exc:
        raise fail(str(exc)) from None
    if json_out:
        emit_json({**plan.to_json(), "dryRun": dry_run})
        return
    would = "Would " if dry_run else ""
    out_line(
        f"{'[yellow]Dry run: nothing was changed.[/]' if dry_run else ''}"
        f"{chr(10) if dry_run else ''}"
        f"Found {KIND_LABELS[plan.kind]}"
        + (f" in {escape(plan.cdk_app)}" if plan.cdk_app not in (None, ".") else "")
        + (" (a uv workspace)" if plan.workspace else "")
        + "."
    )
    out_line(
        f"[green]{would + 'add' if dry_run else 'Added'} {escape(plan.package)}[/] "
        f"(distribution {escape(plan.dist)}, entry {escape(plan.entry)}):"
    )
    for rel in sorted(plan.files):
        out_line(f"  {escape(rel)}")
    for edit in plan.edits:
        out_line(f"[green]{would + 'edit' if dry_run else 'Edited'} {escape(edit.path)}[/]:")
        for change in edit.changes:
            if change.old is not None:
                out_line(f"  - {change.line}: {escape(change.old)}".rstrip())
            out_line(f"  + {change.line}: {escape(change.new)}".rstrip())
    for step in plan.manual:
        out_line(
            f"[yellow]Not edited: {escape(step.path)}[/] ({escape(step.reason)}); add these lines:"
        )
        for line in step.lines:
            out_line(f"    {escape(line)}")
    out_line(f"Using the eventual packages of {escape(str(dev_source))}")
    out_line("Next:")
    for step in plan.next_steps:
        out_line(f"  {escape(step)}")
