"""What every command shares: the global options (``--url``, ``--service``, ``--region``) and
the per-command ones, where a command's requests go, and the output helpers (the two consoles,
``--json``, and an error as one red line with exit status 1).

The command modules import from here; ``main`` builds the app from them. Nothing here imports a
command module.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from .errors import DEFAULT_URL, SERVICE_ENV, URL_ENV, CliError

if TYPE_CHECKING:
    from .client import DevClient
    from .deployed import Target

F = TypeVar("F", bound=Callable[..., Any])


def _console(*, stderr: bool) -> Console:
    # Into a pipe or a file, lines as long as they are (a script reads them), where rich would
    # cut them at 80 columns; a terminal's own width otherwise.
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else 100_000
    return Console(stderr=stderr, highlight=False, width=wide)


out = _console(stderr=False)
err = _console(stderr=True)


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


# The app's callback: the global options, read by command_target through ctx.
def global_options(
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


def command_target(
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


def command_client(
    ctx: typer.Context,
    url: str | None,
    service: str | None = None,
    region: str | None = None,
) -> DevClient:
    """The client every command talks through, for :func:`command_target`'s target."""
    from .deployed import connect_target  # httpx loads only when needed

    return connect_target(command_target(ctx, url, service, region))


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


@contextmanager
def importing_service(entry: str) -> Iterator[None]:
    """Importing the user's service ``entry``: a failure as one red line, after the
    traceback when the service's own code raised (that is what the user needs to fix it)."""
    from eventual.core.errors import ServiceError

    try:
        yield
    except ServiceError as exc:  # no such file, no such module, no service package...
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(f"cannot import the service {entry!r}: {exc}") from None
    except Exception as exc:
        err.print_exception(max_frames=20)
        raise CliError(
            f"importing the service {entry!r} failed with {type(exc).__name__}: {exc}"
        ) from None


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def emit_json_line(value: Any) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def out_line(text: str) -> None:
    """One line of output, never wrapped (scripts and tests read it)."""
    out.print(text, soft_wrap=True)
