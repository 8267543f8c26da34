"""The AWS adapters of eventual-core's runtime ports.

- ExecutionStore: DynamoDB executions and history tables (S3 for large JSON); one
  ``TransactWriteItems`` per orchestration step.
- TaskClaimStore: DynamoDB task-claims table; one conditional ``PutItem`` per attempt.
- ExecutionQueue: SQS FIFO, message group = execution; ``SendMessage``/``SendMessageBatch``.
- TimerScheduler: SQS ``DelaySeconds`` up to 15 minutes, EventBridge Scheduler ``at()``
  schedules beyond.
- EventBus: EventBridge ``PutEvents``, 10 entries a request, failed entries retried.
- TaskDispatcher: Lambda ``Invoke`` with ``InvocationType=Event``, one per task attempt.
- LogSink: CloudWatch Logs, one stream per execution; one request per step that logged.

Every write is idempotent, because a request that failed in transit may have succeeded and
botocore retries it: history steps carry a token and are recognised when re-committed, claims
carry their owner, queue messages a deduplication id, schedules a name derived from the timer.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import json
import logging
import math
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eventual.core.engine.executor import LogEntry
from eventual.core.history import (
    EmittedEvent,
    HistoryEvent,
    InputEvent,
    event_adapter,
    event_json,
    history_adapter,
)
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.runtime.ports import (
    Clock,
    ConflictError,
    Ports,
    StoredExecution,
    TaskClaim,
    TaskRequest,
    TimerRequest,
)
from eventual.core.serialization import to_json

from . import names as n
from .clients import client, error_code

logger = logging.getLogger("eventual.aws")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int | float) -> dict[str, str]:
    return {"N": str(value)}


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_iso(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------- S3 payloads


class PayloadStore:
    """Content-addressed blobs in the payload bucket, for JSON too large to inline."""

    def __init__(self, names: n.ServiceNames) -> None:
        self.names = names

    def put(self, data: bytes) -> str:
        key = f"payloads/{hashlib.sha256(data).hexdigest()}.json"
        client("s3").put_object(Bucket=self.names.payload_bucket, Key=key, Body=data)
        return key

    def get(self, key: str, bucket: str | None = None) -> bytes:
        """A blob of this service's bucket, or of ``bucket`` (another service's: an event
        forwarded from it names the bucket its payload spilled to)."""
        response = client("s3").get_object(Bucket=bucket or self.names.payload_bucket, Key=key)
        return response["Body"].read()

    def wrap(self, data: bytes, limit: int) -> dict[str, Any]:
        """``{"inline": text}`` or ``{"ref": key}`` when ``data`` exceeds ``limit``."""
        if len(data) <= limit:
            return {"inline": data.decode()}
        return {"ref": self.put(data)}

    def unwrap(self, wrapped: dict[str, Any]) -> bytes:
        if "ref" in wrapped:
            return self.get(wrapped["ref"], wrapped.get("bucket"))
        return str(wrapped["inline"]).encode()


# ---------------------------------------------------------------- executions and history


class DynamoExecutionStore:
    """Execution records, their histories (one item per step) and listing indexes.

    With ``cache_commits`` (the orchestrator's setting) the store remembers each record it
    committed, so a warm orchestrator's next step reads nothing: the commit is conditional on
    the history length anyway, and a conflict drops the remembered record, so the step is
    recomputed from a fresh read.
    """

    def __init__(
        self,
        names: n.ServiceNames,
        payloads: PayloadStore,
        *,
        cache_commits: bool = False,
        cache_size: int = 4096,
    ) -> None:
        self.names = names
        self.payloads = payloads
        self.cache_commits = cache_commits
        self.cache_size = cache_size
        self._cache: OrderedDict[str, StoredExecution] = OrderedDict()

    # ------------------------------------------------------------ items

    def _record_attrs(self, execution: Execution) -> dict[str, Any]:
        data = execution.model_dump_json().encode()
        if len(data) <= n.ITEM_INLINE_LIMIT:
            return {"data": _s(data.decode())}
        return {"data_ref": _s(self.payloads.put(data))}

    def _record_of(self, item: dict[str, Any]) -> Execution:
        if "data" in item:
            return Execution.model_validate_json(item["data"]["S"])
        return Execution.model_validate_json(self.payloads.get(item["data_ref"]["S"]))

    def _item(self, execution: Execution) -> dict[str, Any]:
        shard = n.list_shard(execution.id)
        return {
            n.EXECUTIONS_PK: _s(execution.id),
            "workflow": _s(execution.workflow),
            "status": _s(execution.status.value),
            "len": _n(0),
            n.EXECUTIONS_START_KEY: _s(f"{_iso(execution.start_time)}|{execution.id}"),
            n.EXECUTIONS_LIST_SHARD: _s(str(shard)),
            n.EXECUTIONS_WORKFLOW_SHARD: _s(f"{execution.workflow}#{shard}"),
            **self._record_attrs(execution),
        }

    # ------------------------------------------------------------ the port

    async def create(self, execution: Execution) -> tuple[StoredExecution, bool]:
        try:
            client("dynamodb").put_item(
                TableName=self.names.executions_table,
                Item=self._item(execution),
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": n.EXECUTIONS_PK},
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            stored = await self._read(execution.id)
            if stored is None:  # deleted in between: a conflict the caller may retry
                raise
            return stored, False
        return StoredExecution(execution, 0), True

    async def get(self, execution_id: str) -> StoredExecution | None:
        if self.cache_commits:
            cached = self._cache.get(execution_id)
            if cached is not None:
                self._cache.move_to_end(execution_id)
                return cached
        return await self._read(execution_id)

    async def _read(self, execution_id: str) -> StoredExecution | None:
        response = client("dynamodb").get_item(
            TableName=self.names.executions_table,
            Key={n.EXECUTIONS_PK: _s(execution_id)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None:
            return None
        return StoredExecution(self._record_of(item), int(item["len"]["N"]))

    async def read_history(self, execution_id: str) -> list[HistoryEvent]:
        events: list[HistoryEvent] = []
        kwargs: dict[str, Any] = {
            "TableName": self.names.history_table,
            "KeyConditionExpression": "#pk = :id",
            "ExpressionAttributeNames": {"#pk": n.HISTORY_PK},
            "ExpressionAttributeValues": {":id": _s(execution_id)},
            "ConsistentRead": True,
        }
        while True:
            response = client("dynamodb").query(**kwargs)
            for item in response.get("Items", []):
                if "events" in item:
                    data: str | bytes = item["events"]["S"]
                else:
                    data = self.payloads.get(item["events_ref"]["S"])
                events.extend(history_adapter.validate_json(data))
            last = response.get("LastEvaluatedKey")
            if not last:
                return events
            kwargs["ExclusiveStartKey"] = last

    async def commit_step(
        self,
        execution_id: str,
        *,
        expected_length: int,
        events: Sequence[HistoryEvent],
        execution: Execution,
    ) -> None:
        body = history_adapter.dump_json(list(events))
        # The same step sent again (a retry) has the same token; a recomputed step differs.
        token = hashlib.sha256(f"{execution_id}|{expected_length}|".encode() + body).hexdigest()
        token = token[:32]
        step: dict[str, Any] = {
            n.HISTORY_PK: _s(execution_id),
            n.HISTORY_SK: _n(expected_length),
            "count": _n(len(events)),
            "step": _s(token),
        }
        if len(body) <= n.ITEM_INLINE_LIMIT:
            step["events"] = _s(body.decode())
        else:
            step["events_ref"] = _s(self.payloads.put(body))
        new_length = expected_length + len(events)
        sets = ["#len = :new"]
        removes: list[str] = []
        values: dict[str, Any] = {":new": _n(new_length), ":expected": _n(expected_length)}
        attr_names = {"#len": "len"}
        if execution.status is not ExecutionStatus.IN_PROGRESS:
            sets.append("#status = :status")
            attr_names["#status"] = "status"
            values[":status"] = _s(execution.status.value)
            record = self._record_attrs(execution)
            for name, value in record.items():
                sets.append(f"#{name} = :{name}")
                attr_names[f"#{name}"] = name
                values[f":{name}"] = value
            other = "data_ref" if "data" in record else "data"
            attr_names[f"#{other}"] = other
            removes.append(f"#{other}")
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        try:
            client("dynamodb").transact_write_items(
                ClientRequestToken=token,
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.names.history_table,
                            "Item": step,
                            "ConditionExpression": "attribute_not_exists(#pk)",
                            "ExpressionAttributeNames": {"#pk": n.HISTORY_PK},
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.names.executions_table,
                            "Key": {n.EXECUTIONS_PK: _s(execution_id)},
                            "UpdateExpression": update,
                            "ConditionExpression": "#len = :expected",
                            "ExpressionAttributeNames": attr_names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ],
            )
        except Exception as exc:
            if error_code(exc) not in (
                "TransactionCanceledException",
                "IdempotentParameterMismatchException",
            ):
                raise
            if not self._is_own_step(execution_id, expected_length, token):
                self._cache.pop(execution_id, None)
                raise ConflictError(execution_id) from None
        if self.cache_commits:
            self._cache[execution_id] = StoredExecution(execution, new_length)
            self._cache.move_to_end(execution_id)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _is_own_step(self, execution_id: str, first: int, token: str) -> bool:
        """Whether the step at ``first`` is this one: a retried request that had succeeded."""
        response = client("dynamodb").get_item(
            TableName=self.names.history_table,
            Key={n.HISTORY_PK: _s(execution_id), n.HISTORY_SK: _n(first)},
            ConsistentRead=True,
            ProjectionExpression="step",
        )
        item = response.get("Item")
        return item is not None and item.get("step", {}).get("S") == token

    def forget(self, execution_id: str | None = None) -> None:
        """Drop remembered records (all of them without an id)."""
        if execution_id is None:
            self._cache.clear()
        else:
            self._cache.pop(execution_id, None)

    # ------------------------------------------------------------ listing

    async def list(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[ExecutionStatus] | None = None,
        limit: int = 100,
        next_token: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        """Newest first: a merge of the index's shards. The token holds each shard's cursor
        (the sort key of the last execution returned from it), or ``""`` once it is done."""
        cursors: dict[str, str | None]
        if next_token:
            try:
                cursors = json.loads(base64.urlsafe_b64decode(next_token.encode()))
            except ValueError:
                raise ValueError("next_token is not a token this service returned") from None
        else:
            cursors = {str(s): None for s in range(n.LIST_SHARDS)}
        found: list[tuple[str, str, dict[str, Any]]] = []
        exhausted: dict[str, bool] = {}
        for shard, cursor in cursors.items():
            if cursor == "":
                continue
            items, done = self._query_shard(shard, workflow, statuses, cursor, limit)
            exhausted[shard] = done
            found.extend((item[n.EXECUTIONS_START_KEY]["S"], shard, item) for item in items)
        found.sort(key=lambda t: t[0], reverse=True)
        page = found[:limit]
        taken: dict[str, int] = {}
        for start_key, shard, _ in page:
            cursors[shard] = start_key
            taken[shard] = taken.get(shard, 0) + 1
        for shard, done in exhausted.items():
            fetched = sum(1 for _, s, _ in found if s == shard)
            if done and taken.get(shard, 0) == fetched:
                cursors[shard] = ""
        token = None
        if any(c != "" for c in cursors.values()):
            token = base64.urlsafe_b64encode(json.dumps(cursors).encode()).decode()
        return [self._record_of(item) for _, _, item in page], token

    def _query_shard(
        self,
        shard: str,
        workflow: str | None,
        statuses: Sequence[ExecutionStatus] | None,
        cursor: str | None,
        want: int,
    ) -> tuple[list[dict[str, Any]], bool]:
        attr_names = {"#pk": n.EXECUTIONS_LIST_SHARD}
        values: dict[str, Any] = {":pk": _s(shard)}
        index = n.EXECUTIONS_INDEX_BY_TIME
        if workflow is not None:
            index = n.EXECUTIONS_INDEX_BY_WORKFLOW
            attr_names["#pk"] = n.EXECUTIONS_WORKFLOW_SHARD
            values[":pk"] = _s(f"{workflow}#{shard}")
        condition = "#pk = :pk"
        if cursor is not None:
            condition += " AND #sk < :cursor"
            attr_names["#sk"] = n.EXECUTIONS_START_KEY
            values[":cursor"] = _s(cursor)
        kwargs: dict[str, Any] = {
            "TableName": self.names.executions_table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
            "Limit": want,
        }
        if statuses:
            attr_names["#status"] = "status"
            keys = []
            for i, status in enumerate(dict.fromkeys(statuses)):
                values[f":s{i}"] = _s(ExecutionStatus(status).value)
                keys.append(f":s{i}")
            kwargs["FilterExpression"] = f"#status IN ({', '.join(keys)})"
        kwargs["ExpressionAttributeNames"] = attr_names
        kwargs["ExpressionAttributeValues"] = values
        items: list[dict[str, Any]] = []
        while True:
            response = client("dynamodb").query(**kwargs)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items[:want], len(items) <= want
            if len(items) >= want:
                return items[:want], False
            kwargs["ExclusiveStartKey"] = last


# ---------------------------------------------------------------- task claims

claim_owner: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "eventual_claim_owner", default=None
)
"""Who claims: the task worker sets the Lambda request id, which Lambda keeps across the
retries of one asynchronous invocation, so a retried invocation re-takes its own claim."""


class DynamoClaimStore:
    """One item per (execution, seq, attempt); the first writer wins."""

    def __init__(self, names: n.ServiceNames) -> None:
        self.names = names
        self._unwatched: set[tuple[str, int, int]] = set()

    def _key(self, execution_id: str, seq: int, attempt: int) -> dict[str, Any]:
        return {n.CLAIMS_PK: _s(f"{execution_id}|{seq}|{attempt}")}

    def expect(self, request: TaskRequest) -> None:
        """The worker announces the attempt it is about to run. An attempt without a
        heartbeat timeout has no timer that reads its claim's ``done`` flag (the history
        records its completion, and late results are dropped there), so the worker's own
        ``finish`` of it writes nothing: that saves one request per task."""
        if request.heartbeat_timeout is None:
            self._unwatched.add((request.execution_id, request.seq, request.attempt))

    def settle(self, request: TaskRequest) -> None:
        """The worker is done with the attempt (an async result may finish it later)."""
        self._unwatched.discard((request.execution_id, request.seq, request.attempt))

    async def claim(self, execution_id: str, seq: int, attempt: int, now: datetime) -> bool:
        owner = claim_owner.get() or str(uuid.uuid4())
        expires = int((now + timedelta(days=n.CLAIMS_TTL_DAYS)).timestamp())
        try:
            client("dynamodb").put_item(
                TableName=self.names.claims_table,
                Item={
                    **self._key(execution_id, seq, attempt),
                    "claimed_at": _s(_iso(now)),
                    "owner": _s(owner),
                    n.CLAIMS_TTL: _n(expires),
                },
                ConditionExpression="attribute_not_exists(#pk) OR #owner = :owner",
                ExpressionAttributeNames={"#pk": n.CLAIMS_PK, "#owner": "owner"},
                ExpressionAttributeValues={":owner": _s(owner)},
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                self._unwatched.discard((execution_id, seq, attempt))
                return False
            raise
        return True

    @staticmethod
    def _claim_of(item: dict[str, Any]) -> TaskClaim:
        execution_id, seq, attempt = item[n.CLAIMS_PK]["S"].rsplit("|", 2)
        details = item.get("details", {}).get("S")
        return TaskClaim(
            execution_id=execution_id,
            seq=int(seq),
            attempt=int(attempt),
            claimed_at=_parse_iso(item["claimed_at"]["S"]),
            last_heartbeat=_parse_iso(item["heartbeat"]["S"]) if "heartbeat" in item else None,
            heartbeat_details=json.loads(details) if details else None,
            done=item.get("done", {}).get("BOOL", False),
            timed_out=item.get("timed_out", {}).get("BOOL", False),
        )

    async def get(self, execution_id: str, seq: int, attempt: int) -> TaskClaim | None:
        response = client("dynamodb").get_item(
            TableName=self.names.claims_table,
            Key=self._key(execution_id, seq, attempt),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return self._claim_of(item) if item is not None else None

    async def heartbeat(
        self, execution_id: str, seq: int, attempt: int, now: datetime, details: Any = None
    ) -> TaskClaim | None:
        try:
            response = client("dynamodb").update_item(
                TableName=self.names.claims_table,
                Key=self._key(execution_id, seq, attempt),
                UpdateExpression="SET #hb = :now, #details = :details",
                ConditionExpression="attribute_exists(#pk)",
                ExpressionAttributeNames={
                    "#pk": n.CLAIMS_PK,
                    "#hb": "heartbeat",
                    "#details": "details",
                },
                ExpressionAttributeValues={
                    ":now": _s(_iso(now)),
                    ":details": _s(json.dumps(to_json(details))),
                },
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return self._claim_of(response["Attributes"])

    async def finish(
        self, execution_id: str, seq: int, attempt: int, *, timed_out: bool = False
    ) -> bool:
        key = (execution_id, seq, attempt)
        if not timed_out and key in self._unwatched:
            self._unwatched.discard(key)
            return True
        self._unwatched.discard(key)
        finisher = str(uuid.uuid4())
        try:
            client("dynamodb").update_item(
                TableName=self.names.claims_table,
                Key=self._key(execution_id, seq, attempt),
                UpdateExpression="SET #done = :true, #to = :timed_out, #by = :by",
                ConditionExpression="attribute_exists(#pk) AND NOT #done = :true",
                ExpressionAttributeNames={
                    "#pk": n.CLAIMS_PK,
                    "#done": "done",
                    "#to": "timed_out",
                    "#by": "finished_by",
                },
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":timed_out": {"BOOL": timed_out},
                    ":by": _s(finisher),
                },
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            # Done already: by someone else, or by this very request if a retry followed a
            # write whose answer was lost.
            item = (
                client("dynamodb")
                .get_item(
                    TableName=self.names.claims_table,
                    Key=self._key(execution_id, seq, attempt),
                    ConsistentRead=True,
                )
                .get("Item")
            )
            return item is not None and item.get("finished_by", {}).get("S") == finisher
        return True


# ---------------------------------------------------------------- the execution queue


def encode_queue_event(execution_id: str, event: InputEvent, payloads: PayloadStore) -> str:
    data = event_json(event)
    return json.dumps(
        {"executionId": execution_id, "event": payloads.wrap(data, n.MESSAGE_INLINE_LIMIT)}
    )


def decode_queue_event(body: str, payloads: PayloadStore) -> tuple[str, InputEvent]:
    message = json.loads(body)
    event = event_adapter.validate_json(payloads.unwrap(message["event"]))
    return message["executionId"], event  # type: ignore[return-value]


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


# ---------------------------------------------------------------- timers


def encode_timer(timer: TimerRequest) -> str:
    return json.dumps(
        {
            "timer": {
                "id": timer.timer_id,
                "executionId": timer.execution_id,
                "due": _iso(timer.due),
                "event": event_adapter.dump_python(timer.event, mode="json")  # type: ignore[arg-type]
                if timer.event is not None
                else None,
                "heartbeat": list(timer.heartbeat) if timer.heartbeat is not None else None,
            }
        }
    )


def _whole_second(t: datetime) -> datetime:
    """``t`` rounded up to a whole second (``at()`` has second precision: never fire early)."""
    t = t.astimezone(UTC)
    if t.microsecond:
        t = t.replace(microsecond=0) + timedelta(seconds=1)
    return t


def decode_timer(data: Any) -> TimerRequest:
    message = json.loads(data) if isinstance(data, (str, bytes)) else data
    t = message["timer"]
    hb = t.get("heartbeat")
    return TimerRequest(
        timer_id=t["id"],
        execution_id=t["executionId"],
        due=_parse_iso(t["due"]),
        event=event_adapter.validate_python(t["event"]) if t.get("event") else None,  # type: ignore[arg-type]
        heartbeat=(int(hb[0]), int(hb[1]), float(hb[2])) if hb else None,
    )


class AwsTimerScheduler:
    """Timers within 15 minutes are delayed messages on the timer queue; later ones are
    one-time EventBridge Scheduler schedules (deleting themselves after they run) whose
    target is the same queue. A timer that reaches the handler early is re-armed."""

    def __init__(self, names: n.ServiceNames, clock: Clock, *, memo_size: int = 4096) -> None:
        self.names = names
        self.clock = clock
        self.memo_size = memo_size
        self._short: OrderedDict[str, None] = OrderedDict()

    async def schedule(self, timer: TimerRequest) -> None:
        body = encode_timer(timer)
        delay = (timer.due - self.clock.now()).total_seconds()
        if delay <= n.MAX_SQS_DELAY_SECONDS:
            client("sqs").send_message(
                QueueUrl=self.names.timer_queue_url,
                MessageBody=body,
                DelaySeconds=max(0, math.ceil(delay)),
            )
            self._short[timer.timer_id] = None
            while len(self._short) > self.memo_size:
                self._short.popitem(last=False)
            return
        self._short.pop(timer.timer_id, None)
        params = {
            "Name": self.names.schedule_name(timer.timer_id),
            "GroupName": self.names.schedule_group,
            "ScheduleExpression": f"at({_whole_second(timer.due):%Y-%m-%dT%H:%M:%S})",
            "ScheduleExpressionTimezone": "UTC",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE",
            "Target": {
                "Arn": self.names.timer_queue_arn,
                "RoleArn": self.names.scheduler_role_arn,
                "Input": body,
            },
        }
        scheduler = client("scheduler")
        try:
            scheduler.create_schedule(**params)
        except Exception as exc:
            if error_code(exc) != "ConflictException":
                raise
            scheduler.update_schedule(**params)

    async def cancel(self, timer_id: str) -> None:
        """A delayed message cannot be withdrawn: when it arrives the orchestrator drops it.
        A schedule is deleted (a timer this process scheduled as a message costs nothing)."""
        if timer_id in self._short:
            del self._short[timer_id]
            return
        try:
            client("scheduler").delete_schedule(
                Name=self.names.schedule_name(timer_id), GroupName=self.names.schedule_group
            )
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise


# ---------------------------------------------------------------- events

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


# ---------------------------------------------------------------- task dispatch


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
    return json.dumps({"taskRef": payloads.put(data)}).encode()


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


# ---------------------------------------------------------------- logs


def log_stream(execution_id: str) -> str:
    return execution_id.replace(":", "_").replace("*", "_")[:512]


class CloudWatchLogSink:
    """Workflow logs in the service's log group, a stream per execution (where the Lambda
    functions' own logs also are, so one console shows both)."""

    def __init__(self, names: n.ServiceNames) -> None:
        self.names = names
        self._streams: set[str] = set()

    async def append(self, execution_id: str, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        stream = log_stream(execution_id)
        events = [
            {
                "timestamp": int(e.timestamp.timestamp() * 1000),
                "message": json.dumps(
                    {
                        "executionId": execution_id,
                        "level": e.level,
                        "logger": e.logger,
                        "message": e.message,
                    }
                ),
            }
            for e in entries
        ]
        events.sort(key=lambda e: e["timestamp"])
        logs = client("logs")
        for attempt in range(2):
            try:
                logs.put_log_events(
                    logGroupName=self.names.log_group, logStreamName=stream, logEvents=events
                )
                self._streams.add(stream)
                return
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException" or attempt:
                    raise
                try:
                    logs.create_log_stream(logGroupName=self.names.log_group, logStreamName=stream)
                except Exception as create_exc:
                    if error_code(create_exc) != "ResourceAlreadyExistsException":
                        raise

    async def read(
        self, execution_id: str | None = None, *, workflow: str | None = None
    ) -> list[tuple[str, LogEntry]]:
        kwargs: dict[str, Any] = {"logGroupName": self.names.log_group}
        if execution_id is not None:
            kwargs["logStreamNames"] = [log_stream(execution_id)]
        elif workflow is not None:
            kwargs["logStreamNamePrefix"] = log_stream(workflow + "/")
        out: list[tuple[str, LogEntry]] = []
        logs = client("logs")
        while True:
            try:
                response = logs.filter_log_events(**kwargs)
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return out
                raise
            for e in response.get("events", []):
                try:
                    data = json.loads(e["message"])
                except ValueError:
                    continue
                out.append(
                    (
                        data.get("executionId", ""),
                        LogEntry(
                            timestamp=datetime.fromtimestamp(e["timestamp"] / 1000, UTC),
                            level=data.get("level", "INFO"),
                            logger=data.get("logger", ""),
                            message=data.get("message", ""),
                        ),
                    )
                )
            token = response.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
        out.sort(key=lambda t: t[1].timestamp)
        return out


# ---------------------------------------------------------------- all together


class AwsPorts(Ports):
    """The ports on AWS, with the payload store the handlers decode their events with. (A
    plain subclass: a dataclass would compile its methods on every cold start.)"""

    payloads: PayloadStore | None

    def __init__(self, *, payloads: PayloadStore | None = None, **ports: Any) -> None:
        super().__init__(**ports)
        self.payloads = payloads


def build_ports(names: n.ServiceNames, clock: Clock, *, cache_commits: bool = False) -> AwsPorts:
    payloads = PayloadStore(names)
    return AwsPorts(
        executions=DynamoExecutionStore(names, payloads, cache_commits=cache_commits),
        tasks=LambdaTaskDispatcher(names, payloads),
        claims=DynamoClaimStore(names),
        timers=AwsTimerScheduler(names, clock),
        events=EventBridgeBus(names, payloads),
        queue=SqsExecutionQueue(names, payloads),
        logs=CloudWatchLogSink(names),
        payloads=payloads,
    )
