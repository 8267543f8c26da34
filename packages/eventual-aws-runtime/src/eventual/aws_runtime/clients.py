"""AWS clients, created on first use and reused for the life of the process.

Importing this module does not import botocore: a handler pays for it (and for each client)
only when it first makes a call of that service. The clients are botocore's, from one
``botocore.session.Session``: boto3 adds resources and S3 transfers, which the runtime does not
use, on top of the same clients, and importing it costs a cold start some 75 million
instructions more than botocore alone. Tests point the runtime at another session (a
``boto3.Session`` or a botocore one, with their own event hooks) with :func:`configure`.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_session: Any = None
_clients: dict[str, Any] = {}
_config: Any = None


def configure(session: Any = None) -> None:
    """Use ``session`` (a ``boto3.Session`` or a ``botocore.session.Session``) for every
    client from now on; ``None`` goes back to a new default session. Clients already made are
    dropped."""
    global _session
    with _lock:
        _session = session
        _clients.clear()


def _default_config() -> Any:
    global _config
    if _config is None:
        from botocore.config import Config

        # Standard retries absorb throttling and 5xx; the runtime's own writes are idempotent,
        # so a retried request that had in fact succeeded does no harm.
        # Checksums only where an API requires them: the payload objects are small JSON
        # documents written once, and S3 stores them with its own integrity checks.
        _config = Config(
            retries={"mode": "standard", "max_attempts": 6},
            request_checksum_calculation="when_required",
        )
    return _config


def client(service: str) -> Any:
    """The process-wide client of ``service`` (``"dynamodb"``, ``"sqs"``...)."""
    global _session
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(service)
        if found is None:
            session: Any = _session
            if session is None:
                # One session for every client: each new session would load botocore's
                # endpoint and model data again and resolve the credentials again.
                import botocore.session

                session = _session = botocore.session.Session()
            # botocore's session makes clients with create_client, boto3's with client.
            make = getattr(session, "create_client", None) or session.client
            found = make(service, config=_default_config())
            _clients[service] = found
    return found


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (else ``""``)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""
