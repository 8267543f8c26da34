"""Replaying a recorded history against today's code, with no side effects."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

from eventual.core import ExecutionStatus, Service, WorkflowDefinition, load_service
from eventual.core.engine import WorkflowExecutor
from eventual.core.history import WorkflowSucceeded, parse_history


@dataclass(frozen=True)
class ReplayResult:
    """The outcome a replayed history reaches: ``status``, and ``result`` (typed by the
    workflow's return annotation) when it succeeded, ``error`` and ``message`` when it failed.
    An ``IN_PROGRESS`` status means the history ends with the workflow still waiting."""

    status: ExecutionStatus
    result: Any = None
    error: str | None = None
    message: str | None = None
    events: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status is ExecutionStatus.SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status is ExecutionStatus.FAILED


def replay(
    workflow: WorkflowDefinition[Any, Any] | str,
    history: Any,
    *,
    service: Service | str | types.ModuleType | None = None,
) -> ReplayResult:
    """Replay ``history`` against ``workflow``'s current code and return the outcome.

    ``history`` is the list of events (as ``get_execution_history`` returns them), their JSON
    form (a list of dicts, or JSON text) or an export ``{"version": 1, "events": [...]}``.
    Nothing runs but the workflow code: no task, timer, signal or event is carried out.
    Raises :class:`~eventual.core.DeterminismError` if the code no longer makes the recorded
    calls. A workflow given by name needs ``service=`` (a Service, module or entry name).
    """
    svc: Service | None = None
    if service is not None:
        svc = service if isinstance(service, Service) else load_service(service)
    if isinstance(workflow, str):
        if svc is None:
            raise ValueError(
                f"replay({workflow!r}, ...): pass the workflow definition, or its service "
                "with service=..."
            )
        definition = svc.workflow(workflow)
    else:
        definition = workflow
    events = parse_history(history)
    lookup = svc.workflows.get if svc is not None else None
    executor = WorkflowExecutor.replay(definition, events, workflows=lookup)
    try:
        completion = executor.completion
        if completion is None:
            return ReplayResult(ExecutionStatus.IN_PROGRESS, events=len(events))
        if isinstance(completion, WorkflowSucceeded):
            try:
                result = definition.output_from_json(completion.result)
            except Exception:
                result = completion.result
            return ReplayResult(ExecutionStatus.SUCCEEDED, result=result, events=len(events))
        return ReplayResult(
            ExecutionStatus.FAILED,
            error=completion.error,
            message=completion.message,
            events=len(events),
        )
    finally:
        executor.close()
