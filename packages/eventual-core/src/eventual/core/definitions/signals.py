"""Signals: named messages to a running execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._context import current_ops, current_runtime
from ..serialization import from_json, to_json
from .base import Definition, Duration, ExecutionRef, _caller_module, _register, seconds

T = TypeVar("T")


class SignalDefinition(Definition, Generic[T]):
    """A named message to a running execution, with an optional payload type."""

    kind = "signals"

    def __init__(self, name: str, payload_type: Any = Any, *, module: str | None = None) -> None:
        self.name = name
        self.payload_type = payload_type
        self.module = module or _caller_module(3)
        _register(self)

    def on_signal(self, handler: Callable[[T], Any]) -> SignalHandle:
        """Inside a workflow: call ``handler(payload)`` on every signal until disposed."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError("on_signal() can only be called from inside a workflow")
        return ops.on_signal(self, handler)

    async def expect_signal(self, timeout: Duration | None = None) -> T:
        """Inside a workflow: wait for the next signal; raises ``Timeout`` after ``timeout``."""
        ops = current_ops()
        if ops is None:
            raise RuntimeError("expect_signal() can only be called from inside a workflow")
        return await ops.expect_signal(self, seconds(timeout))

    async def send_signal(self, execution_id: str | ExecutionRef, payload: T | None = None) -> None:
        """Send the signal to an execution (recorded when called from a workflow)."""
        target = execution_id if isinstance(execution_id, str) else execution_id.execution_id
        data = self.payload_to_json(payload)
        ops = current_ops()
        if ops is not None:
            await ops.send_signal(target, self.name, data)
            return
        await current_runtime().send_signal(target, self.name, data)

    def payload_to_json(self, value: Any) -> Any:
        return to_json(value, self.payload_type)

    def payload_from_json(self, value: Any) -> Any:
        return from_json(value, self.payload_type)


class SignalHandle:
    """Returned by ``on_signal``: ``dispose()`` stops the handler."""

    def __init__(self, dispose: Callable[[], None]) -> None:
        self._dispose = dispose

    def dispose(self) -> None:
        self._dispose()


def signal(name: str, payload_type: Any = Any) -> SignalDefinition[Any]:
    """Define a signal: ``cancel = signal("cancel", str)``."""
    return SignalDefinition(name, payload_type, module=_caller_module(2))
