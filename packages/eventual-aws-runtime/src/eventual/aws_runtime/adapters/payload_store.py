"""S3: the content-addressed payload bucket, for JSON too large to inline in an item, a message
or an event."""

from __future__ import annotations

import hashlib
from typing import Any

from .. import names as n
from ..clients import client


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
