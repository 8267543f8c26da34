"""In-memory adapters for every port, and a driver that runs them in one asyncio loop.

This is the runtime of unit tests (``eventual.testing.TestEnvironment`` builds on it with a
virtual clock). It is not durable: everything lives in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ..engine.results import LogEntry
from ..history import EmittedEvent, HistoryEvent, InputEvent, event_json, history_adapter
from ..models import Execution, ExecutionStatus
from ..service import Service
from .ports import (
    Clock,
    ConflictError,
    Ports,
    StoredExecution,
    TaskClaim,
    TaskRequest,
    TimerRequest,
)
from .runtime import RealClock, Runtime

logger = logging.getLogger("eventual.runtime")


# ---------------------------------------------------------------- stores


class MemoryExecutionStore:
    """Records and histories in dictionaries. A step's events are kept as one JSON blob, as a
    real store keeps them: nothing the caller holds aliases the stored history, and a long
    history costs a few hundred bytes a step instead of a graph of objects."""

    def __init__(
        self, *, claims: MemoryClaimStore | None = None, logs: MemoryLogSink | None = None
    ) -> None:
        self._records: dict[str, Execution] = {}
        self._history: dict[str, list[bytes]] = {}
        self._lengths: dict[str, int] = {}
        # What purge_finished removes with an execution besides its record and history (as
        # the SQLite store does): its task claims and its log lines.
        self._claims = claims
        self._logs = logs

    async def create(self, execution: Execution) -> tuple[StoredExecution, bool]:
        existing = self._records.get(execution.id)
        if existing is not None:
            return StoredExecution(existing, self._lengths[execution.id]), False
        self._records[execution.id] = execution
        self._history[execution.id] = []
        self._lengths[execution.id] = 0
        return StoredExecution(execution, 0), True

    async def get(self, execution_id: str) -> StoredExecution | None:
        record = self._records.get(execution_id)
        if record is None:
            return None
        return StoredExecution(record, self._lengths[execution_id])

    async def list(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[ExecutionStatus] | None = None,
        limit: int = 100,
        next_token: str | None = None,
        ascending: bool = False,
        build: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        wanted = set(statuses) if statuses else None
        rows = [
            e
            for e in self._records.values()
            if (workflow is None or e.workflow == workflow)
            and (wanted is None or e.status in wanted)
            and (build is None or e.build == build)
        ]
        rows.sort(key=lambda e: (e.start_time, e.id), reverse=not ascending)
        try:
            start = int(next_token) if next_token else 0
        except ValueError:
            raise ValueError("next_token is not a token this runtime returned") from None
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return page, str(start + limit) if more else None

    async def count(
        self, *, workflow: str | None = None, build: str | None = None
    ) -> dict[str, int]:
        """How many executions there are per status (of one workflow, of one build)."""
        counts: dict[str, int] = {}
        for e in self._records.values():
            if (workflow is None or e.workflow == workflow) and (build is None or e.build == build):
                counts[e.status.value] = counts.get(e.status.value, 0) + 1
        return counts

    async def purge_finished(self, ended_before: datetime, limit: int) -> list[str]:
        """Delete up to ``limit`` finished executions that ended before ``ended_before``, with
        their history (and their claims and logs, in the stores given); returns their ids. An
        execution in progress is never touched."""
        ids = [
            e.id
            for e in self._records.values()
            if e.status is not ExecutionStatus.IN_PROGRESS
            and e.end_time is not None
            and e.end_time < ended_before
        ][:limit]
        for execution_id in ids:
            del self._records[execution_id]
            self._history.pop(execution_id, None)
            self._lengths.pop(execution_id, None)
        if ids:
            gone = set(ids)
            if self._claims is not None:
                self._claims.drop(gone)
            if self._logs is not None:
                self._logs.drop(gone)
        return ids

    async def read_history(self, execution_id: str) -> list[HistoryEvent]:
        events: list[HistoryEvent] = []
        for blob in self._history.get(execution_id, ()):
            events.extend(history_adapter.validate_json(blob))
        return events

    async def commit_step(
        self,
        execution_id: str,
        *,
        expected_length: int,
        events: Sequence[HistoryEvent],
        execution: Execution,
    ) -> None:
        if self._lengths[execution_id] != expected_length:
            raise ConflictError(execution_id)
        blob = b",".join([event_json(e) for e in events])
        self._history[execution_id].append(b"[" + blob + b"]")
        self._lengths[execution_id] = expected_length + len(events)
        self._records[execution_id] = execution


class MemoryClaimStore:
    def __init__(self) -> None:
        self._claims: dict[tuple[str, int, int], TaskClaim] = {}

    async def claim(self, execution_id: str, seq: int, attempt: int, now: datetime) -> bool:
        key = (execution_id, seq, attempt)
        if key in self._claims:
            return False
        self._claims[key] = TaskClaim(execution_id, seq, attempt, claimed_at=now)
        return True

    async def get(self, execution_id: str, seq: int, attempt: int) -> TaskClaim | None:
        return self._claims.get((execution_id, seq, attempt))

    async def heartbeat(
        self, execution_id: str, seq: int, attempt: int, now: datetime, details: Any = None
    ) -> TaskClaim | None:
        key = (execution_id, seq, attempt)
        claim = self._claims.get(key)
        if claim is None:
            return None
        claim = replace(claim, last_heartbeat=now, heartbeat_details=details)
        self._claims[key] = claim
        return claim

    async def finish(
        self, execution_id: str, seq: int, attempt: int, *, timed_out: bool = False
    ) -> bool:
        key = (execution_id, seq, attempt)
        claim = self._claims.get(key)
        if claim is None or claim.done:
            return False
        self._claims[key] = claim.finished(timed_out=timed_out)
        return True

    def drop(self, execution_ids: set[str]) -> None:
        """Forget the claims of ``execution_ids`` (purged executions)."""
        for key in [k for k in self._claims if k[0] in execution_ids]:
            del self._claims[key]


class MemoryLogSink:
    def __init__(self) -> None:
        self._entries: list[tuple[str, LogEntry]] = []

    async def append(self, execution_id: str, entries: Sequence[LogEntry]) -> None:
        self._entries.extend((execution_id, e) for e in entries)

    def drop(self, execution_ids: set[str]) -> None:
        """Forget the lines of ``execution_ids`` (purged executions)."""
        self._entries = [(eid, e) for eid, e in self._entries if eid not in execution_ids]

    async def read(
        self, execution_id: str | None = None, *, workflow: str | None = None
    ) -> list[tuple[str, LogEntry]]:
        return [
            (eid, e)
            for eid, e in self._entries
            if (execution_id is None or eid == execution_id)
            and (workflow is None or eid.split("/", 1)[0] == workflow)
        ]


# ---------------------------------------------------------------- queues driven in-process


class _Work:
    """One piece of work the driver spawned: whether it may adopt work it causes right now,
    and what it adopted (run after itself, in its own asyncio task)."""

    __slots__ = ("adopted", "adopting")

    def __init__(self) -> None:
        self.adopting = False
        self.adopted: Callable[[], Coroutine[Any, Any, Any]] | None = None


_current_work: contextvars.ContextVar[_Work | None] = contextvars.ContextVar(
    "eventual_memory_work", default=None
)


class _Adopting:
    """``with _Adopting():`` the current piece of work runs no user code in the block (user
    code might wait for the very work it causes), so it may adopt that work
    (:meth:`_Driver.spawn_or_adopt`)."""

    __slots__ = ("_work",)

    def __enter__(self) -> None:
        work = _current_work.get()
        if work is not None and not work.adopting:
            work.adopting = True
            self._work: _Work | None = work
        else:
            self._work = None

    def __exit__(self, *exc: object) -> None:
        if self._work is not None:
            self._work.adopting = False


class _Driver:
    """Spawns the work the adapters receive as asyncio tasks, and knows when all is quiet."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.errors: list[BaseException] = []
        # Task attempts (their handlers run user code), and those of them that outlived the
        # grace :meth:`idle` gives them: left running in the background (see idle()).
        self._attempts: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._finished = asyncio.Event()

    def spawn(self, make: Callable[[], Coroutine[Any, Any, Any]], *, attempt: bool = False) -> None:
        self._outstanding += 1
        self._idle.clear()
        task = asyncio.get_running_loop().create_task(self._run(make))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if attempt:
            self._attempts.add(task)
            task.add_done_callback(self._attempt_done)

    def _attempt_done(self, task: asyncio.Task[Any]) -> None:
        self._attempts.discard(task)
        self._background.discard(task)

    def spawn_or_adopt(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``make()`` soon: in the piece of work that asks, once it is done, if it may
        (see :class:`_Adopting`: a task worker queueing its result goes on to orchestrate that
        step, with no task of its own to create), or else in a task of its own."""
        work = _current_work.get()
        if work is not None and work.adopting and work.adopted is None:
            work.adopted = make
            return
        self.spawn(make)

    async def _run(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        work = _Work()
        _current_work.set(work)  # in this task's own context
        try:
            await make()
            while (follow := work.adopted) is not None:
                work.adopted = None
                await follow()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("runtime work failed")
            self.errors.append(exc)
        finally:
            left, work.adopted = work.adopted, None
            if left is not None and not self._closing:
                self.spawn(left)  # adopted by work that failed: it still runs
            self._outstanding -= 1
            finished, self._finished = self._finished, asyncio.Event()
            finished.set()
            if self._outstanding == 0:
                self._idle.set()

    def _running_attempts(self) -> set[asyncio.Task[Any]]:
        return {t for t in self._attempts if not t.done()}

    async def idle(self, attempt_grace: float | None = None) -> None:
        """Wait until no work runs. With ``attempt_grace`` (real seconds), task attempts are
        waited for only that long once nothing else runs: one still running then (a handler
        that never returns, or waits for virtual time) is left in the background, where its
        timeout on the virtual clock cancels it, and is not waited for again."""
        if attempt_grace is None:
            while self._outstanding:
                await self._idle.wait()
                # Let callbacks that were scheduled by the last task settle.
                await asyncio.sleep(0)
            return
        while self._outstanding:
            attempts = self._running_attempts()
            others = self._outstanding - len(attempts)
            if others > 0:
                await self._finished.wait()
                await asyncio.sleep(0)
                continue
            waiting = attempts - self._background
            if not waiting:
                return  # only attempts already left in the background run
            try:
                async with asyncio.timeout(attempt_grace):
                    await self._finished.wait()
                await asyncio.sleep(0)
            except TimeoutError:
                self._background.update(waiting)
                logger.warning(
                    "%d task attempt(s) still run after %.1f s of real time; time moves on "
                    "without them (a task's timeout on the virtual clock cancels it)",
                    len(waiting),
                    attempt_grace,
                )

    async def cancel_all(self) -> None:
        self._closing = True
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


class MemoryExecutionQueue:
    """Per-execution FIFO; one consumer per execution at a time."""

    def __init__(self, driver: _Driver) -> None:
        self._driver = driver
        self._queues: dict[str, deque[InputEvent]] = {}
        self._leased: set[str] = set()

    async def enqueue(self, execution_id: str, events: Sequence[InputEvent]) -> None:
        self._queues.setdefault(execution_id, deque()).extend(events)
        if execution_id not in self._leased:
            self._leased.add(execution_id)
            self._driver.spawn_or_adopt(lambda: self._consume(execution_id))

    async def _consume(self, execution_id: str) -> None:
        runtime = self._driver.runtime
        assert runtime is not None
        queue = self._queues[execution_id]
        errors = 0  # in a row
        try:
            with _Adopting():  # orchestration runs no user code outside the engine
                while queue:
                    batch = list(queue)
                    queue.clear()
                    try:
                        await runtime.orchestrate(execution_id, batch)
                        errors = 0
                    except Exception as exc:
                        # Nothing of the step was kept: its events go back to the front and
                        # it is tried again (at once: time is virtual), ``step_attempts``
                        # times in all, then the execution fails saying why. Each error is
                        # kept in ``errors``: a defect to see, even when a later try works.
                        queue.extendleft(reversed(batch))
                        self._driver.errors.append(exc)
                        errors += 1
                        if runtime.step_failed(execution_id, errors, exc):
                            if not await runtime.give_up_step(execution_id, batch, errors, exc):
                                return  # kept queued: tried again on the next event
                            errors = 0
                        await asyncio.sleep(0)
        finally:
            self._leased.discard(execution_id)
            if not queue:
                self._queues.pop(execution_id, None)

    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())


class MemoryTaskDispatcher:
    def __init__(self, driver: _Driver) -> None:
        self._driver = driver

    async def dispatch(self, request: TaskRequest) -> None:
        runtime = self._driver.runtime
        assert runtime is not None
        self._driver.spawn(lambda: runtime.run_task(request), attempt=True)


async def _no_wait(_: float) -> None:
    await asyncio.sleep(0)


class MemoryEventBus:
    def __init__(self, driver: _Driver) -> None:
        self._driver = driver

    async def publish(self, events: Sequence[EmittedEvent]) -> None:
        runtime = self._driver.runtime
        assert runtime is not None
        for event in events:
            # Retries of a failing subscription are immediate: virtual time does not move.
            self._driver.spawn(lambda e=event: runtime.deliver_event_retrying(e, _no_wait))


class MemoryTimerScheduler:
    """A heap of timers. With a real clock a background task fires them when due; with a
    virtual clock :meth:`InMemoryRuntime.advance_to` does."""

    def __init__(self, driver: _Driver) -> None:
        self._driver = driver
        self._heap: list[tuple[datetime, int, str]] = []
        self._timers: dict[str, TimerRequest] = {}
        self._counter = 0
        self.changed = asyncio.Event()

    async def schedule(self, timer: TimerRequest) -> None:
        self._timers[timer.timer_id] = timer
        self._counter += 1
        heapq.heappush(self._heap, (timer.due, self._counter, timer.timer_id))
        self.changed.set()

    async def cancel(self, timer_id: str) -> None:
        self._timers.pop(timer_id, None)

    def next_due(self) -> datetime | None:
        while self._heap:
            due, _, timer_id = self._heap[0]
            timer = self._timers.get(timer_id)
            if timer is None or timer.due != due:
                heapq.heappop(self._heap)
                continue
            return due
        return None

    def pop_due(self, now: datetime) -> TimerRequest | None:
        due = self.next_due()
        if due is None or due > now:
            return None
        _, _, timer_id = heapq.heappop(self._heap)
        return self._timers.pop(timer_id)

    def fire(self, timer: TimerRequest) -> None:
        runtime = self._driver.runtime
        assert runtime is not None
        self._driver.spawn(lambda: runtime.fire_timer(timer))

    def __len__(self) -> int:
        return len(self._timers)


# ---------------------------------------------------------------- the runtime


class VirtualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("the start time must be timezone-aware (use tzinfo=UTC)")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, t: datetime) -> None:
        if t > self._now:
            self._now = t


class InMemoryRuntime(Runtime):
    """The runtime on in-memory adapters. ``async with InMemoryRuntime(service) as rt``.

    With the default real clock, timers fire on their own. With a :class:`VirtualClock`,
    nothing moves in time until :meth:`advance_to` or :meth:`advance` is awaited, and a step
    costs the same whatever span of time it covers.
    """

    def __init__(
        self,
        service: Service,
        *,
        clock: Clock | None = None,
        cache_size: int = 1024,
        attempt_grace: float = 1.0,
    ):
        # With a virtual clock, how long (real seconds) idle() waits for a task attempt once
        # nothing else runs, before moving on without it (see _Driver.idle).
        self.attempt_grace = attempt_grace
        self._driver = _Driver()
        self.timer_scheduler = MemoryTimerScheduler(self._driver)
        self.queue = MemoryExecutionQueue(self._driver)
        claims = MemoryClaimStore()
        logs = MemoryLogSink()
        ports = Ports(
            executions=MemoryExecutionStore(claims=claims, logs=logs),
            tasks=MemoryTaskDispatcher(self._driver),
            claims=claims,
            timers=self.timer_scheduler,
            events=MemoryEventBus(self._driver),
            queue=self.queue,
            logs=logs,
        )
        super().__init__(service, ports, clock=clock or RealClock(), cache_size=cache_size)
        self._driver.runtime = self
        self._timer_task: asyncio.Task[None] | None = None

    @property
    def virtual(self) -> bool:
        return isinstance(self.clock, VirtualClock)

    async def __aenter__(self) -> InMemoryRuntime:
        if not self.virtual:
            self._timer_task = asyncio.get_running_loop().create_task(self._timer_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        await self._driver.cancel_all()
        self.clear_cache()

    async def deliver_task_result(self, request: TaskRequest, event: InputEvent) -> None:
        # The worker's handler has returned: it may go on to orchestrate the step itself.
        with _Adopting():
            await super().deliver_task_result(request, event)

    @property
    def errors(self) -> list[BaseException]:
        """Unexpected errors raised inside the runtime's own work (not user errors)."""
        return self._driver.errors

    async def idle(self) -> None:
        """Wait until no work is queued or running (timers in the future aside). With a
        virtual clock a task attempt that runs on after ``attempt_grace`` real seconds, with
        nothing else to wait for, is not waited for: its timeout, a timer on that clock,
        cancels it as time moves."""
        await self._driver.idle(self.attempt_grace if self.virtual else None)

    async def advance_to(self, target: datetime) -> None:
        """Virtual clock: fire every timer due up to ``target`` in due order, letting the
        work each one causes finish before the next, then set the clock to ``target``."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise RuntimeError("advance_to() needs a runtime with a VirtualClock")
        await self.idle()
        timers = self.timer_scheduler
        while True:
            due = timers.next_due()
            if due is None or due > target:
                break
            clock.set(due)
            while (timer := timers.pop_due(clock.now())) is not None:
                timers.fire(timer)
            await self.idle()
        clock.set(target)
        await self.idle()

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self.clock.now() + timedelta(seconds=seconds))

    async def _timer_loop(self) -> None:
        timers = self.timer_scheduler
        while True:
            timers.changed.clear()
            now = self.clock.now()
            while (timer := timers.pop_due(now)) is not None:
                timers.fire(timer)
            due = timers.next_due()
            wait = None if due is None else max(0.0, (due - self.clock.now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(timers.changed.wait(), wait)
