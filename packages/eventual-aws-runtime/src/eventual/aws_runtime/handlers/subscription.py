"""The subscription worker: EventBridge events (detail-type = event name) to
``Runtime.deliver_event``. With ``EVENTUAL_SUBSCRIPTION`` set (one function and rule per
subscription, as the construct deploys them) only that subscription runs. A subscription that
raises fails the invocation, so Lambda retries it and, past its retries, dead-letters it: the
delivery is at least once, as for every runtime."""

from __future__ import annotations

import os
from typing import Any

from . import _common


def handler(event: dict[str, Any], context: Any = None) -> None:
    with _common.FirstInvocation():
        _common.run(_handle(event))


async def _handle(event: dict[str, Any]) -> None:
    from eventual.core.history import EmittedEvent

    from ..adapters import decode_detail
    from ..names import ENV_SUBSCRIPTION

    only = os.environ.get(ENV_SUBSCRIPTION) or None
    rt = _common.runtime(f"subscription:{only or '*'}", subscription=only)
    payload = decode_detail(event.get("detail"), rt.ports.payloads)  # type: ignore[attr-defined]
    failed = await rt.deliver_event(EmittedEvent(name=event["detail-type"], payload=payload))
    if failed:
        # Raising fails the asynchronous invocation: Lambda retries it (the construct's
        # retry_attempts), then sends the event to the subscription dead-letter queue.
        raise SubscriptionFailed(
            f"subscription {', '.join(failed)} failed on event {event['detail-type']!r} "
            "(its error is logged above); the delivery is retried"
        )


class SubscriptionFailed(RuntimeError):
    """A subscription raised: the invocation fails so that it is delivered again."""
