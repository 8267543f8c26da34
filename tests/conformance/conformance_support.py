"""The suite's support (conftest.py makes its fixtures the suite's): the ``conformant_runtime``
fixture: one runtime of the conformance suite, with its ports,
its system operations (a :class:`~eventual.core.runtime.Runtime` on those ports) and the means
to drive it (deliver what is deliverable, move time, inject the faults the contracts speak of).

Each test of the suite runs once per runtime in :data:`RUNTIMES`. A test a runtime is known to
fail names it with :func:`runtimes` (an exact reason, and ``strict``: the day it passes, the
mark must go). See docs/runtimes.md.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

import conformance_service

from eventual.core._context import use_runtime
from eventual.core.models import Execution, ExecutionStatus
from eventual.core.runtime import InMemoryRuntime, Ports, Runtime, VirtualClock
from eventual.core.service import Service, load_service

ENTRY = "conformance_service"
RUNTIMES = ["memory", "sqlite", "aws"]
START = datetime(2024, 1, 1, tzinfo=UTC)
REAL_WAIT = 3.0  # the longest a runtime on the real clock is waited for

T = TypeVar("T")


def runtimes(**xfail: str) -> pytest.MarkDecorator:
    """Run a test on every runtime, those named in ``xfail`` (runtime=reason) expected to fail
    it for that reason: ``@runtimes(sqlite="claim() is True again once ...")``."""
    unknown = set(xfail) - set(RUNTIMES)
    assert not unknown, f"no runtime {unknown}"
    params = [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=xfail[name]))
        if name in xfail
        else name
        for name in RUNTIMES
    ]
    return pytest.mark.parametrize("conformant_runtime", params, indirect=True)


class Conformant:
    """One runtime under test. ``runtime`` is the shared Runtime (its system operations) on
    ``ports``; the methods drive it. Durations given to workflows are multiplied by ``unit``
    (1 on a virtual clock; smaller on a real one, so that the suite stays fast)."""

    name: str
    runtime: Runtime
    ports: Ports
    virtual: bool = True
    unit: float = 1.0

    def now(self) -> datetime:
        return self.runtime.now()

    async def settle(self) -> None:
        """Deliver everything deliverable now (timers in the future aside)."""
        raise NotImplementedError

    async def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` (virtual) or let them pass (real), delivering what
        falls due on the way, in due order."""
        raise NotImplementedError

    async def next_due(self) -> datetime | None:
        """When the next timer, delayed or retried delivery falls due (virtual clocks)."""
        return None

    async def until(
        self, check: Callable[[], Awaitable[bool]], *, within: float, what: str = "condition"
    ) -> None:
        """Drive the runtime until ``check()`` holds, for at most ``within`` seconds of its
        clock (virtual: jumping from one due time to the next; real: polling, for at most
        :data:`REAL_WAIT` seconds)."""
        if not self.virtual:
            within = min(within, REAL_WAIT)
        deadline = self.now() + timedelta(seconds=within)
        while True:
            await self.settle()
            if await check():
                return
            if self.virtual:
                due = await self.next_due()
                if due is None or due > deadline:
                    raise AssertionError(f"{self.name}: {what} does not hold within {within}s")
                await self.advance(max(0.0, (due - self.now()).total_seconds()))
            else:
                if self.now() > deadline:
                    raise AssertionError(f"{self.name}: {what} does not hold within {within}s")
                await asyncio.sleep(0.01)

    async def finished(self, execution_id: str, *, within: float = 120.0) -> Execution:
        async def done() -> bool:
            execution = await self.runtime.get_execution(execution_id)
            return execution.status is not ExecutionStatus.IN_PROGRESS

        await self.until(done, within=within, what=f"{execution_id} finished")
        return await self.runtime.get_execution(execution_id)

    def fail_next_commits(self, monkeypatch: pytest.MonkeyPatch, count: int = 1) -> list[str]:
        """The next ``count`` orchestration steps' ``commit_step`` raise before writing
        anything (the store is unavailable): their events were consumed, not acknowledged.
        Returns the ids of the executions whose commits failed, as they fail."""
        cls = type(self.ports.executions)
        original = cls.commit_step
        failed: list[str] = []

        async def failing(store: Any, execution_id: str, **kwargs: Any) -> None:
            if len(failed) < count:
                failed.append(execution_id)
                raise RuntimeError("injected by the conformance suite: the store is unavailable")
            await original(store, execution_id, **kwargs)

        monkeypatch.setattr(cls, "commit_step", failing)
        return failed

    async def cold(self) -> None:
        """Forget every warm orchestrator's state: the next step replays the history."""
        self.runtime.clear_cache()

    def lose_next_log_answer(self) -> bool:
        """Make the next log write reach the store and its answer be lost, so that the client
        retries it (a transport retry). False if the runtime's log sink has no transport."""
        return False


# ---------------------------------------------------------------- memory


class MemoryConformant(Conformant):
    name = "memory"

    def __init__(self, runtime: InMemoryRuntime) -> None:
        self.runtime = self.memory = runtime
        self.ports = runtime.ports

    async def settle(self) -> None:
        await self.memory.idle()

    async def advance(self, seconds: float) -> None:
        await self.memory.advance(seconds)

    async def next_due(self) -> datetime | None:
        return self.memory.timer_scheduler.next_due()


# ---------------------------------------------------------------- sqlite


class SqliteConformant(Conformant):
    name = "sqlite"
    virtual = False
    unit = 0.2

    def __init__(self, runtime: Any) -> None:
        self.runtime = self.sqlite = runtime
        self.ports = runtime.ports

    async def settle(self) -> None:
        await self.sqlite.idle()

    async def advance(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.sqlite.idle()


# ---------------------------------------------------------------- aws


class AwsConformant(Conformant):
    """The AWS adapters on moto (in-process ``mock_aws``), Lambda played by the harness: its
    deliveries run the real handlers on a thread of their own (a handler runs its own event
    loop, as in a Lambda container), while the suite calls the ports and the system operations
    on a Runtime of its own, as the system function does."""

    name = "aws"

    def __init__(self, harness: Any, pool: ThreadPoolExecutor) -> None:
        from eventual.aws_runtime.adapters import build_ports

        self.harness = harness
        self.pool = pool
        self.ports = build_ports(harness.names, harness.clock)
        self.runtime = Runtime(harness.service, self.ports, clock=harness.clock)
        self._lose_log_answer = False
        harness.session.events.register_first(
            "before-send.cloudwatch-logs.PutLogEvents", self._maybe_lose_answer
        )

    async def _in_lambda(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def settle(self) -> None:
        await self._in_lambda(self.harness.run_until_idle)

    async def advance(self, seconds: float) -> None:
        await self._in_lambda(self.harness.advance, seconds)

    async def next_due(self) -> datetime | None:
        return await self._in_lambda(self.harness.next_due)

    async def cold(self) -> None:
        from eventual.aws_runtime.handlers import _common

        await self._in_lambda(lambda: _common.configure(clock=self.harness.clock))

    def lose_next_log_answer(self) -> bool:
        self._lose_log_answer = True
        return True

    def _maybe_lose_answer(self, request: Any, event_name: str = "", **kwargs: Any) -> Any:
        if not self._lose_log_answer:
            return None
        self._lose_log_answer = False
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse
        from moto.core.models import botocore_stubber

        botocore_stubber(event_name, request)  # applied...
        request.reset_stream()
        return AWSResponse(request.url, 500, {}, MockRawResponse(b""))  # ...answer lost


# ---------------------------------------------------------------- the fixture


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def service() -> Service:
    return load_service(ENTRY)


@pytest.fixture
def aws_harness() -> Iterator[Any]:
    from eventual.aws_runtime.testing import AwsHarness

    # On the real date (the harness's default): CloudWatch Logs refuses events older than 14
    # days, and moto does too.
    with AwsHarness(ENTRY) as harness:
        yield harness


@pytest.fixture(params=RUNTIMES)
async def conformant_runtime(
    request: pytest.FixtureRequest, service: Service, tmp_path: Path
) -> AsyncIterator[Conformant]:
    conformance_service.reset()
    if request.param == "memory":
        async with InMemoryRuntime(service, clock=VirtualClock(START)) as memory:
            with use_runtime(memory):
                yield MemoryConformant(memory)
    elif request.param == "sqlite":
        from eventual.core.runtime.sqlite import SqliteRuntime

        async with SqliteRuntime(
            service, db_path=tmp_path / "dev.db", retry_delay=0.02, max_retry_delay=0.1
        ) as sqlite:
            with use_runtime(sqlite):
                yield SqliteConformant(sqlite)
    else:
        harness = request.getfixturevalue("aws_harness")
        with ThreadPoolExecutor(1, thread_name_prefix="lambda") as pool:
            aws = AwsConformant(harness, pool)
            with use_runtime(aws.runtime):
                yield aws
