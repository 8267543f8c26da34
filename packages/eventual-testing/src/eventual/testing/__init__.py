"""eventual.testing: run a service's workflows in-process on a virtual clock.

``TestEnvironment`` drives the same orchestrator and workers as every Eventual runtime, over
in-memory adapters, with task mocks, test subscriptions and full control of time;
``replay`` checks a recorded history against today's code. See the package README.

The names load on first use, so the pytest plugin this package registers costs nothing in test
sessions that do not use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventual.core._lazy import lazy_attributes

if TYPE_CHECKING:
    from ._client import EnvironmentClient, ExecutionList, TestExecutionHandle
    from ._environment import DEFAULT_START, TestEnvironment, TestSubscription
    from ._mocks import TaskMock
    from ._replay import ReplayResult, replay

_EXPORTS = {
    "DEFAULT_START": "_environment",
    "EnvironmentClient": "_client",
    "ExecutionList": "_client",
    "TestEnvironment": "_environment",
    "TestExecutionHandle": "_client",
    "TestSubscription": "_environment",
    "TaskMock": "_mocks",
    "ReplayResult": "_replay",
    "replay": "_replay",
}

__all__ = [
    "DEFAULT_START",
    "EnvironmentClient",
    "ExecutionList",
    "ReplayResult",
    "TaskMock",
    "TestEnvironment",
    "TestExecutionHandle",
    "TestSubscription",
    "replay",
]


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())
