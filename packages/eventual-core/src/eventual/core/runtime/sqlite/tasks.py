"""The task dispatcher of the SQLite runtime: the task attempts this process dispatched, in
memory, for the driver's worker pool."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from ..ports import TaskRequest
from .database import Database
from .hooks import _Hooks


class SqliteTaskDispatcher:
    """The task attempts this process dispatched, in memory, in dispatch order; the driver's
    worker pool takes them. Nothing is written for them: the step that dispatches an attempt
    records its ``TaskScheduled`` event in the same transaction, and the history is what makes
    the attempt durable. On start the driver finds the attempts a previous process left
    without a result (:func:`_outstanding_attempts`) and restores them here."""

    def __init__(
        self, db: Database, hooks: _Hooks, *, expect: Callable[[TaskRequest], None]
    ) -> None:
        self.db = db
        self.hooks = hooks
        self._pending: deque[TaskRequest] = deque()
        # Tells the claim store of each attempt dispatched here: one it can claim unread.
        self._expect = expect

    async def dispatch(self, request: TaskRequest) -> None:
        def committed() -> None:
            self._expect(request)
            self._pending.append(request)
            self.hooks.tasks_changed()

        self.db.after_commit(committed)

    def restore(self, requests: Sequence[TaskRequest]) -> None:
        """Attempts found outstanding on start: dispatched again."""
        for request in requests:
            self._expect(request)
        self._pending.extend(requests)

    def take(self, limit: int) -> list[TaskRequest]:
        """Up to ``limit`` attempts, oldest dispatch first (they leave the queue)."""
        pending = self._pending
        return [pending.popleft() for _ in range(min(limit, len(pending)))]

    def has_pending(self) -> bool:
        return bool(self._pending)
