"""The orchestrator: SQS FIFO batches of events, grouped by execution, in order.

Each execution's events in the batch go to ``Runtime.orchestrate`` in one call. A failing
execution reports its messages in ``batchItemFailures`` (the function's event source mapping
must enable ``ReportBatchItemFailures``), so SQS redelivers only them and the other executions
of the batch go ahead. On a message's last attempt (its queue's ``maxReceiveCount``), a failure
also fails its execution, saying that its events went to the dead-letter queue. The spilled
payload of an event that arrived after its execution finished is tagged for expiry, as the
rest of that execution's are.

The Runtime stays warm across invocations: its engine cache and the store's record of its own
commits let the next step of a recently advanced execution run without reading the execution or
its history.
"""

from __future__ import annotations

from typing import Any

from . import _common

# ``logging`` is imported when a group fails: importing the module stays cheap.
LOGGER = "eventual.aws.orchestrator"


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    with _common.FirstInvocation():
        return _common.run(_handle(event))


async def _handle(event: dict[str, Any]) -> dict[str, Any]:
    from ..adapters import decode_queue_event

    rt = _common.runtime("orchestrator", cache_commits=True)
    payloads = rt.ports.payloads  # type: ignore[attr-defined]
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in event.get("Records", []):
        group = record.get("attributes", {}).get("MessageGroupId") or ""
        groups.setdefault(group, []).append(record)
    failed: list[str] = []
    for group, records in groups.items():
        try:
            decoded = [decode_queue_event(r["body"], payloads) for r in records]
            by_execution: dict[str, list[Any]] = {}
            for execution_id, e in decoded:
                by_execution.setdefault(execution_id, []).append(e)
            for execution_id, events in by_execution.items():
                await rt.orchestrate(execution_id, events)
            await _tag_late_payloads(rt, payloads, records, decoded)
        except Exception as exc:
            import logging

            logging.getLogger(LOGGER).exception(
                "orchestrating message group %s failed; its %d message(s) return to the queue",
                group,
                len(records),
            )
            failed.extend(r["messageId"] for r in records)
            dead = [r for r in records if _common.last_attempt(r)]
            for execution_id in {_execution_of(r, group) for r in dead}:
                await _common.fail_dead_lettered(rt, execution_id, "events", len(dead), exc)
    return _common.sqs_response(failed)


async def _tag_late_payloads(
    rt: Any, payloads: Any, records: list[dict[str, Any]], decoded: list[tuple[str, Any]]
) -> None:
    """An event that arrives after its execution finished (a late signal or task result) is
    dropped, but its spilled payload was put under the execution's prefix after the
    retention marking listed it: tag it too, or the bucket keeps it for ever. Only messages
    that spilled cost anything here (a read of the record, a copy per payload)."""
    from eventual.core.models import ExecutionStatus

    from ..adapters import spilled_key

    late: dict[str, list[str]] = {}
    for record, (execution_id, _) in zip(records, decoded, strict=True):
        key = spilled_key(record["body"])
        if key is not None:
            late.setdefault(execution_id, []).append(key)
    for execution_id, keys in late.items():
        stored = await rt.ports.executions.get(execution_id)
        if stored is not None and stored.execution.status is not ExecutionStatus.IN_PROGRESS:
            payloads.tag_late(execution_id, keys)


def _execution_of(record: dict[str, Any], group: str) -> str:
    """The execution a message is for: its body says so, unless the body is what fails to
    read; then the message group (the execution id, or a hash of a long one)."""
    import json

    try:
        execution_id = json.loads(record["body"])["executionId"]
    except Exception:
        return group
    return execution_id if isinstance(execution_id, str) else group
