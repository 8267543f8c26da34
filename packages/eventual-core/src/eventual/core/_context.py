"""How definitions find the workflow engine and the runtime without importing them.

Definitions are the top layer of eventual-core and import nothing below them. Inside workflow
code, the running asyncio loop is the engine's deterministic loop; it carries an ``ops`` object
implementing :class:`WorkflowOps`. Outside workflow code, the runtime that is running the
current handler (TestEnvironment, the dev server, a Lambda) is installed with
:func:`use_runtime` and implements :class:`RuntimeClient`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .definitions.base import Definition
    from .history import HistoryEvent
    from .models import Execution, ExecutionStatus


class WorkflowOps(Protocol):
    """What workflow-time operations need from the engine. The definitions pass themselves
    (a ``TaskDefinition`` to ``call_task``, a ``WorkflowDefinition`` to ``call_child``, a
    ``SignalDefinition`` to the signal operations); this layer names only their base, so that
    it stays below the definitions it serves."""

    def call_task(self, task: Definition, args: list[Any]) -> Awaitable[Any]: ...
    def call_child(
        self, workflow: Definition, input: Any, execution_name: str | None
    ) -> Awaitable[Any]: ...
    def send_signal(self, execution_id: str, signal: str, payload: Any) -> Awaitable[None]: ...
    def emit_events(self, event: str, payloads: Sequence[Any]) -> Awaitable[None]: ...
    def on_signal(self, signal: Definition, handler: Callable[[Any], Any]) -> Any: ...
    def expect_signal(self, signal: Definition, timeout: float | None) -> Awaitable[Any]: ...
    def condition(
        self, predicate: Callable[[], bool], timeout: float | None
    ) -> Awaitable[bool]: ...
    def sleep_until(self, until: datetime) -> Awaitable[None]: ...
    def now(self) -> datetime: ...
    def random(self) -> float: ...
    def uuid4(self) -> Any: ...
    def patched(self, patch_id: str) -> bool: ...
    def deprecate_patch(self, patch_id: str) -> None: ...
    @property
    def execution_id(self) -> str: ...


class RuntimeClient(Protocol):
    """What code outside workflows (commands, tasks, subscriptions) may ask of the runtime."""

    async def start_execution(
        self,
        workflow: str,
        input: Any,
        *,
        execution_name: str | None = None,
        timeout: timedelta | None = None,
    ) -> str: ...
    async def get_execution(self, execution_id: str) -> Execution: ...
    async def list_executions(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[ExecutionStatus] | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        ascending: bool = False,
        build: str | None = None,
    ) -> tuple[list[Execution], str | None]: ...
    async def get_history(self, execution_id: str) -> list[HistoryEvent]: ...
    async def send_signal(
        self, execution_id: str, signal: str, payload: Any, *, signal_id: str | None = None
    ) -> None: ...
    async def emit_events(self, event: str, payloads: Sequence[Any]) -> None: ...
    async def send_task_success(self, token: str, result: Any) -> None: ...
    async def send_task_failure(self, token: str, error: str, message: str = "") -> None: ...
    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool: ...


class TaskContextData(Protocol):
    execution_id: str
    workflow_name: str
    task_name: str
    seq: int
    attempt: int
    token: str


_runtime: contextvars.ContextVar[RuntimeClient | None] = contextvars.ContextVar(
    "eventual_runtime", default=None
)
_task_context: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "eventual_task_context", default=None
)
_default_runtime: list[RuntimeClient] = []


def current_ops() -> WorkflowOps | None:
    """The engine's operations when called from workflow code, else ``None``."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return getattr(loop, "eventual_ops", None)


def in_workflow() -> bool:
    return current_ops() is not None


def current_runtime() -> RuntimeClient:
    """The runtime serving the current handler; a clear error when there is none."""
    rt = _runtime.get()
    if rt is None and _default_runtime:
        rt = _default_runtime[-1]
    if rt is None:
        raise RuntimeError(
            "No Eventual runtime is active here: call this from a command, task, subscription "
            "or workflow running under TestEnvironment, `eventual dev` or AWS."
        )
    return rt


def push_runtime(runtime: RuntimeClient) -> contextvars.Token[RuntimeClient | None]:
    """Install ``runtime`` until :func:`pop_runtime` of the token (``use_runtime`` without a
    generator: what a server pays on every request)."""
    return _runtime.set(runtime)


def pop_runtime(token: contextvars.Token[RuntimeClient | None]) -> None:
    _runtime.reset(token)


@contextmanager
def use_runtime(runtime: RuntimeClient) -> Iterator[None]:
    """Install ``runtime`` for the code run inside the block (and tasks it spawns)."""
    token = _runtime.set(runtime)
    try:
        yield
    finally:
        _runtime.reset(token)


def set_default_runtime(runtime: RuntimeClient | None) -> None:
    """Install a process-wide fallback runtime (used by long-running servers)."""
    _default_runtime.clear()
    if runtime is not None:
        _default_runtime.append(runtime)


def task_context_var() -> contextvars.ContextVar[Any]:
    return _task_context
