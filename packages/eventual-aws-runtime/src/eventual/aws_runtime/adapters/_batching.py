"""Batch requests (SQS ``SendMessageBatch``, EventBridge ``PutEvents``): entries split by count
and size, and the entries the service reports as failed sent again."""

from __future__ import annotations

import asyncio
from typing import Any

BATCH_BYTES = 240 * 1024
"""A batch request's entries stay under this many bytes (SQS and EventBridge cap a request at
256 KB)."""


def _batches(entries: list[dict[str, Any]], body: str) -> list[list[dict[str, Any]]]:
    """Entries in batches of at most 10 and :data:`BATCH_BYTES` (sizing them by ``body``)."""
    out: list[list[dict[str, Any]]] = []
    size = 0
    for entry in entries:
        n_bytes = len(str(entry[body]).encode()) + 256
        if not out or len(out[-1]) == 10 or size + n_bytes > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(entry)
        size += n_bytes
    return out


async def _retry_failed(send: Any, entries: list[dict[str, Any]], what: str) -> None:
    """Send batch entries, resending the ones the service reports as failed."""
    delay = 0.05
    for attempt in range(6):
        failed = send(entries)
        if not failed:
            return
        entries = [e for e in entries if e["Id"] in failed]
        if attempt < 5:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
    raise RuntimeError(f"{what}: {len(entries)} entries kept failing; the batch was not sent")
