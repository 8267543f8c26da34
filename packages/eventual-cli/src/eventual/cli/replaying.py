"""``eventual replay``: time-machine debugging of a recorded execution.

The execution's history is fetched from the service, then replayed in this process against the
current code of the workflow, with no side effect (no task, timer, signal or event is carried
out). A ``breakpoint()`` in the workflow stops there during the replay, with the local variables
of that past run; ``--pdb`` stops at the first line of the workflow. The report says whether
the replay reaches the recorded outcome, and on a mismatch which seq differs and how.
"""

from __future__ import annotations

import dis
import pdb
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventual.core import DeterminismError, Service
from eventual.core.definitions import WorkflowDefinition
from eventual.core.history import (
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSucceeded,
    parse_history,
)
from eventual.core.serialization import dumps, loads
from eventual.testing import ReplayResult, replay

from .errors import CliError

ENTRY_ENV = "EVENTUAL_ENTRY"


@dataclass(frozen=True)
class ReplayReport:
    execution_id: str
    workflow: str
    events: int
    recorded_status: str
    recorded: Any
    replayed: ReplayResult | None
    determinism_error: DeterminismError | None = None

    @property
    def matches(self) -> bool:
        if self.determinism_error is not None or self.replayed is None:
            return False
        if self.replayed.status.value != self.recorded_status:
            return False
        if self.recorded_status == "SUCCEEDED":
            return dumps(self.recorded) == dumps(self._replayed_json())
        if self.recorded_status == "FAILED":
            return self.recorded == {
                "error": self.replayed.error,
                "message": self.replayed.message,
            }
        return True

    def _replayed_json(self) -> Any:
        from eventual.core.serialization import to_json

        return to_json(self.replayed.result) if self.replayed is not None else None


def entry_from_project(start: Path) -> str | None:
    """``[tool.eventual] entry = "..."`` from the nearest pyproject.toml, if any."""
    for folder in [start, *start.parents]:
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError):
                return None
            entry = data.get("tool", {}).get("eventual", {}).get("entry")
            if isinstance(entry, str):
                return entry
    return None


def replay_execution(
    service: Service,
    execution: dict[str, Any],
    events: list[Any],
    *,
    debug: bool = False,
) -> ReplayReport:
    """Replay one execution (its wire form and its history) against ``service``'s code."""
    workflow_name = execution.get("workflowName") or str(execution["id"]).split("/", 1)[0]
    workflow = service.workflow(workflow_name)
    history = parse_history(events)
    status = str(execution.get("status"))
    recorded: Any = None
    if status == "SUCCEEDED":
        recorded = execution.get("result")
    elif status == "FAILED":
        recorded = {"error": execution.get("error"), "message": execution.get("message")}

    def run() -> ReplayResult:
        return replay(workflow, history, service=service)

    try:
        result = _under_pdb(workflow, run) if debug else run()
    except DeterminismError as exc:
        return ReplayReport(
            str(execution["id"]), workflow_name, len(history), status, recorded, None, exc
        )
    return ReplayReport(str(execution["id"]), workflow_name, len(history), status, recorded, result)


def history_files(paths: list[Path]) -> list[Path]:
    """The files given, a folder standing for every ``*.json`` in it (sorted)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                raise CliError(f"{path} holds no *.json history")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CliError(f"{path}: no such file or folder")
    return files


def replay_file(service: Service, path: Path, *, debug: bool = False) -> ReplayReport:
    """Replay an exported history file; its execution's outcome is read from its events."""
    try:
        events = parse_history(loads(path.read_bytes()))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # not JSON, not a history (pydantic's errors are ValueErrors)
        raise CliError(f"{path} is not an exported history: {str(exc)[:300]}") from None
    started = events[0] if events else None
    if not isinstance(started, WorkflowStarted):
        raise CliError(f"{path} is not an exported history: it does not begin with WorkflowStarted")
    execution: dict[str, Any] = {
        "id": started.execution_id,
        "workflowName": started.workflow,
        "status": "IN_PROGRESS",
    }
    last = events[-1]
    if isinstance(last, WorkflowSucceeded):
        execution.update(status="SUCCEEDED", result=last.result)
    elif isinstance(last, WorkflowFailed):
        execution.update(status="FAILED", error=last.error, message=last.message)
    return replay_execution(service, execution, events, debug=debug)


def _under_pdb(workflow: WorkflowDefinition[Any, Any], run: Any) -> ReplayResult:
    """Run the replay under pdb, stopping at the workflow's first line."""
    code = workflow.fn.__code__
    lines = sorted({line for _, line in dis.findlinestarts(code) if line is not None})
    # The first line is the definition (the coroutine's prologue); the next is the body.
    first_body_line = lines[1] if len(lines) > 1 else code.co_firstlineno
    debugger = pdb.Pdb()
    debugger.set_break(code.co_filename, first_body_line)
    debugger.rcLines.append("continue")
    result = debugger.runcall(run)
    if result is None:
        raise RuntimeError("the debugger quit before the replay finished")
    return result
