"""The runtime: orchestrator and workers over ports, with in-memory adapters."""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from .memory import (
        InMemoryRuntime,
        MemoryClaimStore,
        MemoryExecutionStore,
        MemoryLogSink,
        VirtualClock,
    )
    from .ports import (
        Clock,
        ConflictError,
        EventBus,
        ExecutionQueue,
        ExecutionStore,
        LogSink,
        Ports,
        StoredExecution,
        TaskClaim,
        TaskClaimStore,
        TaskDispatcher,
        TaskRequest,
        TimerRequest,
        TimerScheduler,
        decode_token,
        encode_token,
    )
    from .runtime import RealClock, Runtime

# Imported on first access (PEP 562): an AWS handler takes the Runtime without the in-memory
# adapters, and ``from eventual.core.runtime import InMemoryRuntime`` works as before.
_LAZY = {
    "InMemoryRuntime": "memory",
    "MemoryClaimStore": "memory",
    "MemoryExecutionStore": "memory",
    "MemoryLogSink": "memory",
    "VirtualClock": "memory",
    "Clock": "ports",
    "ConflictError": "ports",
    "EventBus": "ports",
    "ExecutionQueue": "ports",
    "ExecutionStore": "ports",
    "LogSink": "ports",
    "Ports": "ports",
    "StoredExecution": "ports",
    "TaskClaim": "ports",
    "TaskClaimStore": "ports",
    "TaskDispatcher": "ports",
    "TaskRequest": "ports",
    "TimerRequest": "ports",
    "TimerScheduler": "ports",
    "decode_token": "ports",
    "encode_token": "ports",
    "RealClock": "runtime",
    "Runtime": "runtime",
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "Clock",
    "ConflictError",
    "EventBus",
    "ExecutionQueue",
    "ExecutionStore",
    "InMemoryRuntime",
    "LogSink",
    "MemoryClaimStore",
    "MemoryExecutionStore",
    "MemoryLogSink",
    "Ports",
    "RealClock",
    "Runtime",
    "StoredExecution",
    "TaskClaim",
    "TaskClaimStore",
    "TaskDispatcher",
    "TaskRequest",
    "TimerRequest",
    "TimerScheduler",
    "VirtualClock",
    "decode_token",
    "encode_token",
]
