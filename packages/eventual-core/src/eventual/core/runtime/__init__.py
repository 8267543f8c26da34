"""The runtime: orchestrator and workers over ports, with in-memory adapters."""

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
