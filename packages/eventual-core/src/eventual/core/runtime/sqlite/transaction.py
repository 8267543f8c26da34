"""The parts of the SQLite runtime's transactions: an open unit of work, the group commit that
units ending in the same turn of the event loop share, and the statements they run. (The
``async with`` block that drives them, ``Database.transaction()``, is in ``database.py``.)"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any


class _Transaction:
    """An open unit of work. Writes whose result nobody needs wait in ``pending`` and run
    together with the next statement that needs one (or the COMMIT), in order, so the
    transaction behaves exactly as if each had run at once."""

    __slots__ = (
        "active",
        "bare_write",
        "begun",
        "depth",
        "flushes",
        "group",
        "hooks",
        "pending",
        "savepoint",
    )

    def __init__(self, group: _Group | None = None) -> None:
        self.active = True
        self.begun = False
        self.group = group  # the open group commit this unit joins (as a savepoint)
        # In a group: whether the unit's savepoint is open, and whether a write of the unit
        # reached the database outside it (its first, atomic one: see Database.write).
        self.savepoint = False
        self.bare_write = False
        self.depth = 0
        self.flushes = 0
        self.hooks: list[Callable[[], None]] = []
        self.pending: list[Callable[[sqlite3.Connection], Any]] = []


def _nothing_ready() -> bool:
    """Whether the running asyncio loop has no callback ready besides the one running now, so
    that no other unit could join a group commit before its COMMIT. (``_ready`` is asyncio's
    own, read only; a loop without it, such as uvloop's, counts as busy.)"""
    ready = getattr(asyncio.get_running_loop(), "_ready", None)
    return ready is not None and not ready


class _Group:
    """A SQLite transaction that several units of work share (group commit). It opens when a
    unit ends without a COMMIT of its own; units that start before it commits join it, each
    as a savepoint (a unit that fails rolls back to its savepoint, leaving the others); it
    commits once, on the next turn of the event loop. Every unit in it waits for that COMMIT
    before its ``transaction()`` block returns, so nothing is reported done before it is on
    disk, and the after-commit hooks of all of them run, in order, after it."""

    __slots__ = ("done", "failed", "hooks", "waiters")

    def __init__(self) -> None:
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Set when SQLite rolled the whole transaction back under a unit that failed (it does
        # on SQLITE_FULL, SQLITE_IOERR, ...): the units that joined before lost their writes
        # too, and are told so instead of a COMMIT.
        self.failed: Exception | None = None
        self.hooks: list[Callable[[], None]] = []
        # One future per waiting unit (cheaper than shielding ``done`` for each): a waiter
        # that is cancelled leaves the others and the commit alone.
        self.waiters: list[asyncio.Future[None]] = []

    def wait(self) -> asyncio.Future[None]:
        waiter = self.done.get_loop().create_future()
        self.waiters.append(waiter)
        return waiter

    def settle(self, exc: Exception | None) -> None:
        """The COMMIT succeeded (``exc`` None) or failed: tell every unit in the group."""
        if exc is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: waiters may all be gone
        for waiter in self.waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)


_UNIT = "eventual_unit"


def _begin(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        # Left open by a writer that was cancelled while its BEGIN was running: its writes
        # are discarded, as its owner gave up on them.
        conn.execute("ROLLBACK")
    conn.execute("BEGIN IMMEDIATE")


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _rollback_unit(conn: sqlite3.Connection) -> bool:
    """Undo the writes of one unit of a group commit; False if the group's transaction is gone
    (SQLite rolled all of it back on the error that failed the unit)."""
    _rollback_to(conn, _UNIT)
    return conn.in_transaction


def _rollback_to(conn: sqlite3.Connection, name: str) -> None:
    if conn.in_transaction:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")


def _release_unit(conn: sqlite3.Connection) -> None:
    conn.execute(f"RELEASE {_UNIT}")


def _nothing(conn: sqlite3.Connection) -> None:
    return None
