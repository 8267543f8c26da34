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


def _check_patch_id(fn: str, patch_id: Any) -> None:
    if not isinstance(patch_id, str) or not patch_id:
        raise TypeError(f"{fn}() takes the patch id as a non-empty string, got {patch_id!r}")


def patched(patch_id: str) -> bool:
    """Whether this execution takes the new branch of the change named ``patch_id``::

        if patched("charge-v2"):
            await charge_v2(order)      # executions started on (or reaching here on) new code
        else:
            await charge(order)         # executions whose history predates the patch

    An execution that reaches the call live records a marker in its history and gets True;
    one replaying a history recorded before the patch gets False (its recorded calls are
    those of the old branch). The first answer holds for the rest of the execution. Outside a
    workflow it is always True. Once no execution runs the old branch, replace the call with
    :func:`deprecate_patch` (see docs/versioning.md)."""
    _check_patch_id("patched", patch_id)
    ops = current_ops()
    if ops is None:
        return True
    return ops.patched(patch_id)


def deprecate_patch(patch_id: str) -> None:
    """The patch ``patch_id`` is finished: its old branch is gone. Replaying a history that
    recorded the patch's marker here consumes it; a new execution records nothing, so the call
    can be deleted once no execution that recorded the marker runs any more. Does nothing
    outside a workflow."""
    _check_patch_id("deprecate_patch", patch_id)
    ops = current_ops()
    if ops is not None:
        ops.deprecate_patch(patch_id)
