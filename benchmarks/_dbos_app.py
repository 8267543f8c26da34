"""DBOS's side of the durable benchmarks: the same workflow of sequential steps, as DBOS's own
documentation writes it (``@DBOS.workflow`` calling ``@DBOS.step`` functions), on DBOS's
SQLite system database.

``launch(db_file, pragmas)`` starts DBOS on a fresh SQLite file:

- ``pragmas="shipped"``: exactly as DBOS configures SQLite (its defaults: rollback journal,
  ``synchronous=FULL``, every transaction ``BEGIN IMMEDIATE``);
- ``pragmas="same"``: DBOS's own connection setup plus the pragmas our SQLite runtime uses
  (``journal_mode=WAL``, ``synchronous=NORMAL``), so the two sides pay the same for a commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbos import DBOS


@DBOS.step()
async def bench_step(i: int) -> int:
    return i + 1


@DBOS.workflow()
async def bench_sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total += await bench_step(i)
    return total


def launch(db_file: Path, pragmas: str, synchronous: str = "NORMAL") -> None:
    url = f"sqlite:///{db_file}"
    config: dict[str, Any] = {"name": "bench", "system_database_url": url, "log_level": "WARNING"}
    if pragmas == "same":
        import sqlalchemy as sa
        from sqlalchemy import event

        engine = sa.create_engine(url)

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            # DBOS's own SQLite connection setup (dbos/_sys_db_sqlite.py), then ours.
            dbapi_conn.isolation_level = "IMMEDIATE"
            dbapi_conn.execute("PRAGMA busy_timeout=30000")
            dbapi_conn.execute("PRAGMA foreign_keys=ON")
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute(f"PRAGMA synchronous={synchronous}")
            dbapi_conn.execute("PRAGMA temp_store=MEMORY")

        config["system_database_engine"] = engine
    elif pragmas != "shipped":
        raise ValueError(f"pragmas must be 'same' or 'shipped', not {pragmas!r}")
    DBOS(config=config)  # type: ignore[arg-type]
    DBOS.launch()


def destroy() -> None:
    DBOS.destroy(destroy_registry=False)


def version() -> str:
    from importlib.metadata import version as v

    return v("dbos")
