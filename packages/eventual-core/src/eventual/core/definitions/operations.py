"""Workflow-time operations: durable sleep, conditions, and the deterministic ``now()``,
``random()`` and ``uuid4()`` (ordinary outside workflows)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._context import current_ops, current_runtime
from .base import Duration, seconds


async def sleep(duration: Duration) -> None:
    """Durable sleep in a workflow (``asyncio.sleep`` works too); a plain sleep elsewhere."""
    import asyncio

    await asyncio.sleep(seconds(duration) or 0)


async def sleep_until(when: Any) -> None:
    """Sleep until a datetime (durable in a workflow; a time in the past returns at once)."""
    import asyncio
    from datetime import UTC, datetime

    ops = current_ops()
    if ops is not None:
        await ops.sleep_until(when)
        return
    delay = (when - datetime.now(UTC)).total_seconds()
    await asyncio.sleep(max(0.0, delay))


async def condition(predicate: Callable[[], bool], timeout: Duration | None = None) -> bool:
    """Wait in a workflow until ``predicate()`` is true (re-checked after every event).
    Returns ``False`` if ``timeout`` passes first."""
    ops = current_ops()
    if ops is None:
        raise RuntimeError("condition() can only be awaited from inside a workflow")
    return await ops.condition(predicate, seconds(timeout))


def now() -> Any:
    """The current time: the replayed run's time inside a workflow; elsewhere the clock of the
    runtime serving the code (virtual under TestEnvironment), or the system clock."""
    ops = current_ops()
    if ops is not None:
        return ops.now()
    try:
        runtime_now = getattr(current_runtime(), "now", None)
    except RuntimeError:
        runtime_now = None
    if runtime_now is not None:
        return runtime_now()
    from datetime import UTC, datetime

    return datetime.now(UTC)


def random() -> float:
    """A random float in [0, 1): deterministic inside a workflow."""
    ops = current_ops()
    if ops is not None:
        return ops.random()
    import random as _random

    return _random.random()


def uuid4() -> Any:
    """A random UUID: deterministic inside a workflow."""
    ops = current_ops()
    if ops is not None:
        return ops.uuid4()
    import uuid

    return uuid.uuid4()
