"""Events published on the service's bus, and the subscriptions that handle them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from .._context import current_ops, current_runtime
from ..serialization import Signature, from_json, to_json
from .base import Definition, _caller_module, _register

T = TypeVar("T")


class EventDefinition(Definition, Generic[T]):
    """A named event published on the service's bus, with an optional payload schema."""

    kind = "events"

    def __init__(self, name: str, schema: Any = None, *, module: str | None = None) -> None:
        self.name = name
        self.schema: Any = schema if schema is not None else Any
        self.module = module or _caller_module(3)
        _register(self)

    async def emit(self, *payloads: T) -> None:
        """Publish payloads (recorded when called from a workflow)."""
        data = [self.payload_to_json(p) for p in payloads]
        ops = current_ops()
        if ops is not None:
            await ops.emit_events(self.name, data)
            return
        await current_runtime().emit_events(self.name, data)

    def payload_to_json(self, value: Any) -> Any:
        return to_json(value, self.schema)

    def payload_from_json(self, value: Any) -> Any:
        return from_json(value, self.schema)


def event(name: str, schema: Any = None) -> EventDefinition[Any]:
    """Define an event: ``order_event = event("Order", OrderEvent)``."""
    return EventDefinition(name, schema, module=_caller_module(2))


class SubscriptionDefinition(Definition):
    """A handler run for every event of the listed names (at least once)."""

    kind = "subscriptions"

    def __init__(
        self,
        name: str,
        fn: Callable[[Any], Awaitable[Any]],
        *,
        events: Sequence[EventDefinition[Any] | str],
    ) -> None:
        if not events:
            raise ValueError(f"subscription {name!r}: list at least one event in events=[...]")
        self.name = name
        self.fn = fn
        self.module = fn.__module__
        self.events = list(events)
        self.event_names = [e if isinstance(e, str) else e.name for e in events]
        self.signature = Signature(fn)
        _register(self)

    async def handle(self, event_name: str, payload: Any, schema: Any = Any) -> None:
        """Run the handler on one event's JSON payload, validated against the event schema."""
        tp = schema
        for e in self.events:
            if not isinstance(e, str) and e.name == event_name:
                tp = e.schema
        if tp is Any and self.signature.param_types:
            tp = self.signature.param_types[0]
        await self.fn(from_json(payload, tp))


def subscription(
    name: str, *, events: Sequence[EventDefinition[Any] | str]
) -> Callable[[Callable[[Any], Awaitable[Any]]], SubscriptionDefinition]:
    """Define a subscription: ``@subscription("onOrder", events=[order_event])``."""

    def deco(fn: Callable[[Any], Awaitable[Any]]) -> SubscriptionDefinition:
        return SubscriptionDefinition(name, fn, events=events)

    return deco
