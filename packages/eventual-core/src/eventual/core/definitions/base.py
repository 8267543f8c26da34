"""What every definition shares: the ``Definition`` base, the process-wide registry, and
durations.

Defining something registers it in a process-wide list, tagged with the module that defined
it; :func:`eventual.core.service.load_service` then picks out the definitions reachable from a
service's entry module.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Protocol

Duration = timedelta | float | int


def seconds(d: Duration | None) -> float | None:
    """A duration in seconds (``timedelta`` or a number), or ``None``. Anything else (a
    string, a bool) is a ``TypeError`` naming what was given: ``"10"`` is not ten seconds."""
    if d is None:
        return None
    if isinstance(d, timedelta):
        return d.total_seconds()
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        return float(d)
    raise TypeError(
        f"a duration is a timedelta or a number of seconds, got {type(d).__name__} {d!r}"
    )


MAX_TIMEOUT = 100 * 365 * 86400
"""The longest timeout an execution takes: a hundred years, far past any workflow and well
inside what ``datetime`` can hold."""


def timeout_problem(value: float) -> str | None:
    """What is wrong with an execution's timeout of ``value`` seconds, or ``None``: it must be
    more than 0 and at most :data:`MAX_TIMEOUT` (NaN is neither)."""
    if 0 < value <= MAX_TIMEOUT:
        return None
    return f"a timeout is more than 0 and at most {MAX_TIMEOUT} seconds, got {value!r}"


def execution_timeout(d: Duration | None) -> timedelta | None:
    """An execution's timeout as a ``timedelta`` (``None`` stays ``None``), refused with
    :class:`~eventual.core.errors.InvalidInput` when :func:`timeout_problem` finds one."""
    t = seconds(d)
    if t is None:
        return None
    problem = timeout_problem(t)
    if problem is not None:
        from ..errors import InvalidInput

        raise InvalidInput(problem)
    return timedelta(seconds=t)


def _caller_module(depth: int = 2) -> str:
    try:
        return sys._getframe(depth).f_globals.get("__name__", "__main__")
    except ValueError:  # pragma: no cover
        return "__main__"


class Definition:
    """Anything a service defines. ``kind`` is the spec's section name."""

    kind: str = ""
    name: str
    module: str

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r} from {self.module}>"


_REGISTRY: list[Definition] = []


def _register(d: Definition) -> None:
    # Importing a module again (a reload, a test that re-imports a service) redefines its
    # definitions: the new one replaces the old instead of standing beside it as a duplicate.
    for i, existing in enumerate(_REGISTRY):
        if existing.kind == d.kind and existing.name == d.name and existing.module == d.module:
            _REGISTRY[i] = d
            return
    _REGISTRY.append(d)


def registered() -> list[Definition]:
    return list(_REGISTRY)


def forget_definitions(package: str) -> int:
    """Drop the definitions made in ``package`` or a module under it from the registry, so
    that re-importing the package (the dev server's reload) does not define them twice.
    Returns how many were dropped."""
    prefix = package + "."
    keep = [d for d in _REGISTRY if not (d.module == package or d.module.startswith(prefix))]
    dropped = len(_REGISTRY) - len(keep)
    _REGISTRY[:] = keep
    return dropped


class ExecutionRef(Protocol):
    """Anything that names an execution (an ``ExecutionHandle``, a client's handle)."""

    @property
    def execution_id(self) -> str: ...
