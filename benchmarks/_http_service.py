"""The service the HTTP benchmark serves with ``eventual dev``: one RPC command.

The bare Starlette app it is measured against (``benchmarks.http_rpc.starlette_app``) answers
the same request with the same JSON, without validation."""

from __future__ import annotations

from pydantic import BaseModel

from eventual.core import command

SERVICE_NAME = "bench-http"


class AddInput(BaseModel):
    a: int
    b: int


class AddOutput(BaseModel):
    sum: int


@command
async def add(numbers: AddInput) -> AddOutput:
    return AddOutput(sum=numbers.a + numbers.b)
