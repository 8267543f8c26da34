"""Deployed services: ``eventual service`` (what a service is and where), ``eventual synth`` and
``eventual deploy`` (the CDK app, through the CDK CLI from the npm registry)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .common import (
    JsonOption,
    RegionOption,
    ServiceOption,
    State,
    UrlOption,
    emit_json,
    err,
    friendly,
    out,
)
from .errors import CliError

CDK_PACKAGE = "aws-cdk@2"
CDK_ENV = "EVENTUAL_CDK"
"""Overrides the command that runs the CDK CLI (default ``npx --yes aws-cdk@2``)."""
CDK_COMMAND_SETTINGS: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True}
"""The click settings of ``synth`` and ``deploy``: what follows ``--`` goes to the CDK CLI."""


# ---------------------------------------------------------------- eventual service


@friendly
def service_command(
    ctx: typer.Context,
    json_out: JsonOption = False,
    url: UrlOption = None,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Show a service's endpoints and resources.

    With --service, from its discovery record in SSM (API URL, region, account, stack, event
    bus, log group); with --url (or none), the dev server's URL and what its OpenAPI document
    lists."""
    from .deployed import read_service_record, resolve_target

    state = ctx.find_object(State) or State()
    target = resolve_target(
        url=url,
        service=service,
        region=region,
        global_url=state.url,
        global_service=state.service,
        global_region=state.region,
    )
    if target.service:
        record = read_service_record(target.service, target.region)
        info = record.to_json()
        info["systemUrl"] = record.api_url.rstrip("/") + "/rpc/_system/"
        if json_out:
            emit_json(info)
            return
        rows = [
            ("Service", record.service),
            ("Region", record.region),
            ("Account", record.account),
            ("Stack", record.stack),
            ("API URL", record.api_url),
            ("System API", info["systemUrl"] + " (SigV4, execute-api)"),
            ("Event bus", record.event_bus_name),
            ("Event bus ARN", record.event_bus_arn),
            ("Log group", record.log_group),
            ("Record", f"SSM {record.parameter}"),
        ]
        _print_rows(rows)
        return
    from .client import DevClient

    assert target.url is not None
    with DevClient(target.url) as client:
        document = client.openapi()
    summary = describe_openapi(client.url, document)
    if json_out:
        emit_json(summary)
        return
    _print_rows(
        [
            ("Service", summary["title"]),
            ("URL", summary["url"]),
            ("OpenAPI", summary["openapi"]),
            ("System API", summary["url"] + "/rpc/_system/"),
        ]
    )
    if summary["endpoints"]:
        out.print()
        table = Table(box=None, pad_edge=False)
        table.add_column("Kind", style="dim")
        table.add_column("Name", style="bold")
        table.add_column("Endpoint")
        table.add_column("Summary", overflow="fold")
        for e in summary["endpoints"]:
            table.add_row(
                e["kind"], escape(e["name"]), escape(f"{e['method']} {e['path']}"),
                escape(e["summary"]),
            )  # fmt: skip
        out.print(table)


def _print_rows(rows: list[tuple[str, str]]) -> None:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in rows:
        if value:
            table.add_row(name, escape(value))
    out.print(table)


def describe_openapi(url: str, document: dict[str, Any]) -> dict[str, Any]:
    """The service title and its command/route endpoints (system commands left out)."""
    endpoints: list[dict[str, str]] = []
    for path, operations in (document.get("paths") or {}).items():
        if not isinstance(operations, dict):
            continue
        for method, op in operations.items():
            if not isinstance(op, dict) or "system" in (op.get("tags") or []):
                continue
            tags = op.get("tags") or []
            kind = "route" if "routes" in tags else "command"
            name = str(op.get("operationId") or path)
            endpoints.append(
                {
                    "kind": kind,
                    "name": name.removesuffix("_rest"),
                    "method": method.upper(),
                    "path": path,
                    "summary": str(op.get("summary") or ""),
                }
            )
    info = document.get("info") or {}
    return {
        "title": str(info.get("title", "")),
        "version": str(info.get("version", "")),
        "url": url,
        "openapi": url + "/openapi.json",
        "endpoints": endpoints,
    }


# ---------------------------------------------------------------- eventual synth / deploy

AppDirOption = Annotated[
    Path,
    typer.Option(
        "--app-dir",
        "-a",
        help="The CDK app's folder (the one with cdk.json).",
    ),
]
ExtraArgs = Annotated[
    list[str] | None,
    typer.Argument(help="More arguments for the CDK CLI (after --), e.g. a stack name."),
]


def cdk_command(action: str, args: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The CDK CLI command line: ``$EVENTUAL_CDK`` or ``npx --yes aws-cdk@2``, then ``action``
    and ``args``."""
    environ = os.environ if env is None else env
    custom = environ.get(CDK_ENV)
    if custom:
        import shlex

        base = shlex.split(custom)
    else:
        npx = shutil.which("npx", path=environ.get("PATH"))
        if npx is None:
            raise CliError(
                "npx was not found: install Node.js (the CDK CLI runs through npx), or set "
                f"${CDK_ENV} to the command that runs the CDK CLI"
            )
        base = [npx, "--yes", CDK_PACKAGE]
    return [*base, action, *args]


def run_cdk(action: str, app_dir: Path, args: list[str], *, verb: str) -> int:
    """Run the CDK CLI in ``app_dir``, streaming its output under a spinner; its exit status."""
    if not (app_dir / "cdk.json").is_file():
        raise CliError(
            f"no cdk.json in {app_dir}: pass --app-dir with the folder of your CDK app "
            "(eventual init puts it in ./infra)"
        )
    command = cdk_command(action, args)
    err.print(f"[dim]$ (cd {escape(str(app_dir))} && {escape(' '.join(command))})[/]")
    try:
        process = subprocess.Popen(
            command,
            cwd=app_dir,
            stdin=subprocess.DEVNULL,  # the CDK CLI refuses prompts without a terminal
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
    except OSError as exc:
        raise CliError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    assert process.stdout is not None
    try:
        with err.status(f"[bold]{verb}[/] {escape(str(app_dir))}...", spinner="dots") as status:
            for line in process.stdout:
                text = line.rstrip("\n")
                err.print(escape(text), soft_wrap=True, highlight=False)
                stripped = text.strip()
                if stripped and not stripped.startswith(("{", "}", "-", " ")):
                    status.update(f"[bold]{verb}[/] {escape(stripped[:70])}")
            code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        raise typer.Exit(130) from None
    return code


def _finish(action: str, app_dir: Path, code: int) -> None:
    if code != 0:
        raise CliError(f"cdk {action} in {app_dir} failed with exit status {code} (see above)")


@friendly
def synth(
    app_dir: AppDirOption = Path("infra"),
    args: ExtraArgs = None,
) -> None:
    """Synthesize the CDK app (cdk synth through npx aws-cdk@2) into its cdk.out folder."""
    given = list(args or [])
    code = run_cdk("synth", app_dir, given, verb="Synthesizing")
    _finish("synth", app_dir, code)
    out.print(f"[green]Synthesized[/] {escape(str(_synth_output(app_dir, given)))}", soft_wrap=True)


def _synth_output(app_dir: Path, args: list[str]) -> Path:
    """Where ``cdk synth`` wrote the assembly: ``--output``/``-o`` if given (relative to the
    app's folder, where the CDK CLI runs), else the app's ``cdk.out``."""
    for i, arg in enumerate(args):
        value = None
        if arg in ("--output", "-o") and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--output="):
            value = arg.split("=", 1)[1]
        if value:
            path = Path(value)
            return path if path.is_absolute() else app_dir / path
    return app_dir / "cdk.out"


@friendly
def deploy(
    app_dir: AppDirOption = Path("infra"),
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Deploy security-sensitive changes without asking (CI)."),
    ] = False,
    args: ExtraArgs = None,
) -> None:
    """Deploy the CDK app (cdk deploy through npx aws-cdk@2), all its stacks by default.

    Then `eventual --service NAME ...` reaches the deployed service."""
    given = list(args or [])
    extra = [] if given else ["--all"]  # no stack named: every stack of the app
    if not any(a.startswith("--require-approval") for a in given):
        extra += ["--require-approval", "never" if yes else "broadening"]
    extra += given
    code = run_cdk("deploy", app_dir, extra, verb="Deploying")
    _finish("deploy", app_dir, code)
    out.print(f"[green]Deployed[/] the CDK app in {escape(str(app_dir))}")
