"""The WAL checkpointer: a thread of its own that copies the WAL back into the database file,
so that no commit pays for it."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger("eventual.runtime.sqlite")


class _Checkpointer:
    """Copies the WAL back into the database file on a thread of its own, so that no commit
    pays for it. (SQLite's automatic checkpoint runs inside the COMMIT that crosses its
    threshold, and syncs the database file there.) Woken every ``every`` commits, and at least
    once a second; a passive checkpoint never blocks the writer."""

    def __init__(self, path: Path, *, every: int = 256) -> None:
        self.path = path
        self.every = every
        self.commits = 0
        self.runs = 0
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
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.runs += 1
                except sqlite3.Error:  # busy or closing: the next round tries again
                    logger.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=10)
