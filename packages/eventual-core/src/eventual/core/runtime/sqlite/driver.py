"""The driver of the SQLite runtime: :class:`SqliteRuntime`, which opens the database, recovers
what a previous process left, and runs the orchestrator, the task workers, event delivery and
timers in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from ...errors import StorageUnavailable
from ...history import EmittedEvent, InputEvent, SignalReceived, WorkflowStarted
from ...service import Service
from ..ports import TaskRequest, TimerRequest
from ..runtime import RealClock, Runtime, started_event
from .claims import SqliteClaimStore
from .codec import _history_corrupted
from .database import Database
from .event_bus import SqliteEventBus
from .execution_queue import QueuedEvent, SqliteExecutionQueue
from .hooks import _Hooks
from .ports import (
    _Consuming,
    _consuming,
    _Handoff,
    _settle_handoffs,
    _settle_sent,
    open_ports,
)
from .recovery import _scan_history, _unstarted
from .tasks import SqliteTaskDispatcher
from .timers import SqliteTimerScheduler

logger = logging.getLogger("eventual.runtime.sqlite")

T = TypeVar("T")

DEFAULT_DB_PATH = Path(".eventual") / "dev.db"
# How long a finished execution is kept (issue 23: the service's default retention).
DEFAULT_RETENTION = timedelta(days=30)


class _DriverHooks(_Hooks):
    def __init__(self) -> None:
        self.runtime: SqliteRuntime | None = None

    def queue_changed(self, execution_id: str) -> None:
        if self.runtime is not None:
            self.runtime._queue_changed(execution_id)

    def tasks_changed(self) -> None:
        if self.runtime is not None:
            self.runtime._tasks_committed()

    def timers_changed(self) -> None:
        if self.runtime is not None:
            self.runtime._timers_wake.set()

    def outbox_changed(self) -> None:
        if self.runtime is not None:
            self.runtime._outbox_wake.set()


class SqliteRuntime(Runtime):
    """The durable runtime of ``eventual dev``: ``async with SqliteRuntime(service,
    db_path=...) as rt``.

    On entry it opens (or creates) the database, recovers what a previous process left (task
    attempts that never delivered a result run again, queued events are delivered, timers
    re-armed, those already due fire at once) and starts the workers: one orchestrator per
    execution with queued events (in order), a task worker pool of ``max_concurrent_tasks``,
    event delivery to subscriptions and the timer scheduler on the real clock. On exit it
    cancels the work in flight (it runs again on the next start) and closes the database.

    With ``workers=False`` nothing runs: the runtime only reads and writes the database (to
    inspect it, or to queue work for the next process that runs it).

    When the database cannot take a write (read-only, disk full, locked by another process
    for over ``lock_timeout`` seconds: :class:`StorageUnavailable`), a caller's operation
    (a start, a signal, ...) raises it and records nothing; the workers' own steps keep
    their events queued and try again, waiting ``retry_delay`` seconds doubling up to
    ``max_retry_delay`` (or until a commit succeeds again), so the work resumes by itself
    once the cause is removed. A step that raises anything else is tried again after the
    same backoff, ``step_attempts`` times in all, and then its execution fails with
    ``StepFailed``. An execution whose history has a row that cannot be read fails with
    :class:`HistoryCorrupted`, which says where; the others go on.
    """

    def __init__(
        self,
        service: Service,
        *,
        db_path: Path | str | None = None,
        max_concurrent_tasks: int = 256,
        max_concurrent_deliveries: int = 16,
        synchronous: str = "NORMAL",
        threaded: bool | None = None,
        workers: bool = True,
        cache_size: int = 10_000,
        batch_size: int = 100,
        lock_timeout: float = 5.0,
        retry_delay: float = 0.1,
        max_retry_delay: float = 2.0,
        retention: timedelta | None = DEFAULT_RETENTION,
        sweep_interval: float = 600.0,
        sweep_batch: int = 100,
    ) -> None:
        if max_concurrent_tasks < 1 or max_concurrent_deliveries < 1:
            raise ValueError("max_concurrent_tasks and max_concurrent_deliveries must be >= 1")
        if retry_delay <= 0 or max_retry_delay < retry_delay:
            raise ValueError("retry_delay must be > 0 and max_retry_delay >= retry_delay")
        self.db_path = Path(db_path) if db_path is not None else DEFAULT_DB_PATH
        if threaded is None:
            # NORMAL commits do not wait for the disk (no fsync): everything runs inline.
            # FULL and EXTRA fsync every commit: a group's COMMIT runs on a thread.
            threaded = synchronous.upper() != "NORMAL"
        self.db = Database(
            self.db_path, synchronous=synchronous, threaded=threaded, lock_timeout=lock_timeout
        )
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        # Finished executions older than ``retention`` are swept every ``sweep_interval``
        # seconds, ``sweep_batch`` at a time, each batch its own short write (see _sweep);
        # None keeps them forever.
        self.retention = retention
        self.sweep_interval = sweep_interval
        self.sweep_batch = sweep_batch
        self.run_id = uuid.uuid4().hex
        self._hooks = _DriverHooks()
        ports = open_ports(self.db, run_id=self.run_id, hooks=self._hooks, cache_size=cache_size)
        super().__init__(service, ports, clock=RealClock(), cache_size=cache_size)
        self.sqlite_ports = ports
        self.max_concurrent_tasks = max_concurrent_tasks
        self.max_concurrent_deliveries = max_concurrent_deliveries
        self.batch_size = batch_size
        self.workers = workers
        self.errors: list[BaseException] = []
        self._started = False
        self._closing = False
        self._context = contextvars.Context()
        self._loop: asyncio.AbstractEventLoop | None = None  # the one it was started on
        self._work: dict[asyncio.Task[Any], Coroutine[Any, Any, Any]] = {}
        self._pumps: list[asyncio.Task[None]] = []
        self._consumers: dict[str, asyncio.Task[Any]] = {}
        self._dirty: set[str] = set()
        # Executions whose queue table may hold rows (the rest need no read), and the task
        # results handed over in memory (see _Handoff), by execution.
        self._queued: set[str] = set()
        self._inbox: dict[str, list[_Handoff]] = {}
        # The task attempts running in this process's worker pool.
        self._running_attempts: set[tuple[str, int, int]] = set()
        self._tasks_wake = asyncio.Event()
        self._timers_wake = asyncio.Event()
        self._outbox_wake = asyncio.Event()
        self._scanning = 0
        self._deliveries = 0
        self._outbox_cursor = 0
        self._firing: set[int] = set()
        self._next_due: float | None = None
        # Set (and replaced) when work ends / an execution finishes; made only once someone
        # waits for one (idle(), wait_for_execution()), not for every task attempt.
        self._pulse: asyncio.Event | None = None
        self._service_generation = 0

    # ------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> SqliteRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("this SqliteRuntime was already started")
        self._started = True
        await self.db.open()
        try:
            await self._recover()
        except BaseException:
            await self.db.close()
            raise
        self._hooks.runtime = self
        if not self.workers:
            return
        for wake in (self._tasks_wake, self._timers_wake, self._outbox_wake):
            wake.set()
        self._pumps = [
            self._create_task(self._pump(self._tasks_wake, self._scan_tasks), "tasks"),
            self._create_task(self._pump(self._outbox_wake, self._scan_outbox), "events"),
            self._create_task(self._timer_pump(), "timers"),
        ]
        if self.retention is not None:
            self._pumps.append(self._create_task(self._sweep(self.retention), "retention"))
        for execution_id in await self.sqlite_ports_queue.executions_with_events():
            self._queue_changed(execution_id)
        for execution_id in list(self._inbox):
            self._wake_consumer(execution_id)

    async def stop(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._hooks.runtime = None
        work = dict(self._work)
        tasks = [*self._pumps, *work]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for coro in work.values():
            coro.close()  # (a no-op for one that ran; one cancelled before it started goes)
        self._work.clear()
        self.clear_cache()
        await self.db.close()

    async def _recover(self) -> None:
        """Make what a previous process left runnable again: the task attempts it dispatched
        and never finished are dispatched again (queued events and timers need nothing: their
        rows are still there)."""
        outstanding, corrupted = await self.db.read(_scan_history)
        if outstanding:
            logger.info("%d task attempt(s) interrupted by a stop will run again", len(outstanding))
            cast(SqliteTaskDispatcher, self.ports.tasks).restore(outstanding)
        if not self.workers:
            return
        # Executions started but never stepped (their first event was in memory): it is
        # rebuilt from their records and handed over again (start() wakes them).
        for record in await self.db.read(_unstarted):
            self._inbox.setdefault(record.id, []).insert(0, _Handoff(None, started_event(record)))
        # An execution in progress whose history cannot be read fails now, saying where (it
        # may be waiting for nothing that would ever replay it).
        for execution_id, (position, reason) in corrupted.items():
            stored = await self.ports.executions.get(execution_id)
            if stored is not None:
                await self._fail_logged(
                    stored, _history_corrupted(self.db.path, execution_id, position, reason)
                )

    async def _sweep(self, retention: timedelta) -> None:
        """Every ``sweep_interval`` seconds (the first one interval after start), remove the
        executions that finished more than ``retention`` ago: small batches, each its own
        short write, the event loop free between them, so no step waits long behind it."""
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                removed = await self.purge_finished(retention, batch=self.sweep_batch)
                if removed:
                    logger.info(
                        "retention: removed %d execution(s) finished over %s ago",
                        removed,
                        retention,
                    )
            except asyncio.CancelledError:
                raise
            except StorageUnavailable:
                pass  # logged by the database: the next sweep tries again
            except Exception as exc:
                logger.exception("retention sweep failed")
                self.errors.append(exc)

    # ------------------------------------------------------------ when storage fails

    async def _storage_backoff(self, failures: int) -> None:
        """Wait before trying again work that met :class:`StorageUnavailable` (``failures``
        times in a row): ``retry_delay`` doubling up to ``max_retry_delay``, or less if a
        commit succeeds meanwhile (the cause is gone)."""
        delay = min(self.retry_delay * 2 ** min(failures, 30), self.max_retry_delay)
        await self.db.wait_available(delay)

    async def _until_stored(self, unit: Callable[[], Awaitable[T]]) -> T:
        """Run ``unit`` (one atomic write), again while the storage is unavailable."""
        failures = 0
        while True:
            try:
                return await unit()
            except StorageUnavailable:
                await self._storage_backoff(failures)
                failures += 1

    @property
    def sqlite_ports_queue(self) -> SqliteExecutionQueue:
        return cast(SqliteExecutionQueue, self.ports.queue)

    def replace_service(self, service: Service) -> None:
        """Swap the service's handlers (``--reload``): keep the database and every execution;
        the next step of each execution replays its history against the new code."""
        self.service = service
        self._service_generation += 1
        self.clear_cache()

    # ------------------------------------------------------------ atomic client operations

    async def send_task_success(self, token: str, result: Any = None) -> None:
        async with self.db.transaction():
            await super().send_task_success(token, result)

    async def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        async with self.db.transaction():
            await super().send_task_failure(token, error, message)

    # ------------------------------------------------------------ waiting

    def _pulse_now(self) -> None:
        pulse = self._pulse
        if pulse is not None:
            self._pulse = None
            pulse.set()

    def _quiet(self) -> bool:
        if self._work or self._consumers or self._scanning:
            return False
        if self._tasks_wake.is_set() or self._outbox_wake.is_set() or self._timers_wake.is_set():
            return False
        due = self._next_due
        return due is None or due > self.clock.now().timestamp()

    async def idle(self) -> None:
        """Wait until no work is queued or running: no queued events, no task running or
        waiting for a worker, no event being delivered, no timer due (future timers and tasks
        waiting for an asynchronous completion aside)."""
        if not self.workers:
            return
        while True:
            if self._quiet():
                await asyncio.sleep(0)
                if self._quiet():
                    return
            pulse = self._pulse
            if pulse is None:
                pulse = self._pulse = asyncio.Event()
            if self._next_due is not None and not (self._work or self._consumers):
                # Only a timer is about to fall due: wake up when it has.
                delay = max(0.0, self._next_due - self.clock.now().timestamp()) + 0.001
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pulse.wait(), delay)
            else:
                await pulse.wait()

    # ------------------------------------------------------------ spawning work

    def _create_task(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        # A clean context: work never inherits a caller's transaction or use_runtime().
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop.create_task(coro, name=f"eventual-sqlite-{name}", context=self._context.copy())

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        task = self._create_task(self._guard(coro, name), name)
        self._work[task] = coro
        return task

    async def _guard(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        # The work leaves ``_work`` here, in the task itself, rather than in a done callback
        # (a handle of the event loop's fewer per task); a task cancelled before it started
        # never runs this, and stop() closes its coroutine.
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("runtime work failed: %s", name)
            self.errors.append(exc)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._work.pop(task, None)
            self._pulse_now()

    async def _pump(
        self, wake: asyncio.Event, scan: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        while True:
            await wake.wait()
            wake.clear()
            self._scanning += 1
            try:
                await scan()
            except asyncio.CancelledError:
                raise
            except StorageUnavailable:
                # Logged by the database: look again in a while (still "scanning" till then).
                await self._storage_backoff(1)
                wake.set()
            except Exception as exc:
                logger.exception("runtime scan failed")
                self.errors.append(exc)
            finally:
                self._scanning -= 1
                self._pulse_now()

    # ------------------------------------------------------------ the orchestrator

    def _queue_changed(self, execution_id: str) -> None:
        self._queued.add(execution_id)
        self._wake_consumer(execution_id)

    def _wake_consumer(self, execution_id: str) -> None:
        if self._closing or not self.workers:
            return
        if execution_id in self._consumers:
            self._dirty.add(execution_id)
            return
        self._consumers[execution_id] = self._spawn(
            self._consume(execution_id), f"orchestrate {execution_id}"
        )

    async def _consume(self, execution_id: str) -> None:
        failures = 0  # in a row: the storage unavailable
        errors = 0  # in a row: anything else the step raised
        try:
            while True:
                try:
                    if not await self._consume_batch(execution_id):
                        return
                    failures = errors = 0
                except StorageUnavailable:
                    # Nothing of the step was kept: its events are still queued (or back in
                    # the inbox). Try again once the storage may be back; the database logged
                    # why.
                    self._queued.add(execution_id)
                    await self._storage_backoff(failures)
                    failures += 1
                except Exception as exc:
                    # Nothing of the step was kept either, and its events are still queued:
                    # try again after the same backoff, ``step_attempts`` times in all, then
                    # fail the execution saying why (the next batch drops its events).
                    self.errors.append(exc)
                    self._queued.add(execution_id)
                    errors += 1
                    if not self.step_failed(execution_id, errors, exc):
                        await self._storage_backoff(errors - 1)
                        continue
                    events: list[InputEvent] | None = None
                    with contextlib.suppress(Exception):  # (the failure may be their reading)
                        queued = await self.sqlite_ports_queue.peek(execution_id, self.batch_size)
                        events = [q.event for q in queued]
                        events += [h.event for h in self._inbox.get(execution_id, ())]
                    if not await self.give_up_step(execution_id, events, errors, exc):
                        return  # still queued: tried again on its next event or start
                    errors = 0
        finally:
            self._consumers.pop(execution_id, None)

    async def _consume_batch(self, execution_id: str) -> bool:
        """Apply the next batch of an execution's events; False when there are none."""
        queue = self.sqlite_ports_queue
        self._dirty.discard(execution_id)
        batch: list[QueuedEvent] = []
        if execution_id in self._queued:
            # Discarded before the read: a row committed after it marks it again.
            self._queued.discard(execution_id)
            batch = await queue.peek(execution_id, self.batch_size)
            if len(batch) == self.batch_size:
                self._queued.add(execution_id)
        handoffs = tuple(self._inbox.pop(execution_id, ()))
        if not batch and not handoffs:
            return execution_id in self._dirty
        row_ids = tuple(q.row_id for q in batch)
        consuming = _Consuming(self.db, row_ids, [False], handoffs)
        generation = self._service_generation
        token = _consuming.set(consuming)
        dropped = ended = False
        events = [q.event for q in batch] + [h.event for h in handoffs]
        if batch and handoffs and type(handoffs[0].event) is WorkflowStarted:
            # A start handed over in memory comes before any event queued for its execution
            # meanwhile (a signal's row), as its own row would have.
            events.insert(0, events.pop(len(batch)))
        alone = self.db.alone_commits
        try:
            ended = await self.orchestrate(execution_id, events)
            if generation != self._service_generation:
                self._evict(execution_id)  # built with the handlers that were replaced
            if not consuming.deleted[0]:
                # Nothing was committed (the events were all stale): drop them now. A
                # crash before this line redelivers them and they are dropped again.
                async with self.db.transaction():
                    await queue.delete(row_ids)
                    _settle_handoffs(self.sqlite_ports, handoffs)
                dropped = True
        except BaseException:
            if handoffs and not consuming.deleted[0] and not dropped:
                # Task results are kept for the next try, like the queued rows (a stop loses
                # them: their attempts run again on the next start). Signals go back to their
                # senders (in finally), who queue them.
                kept = [h for h in handoffs if h.sent is None]
                if kept:
                    self._inbox[execution_id] = [*kept, *self._inbox.get(execution_id, ())]
            raise
        finally:
            _consuming.reset(token)
            if handoffs:
                _settle_sent(handoffs, consuming.deleted[0] or dropped)
        if not ended and (
            not (consuming.deleted[0] and self.db.group_commit) or alone != self.db.alone_commits
        ):
            # Inline statements never suspend: let other work run between batches. (A group
            # commit suspended the step until the COMMIT, which ran the work it started
            # first: often a task whose result is here already. A unit that committed alone,
            # at once, did not: the task it started runs now. A step that ended its
            # execution started nothing: the consumer goes on at once, finds nothing more
            # and is gone, so that a start or step made next, as the caller waiting for
            # this end resumes, finds the loop empty and commits alone, in its own turn.)
            await asyncio.sleep(0)
        return True

    # ------------------------------------------------------------ task workers

    async def _scan_tasks(self) -> None:
        free = self.max_concurrent_tasks - len(self._running_attempts)
        if free <= 0:
            return  # a finishing task wakes the pump again
        self._start_tasks(cast(SqliteTaskDispatcher, self.ports.tasks).take(free), free)

    def _tasks_committed(self) -> None:
        """Task attempts were dispatched (their step committed): start them at once while
        workers are free (no turn of the pump); else the pump starts them as workers free up."""
        if self._closing or not self.workers:
            return
        free = self.max_concurrent_tasks - len(self._running_attempts)
        if free <= 0:
            return  # a finishing task wakes the pump
        self._start_tasks(cast(SqliteTaskDispatcher, self.ports.tasks).take(free), free)

    def _start_tasks(self, taken: list[TaskRequest], free: int) -> None:
        for request in taken:
            key = (request.execution_id, request.seq, request.attempt)
            if key in self._running_attempts:
                continue  # already running here (dispatched twice): once is enough
            self._running_attempts.add(key)
            self._spawn(self._work_task(key, request), f"task {request.name}")
        if len(taken) == free:
            self._tasks_wake.set()

    async def _work_task(self, key: tuple[str, int, int], request: TaskRequest) -> None:
        try:
            if await self.run_task(request):
                # No result yet: the task completes later by its token. Its claim row is the
                # "do not run again" mark a restart looks for.
                async def keep() -> None:
                    async with self.db.transaction():
                        await cast(SqliteClaimStore, self.ports.claims).keep(
                            request.execution_id, request.seq, request.attempt
                        )

                await self._until_stored(keep)
        finally:
            self._running_attempts.discard(key)
            # A worker is free: wake the pump only if attempts are waiting for one.
            if cast(SqliteTaskDispatcher, self.ports.tasks).has_pending():
                self._tasks_wake.set()

    async def deliver_task_result(self, request: TaskRequest, event: InputEvent) -> None:
        key = (request.execution_id, request.seq, request.attempt)
        claim = None
        if key in self._running_attempts and not self._closing:
            claim = cast(SqliteClaimStore, self.ports.claims).finish_running(key)
        if claim is None:
            await super().deliver_task_result(request, event)
            return
        # Straight to the orchestrator: no queue row, no commit of its own (see _Handoff).
        self._hand_over(request.execution_id, _Handoff(claim, event))

    async def _deliver_start(self, execution_id: str, event: WorkflowStarted) -> None:
        """No queue row for a start: once the unit that creates the record commits, the event
        goes straight to the orchestrator. The record is the durable part; a process that
        stops before the first step commits leaves an execution in progress with no history,
        whose ``WorkflowStarted`` the next start rebuilds from the record (see
        :func:`_unstarted`)."""
        self.db.after_commit(lambda: self._hand_over(execution_id, _Handoff(None, event)))

    def _hand_over(self, execution_id: str, handoff: _Handoff) -> None:
        self._inbox.setdefault(execution_id, []).append(handoff)
        self._wake_consumer(execution_id)

    async def _deliver_signal(self, execution_id: str, event: SignalReceived) -> None:
        """Hand the signal to the execution's orchestrator and wait until the step that
        applies it commits: one commit where a queued row took two (the row's, then the
        step's that deletes it), and a parked execution resumes without reading the queue.
        Queued as a row instead when no orchestrator runs here, inside a caller's
        transaction (the step could not commit before it does), or when the step fails."""
        if not self._closing and self.workers and not self.db.in_transaction():
            sent: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._inbox.setdefault(execution_id, []).append(_Handoff(None, event, sent))
            self._wake_consumer(execution_id)
            if await sent:
                return
        await super()._deliver_signal(execution_id, event)

    # ------------------------------------------------------------ event delivery

    async def _scan_outbox(self) -> None:
        free = self.max_concurrent_deliveries - self._deliveries
        if free <= 0:
            return
        bus = cast(SqliteEventBus, self.ports.events)
        rows = await bus.take(self._outbox_cursor, free)
        for row_id, event in rows:
            self._outbox_cursor = max(self._outbox_cursor, row_id)
            self._deliveries += 1
            self._spawn(self._deliver(row_id, event), f"deliver {event.name}")
        if len(rows) == free:
            self._outbox_wake.set()

    async def _deliver(self, row_id: int, event: EmittedEvent) -> None:
        try:
            try:
                # At least once: a failing subscription is retried (with backoff) before the
                # row goes; a crash meanwhile delivers the event again.
                await self.deliver_event_retrying(event, asyncio.sleep)
            finally:
                bus = cast(SqliteEventBus, self.ports.events)
                await self._until_stored(lambda: bus.delete(row_id))
        finally:
            self._deliveries -= 1
            self._outbox_wake.set()

    def _storage_failures(self) -> int:
        return self.db.failures

    # ------------------------------------------------------------ timers

    async def _timer_pump(self) -> None:
        timers = cast(SqliteTimerScheduler, self.ports.timers)
        while True:
            self._timers_wake.clear()
            self._scanning += 1
            try:
                now = self.clock.now().timestamp()
                for row_id, timer in await timers.due(now):
                    if row_id not in self._firing:
                        self._firing.add(row_id)
                        self._spawn(self._fire(row_id, timer), f"timer {timer.timer_id}")
                self._next_due = await timers.next_due(now)
            except asyncio.CancelledError:
                raise
            except StorageUnavailable:  # logged by the database: look again in a while
                self._next_due = self.clock.now().timestamp() + self.max_retry_delay
            except Exception as exc:
                logger.exception("timer scan failed")
                self.errors.append(exc)
                self._next_due = self.clock.now().timestamp() + 1.0
            finally:
                self._scanning -= 1
                self._pulse_now()
            due = self._next_due
            wait = None if due is None else max(0.0, due - self.clock.now().timestamp())
            # (asyncio.timeout, not wait_for: in Python 3.11 wait_for swallows a cancellation
            # that arrives as the event is set, and stop() would wait for this task forever.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._timers_wake.wait()

    async def _fire(self, row_id: int, timer: TimerRequest) -> None:
        timers = cast(SqliteTimerScheduler, self.ports.timers)

        async def fire() -> None:
            # Firing is one transaction: the timer row goes with the event it delivers (or
            # the heartbeat check it reschedules).
            async with self.db.transaction():
                await timers.delete_row(row_id)
                await self.fire_timer(timer)

        try:
            await self._until_stored(fire)
        finally:
            self._firing.discard(row_id)
