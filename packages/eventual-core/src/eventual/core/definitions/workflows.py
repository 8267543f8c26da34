"""Workflows: the definer and the handle of a started execution."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from .._context import current_ops, current_runtime
from ..serialization import Signature, from_json, to_json
from .base import Definition, Duration, _register, execution_timeout, seconds

if TYPE_CHECKING:
    from ..models import Execution
    from .signals import SignalDefinition

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class ExecutionHandle(Generic[O]):
    """A started execution: ``execution_id``, ``get_status()``, ``send_signal()``."""

    def __init__(self, execution_id: str, workflow: WorkflowDefinition[Any, O] | None = None):
        self.execution_id = execution_id
        self.workflow = workflow

    async def get_status(self) -> Execution:
        execution = await current_runtime().get_execution(self.execution_id)
        if self.workflow is not None and execution.result is not None:
            try:
                typed = self.workflow.output_from_json(execution.result)
                return execution.model_copy(update={"result": typed})
            except Exception:
                return execution
        return execution

    async def send_signal(self, signal: SignalDefinition[Any] | str, payload: Any = None) -> None:
        name = signal if isinstance(signal, str) else signal.name
        await current_runtime().send_signal(self.execution_id, name, to_json(payload))

    def __repr__(self) -> str:
        return f"ExecutionHandle({self.execution_id!r})"


class WorkflowDefinition(Definition, Generic[I, O]):
    """A durable workflow: one input, one output."""

    kind = "workflows"

    def __init__(
        self,
        name: str,
        fn: Callable[[I], Coroutine[Any, Any, O]],
        *,
        timeout: Duration | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"workflow {name!r}: the handler must be an `async def` function")
        self.name = name
        self.fn = fn
        self.module = fn.__module__
        self.signature = Signature(fn)
        if len(self.signature.params) > 1:
            raise TypeError(f"workflow {name!r}: a workflow takes one input parameter")
        self.input_type: Any = self.signature.param_types[0] if self.signature.params else Any
        self.output_type: Any = self.signature.return_type
        self.timeout = seconds(timeout)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _register(self)

    def __call__(self, input: I) -> Awaitable[O]:
        """Inside a workflow: run this workflow as a child and return its result."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError(
                f"workflow {self.name!r} can only be awaited from inside another workflow; "
                f"use `await {self.fn.__name__}.start_execution(input)` elsewhere"
            )
        return ops.call_child(self, self.input_to_json(input), None)

    def child(self, input: I, *, execution_name: str | None = None) -> Awaitable[O]:
        """Inside a workflow: run a child execution with a chosen name."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError("child() can only be called from inside a workflow")
        return ops.call_child(self, self.input_to_json(input), execution_name)

    async def start_execution(
        self,
        input: I,
        *,
        execution_name: str | None = None,
        timeout: Duration | None = None,
    ) -> ExecutionHandle[O]:
        """Start an execution (outside workflows); same name and input returns the running one."""
        if current_ops() is not None:
            raise RuntimeError(
                "start_execution() cannot be called inside a workflow; "
                f"await {self.fn.__name__}(input) to run it as a child workflow"
            )
        execution_id = await current_runtime().start_execution(
            self.name,
            self.input_to_json(input),
            execution_name=execution_name,
            timeout=execution_timeout(timeout),
        )
        return ExecutionHandle(execution_id, self)

    def input_to_json(self, value: Any) -> Any:
        return to_json(value, self.input_type)

    def input_from_json(self, value: Any) -> Any:
        return from_json(value, self.input_type)

    def output_to_json(self, value: Any) -> Any:
        return to_json(value, self.output_type)

    def output_from_json(self, value: Any) -> Any:
        return from_json(value, self.output_type)


@overload
def workflow(fn: Callable[[I], Coroutine[Any, Any, O]], /) -> WorkflowDefinition[I, O]: ...
@overload
def workflow(
    name: str, fn: Callable[[I], Coroutine[Any, Any, O]], /, *, timeout: Duration | None = None
) -> WorkflowDefinition[I, O]: ...
@overload
def workflow(
    name: str | None = None, /, *, timeout: Duration | None = None
) -> Callable[[Callable[[I], Coroutine[Any, Any, O]]], WorkflowDefinition[I, O]]: ...
def workflow(name: Any = None, fn: Any = None, /, **options: Any) -> Any:
    """Define a workflow: ``@workflow("name", timeout=...)`` or ``workflow("name", fn)``."""
    if callable(name):
        fn = cast(Any, name)
        return WorkflowDefinition(fn.__name__, fn, **options)
    if fn is not None:
        return WorkflowDefinition(name, fn, **options)

    def deco(f: Callable[[I], Coroutine[Any, Any, O]]) -> WorkflowDefinition[I, O]:
        return WorkflowDefinition(name or f.__name__, f, **options)

    return deco
