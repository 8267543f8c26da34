"""S3: the content-addressed payload bucket, for JSON too large to inline in an item, a message
or an event.

An execution's payloads (its record, its history steps, the events queued for it, its task
requests) are under that execution's own prefix (``names.execution_payload_prefix``), so that
when it finishes they are all found by one listing and tagged
``names.PAYLOAD_EXPIRE_TAG=true`` (:meth:`PayloadStore.tag_finished`), which the bucket's
lifecycle rule expires. Keys stay content-addressed inside the prefix; no object is shared
between executions, so tagging one execution's never touches another's. Emitted events'
payloads (read by subscribers, perhaps of other services) belong to no execution: they are
under ``payloads/events/``, which the lifecycle rule expires by age.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from .. import names as n
from ..clients import client

FINISHED_TAGGING = f"{n.PAYLOAD_EXPIRE_TAG}=true"


class PayloadStore:
    """Content-addressed blobs in the payload bucket, for JSON too large to inline."""

    def __init__(self, names: n.ServiceNames) -> None:
        self.names = names

    def put(self, data: bytes, execution_id: str | None = None) -> str:
        """Store ``data``; its key, under ``execution_id``'s prefix when it is that
        execution's, else (an emitted event's) under :data:`names.PAYLOAD_EVENTS_PREFIX`."""
        if execution_id is None:
            prefix = n.PAYLOAD_EVENTS_PREFIX
        else:
            prefix = n.execution_payload_prefix(execution_id)
        key = f"{prefix}{hashlib.sha256(data).hexdigest()}.json"
        client("s3").put_object(Bucket=self.names.payload_bucket, Key=key, Body=data)
        return key

    def get(self, key: str, bucket: str | None = None) -> bytes:
        """A blob of this service's bucket, or of ``bucket`` (another service's: an event
        forwarded from it names the bucket its payload spilled to)."""
        response = client("s3").get_object(Bucket=bucket or self.names.payload_bucket, Key=key)
        return response["Body"].read()

    def tag_late(self, execution_id: str, keys: Iterable[str]) -> int:
        """Tag ``keys``, payloads put under the finished ``execution_id``'s prefix after its
        marking listed it (the payload of an event that arrived after the end: a late signal
        or task result); returns how many. A key of another prefix or bucket is left."""
        prefix = n.execution_payload_prefix(execution_id)
        own = sorted({k for k in keys if k.startswith(prefix)})
        if own:
            s3 = client("s3")
            for key in own:
                self._tag(s3, key)
        return len(own)

    def _tag(self, s3: Any, key: str) -> None:
        bucket = self.names.payload_bucket
        s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": key},
            # A copy onto itself must change something besides the tags.
            MetadataDirective="REPLACE",
            Metadata={n.PAYLOAD_EXPIRE_TAG: "true"},
            TaggingDirective="REPLACE",
            Tagging=FINISHED_TAGGING,
        )

    def wrap(self, data: bytes, limit: int, execution_id: str | None = None) -> dict[str, Any]:
        """``{"inline": text}`` or ``{"ref": key}`` when ``data`` exceeds ``limit``."""
        if len(data) <= limit:
            return {"inline": data.decode()}
        return {"ref": self.put(data, execution_id)}

    def unwrap(self, wrapped: dict[str, Any]) -> bytes:
        if "ref" in wrapped:
            return self.get(wrapped["ref"], wrapped.get("bucket"))
        return str(wrapped["inline"]).encode()

    def tag_finished(self, execution_id: str) -> int:
        """Tag every payload object of the finished ``execution_id`` for expiry; returns how
        many. One listing per 1,000 objects, then one request per object: a copy of the object
        onto itself with the tag (``CopyObject``), so that the lifecycle rule, which counts its
        days from an object's last write, counts them from now, not from when the execution
        started (a workflow running longer than the retention period would otherwise lose its
        payloads as soon as they are tagged, long before its record expires). Safe to repeat:
        an object copied again only starts its count again."""
        s3 = client("s3")
        bucket = self.names.payload_bucket
        kwargs: dict[str, Any] = {
            "Bucket": bucket,
            "Prefix": n.execution_payload_prefix(execution_id),
        }
        tagged = 0
        while True:
            response = s3.list_objects_v2(**kwargs)
            for obj in response.get("Contents", []):
                self._tag(s3, obj["Key"])
                tagged += 1
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return tagged
            kwargs["ContinuationToken"] = token
