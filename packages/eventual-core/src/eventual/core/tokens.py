"""Task tokens: the opaque string that names one task attempt (execution, seq, attempt).

A task hands its token out to complete later (``async_result``); whoever holds it calls
``send_task_success``/``send_task_failure``/``send_task_heartbeat`` with it. The definitions,
the runtime and the clients share this one encoding.
"""

from __future__ import annotations

import base64
import json


def encode_token(execution_id: str, seq: int, attempt: int) -> str:
    raw = json.dumps([execution_id, seq, attempt], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, int, int]:
    """The (execution id, seq, attempt) a token names; ``InvalidTaskToken`` if it is none."""
    from .errors import InvalidTaskToken

    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        execution_id, seq, attempt = json.loads(raw)
        return str(execution_id), int(seq), int(attempt)
    except Exception:
        raise InvalidTaskToken(f"{token[:40]!r} is not a task token") from None
