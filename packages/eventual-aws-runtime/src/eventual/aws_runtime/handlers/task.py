"""The task worker: one asynchronous invocation per task attempt.

The payload is ``{"task": {...}}`` (or ``{"taskRef": key}`` in the payload bucket when large).
``Runtime.run_task`` claims the attempt once, runs the task and sends its result to the
execution's queue. The claim's owner is the Lambda request id, which Lambda keeps across the
retries of one invocation: a retry after a crash re-takes its own claim, a duplicate delivery
does not run the task again. An error that escapes makes Lambda retry the invocation.
"""

from __future__ import annotations

import os
from typing import Any

from . import _common


def handler(event: dict[str, Any], context: Any = None) -> None:
    with _common.FirstInvocation():
        _common.run(_handle(event, getattr(context, "aws_request_id", None)))


async def _handle(event: dict[str, Any], request_id: str | None) -> None:
    from ..adapters import DynamoClaimStore, claim_owner, decode_task
    from ..names import ENV_TASK

    rt = _common.runtime("task")
    request = decode_task(event, rt.ports.payloads)  # type: ignore[attr-defined]
    expected = os.environ.get(ENV_TASK)
    if expected and request.name != expected:
        raise ValueError(
            f"this function runs task {expected!r}, not {request.name!r}: the orchestrator "
            "invoked the wrong function (redeploy the service so the names agree)"
        )
    claims = rt.ports.claims
    if isinstance(claims, DynamoClaimStore):
        claims.expect(request)
    token = claim_owner.set(request_id)
    try:
        await rt.run_task(request)
    finally:
        claim_owner.reset(token)
        if isinstance(claims, DynamoClaimStore):
            claims.settle(request)
