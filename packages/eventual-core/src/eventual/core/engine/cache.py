"""Warm executors kept between steps, so that a step does not replay its history."""

from __future__ import annotations

from collections import OrderedDict

from .executor import WorkflowExecutor


class ExecutorCache:
    """At most ``size`` warm executors, by execution id, in two tiers of least recent use.

    An executor waiting on a task it dispatched steps again as soon as a worker finishes the
    task; one waiting only on signals, timers or children may wait for months. Past the size
    the latter go first, so a burst of parked executions (10,000 waiting on a signal, say)
    does not push out the executions whose next step is a moment away."""

    __slots__ = ("_busy", "_parked", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._busy: OrderedDict[str, WorkflowExecutor] = OrderedDict()
        self._parked: OrderedDict[str, WorkflowExecutor] = OrderedDict()

    def __len__(self) -> int:
        return len(self._busy) + len(self._parked)

    def take(self, execution_id: str) -> WorkflowExecutor | None:
        """The execution's warm executor, removed from the cache (the step that takes it
        keeps it again when it is done), or ``None``."""
        executor = self._busy.pop(execution_id, None)
        if executor is None:
            executor = self._parked.pop(execution_id, None)
        return executor

    def keep(self, execution_id: str, executor: WorkflowExecutor) -> None:
        tier = self._busy if executor.awaiting_task else self._parked
        tier[execution_id] = executor
        while len(self._busy) + len(self._parked) > self.size:
            _, old = (self._parked or self._busy).popitem(last=False)
            old.close()

    def evict(self, execution_id: str) -> None:
        executor = self.take(execution_id)
        if executor is not None:
            executor.close()

    def clear(self) -> None:
        for tier in (self._busy, self._parked):
            for executor in tier.values():
                executor.close()
            tier.clear()
