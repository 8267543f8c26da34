"""Encodings the adapters share: DynamoDB attribute values, timestamps and hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime


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
