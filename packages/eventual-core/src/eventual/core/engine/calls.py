"""The calls a running workflow is waiting on, by seq: tasks, timers and child workflows."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ..definitions import TaskDefinition, WorkflowDefinition


class _TaskCall:
    __slots__ = ("args", "attempt", "definition", "future", "name", "waiting_retry")

    def __init__(
        self,
        definition: TaskDefinition[Any, Any] | None,
        name: str,
        args: list[Any],
        future: asyncio.Future[Any],
        attempt: int = 1,
        waiting_retry: bool = False,
    ) -> None:
        self.definition = definition
        self.name = name
        self.args = args
        self.future = future
        self.attempt = attempt
        self.waiting_retry = waiting_retry


class _TimerCall:
    __slots__ = ("handle", "until")

    def __init__(self, handle: asyncio.TimerHandle, until: datetime) -> None:
        self.handle = handle
        self.until = until


class _ChildCall:
    __slots__ = ("definition", "future")

    def __init__(
        self, definition: WorkflowDefinition[Any, Any], future: asyncio.Future[Any]
    ) -> None:
        self.definition = definition
        self.future = future


_Pending = _TaskCall | _TimerCall | _ChildCall
