"""The WAL checkpointer: a thread of its own that copies the WAL back into the database file,
so that no commit pays for it."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger("eventual.runtime.sqlite")

WAL_LIMIT = 64 * 1024 * 1024
"""The size past which the WAL is started again from its beginning under steady writes, and to
which SQLite trims the file then (``PRAGMA journal_size_limit``)."""


RESTART_TRIES = 16
"""How many commits in a row the writer tries a restart that comes back busy before it waits
for the restart to be marked due again (a long reader must not cost every commit a try)."""


class _Checkpointer:
    """Copies the WAL back into the database file on a thread of its own, so that no commit
    pays for it. (SQLite's automatic checkpoint runs inside the COMMIT that crosses its
    threshold, and syncs the database file there.) Woken every ``every`` commits, and at least
    once a second; a passive checkpoint never blocks the writer.

    Under steady writes a passive checkpoint never catches up with the WAL's end, and SQLite
    starts the WAL again from its beginning only after one has: the file would grow for as
    long as the load lasts (hundreds of MB for a database of 20). So once the WAL is larger
    than ``wal_limit`` bytes, the checkpointer marks a restart due, and the writer, right
    after its next COMMIT, runs a restarting checkpoint itself (:meth:`restart`): it copies
    what the passive one left (little), and the next commit writes the WAL from its beginning
    again, where SQLite trims the file to ``wal_limit`` (``journal_size_limit``). The writer
    does it because a checkpoint on this thread would wait for a moment between the writer's
    transactions, which under load never comes. (A TRUNCATE checkpoint, which empties the
    file, cost the commits after it 14% more time: the file grows block by block again.)

    The thread may fall behind (a busy machine, the GIL held by the writer's work), and the
    WAL would grow past the limit meanwhile. So the writer also looks at the file's size
    itself every ``every`` commits (one ``stat``), and marks the restart due once the WAL is
    twice the limit: the bound then holds whatever the thread's pace.
    """

    def __init__(self, path: Path, *, every: int = 256, wal_limit: int = WAL_LIMIT) -> None:
        self.path = path
        self.wal = Path(f"{path}-wal")
        self.every = every
        self.wal_limit = wal_limit
        self.commits = 0
        self.runs = 0
        self.restart_due = False
        self.restarts = 0
        self._tries = 0
        self._checkpointing = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, name="eventual-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        self.commits += 1
        if self.commits % self.every == 0:
            self._wake.set()
            if self._wal_size() > 2 * self.wal_limit:  # the thread is behind
                self.restart_due = True

    def _run(self) -> None:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            while True:
                self._wake.wait(1.0)
                self._wake.clear()
                if self._stop:
                    return
                try:
                    with self._checkpointing:  # the writer's restart waits for it to end
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                    if self._wal_size() > self.wal_limit:
                        self.restart_due = True
                except sqlite3.Error:  # busy or closing: the next round tries again
                    logger.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            conn.close()

    def restart(self, writer: sqlite3.Connection) -> None:
        """Checkpoint the whole WAL on ``writer``, outside a transaction, so that the next
        commit starts the WAL again. Never raises: a commit before it succeeded. While the
        thread's passive checkpoint runs (SQLite would answer busy) nothing is tried, and the
        restart stays due for the next commit. One that finds a reader in the way (busy) is
        tried again after the next commit, up to ``RESTART_TRIES`` commits in a row, and
        after that once the restart is marked due again."""
        if not self._checkpointing.acquire(blocking=False):
            return
        try:
            busy = writer.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
        except sqlite3.Error:
            logger.debug("WAL restart skipped", exc_info=True)
            busy = 1
        finally:
            self._checkpointing.release()
        if not busy:
            self.restarts += 1
            self.restart_due = False
            self._tries = 0
            return
        self._tries += 1
        if self._tries >= RESTART_TRIES:
            self.restart_due = False
            self._tries = 0

    def _wal_size(self) -> int:
        try:
            return os.stat(self.wal).st_size
        except OSError:  # not there (yet): nothing to truncate
            return 0

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
