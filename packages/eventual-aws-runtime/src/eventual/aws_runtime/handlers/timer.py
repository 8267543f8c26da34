"""The timer handler: due timers from the timer queue (SQS delayed messages, and the messages
EventBridge Scheduler's one-time schedules put there), or a schedule invoking the function
directly. A timer that arrives early is re-armed; a due one goes to ``Runtime.fire_timer``.
A message failing on its last attempt (the queue's ``maxReceiveCount``) fails its execution,
which cannot go on without the timer."""

from __future__ import annotations

from typing import Any

from . import _common

# ``logging`` is imported when a message fails: importing the module stays cheap.
LOGGER = "eventual.aws.timer"

EARLY_SECONDS = 1.0
"""A timer due later than this is re-armed instead of fired."""


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any] | None:
    with _common.FirstInvocation():
        return _common.run(_handle(event))


async def _fire(body: Any) -> None:
    from ..adapters import decode_timer

    rt = _common.runtime("timer")
    timer = decode_timer(body)
    if (timer.due - rt.now()).total_seconds() > EARLY_SECONDS:
        await rt.ports.timers.schedule(timer)
        return
    await rt.fire_timer(timer)


async def _handle(event: dict[str, Any]) -> dict[str, Any] | None:
    records = event.get("Records")
    if records is None:
        await _fire(event)
        return None
    failed: list[str] = []
    for record in records:
        try:
            await _fire(record["body"])
        except Exception as exc:
            import logging

            logging.getLogger(LOGGER).exception(
                "timer message %s failed; it returns to the queue", record["messageId"]
            )
            failed.append(record["messageId"])
            execution_id = _execution_of(record["body"])
            if execution_id and _common.last_attempt(record):
                rt = _common.runtime("timer")
                await _common.fail_dead_lettered(rt, execution_id, "timers", 1, exc)
    return _common.sqs_response(failed)


def _execution_of(body: Any) -> str | None:
    """The execution a timer message is for, if its body says so."""
    import json

    try:
        message = json.loads(body) if isinstance(body, (str, bytes)) else body
        execution_id = message["timer"]["executionId"]
    except Exception:
        return None
    return execution_id if isinstance(execution_id, str) else None
