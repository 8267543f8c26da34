"""The EventBus port on EventBridge: ``PutEvents`` to the service's bus, 10 entries a request,
failed entries retried; the event detail codec (large payloads spill to S3)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eventual.core.history import EmittedEvent
from eventual.core.serialization import to_json

from .. import names as n
from ..clients import client
from ._batching import _batches, _retry_failed
from .payload_store import PayloadStore

_WRAP = "__eventual__"


def encode_detail(payload: Any, payloads: PayloadStore) -> str:
    value = to_json(payload)
    if isinstance(value, dict) and _WRAP not in value:
        data = json.dumps(value)
        if len(data) <= n.MESSAGE_INLINE_LIMIT:
            return data
    else:
        data = json.dumps({_WRAP: {"inline": json.dumps(value)}})
        if len(data) <= n.MESSAGE_INLINE_LIMIT:
            return data
    # The bucket travels with the key: a service this event is forwarded to reads it there.
    # An emitted event belongs to no execution (subscribers, perhaps another service's, read
    # it whenever they get it): directly under payloads/, never tagged for expiry with one.
    key = payloads.put(json.dumps(value).encode())
    return json.dumps({_WRAP: {"ref": key, "bucket": payloads.names.payload_bucket}})


def decode_detail(detail: Any, payloads: PayloadStore) -> Any:
    if isinstance(detail, str):
        detail = json.loads(detail)
    if isinstance(detail, dict) and _WRAP in detail and len(detail) == 1:
        return json.loads(payloads.unwrap(detail[_WRAP]))
    return detail


class EventBridgeBus:
    """``PutEvents`` to the service's bus, 10 entries a request, failed entries retried."""

    def __init__(self, names: n.ServiceNames, payloads: PayloadStore) -> None:
        self.names = names
        self.payloads = payloads

    async def publish(self, events: Sequence[EmittedEvent]) -> None:
        entries = [
            {
                "Id": str(i),
                "Source": self.names.event_source(),
                "DetailType": e.name,
                "Detail": encode_detail(e.payload, self.payloads),
                "EventBusName": self.names.event_bus,
            }
            for i, e in enumerate(events)
        ]

        def send(batch: list[dict[str, Any]]) -> set[str]:
            response = client("events").put_events(
                Entries=[{k: v for k, v in e.items() if k != "Id"} for e in batch]
            )
            if not response.get("FailedEntryCount"):
                return set()
            return {
                batch[i]["Id"]
                for i, r in enumerate(response.get("Entries", []))
                if r.get("ErrorCode")
            }

        for batch in _batches(entries, "Detail"):
            await _retry_failed(send, batch, "PutEvents")
