"""The ``eventual`` command line (typer + rich): this module builds the app and registers the
commands, in the order ``eventual --help`` lists them.

``eventual dev`` serves a service locally; the other commands talk to a running dev server
over HTTP (the system commands of the wire protocol), or to a deployed service found with
``--service NAME`` (see ``deployed.py``): tables for people, ``--json`` for scripts, and every
error as one red line with exit status 1. What the commands share (options, target, output)
is in ``common.py``; the commands are in one module per group:

- ``serving``: ``dev``;
- ``executions``: ``start``, ``executions``, ``execution``, ``history``, ``logs``, ``workflows``;
- ``messaging``: ``signal``, ``emit``, ``invoke``;
- ``debugging``: ``replay``, ``timeline``;
- ``deploying``: ``service``, ``synth``, ``deploy``;
- ``dead_letters``: ``dlq list``, ``dlq redrive``;
- ``initializing``: ``init``.
"""

from __future__ import annotations

import inspect

import typer

from . import (
    dead_letters,
    debugging,
    deploying,
    executions,
    initializing,
    messaging,
    retention,
    serving,
)
from .common import global_options

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
app.callback()(global_options)

app.command()(serving.dev)
app.command()(executions.start)
app.command()(executions.executions)
app.command()(executions.execution)
app.command()(executions.history)
app.command()(messaging.signal)
app.command()(messaging.emit)
app.command()(messaging.invoke)
app.command()(executions.logs)
app.command()(executions.workflows)
app.command()(retention.purge)
app.command()(debugging.replay)
app.command()(debugging.timeline)
app.command("service")(deploying.service_command)
app.command(context_settings=deploying.CDK_COMMAND_SETTINGS)(deploying.synth)
app.command(context_settings=deploying.CDK_COMMAND_SETTINGS)(deploying.deploy)
app.add_typer(dead_letters.app)
app.command()(initializing.init)


def _reflowed(doc: str) -> str:
    """A docstring's paragraphs, each on one line: typer's rich help keeps a docstring's line
    breaks, which would break the help's sentences at the source's 100 columns."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _reflow_help(group: typer.Typer) -> None:
    for command in group.registered_commands:
        if command.help is None and command.callback is not None and command.callback.__doc__:
            command.help = _reflowed(command.callback.__doc__)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _reflow_help(sub.typer_instance)


_reflow_help(app)


def main() -> None:
    """The ``eventual`` console script."""
    app()


if __name__ == "__main__":
    main()
