"""The ExecutionStore port on DynamoDB: the executions and history tables (S3 for large JSON),
one ``TransactWriteItems`` per orchestration step, and listing over the sharded indexes.

Retention (the construct enables DynamoDB TTL on :data:`names.RETENTION_TTL` and expires the
payload objects tagged :data:`names.PAYLOAD_EXPIRE_TAG`): the step that finishes an execution
sets the TTL attribute, its end plus the retention period (:func:`names.retention_days`), on
the record and on that step's history item, and :data:`names.RETENTION_PENDING` on the record,
in its transaction. Then the execution is *marked*: every earlier history item gets the TTL
attribute, every payload object under the execution's prefix the tag, and the record loses
``RETENTION_PENDING``. The marking runs when the step's unit of work ends (after the step's
logs are written), or at once for a commit outside one. If it fails or the process dies, the
record keeps ``RETENTION_PENDING``, the message returns to the queue, and the orchestrator that
next reads the record (a store made with ``completes_retention``) finishes it. Nothing of an
execution in progress is ever marked: only a finishing step starts a marking.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from contextvars import ContextVar, Token
from datetime import timedelta
from typing import Any

from eventual.core.history import HistoryEvent, events_json, validate_events
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.runtime.ports import ConflictError, StoredExecution

from .. import names as n
from ..clients import client, error_code
from ._codec import _iso, _n, _s
from .payload_store import PayloadStore

# The executions whose finishing step the current unit of work committed, marked when it ends.
_deferred: ContextVar[list[tuple[DynamoExecutionStore, str]] | None] = ContextVar(
    "eventual_retention_deferred", default=None
)
# BatchWriteItem takes 25 items a request; UnprocessedItems are retried this many times.
BATCH_WRITE_ITEMS = 25
BATCH_WRITE_ATTEMPTS = 8
LOGGER = "eventual.aws.retention"


class MarkAfterUnit:
    """The AWS ports' unit of work: what it commits stays as committed (each step is its own
    transaction); when the outermost unit ends, the executions its steps finished are marked
    for retention (:meth:`DynamoExecutionStore.complete_retention`). A marking that fails
    raises, so that the message is redelivered, unless the unit is already raising (then it is
    logged: the record keeps ``RETENTION_PENDING`` and the next reader finishes it). A new
    object per unit (a few slots): units of concurrent tasks never share one."""

    __slots__ = ("_token",)

    def __init__(self) -> None:
        self._token: Token[list[tuple[DynamoExecutionStore, str]] | None] | None = None

    async def __aenter__(self) -> None:
        if _deferred.get() is None:
            self._token = _deferred.set([])

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._token is None:
            return  # a nested unit: the outermost one marks
        finished = _deferred.get() or []
        _deferred.reset(self._token)
        self._token = None
        for store, execution_id in finished:
            try:
                await store.complete_retention(execution_id)
            except Exception:
                if exc_type is None:
                    raise
                import logging

                logging.getLogger(LOGGER).exception(
                    "marking finished execution %s for retention failed; its record keeps %s "
                    "and the orchestrator finishes the marking when it next reads it",
                    execution_id,
                    n.RETENTION_PENDING,
                )


class DynamoExecutionStore:
    """Execution records, their histories (one item per step) and listing indexes.

    With ``cache_commits`` (the orchestrator's setting) the store remembers each record it
    committed, so a warm orchestrator's next step reads nothing: the commit is conditional on
    the history length anyway, and a conflict drops the remembered record, so the step is
    recomputed from a fresh read.

    With ``completes_retention`` (the orchestrator's too) a read of a finished execution whose
    marking for retention is not done (:data:`names.RETENTION_PENDING`) finishes it before it
    answers, and raises if it cannot (the message it serves returns to the queue). The other
    functions' stores answer such reads as they are: they may lack the permissions to mark.
    The retention period is read from the environment once, here (:func:`names.retention_days`).
    """

    def __init__(
        self,
        names: n.ServiceNames,
        payloads: PayloadStore,
        *,
        cache_commits: bool = False,
        cache_size: int = 4096,
        completes_retention: bool = False,
        retention_days: int | None = None,
    ) -> None:
        self.names = names
        self.payloads = payloads
        self.cache_commits = cache_commits
        self.cache_size = cache_size
        self.completes_retention = completes_retention
        self.retention_days = n.retention_days() if retention_days is None else retention_days
        self._cache: OrderedDict[str, StoredExecution] = OrderedDict()
        # Finished executions this store committed and has not finished marking: their expiry.
        self._pending: dict[str, int] = {}

    def unit_of_work(self) -> MarkAfterUnit:
        """The unit of work of ports on this store (:class:`MarkAfterUnit`)."""
        return MarkAfterUnit()

    # ------------------------------------------------------------ items

    def _record_attrs(self, execution: Execution) -> dict[str, Any]:
        data = execution.model_dump_json().encode()
        if len(data) <= n.ITEM_INLINE_LIMIT:
            return {"data": _s(data.decode())}
        return {"data_ref": _s(self.payloads.put(data, execution.id))}

    def _record_of(self, item: dict[str, Any]) -> Execution:
        if "data" in item:
            return Execution.model_validate_json(item["data"]["S"])
        return Execution.model_validate_json(self.payloads.get(item["data_ref"]["S"]))

    def _item(self, execution: Execution) -> dict[str, Any]:
        shard = n.list_shard(execution.id)
        build = {"build": _s(execution.build)} if execution.build is not None else {}
        return {
            **build,
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
                if self.completes_retention and execution_id in self._pending:
                    await self.complete_retention(execution_id)
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
        pending = item.get(n.RETENTION_PENDING)
        if pending is not None and self.completes_retention:
            # Finished, its marking interrupted (a crash, a failed request): finish it now.
            await self.complete_retention(execution_id, int(pending["N"]))
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
                events.extend(validate_events(data))
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
        body = events_json(list(events))
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
            step["events_ref"] = _s(self.payloads.put(body, execution_id))
        new_length = expected_length + len(events)
        sets = ["#len = :new"]
        removes: list[str] = []
        values: dict[str, Any] = {":new": _n(new_length), ":expected": _n(expected_length)}
        attr_names = {"#len": "len"}
        expires_at: int | None = None
        if execution.status is not ExecutionStatus.IN_PROGRESS:
            # Retention: DynamoDB TTL removes a finished execution's record, and this last
            # step's history item, the retention period after it ended (never one in
            # progress); RETENTION_PENDING until the earlier items and the payloads are
            # marked too (complete_retention, after the transaction).
            ended = execution.end_time or execution.start_time
            expires_at = int((ended + timedelta(days=self.retention_days)).timestamp())
            expires = _n(expires_at)
            step[n.RETENTION_TTL] = expires
            sets.append("#ttl = :ttl")
            attr_names["#ttl"] = n.RETENTION_TTL
            values[":ttl"] = expires
            sets.append("#pending = :ttl")
            attr_names["#pending"] = n.RETENTION_PENDING
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
        if expires_at is not None:
            self._pending[execution_id] = expires_at
            deferred = _deferred.get()
            if deferred is not None:
                deferred.append((self, execution_id))  # once the unit's logs are written
            else:
                await self.complete_retention(execution_id)

    # ------------------------------------------------------------ retention

    async def complete_retention(self, execution_id: str, expires_at: int | None = None) -> None:
        """Mark the finished ``execution_id`` for retention: the TTL attribute on every history
        item, the tag on every payload object, then ``RETENTION_PENDING`` off the record.
        ``expires_at`` (epoch seconds) is the record's; by default the one this store
        committed. Every part is safe to repeat, so an interrupted marking is simply redone."""
        if expires_at is None:
            expires_at = self._pending.get(execution_id)
            if expires_at is None:
                return
        await self._expire_history(execution_id, expires_at)
        self.payloads.tag_finished(execution_id)
        try:
            client("dynamodb").update_item(
                TableName=self.names.executions_table,
                Key={n.EXECUTIONS_PK: _s(execution_id)},
                UpdateExpression="REMOVE #pending",
                # Never write a record back that TTL (or a purge) removed meanwhile.
                ConditionExpression="attribute_exists(#id)",
                ExpressionAttributeNames={
                    "#pending": n.RETENTION_PENDING,
                    "#id": n.EXECUTIONS_PK,
                },
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
        self._pending.pop(execution_id, None)

    async def _expire_history(self, execution_id: str, expires_at: int) -> None:
        """Give every history item of ``execution_id`` the TTL attribute ``expires_at``.

        One Query (the items without it; the finishing step's has it already), then the items
        written back whole with it, 25 to a ``BatchWriteItem``, rather than an ``UpdateItem``
        per item: history items never change once written (each is put once, conditionally),
        so a re-put cannot undo anything; the Query reads the whole items either way (a
        projection costs the same read capacity); a put and an update of an item cost the
        same write capacity; and a long history then costs one request per 25 steps instead
        of one per step. ``UnprocessedItems`` (throttling) are retried with a backoff."""
        expires = _n(expires_at)
        kwargs: dict[str, Any] = {
            "TableName": self.names.history_table,
            "KeyConditionExpression": "#pk = :id",
            "FilterExpression": "attribute_not_exists(#ttl) OR #ttl <> :ttl",
            "ExpressionAttributeNames": {"#pk": n.HISTORY_PK, "#ttl": n.RETENTION_TTL},
            "ExpressionAttributeValues": {":id": _s(execution_id), ":ttl": expires},
            "ConsistentRead": True,
        }
        items: list[dict[str, Any]] = []
        while True:
            response = client("dynamodb").query(**kwargs)
            items.extend(response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                break
            kwargs["ExclusiveStartKey"] = last
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            requests = [
                {"PutRequest": {"Item": {**item, n.RETENTION_TTL: expires}}}
                for item in items[start : start + BATCH_WRITE_ITEMS]
            ]
            await self._batch_write(requests)

    async def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        table = self.names.history_table
        for attempt in range(BATCH_WRITE_ATTEMPTS):
            response = client("dynamodb").batch_write_item(RequestItems={table: requests})
            requests = response.get("UnprocessedItems", {}).get(table, [])
            if not requests:
                return
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
        raise RuntimeError(
            f"DynamoDB left {len(requests)} history item(s) unwritten after "
            f"{BATCH_WRITE_ATTEMPTS} attempts (throttled): the marking is redone when the "
            "execution is next read"
        )

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
        ascending: bool = False,
        build: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        """Newest first (oldest first with ``ascending``), of one ``build`` if given: a merge
        of the index's shards. The token holds each shard's cursor (the sort key of the last
        execution returned from it), or ``""`` once it is done."""
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
            items, done = self._query_shard(
                shard, workflow, statuses, cursor, limit, ascending, build
            )
            exhausted[shard] = done
            found.extend((item[n.EXECUTIONS_START_KEY]["S"], shard, item) for item in items)
        found.sort(key=lambda t: t[0], reverse=not ascending)
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
        ascending: bool = False,
        build: str | None = None,
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
            condition += " AND #sk > :cursor" if ascending else " AND #sk < :cursor"
            attr_names["#sk"] = n.EXECUTIONS_START_KEY
            values[":cursor"] = _s(cursor)
        kwargs: dict[str, Any] = {
            "TableName": self.names.executions_table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": ascending,
            "Limit": want,
        }
        filters: list[str] = []
        if statuses:
            attr_names["#status"] = "status"
            keys = []
            for i, status in enumerate(dict.fromkeys(statuses)):
                values[f":s{i}"] = _s(ExecutionStatus(status).value)
                keys.append(f":s{i}")
            filters.append(f"#status IN ({', '.join(keys)})")
        if build is not None:
            attr_names["#build"] = "build"
            values[":build"] = _s(build)
            filters.append("#build = :build")
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
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
