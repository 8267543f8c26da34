"""``eventual purge``: remove the finished executions of a dev database older than a period,
now (the dev server sweeps them by itself, ``eventual dev --retention``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from .common import friendly, out
from .errors import CliError


@friendly
def purge(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Remove executions that finished longer ago than this (30d, 12h)."
        ),
    ] = "30d",
    db: Annotated[Path, typer.Option("--db", help="The dev server's SQLite database.")] = Path(
        ".eventual"
    )
    / "dev.db",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Remove old finished executions from a dev database, now.

    Those that finished longer ago than --older-than go, with their history, claims and logs,
    in small batches; executions in progress are never touched. The dev server sweeps them by
    itself too (eventual dev --retention); purge runs while it is stopped."""
    from .dev import parse_duration

    try:
        period = parse_duration(older_than)
    except ValueError as exc:
        raise CliError(f"--older-than: {exc}") from None
    if period is None:
        raise CliError("--older-than needs a duration (30d, 12h, 90m)")
    if not db.exists():
        raise CliError(_no_database(db))
    from eventual.core.runtime.sqlite import DatabaseError, DatabaseLocked

    try:
        removed = asyncio.run(_purge(db, period))
    except DatabaseLocked:
        raise CliError(
            f"{db} is in use by another Eventual process: stop it to purge now (a running "
            "`eventual dev` sweeps its finished executions itself, see its --retention)"
        ) from None
    except DatabaseError as exc:  # a folder, not a database, read-only...
        raise CliError(str(exc)) from None
    if as_json:
        out.print(json.dumps({"removed": removed, "db": str(db)}))
    else:
        out.print(f"removed {removed} finished execution(s) from {db}")


def _no_database(db: Path) -> str:
    """No file at ``db``: say so, naming the dev databases below the current folder (the dev
    server keeps one beside each service it serves)."""
    found = sorted(
        str(p)
        for pattern in ("*/.eventual/dev.db", "*/*/.eventual/dev.db", "*/*/*/.eventual/dev.db")
        for p in Path().glob(pattern)
    )
    if not found:
        return f"no database at {db}: pass --db with the dev server's database"
    return (
        f"no database at {db}: pass --db with the dev server's database (`eventual dev` keeps "
        f"it beside the service), such as {', '.join(found[:3])}"
    )


async def _purge(db: Path, period: object) -> int:
    from datetime import timedelta

    from eventual.core.runtime.sqlite import SqliteRuntime
    from eventual.core.service import Service

    assert isinstance(period, timedelta)
    # Nothing runs (workers=False): the dev server, if it is up, keeps running its executions.
    async with SqliteRuntime(Service("purge", []), db_path=db, workers=False) as rt:
        return await rt.purge_finished(period)
