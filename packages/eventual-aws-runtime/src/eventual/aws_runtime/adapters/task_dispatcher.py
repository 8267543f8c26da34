"""The TaskDispatcher port on Lambda: ``Invoke`` with ``InvocationType=Event``, one per task
attempt; the task request codec the task handler decodes with."""

from __future__ import annotations

import json
from typing import Any

from eventual.core.runtime.ports import TaskRequest

from .. import names as n
from ..clients import client
from .payload_store import PayloadStore


def encode_task(request: TaskRequest, payloads: PayloadStore) -> bytes:
    task = {
        "executionId": request.execution_id,
        "workflow": request.workflow,
        "seq": request.seq,
        "attempt": request.attempt,
        "name": request.name,
        "args": request.args,
        "timeout": request.timeout,
        "heartbeatTimeout": request.heartbeat_timeout,
    }
    data = json.dumps(task).encode()
    if len(data) <= n.MESSAGE_INLINE_LIMIT:
        return json.dumps({"task": task}).encode()
    return json.dumps({"taskRef": payloads.put(data, request.execution_id)}).encode()


def decode_task(event: dict[str, Any], payloads: PayloadStore) -> TaskRequest:
    task = event.get("task")
    if task is None:
        task = json.loads(payloads.get(event["taskRef"]))
    return TaskRequest(
        execution_id=task["executionId"],
        workflow=task["workflow"],
        seq=int(task["seq"]),
        attempt=int(task["attempt"]),
        name=task["name"],
        args=list(task.get("args") or []),
        timeout=task.get("timeout"),
        heartbeat_timeout=task.get("heartbeatTimeout"),
    )


class LambdaTaskDispatcher:
    """Each task runs in its own function, invoked asynchronously (``InvocationType=Event``):
    one request per attempt, Lambda's own retries and on-failure destinations, no queue to
    provision per task. Duplicate deliveries are absorbed by the task claim."""

    def __init__(self, names: n.ServiceNames, payloads: PayloadStore) -> None:
        self.names = names
        self.payloads = payloads

    async def dispatch(self, request: TaskRequest) -> None:
        client("lambda").invoke(
            FunctionName=self.names.task_function(request.name),
            InvocationType="Event",
            Payload=encode_task(request, self.payloads),
        )
