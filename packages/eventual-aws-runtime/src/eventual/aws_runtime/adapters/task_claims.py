"""The TaskClaimStore port on DynamoDB: the task-claims table, one conditional ``PutItem`` per
attempt, heartbeats and the finish of an attempt."""

from __future__ import annotations

import contextvars
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from eventual.core.runtime.ports import TaskClaim, TaskRequest
from eventual.core.serialization import to_json

from .. import names as n
from ..clients import client, error_code
from ._codec import _iso, _n, _parse_iso, _s

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
