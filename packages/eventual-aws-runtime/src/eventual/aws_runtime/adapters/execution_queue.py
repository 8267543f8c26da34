"""The ExecutionQueue port on SQS FIFO: one message per event, message group = execution,
deduplication id = the event; ``SendMessage``/``SendMessageBatch``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eventual.core.history import InputEvent, event_json, validate_event

from .. import names as n
from ..clients import client
from ._batching import _batches, _retry_failed
from ._codec import _hash
from .payload_store import PayloadStore


def encode_queue_event(execution_id: str, event: InputEvent, payloads: PayloadStore) -> str:
    data = event_json(event)
    return json.dumps(
        {
            "executionId": execution_id,
            "event": payloads.wrap(data, n.MESSAGE_INLINE_LIMIT, execution_id),
        }
    )


def decode_queue_event(body: str, payloads: PayloadStore) -> tuple[str, InputEvent]:
    message = json.loads(body)
    event = validate_event(payloads.unwrap(message["event"]))
    return message["executionId"], event  # type: ignore[return-value]


def spilled_key(body: str) -> str | None:
    """The key of the payload a queued event's message spilled to this service's bucket, if
    it did (one whose event names another bucket, forwarded from another service, is not
    this service's to tag)."""
    if '"ref"' not in body:  # most messages: no second parse
        return None
    try:
        wrapped = json.loads(body)["event"]
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(wrapped, dict) and "ref" in wrapped and "bucket" not in wrapped:
        return str(wrapped["ref"])
    return None


_GROUP_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)


def message_group(execution_id: str) -> str:
    """The FIFO message group of an execution: its id, or a hash of it when the id is longer
    than 128 characters or has characters a group id cannot hold."""
    if len(execution_id) <= 128 and all(c in _GROUP_CHARS for c in execution_id):
        return execution_id
    return _hash(execution_id)


def deduplication_id(execution_id: str, event_id: str) -> str:
    return _hash(f"{execution_id}|{event_id}")


class SqsExecutionQueue:
    """Events into executions: SQS FIFO, one message per event, grouped by execution."""

    def __init__(self, names: n.ServiceNames, payloads: PayloadStore) -> None:
        self.names = names
        self.payloads = payloads

    async def enqueue(self, execution_id: str, events: Sequence[InputEvent]) -> None:
        url = self.names.execution_queue_url
        group = message_group(execution_id)
        entries = [
            {
                "Id": str(i),
                "MessageBody": encode_queue_event(execution_id, event, self.payloads),
                "MessageGroupId": group,
                "MessageDeduplicationId": deduplication_id(execution_id, event.id),
            }
            for i, event in enumerate(events)
        ]
        if len(entries) == 1:
            entry = entries[0]
            client("sqs").send_message(
                QueueUrl=url,
                MessageBody=entry["MessageBody"],
                MessageGroupId=group,
                MessageDeduplicationId=entry["MessageDeduplicationId"],
            )
            return

        def send(batch: list[dict[str, Any]]) -> set[str]:
            response = client("sqs").send_message_batch(QueueUrl=url, Entries=batch)
            return {f["Id"] for f in response.get("Failed", [])}

        for batch in _batches(entries, "MessageBody"):
            await _retry_failed(send, batch, "SendMessageBatch")
