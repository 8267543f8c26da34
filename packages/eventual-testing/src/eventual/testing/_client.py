"""``env.client``: the system commands of ``EventualClient``, bound to one TestEnvironment.

:class:`EnvironmentClient` calls the environment's runtime directly (no HTTP) and settles the
environment after each call; it returns :class:`TestExecutionHandle` handles and
:class:`ExecutionList` pages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from eventual.core import (
    EventDefinition,
    Execution,
    ExecutionHandle,
    ExecutionStatus,
    HistoryEvent,
    SignalDefinition,
    WorkflowDefinition,
)
from eventual.core._context import use_runtime
from eventual.core.definitions import Duration, execution_timeout
from eventual.core.errors import error_payload
from eventual.core.serialization import to_json

if TYPE_CHECKING:
    from eventual.core import Service
    from eventual.core.runtime import InMemoryRuntime


class BoundEnvironment(Protocol):
    """What the client and its handles need of their ``TestEnvironment`` (named here, so that
    this module does not import the environment that imports it)."""

    service: Service
    client: EnvironmentClient

    @property
    def runtime(self) -> InMemoryRuntime: ...
    async def _settle(self) -> None: ...


I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class TestExecutionHandle(ExecutionHandle[O]):
    """An execution started in a :class:`TestEnvironment`. ``get_status()`` and
    ``send_signal()`` work anywhere in the test, with or without a runtime installed."""

    __test__ = False

    def __init__(
        self,
        env: BoundEnvironment,
        execution_id: str,
        workflow: WorkflowDefinition[Any, O] | None = None,
    ) -> None:
        super().__init__(execution_id, workflow)
        self._env = env

    async def get_status(self) -> Execution:
        await self._env._settle()
        with use_runtime(self._env.runtime):
            return await super().get_status()

    async def send_signal(self, signal: SignalDefinition[Any] | str, payload: Any = None) -> None:
        await self._env.client.send_signal(self.execution_id, signal, payload)

    async def get_history(self) -> list[HistoryEvent]:
        """The execution's recorded events, oldest first."""
        return await self._env.client.get_execution_history(self.execution_id)

    def __repr__(self) -> str:
        return f"TestExecutionHandle({self.execution_id!r})"


@dataclass
class ExecutionList:
    """A page of executions, newest first; ``next_token`` fetches the next page."""

    executions: list[Execution]
    next_token: str | None = None

    def __iter__(self) -> Iterator[Execution]:
        return iter(self.executions)

    def __len__(self) -> int:
        return len(self.executions)


ExecutionRef = ExecutionHandle[Any] | Execution | str


def _execution_id(execution: ExecutionRef) -> str:
    if isinstance(execution, str):
        return execution
    if isinstance(execution, ExecutionHandle):
        return execution.execution_id
    if isinstance(execution, Execution):
        return execution.id
    raise TypeError(f"expected an execution handle or an execution id, not {execution!r}")


def _typed_json(dump: Callable[[Any], Any], load: Callable[[Any], Any], value: Any) -> Any:
    """The JSON form of ``value`` after validating it against the declared type, so a dict
    given for a model is checked (a pydantic ``ValidationError`` if it does not fit)."""
    return dump(load(to_json(value)))


class EnvironmentClient:
    """``env.client``: the system commands of ``EventualClient``, bound to one environment.

    Workflow, signal and event arguments may be definition objects or names. Every call that
    changes something leaves the environment idle at the current virtual time (like the
    environment's own actions); every read first lets pending work finish.
    """

    def __init__(self, env: BoundEnvironment) -> None:
        self._env = env

    @overload
    async def start_execution(
        self,
        workflow: WorkflowDefinition[I, O],
        input: I,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> TestExecutionHandle[O]: ...
    @overload
    async def start_execution(
        self,
        workflow: str,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> TestExecutionHandle[Any]: ...
    async def start_execution(
        self,
        workflow: WorkflowDefinition[Any, Any] | str,
        input: Any = None,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> TestExecutionHandle[Any]:
        env = self._env
        name = workflow if isinstance(workflow, str) else workflow.name
        definition = env.service.workflow(name)
        execution_id = await env.runtime.start_execution(
            name,
            _typed_json(definition.input_to_json, definition.input_from_json, input),
            execution_name=execution_name,
            timeout=execution_timeout(timeout),
        )
        await env._settle()
        return TestExecutionHandle(env, execution_id, definition)

    async def get_execution(self, execution_id: ExecutionRef) -> Execution:
        await self._env._settle()
        return await self._env.runtime.get_execution(_execution_id(execution_id))

    async def list_executions(
        self,
        *,
        workflow: WorkflowDefinition[Any, Any] | str | None = None,
        statuses: Sequence[ExecutionStatus | str] | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        build: str | None = None,
    ) -> ExecutionList:
        await self._env._settle()
        name = workflow.name if isinstance(workflow, WorkflowDefinition) else workflow
        parsed = [ExecutionStatus(s) for s in statuses] if statuses else None
        executions, token = await self._env.runtime.list_executions(
            workflow=name, statuses=parsed, limit=limit, next_token=next_token, build=build
        )
        return ExecutionList(executions, token)

    async def get_execution_history(self, execution_id: ExecutionRef) -> list[HistoryEvent]:
        await self._env._settle()
        return await self._env.runtime.get_history(_execution_id(execution_id))

    async def send_signal(
        self,
        execution_id: ExecutionRef,
        signal: SignalDefinition[Any] | str,
        payload: Any = None,
        *,
        signal_id: str | None = None,
    ) -> None:
        env = self._env
        definition = signal if isinstance(signal, SignalDefinition) else env.service.signal(signal)
        name = definition.name
        data = _typed_json(definition.payload_to_json, definition.payload_from_json, payload)
        await env.runtime.send_signal(_execution_id(execution_id), name, data, signal_id=signal_id)
        await env._settle()

    async def emit_events(self, event: EventDefinition[Any] | str, *payloads: Any) -> None:
        env = self._env
        definition = event if isinstance(event, EventDefinition) else env.service.event(event)
        data = [
            _typed_json(definition.payload_to_json, definition.payload_from_json, p)
            for p in payloads
        ]
        name = definition.name
        await env.runtime.emit_events(name, data)
        await env._settle()

    async def send_task_success(self, token: str, result: Any = None) -> None:
        await self._env.runtime.send_task_success(token, to_json(result))
        await self._env._settle()

    async def send_task_failure(
        self, token: str, error: str | BaseException = "Error", message: str = ""
    ) -> None:
        if isinstance(error, BaseException):
            p = error_payload(error)
            error, message = p.error, message or p.message
        await self._env.runtime.send_task_failure(token, error, message)
        await self._env._settle()

    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        """Record a heartbeat; returns True if the task attempt was cancelled (timed out)."""
        cancelled = await self._env.runtime.send_task_heartbeat(token, to_json(details))
        await self._env._settle()
        return cancelled

    async def list_workflows(self) -> list[str]:
        return sorted(self._env.service.workflows)
