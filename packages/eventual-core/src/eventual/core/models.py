"""Execution records and statuses, as every runtime and client reports them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from .history import ParentRef


class ExecutionStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SUCCESS = "SUCCEEDED"  # an alias of SUCCEEDED, as in the TypeScript original


class Execution(BaseModel):
    """An execution's record: what ``get_status()`` and ``getExecution`` return."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    workflow: str
    status: ExecutionStatus
    input: Any = None
    result: Any = None
    error: str | None = None
    message: str | None = None
    start_time: datetime
    end_time: datetime | None = None
    parent: ParentRef | None = None
    timeout_at: datetime | None = None
    # The service build the execution started on (``Service.build``); None in records written
    # before builds were recorded.
    build: str | None = None

    @property
    def execution_id(self) -> str:
        return self.id

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1] if "/" in self.id else self.id
