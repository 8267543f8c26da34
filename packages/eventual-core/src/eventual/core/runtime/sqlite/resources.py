"""When the database file runs out of something: what SQLite's error means for the user, in one
sentence naming the file and the fix (:func:`storage_error`), and which other process holds
its lock (:func:`lock_holders`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from pathlib import Path

from ...errors import StorageUnavailable

# SQLite's primary result codes (https://sqlite.org/rescode.html) and what each means here.
_REASONS = {
    3: "read-only",  # SQLITE_PERM
    5: "locked",  # SQLITE_BUSY
    6: "locked",  # SQLITE_LOCKED
    8: "read-only",  # SQLITE_READONLY
    10: "io-error",  # SQLITE_IOERR
    11: "damaged",  # SQLITE_CORRUPT
    13: "disk-full",  # SQLITE_FULL
    14: "cannot-open",  # SQLITE_CANTOPEN
    26: "damaged",  # SQLITE_NOTADB
}

# The same, from the message, for an error that carries no code (raised by Python code).
_MESSAGES = {
    "database or disk is full": "disk-full",
    "database is locked": "locked",
    "database table is locked": "locked",
    "attempt to write a readonly database": "read-only",
    "disk i/o error": "io-error",
    "database disk image is malformed": "damaged",
    "file is not a database": "damaged",
    "unable to open database file": "cannot-open",
}

# What follows the fix in a running server, and when opening the database.
RESUMES = "work already accepted resumes by itself"
AT_OPEN = "then start again"


def reason_of(exc: BaseException) -> str | None:
    """``read-only``, ``disk-full``, ``locked``, ``io-error``, ``damaged``, ``cannot-open``, or
    None for an error that is not about the database's resources."""
    if not isinstance(exc, sqlite3.Error) or isinstance(exc, sqlite3.IntegrityError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        reason = _REASONS.get(code & 0xFF)
        if reason is not None:
            return reason
    text = str(exc).lower()
    for known, reason in _MESSAGES.items():
        if known in text:
            return reason
    return None


def storage_error(
    exc: BaseException, path: Path, *, then: str = RESUMES
) -> StorageUnavailable | None:
    """The :class:`StorageUnavailable` that ``exc`` (a sqlite3 error on the database at
    ``path``) means, or None when it is some other error."""
    reason = reason_of(exc)
    if reason is None:
        return None
    message = describe(reason, path, str(exc), then=then)
    return StorageUnavailable(message, path=str(path), reason=reason)


def describe(reason: str, path: Path, detail: str = "", *, then: str = RESUMES) -> str:
    """One sentence: what is wrong with the database at ``path``, and what to do about it
    (followed by ``then`` in brackets)."""
    if reason == "read-only":
        return f"cannot write to the database {path}: it is read-only; make it writable ({then})"
    if reason == "disk-full":
        where = _mount_point(path)
        free = _free_space(path)
        return (
            f"cannot write to the database {path}: the disk is full; free disk space on "
            f"{where}{free} ({then})"
        )
    if reason == "locked":
        holders = lock_holders(path)
        who = f"another process ({'; '.join(holders)})" if holders else "another process"
        return (
            f"{who} holds the lock on the database {path}; stop it or end its transaction ({then})"
        )
    if reason == "io-error":
        return (
            f"cannot use the database {path}: the disk reported an I/O error ({detail}); check "
            f"the disk and the file system it is on ({then})"
        )
    if reason == "cannot-open":
        return (
            f"cannot open the database {path} or its -wal and -shm files ({detail}); make its "
            f"folder {path.parent} writable ({then})"
        )
    return (
        f"the database {path} is damaged ({detail}); stop the server and restore the file from "
        "a backup, or move it aside to start with an empty one"
    )


def _mount_point(path: Path) -> str:
    current = path.resolve().parent
    with contextlib.suppress(OSError):
        while not os.path.ismount(current) and current.parent != current:
            current = current.parent
    return str(current)


def _free_space(path: Path) -> str:
    try:
        free = float(shutil.disk_usage(path.resolve().parent).free)
    except OSError:
        return ""
    unit = "bytes"
    for larger in ("KB", "MB", "GB", "TB"):
        if free < 1024:
            break
        free /= 1024
        unit = larger
    amount = f"{free:.0f}" if unit == "bytes" else f"{free:.1f}"
    return f", which has {amount} {unit} free"


def lock_holders(path: Path) -> list[str]:
    """The other processes that hold a lock on the database at ``path`` (or its ``-wal`` and
    ``-shm`` files), as ``pid N: command line``, writers first. Linux only (``/proc/locks``);
    elsewhere, or when it cannot be told, an empty list."""
    files: set[tuple[int, int]] = set()
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            st = os.stat(f"{path}{suffix}")
            files.add((st.st_dev, st.st_ino))
    if not files:
        return []
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    me = os.getpid()
    writers: list[int] = []
    readers: list[int] = []
    for line in lines:
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        try:
            kind, pid_text, ident = fields[3], fields[4], fields[5]
            major, minor, inode = ident.split(":")
            key = (os.makedev(int(major, 16), int(minor, 16)), int(inode))
            pid = int(pid_text)
        except (IndexError, ValueError):
            continue
        if key not in files or pid in (me, -1):
            continue
        chosen = writers if kind == "WRITE" else readers
        if pid not in chosen:
            chosen.append(pid)
    pids = writers + [p for p in readers if p not in writers]
    return [_process(pid) for pid in pids[:3]]


def _process(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"pid {pid}"
    command = " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)
    if len(command) > 80:
        command = command[:77] + "..."
    return f"pid {pid}: {command}" if command else f"pid {pid}"
