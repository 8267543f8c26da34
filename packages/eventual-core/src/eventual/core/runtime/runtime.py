"""The runtime: orchestrator, workers and system commands, written once against the ports.

Every runtime (TestEnvironment, ``eventual dev``, AWS Lambda) is this class with a set of
adapters and a driver that feeds it: the driver delivers queued events to
:meth:`Runtime.orchestrate`, task requests to :meth:`Runtime.run_task`, due timers to
:meth:`Runtime.fire_timer` and published events to :meth:`Runtime.deliver_event`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .._context import pop_runtime, push_runtime, task_context_var, use_runtime
from ..definitions import AsyncResult, execution_timeout
from ..engine import (
    CancelTimer,
    Command,
    DispatchTask,
    EmitEvents,
    NotifyParent,
    ScheduleTimer,
    SendSignal,
    StartChild,
    WorkflowExecutor,
)
from ..engine.cache import ExecutorCache
from ..engine.results import LogEntry
from ..errors import (
    DeterminismError,
    EventualError,
    ExecutionAlreadyExists,
    ExecutionNotFound,
    HistoryCorrupted,
    InvalidTaskToken,
    ServiceError,
    check_valid,
    error_payload,
)
from ..history import (
    EmittedEvent,
    HistoryEvent,
    InputEvent,
    ParentRef,
    SignalReceived,
    TaskFailed,
    TaskHeartbeatTimedOut,
    TaskSucceeded,
    TaskTimedOut,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSucceeded,
)
from ..models import Execution, ExecutionStatus
from ..names import check_execution_name
from ..serialization import dumps
from ..service import Service
from .ports import (
    Clock,
    ConflictError,
    Ports,
    StoredExecution,
    TaskRequest,
    TimerRequest,
    decode_token,
)

logger = logging.getLogger("eventual.runtime")

EventListener = Callable[[EmittedEvent], Awaitable[None] | None]


def time_ordered_uuid(at: datetime) -> str:
    """A random UUID whose first 48 bits are ``at`` in Unix milliseconds (the layout of UUID
    version 7): the names of unnamed executions sort by start time, and a store keyed by
    execution id appends new executions at the end of its index instead of splitting pages
    at random places."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))


def started_event(record: Execution) -> WorkflowStarted:
    """The ``WorkflowStarted`` event of an execution: everything in it is in its record, so a
    runtime can rebuild it from the record alone."""
    return WorkflowStarted(
        timestamp=record.start_time,
        workflow=record.workflow,
        execution_id=record.id,
        input=record.input,
        timeout_at=record.timeout_at,
        parent=record.parent,
    )


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _brief(message: str, limit: int = 500) -> str:
    """A message as logged: an error's text may be a whole payload (its record keeps it all)."""
    return message if len(message) <= limit else f"{message[:limit]}... ({len(message)} chars)"


# How often a waiting request re-reads an execution whose end another process may commit.
WAIT_POLL = 1.0


class Runtime:
    """The shared logic of every runtime. Implements ``RuntimeClient`` for user code."""

    def __init__(
        self,
        service: Service,
        ports: Ports,
        *,
        clock: Clock | None = None,
        cache_size: int = 1024,
    ) -> None:
        self.service = service
        self.ports = ports
        self.clock: Clock = clock or RealClock()
        self._cache = ExecutorCache(cache_size)
        self.listeners: list[tuple[set[str] | None, EventListener]] = []
        self.subscriptions_enabled = True
        # Deliveries of one event to a failing subscription before it is given up.
        self.subscription_attempts = 5
        # Tries of one step (an execution's batch of events) that raises an unexpected error
        # (a defect, not the storage being unavailable) before its execution fails: the
        # local runtimes' counterpart of the execution queue's maxReceiveCount on AWS.
        self.step_attempts = 10
        self.stats = {"cold_replays": 0, "warm_steps": 0, "conflicts": 0, "stale_warm": 0}
        # Task attempts whose handler runs in this process, so that a timeout can cancel them.
        self._attempts: dict[tuple[str, int, int], asyncio.Task[Any]] = {}
        self._timed_out: set[tuple[str, int, int]] = set()
        # Requests waiting for an execution to end (wait_execution), woken by this runtime's
        # commits; completions made elsewhere (another process, another Lambda) are polled.
        self._waiters: dict[str, set[asyncio.Event]] = {}

    # ------------------------------------------------------------ helpers

    def now(self) -> datetime:
        return self.clock.now()

    def _stamp(self, event: InputEvent) -> InputEvent:
        return event.model_copy(update={"timestamp": self.now()})

    def _lookup_workflow(self, name: str) -> Any:
        return self.service.workflows.get(name)

    # ------------------------------------------------------------ starting executions

    async def start_execution(
        self,
        workflow: str,
        input: Any,
        *,
        execution_name: str | None = None,
        timeout: timedelta | None = None,
        execution_id: str | None = None,
        parent: ParentRef | None = None,
    ) -> str:
        """Start an execution. Same name and same input returns the existing one; same name
        and another input raises :class:`ExecutionAlreadyExists`."""
        definition = self.service.workflow(workflow)
        if execution_id is None:
            name = time_ordered_uuid(self.now()) if execution_name is None else execution_name
            execution_id = f"{workflow}/{check_execution_name(name)}"
        # The input must be what the workflow declares before anything is recorded: a bad
        # one is the caller's mistake (400), not an execution that fails.
        check_valid(f"input for workflow {workflow!r}", definition.input_from_json, input)
        timeout = execution_timeout(timeout)  # direct callers get the callers' check too
        now = self.now()
        limit = timeout.total_seconds() if timeout is not None else definition.timeout
        timeout_at = now + timedelta(seconds=limit) if limit is not None else None
        record = Execution(
            id=execution_id,
            workflow=workflow,
            status=ExecutionStatus.IN_PROGRESS,
            input=input,
            start_time=now,
            parent=parent,
            timeout_at=timeout_at,
            build=self.service.build,
        )
        # The record and its first event in one unit of work: one commit per start (starts
        # of the same moment share it too, where the store commits in groups).
        async with self.ports.unit_of_work():
            stored, created = await self.ports.executions.create(record)
            if not created:
                if dumps(stored.execution.input) != dumps(input):
                    raise ExecutionAlreadyExists(
                        f"execution {execution_id!r} already exists with a different input; "
                        "choose another execution name"
                    )
                if stored.history_length > 0:
                    return execution_id
                # Created but never started (a store whose two writes are not atomic, or a
                # crash between them): start it now.
                record = stored.execution
            await self._deliver_start(execution_id, started_event(record))
        return execution_id

    async def _deliver_start(self, execution_id: str, event: WorkflowStarted) -> None:
        """Deliver a new execution's first event, in the unit of work that creates its record.
        Here: queued. (The SQLite runtime hands it to the orchestrator once the record is
        committed: the record is what makes the start durable, see ``_unstarted``.)"""
        await self.ports.queue.enqueue(execution_id, [event])

    # ------------------------------------------------------------ waiting for the end

    async def wait_execution(self, execution_id: str, timeout: float) -> Execution:
        """The execution once it is no longer in progress, or as it is after ``timeout``
        seconds (real time). Woken at once by this runtime's own commit of its end; an end
        committed elsewhere is seen within :data:`WAIT_POLL` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        woken = self._waiter(execution_id)
        try:
            while True:
                execution = await self.get_execution(execution_id)
                remaining = deadline - loop.time()
                if execution.status is not ExecutionStatus.IN_PROGRESS or remaining <= 0:
                    return execution
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, WAIT_POLL)):  # (no task made)
                        await woken.wait()
                woken.clear()
        finally:
            self._unwait(execution_id, woken)

    async def wait_for_execution(self, execution_id: str, *, timeout: float = 30.0) -> Execution:
        """The execution once it is no longer in progress; ``TimeoutError`` when it still is
        after ``timeout`` seconds (real time). :meth:`wait_execution` for callers in process,
        on every runtime."""
        execution = await self.wait_execution(execution_id, timeout)
        if execution.status is ExecutionStatus.IN_PROGRESS:
            raise TimeoutError(f"execution {execution_id!r} is still in progress after {timeout} s")
        return execution

    def _waiter(self, execution_id: str) -> asyncio.Event:
        """An event set when this runtime commits the end of ``execution_id`` (:meth:`_wake`);
        :meth:`_unwait` it when done waiting."""
        woken = asyncio.Event()
        self._waiters.setdefault(execution_id, set()).add(woken)
        return woken

    def _unwait(self, execution_id: str, woken: asyncio.Event) -> None:
        waiting = self._waiters.get(execution_id)
        if waiting is not None:
            waiting.discard(woken)
            if not waiting:
                del self._waiters[execution_id]

    @property
    def waiting(self) -> int:
        """How many wait_execution calls are waiting now."""
        return sum(len(w) for w in self._waiters.values())

    def _wake(self, execution_id: str) -> None:
        for woken in self._waiters.get(execution_id, ()):
            woken.set()

    # ------------------------------------------------------------ queries

    async def get_execution(self, execution_id: str) -> Execution:
        stored = await self.ports.executions.get(execution_id)
        if stored is None:
            raise ExecutionNotFound(f"no execution {execution_id!r}")
        return stored.execution

    async def list_executions(
        self,
        *,
        workflow: str | None = None,
        statuses: Sequence[ExecutionStatus] | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        ascending: bool = False,
        build: str | None = None,
    ) -> tuple[list[Execution], str | None]:
        """Newest first, or oldest first with ``ascending``; with ``build``, only the
        executions started on that build."""
        return await self.ports.executions.list(
            workflow=workflow,
            statuses=statuses,
            limit=limit or 100,
            next_token=next_token,
            ascending=ascending,
            build=build,
        )

    async def get_history(self, execution_id: str) -> list[HistoryEvent]:
        if await self.ports.executions.get(execution_id) is None:
            raise ExecutionNotFound(f"no execution {execution_id!r}")
        return await self.ports.executions.read_history(execution_id)

    async def get_logs(
        self, execution_id: str | None = None, *, workflow: str | None = None
    ) -> list[tuple[str, LogEntry]]:
        return await self.ports.logs.read(execution_id, workflow=workflow)

    async def purge_finished(
        self, older_than: timedelta, *, batch: int = 200, pause: float = 0.0
    ) -> int:
        """Remove the executions that finished more than ``older_than`` ago (their records
        and histories; a store that keeps them also removes their claims and logs), in batches
        of ``batch``, each its own short write with the event loop free between them (and
        ``pause`` seconds), so steps never wait long behind it. Executions in progress are
        never touched. Returns how many went. A store without ``purge_finished`` (AWS, where
        DynamoDB TTL removes finished records) raises ``NotImplementedError``."""
        purge = getattr(self.ports.executions, "purge_finished", None)
        if purge is None:
            raise NotImplementedError(
                "this runtime's execution store removes finished executions by itself "
                "(DynamoDB TTL on AWS); there is nothing to purge by hand"
            )
        cutoff = self.now() - older_than
        removed = 0
        while True:
            ids: list[str] = await purge(cutoff, batch)
            removed += len(ids)
            for execution_id in ids:
                self._evict(execution_id)
            if len(ids) < batch:
                return removed
            await asyncio.sleep(pause)

    # ------------------------------------------------------------ signals, events, tasks

    async def send_signal(
        self, execution_id: str, signal: str, payload: Any, *, signal_id: str | None = None
    ) -> None:
        # A signal the service declares has its payload checked (the system routes refuse
        # names it does not declare; in code, any SignalDefinition may be sent).
        definition = self.service.signals.get(signal)
        if definition is not None:
            check_valid(f"payload for signal {signal!r}", definition.payload_from_json, payload)
        if await self.ports.executions.get(execution_id) is None:
            raise ExecutionNotFound(f"cannot send signal {signal!r}: no execution {execution_id!r}")
        await self._deliver_signal(
            execution_id,
            SignalReceived(
                timestamp=self.now(),
                signal_id=signal_id or str(uuid.uuid4()),
                signal=signal,
                payload=payload,
            ),
        )

    async def _deliver_signal(self, execution_id: str, event: SignalReceived) -> None:
        """Record a signal for its execution; once this returns, it is kept. Here: queued.
        (The SQLite runtime hands it to the orchestrator, whose step commits it.)"""
        await self.ports.queue.enqueue(execution_id, [event])

    async def emit_events(self, event: str, payloads: Sequence[Any]) -> None:
        definition = self.service.events.get(event)
        if definition is not None:
            for i, payload in enumerate(payloads):
                check_valid(
                    f"payload for event {event!r} (#{i})", definition.payload_from_json, payload
                )
        await self.ports.events.publish([EmittedEvent(name=event, payload=p) for p in payloads])

    async def _complete_task(self, token: str, event_for: Callable[[int, int], InputEvent]) -> None:
        execution_id, seq, attempt = decode_token(token)
        claim = await self.ports.claims.get(execution_id, seq, attempt)
        if claim is None:
            raise InvalidTaskToken("that task token names no task that was started")
        async with self.ports.unit_of_work():
            await self.ports.claims.finish(execution_id, seq, attempt)
            await self.ports.queue.enqueue(execution_id, [self._stamp(event_for(seq, attempt))])

    async def send_task_success(self, token: str, result: Any = None) -> None:
        await self._complete_task(
            token, lambda seq, attempt: TaskSucceeded(seq=seq, attempt=attempt, result=result)
        )

    async def send_task_failure(self, token: str, error: str, message: str = "") -> None:
        await self._complete_task(
            token,
            lambda seq, attempt: TaskFailed(seq=seq, attempt=attempt, error=error, message=message),
        )

    async def send_task_heartbeat(self, token: str, details: Any = None) -> bool:
        """Record a heartbeat; returns True if the task attempt was cancelled (timed out)."""
        execution_id, seq, attempt = decode_token(token)
        claim = await self.ports.claims.heartbeat(execution_id, seq, attempt, self.now(), details)
        if claim is None:
            raise InvalidTaskToken("that task token names no task that was started")
        return claim.timed_out

    # ------------------------------------------------------------ the orchestrator

    async def orchestrate(self, execution_id: str, events: Sequence[InputEvent]) -> bool:
        """Apply queued events to one execution: replay or reuse its state, run the engine,
        dispatch the outgoing work and commit the step. True when this step ended the
        execution (its end is committed)."""
        force_cold = False
        for _ in range(5):
            stored = await self.ports.executions.get(execution_id)
            if stored is None:
                logger.warning(
                    "dropped %d event(s) for unknown execution %s", len(events), execution_id
                )
                return False
            if stored.execution.status is not ExecutionStatus.IN_PROGRESS:
                self._evict(execution_id)
                return False
            executor = self._cache.take(execution_id)
            if executor is not None and (
                force_cold or executor.history_length != stored.history_length
            ):
                executor.close()
                executor = None
            warm = executor is not None
            if executor is None:
                executor = await self._cold_executor(stored)
                if executor is None:
                    return False
            else:
                self.stats["warm_steps"] += 1
            try:
                result = executor.step(events)
            except DeterminismError as exc:
                executor.close()
                await self._fail_logged(stored, exc)
                return False
            if not result.events:
                if warm and await self._behind(execution_id, executor):
                    # The store's record was as stale as the engine state (another
                    # orchestrator advanced the execution): events for calls this state
                    # has not seen were dropped, and no commit would ever conflict. Redo the
                    # step from the recorded history.
                    self.stats["stale_warm"] += 1
                    executor.close()
                    force_cold = True
                    continue
                self._keep(execution_id, executor)
                return False
            execution = self._updated_record(stored.execution, result.completion)
            try:
                async with self.ports.unit_of_work():
                    await self._dispatch(result.commands)
                    await self.ports.executions.commit_step(
                        execution_id,
                        expected_length=stored.history_length,
                        events=result.events,
                        execution=execution,
                    )
                    # In the step's unit of work: replay never logs again, so a step whose
                    # logs were not kept would lose them for good.
                    if result.logs:
                        await self.ports.logs.append(execution_id, result.logs)
            except ConflictError:
                self.stats["conflicts"] += 1
                executor.close()
                continue
            except BaseException:
                executor.close()
                raise
            if executor.completed:
                executor.close()
                self._wake(execution_id)
                return True
            self._keep(execution_id, executor)
            return False
        raise ConflictError(f"execution {execution_id}: gave up after repeated write conflicts")

    async def _behind(self, execution_id: str, executor: WorkflowExecutor) -> bool:
        """Whether the recorded history is longer than a warm state that dropped every event
        of a step: only then can a drop be the state's staleness rather than a duplicate.
        (A store may answer ``get`` from what it committed itself; the history it reads.)"""
        history = await self.ports.executions.read_history(execution_id)
        return len(history) != executor.history_length

    async def _cold_executor(self, stored: StoredExecution) -> WorkflowExecutor | None:
        workflow = self.service.workflows.get(stored.execution.workflow)
        if workflow is None:
            await self._fail(
                stored,
                EventualError(
                    f"this service has no workflow {stored.execution.workflow!r} any more",
                    name="WorkflowNotFound",
                ),
            )
            return None
        try:
            history = await self.ports.executions.read_history(stored.execution.id)
        except HistoryCorrupted as exc:
            # A damaged history fails its own execution, saying where; the others go on.
            await self._fail_logged(stored, exc)
            return None
        self.stats["cold_replays"] += 1
        try:
            return WorkflowExecutor.replay(workflow, history, workflows=self._lookup_workflow)
        except DeterminismError as exc:
            await self._fail_logged(stored, exc)
            return None

    async def fail_execution(self, execution_id: str, error: EventualError) -> bool:
        """Fail a running execution from outside its own state: the runtime gave up on
        delivering its events (a message dead-lettered after its last attempt). Returns
        whether it was running (and is failed now); a finished or unknown one is left."""
        stored = await self.ports.executions.get(execution_id)
        if stored is None or stored.execution.status is not ExecutionStatus.IN_PROGRESS:
            return False
        self._evict(execution_id)
        await self._fail_logged(stored, error)
        return True

    def step_failed(self, execution_id: str, tries: int, error: BaseException) -> bool:
        """Log a failed try of an execution's step (``error``, the ``tries``-th in a row; the
        traceback with the first); True when it was the last of :attr:`step_attempts`, and
        the step is to be given up (:meth:`give_up_step`)."""
        logger.error(
            "the step of %s failed (try %d of %d)",
            execution_id,
            tries,
            self.step_attempts,
            exc_info=error if tries == 1 else None,
        )
        return tries >= self.step_attempts

    async def give_up_step(
        self,
        execution_id: str,
        events: Sequence[InputEvent] | None,
        attempts: int,
        error: BaseException,
    ) -> bool:
        """Fail an execution whose step raised ``error`` on each of its last ``attempts``
        tries (:attr:`step_attempts`): it cannot go on without the ``events`` that step
        could not apply, and a step that fails the same way every time would otherwise be
        tried for ever. Its record says why. Returns whether it was failed (not if it had
        finished meanwhile, or if failing it failed too: that is logged, and the events stay
        where they are); ``events`` None when they could not be read."""
        if events is None:
            lost = "the events it was to apply could not be read"
        else:
            kinds = ", ".join(sorted({type(e).__name__ for e in events}))
            lost = f"{len(events)} event(s) were not applied" + (f" ({kinds})" if kinds else "")
        reason = EventualError(
            f"its step failed {attempts} times in a row and was given up (last error: "
            f"{type(error).__name__}: {error}); {lost}",
            name="StepFailed",
        )
        try:
            return await self.fail_execution(execution_id, reason)
        except Exception:
            logger.exception(
                "could not fail execution %s after its step was given up", execution_id
            )
            return False

    async def _fail_logged(self, stored: StoredExecution, exc: EventualError) -> None:
        """Fail an execution its own state cannot carry on (a replay that no longer matches, a
        history that cannot be read), saying so in the log."""
        logger.error("execution %s failed: %s", stored.execution.id, _brief(exc.message))
        await self._fail(stored, exc)

    async def _fail(self, stored: StoredExecution, exc: EventualError) -> None:
        outcome = WorkflowFailed(timestamp=self.now(), error=exc.name, message=exc.message)
        execution = self._updated_record(stored.execution, outcome)
        try:
            # One unit of work: the failure and the parent's notification are kept together.
            async with self.ports.unit_of_work():
                await self.ports.executions.commit_step(
                    stored.execution.id,
                    expected_length=stored.history_length,
                    events=[outcome],
                    execution=execution,
                )
                if stored.execution.parent is not None:
                    await self._dispatch(
                        [
                            NotifyParent(
                                stored.execution.parent,
                                _child_failed(stored.execution.parent.seq, exc),
                            )
                        ]
                    )
        except ConflictError:
            return
        self._wake(stored.execution.id)

    def _updated_record(
        self, execution: Execution, completion: WorkflowSucceeded | WorkflowFailed | None
    ) -> Execution:
        if completion is None:
            return execution
        if isinstance(completion, WorkflowSucceeded):
            return execution.model_copy(
                update={
                    "status": ExecutionStatus.SUCCEEDED,
                    "result": completion.result,
                    "end_time": completion.timestamp,
                }
            )
        return execution.model_copy(
            update={
                "status": ExecutionStatus.FAILED,
                "error": completion.error,
                "message": completion.message,
                "end_time": completion.timestamp,
            }
        )

    @property
    def cache_size(self) -> int:
        """How many warm executors are kept between steps (read when one is kept, so a change
        applies from the next step)."""
        return self._cache.size

    @cache_size.setter
    def cache_size(self, size: int) -> None:
        self._cache.size = size

    def _keep(self, execution_id: str, executor: WorkflowExecutor) -> None:
        self._cache.keep(execution_id, executor)

    def _evict(self, execution_id: str) -> None:
        self._cache.evict(execution_id)

    def clear_cache(self) -> None:
        self._cache.clear()

    async def _dispatch(self, commands: Sequence[Command]) -> None:
        ports = self.ports
        for c in commands:
            if isinstance(c, DispatchTask):
                await ports.tasks.dispatch(c)  # (the command is the port's TaskRequest)
                if c.heartbeat_timeout is not None:
                    await ports.timers.schedule(
                        TimerRequest(
                            f"{c.execution_id}|{c.seq}:heartbeat:{c.attempt}",
                            c.execution_id,
                            self.now() + timedelta(seconds=c.heartbeat_timeout),
                            heartbeat=(c.seq, c.attempt, c.heartbeat_timeout),
                        )
                    )
            elif isinstance(c, ScheduleTimer):
                await ports.timers.schedule(
                    TimerRequest(c.timer_id, c.execution_id, c.due, event=c.event)
                )
            elif isinstance(c, CancelTimer):
                await ports.timers.cancel(c.timer_id)
            elif isinstance(c, StartChild):
                try:
                    await self.start_execution(
                        c.workflow, c.input, execution_id=c.execution_id, parent=c.parent
                    )
                except (ServiceError, ExecutionAlreadyExists) as exc:
                    await ports.queue.enqueue(
                        c.parent.execution_id, [self._stamp(_child_failed(c.parent.seq, exc))]
                    )
            elif isinstance(c, SendSignal):
                if await ports.executions.get(c.execution_id) is None:
                    logger.warning(
                        "signal %s to unknown execution %s dropped", c.signal, c.execution_id
                    )
                    continue
                await ports.queue.enqueue(
                    c.execution_id,
                    [
                        SignalReceived(
                            timestamp=self.now(),
                            signal_id=c.signal_id,
                            signal=c.signal,
                            payload=c.payload,
                        )
                    ],
                )
            elif isinstance(c, EmitEvents):
                await ports.events.publish(c.events)
            elif isinstance(c, NotifyParent):
                await ports.queue.enqueue(c.parent.execution_id, [self._stamp(c.event)])

    # ------------------------------------------------------------ workers

    async def run_task(self, request: TaskRequest) -> bool:
        """Run one task attempt (claimed once) and send its result to the execution.

        Returns True when the attempt is left waiting: its handler returned an asynchronous
        result, and it completes later by its token."""
        ports = self.ports
        if not await ports.claims.claim(
            request.execution_id, request.seq, request.attempt, self.now()
        ):
            return False
        event: InputEvent
        definition = self.service.tasks.get(request.name)
        if definition is None:
            event = TaskFailed(
                timestamp=self.now(),
                seq=request.seq,
                attempt=request.attempt,
                error="TaskNotFound",
                message=f"this service has no task {request.name!r}",
            )
        else:
            key = (request.execution_id, request.seq, request.attempt)
            current = asyncio.current_task()
            if current is not None:
                self._attempts[key] = current
            # The request itself: task_context() makes a TaskContext of it if asked.
            reset = task_context_var().set(request)
            installed = push_runtime(self)  # (not use_runtime(): no generator per attempt)
            try:
                event = await self._invoke_task(definition, request)  # type: ignore[assignment]
            except asyncio.CancelledError:
                if key not in self._timed_out or current is None or current.uncancel() > 0:
                    raise
                return False  # cancelled by its timeout: the execution already heard of it
            finally:
                pop_runtime(installed)
                task_context_var().reset(reset)
                self._attempts.pop(key, None)
                self._timed_out.discard(key)
            if event is None:
                return True  # completes later, by token
        await self.deliver_task_result(request, event)  # stamped when the handler returned
        return False

    async def deliver_task_result(self, request: TaskRequest, event: InputEvent) -> None:
        """Mark a finished attempt done and deliver its result to the execution, in one unit
        of work. The SQLite driver, whose history keeps an attempt outstanding until its result
        is applied, hands the result straight to the orchestrator instead."""
        ports = self.ports
        async with ports.unit_of_work():
            await ports.claims.finish(request.execution_id, request.seq, request.attempt)
            await ports.queue.enqueue(request.execution_id, [event])

    async def _invoke_task(self, definition: Any, request: TaskRequest) -> InputEvent | None:
        try:
            value = await self.invoke_task_handler(definition, request)
            if isinstance(value, AsyncResult):
                registered = value.register(request.token)
                if inspect.isawaitable(registered):
                    await registered
                return None
            return TaskSucceeded(
                timestamp=self.now(),
                seq=request.seq,
                attempt=request.attempt,
                result=definition.result_to_json(value),
            )
        except Exception as exc:
            payload = error_payload(exc)
            logger.info(
                "task %s (%s seq %s attempt %s) failed: %s: %s",
                request.name,
                request.execution_id,
                request.seq,
                request.attempt,
                payload.error,
                _brief(payload.message),
            )
            return TaskFailed(
                timestamp=self.now(),
                seq=request.seq,
                attempt=request.attempt,
                error=payload.error,
                message=payload.message,
            )

    def invoke_task_handler(self, definition: Any, request: TaskRequest) -> Awaitable[Any]:
        """Run the task's code: the awaitable of its handler. TestEnvironment overrides this
        (with a coroutine) to apply task mocks."""
        return definition.invoke_json(request.args)

    async def fire_timer(self, timer: TimerRequest) -> None:
        """A timer fell due: deliver its event, or check a task's heartbeat."""
        ports = self.ports
        if timer.heartbeat is not None:
            seq, attempt, limit = timer.heartbeat
            claim = await ports.claims.get(timer.execution_id, seq, attempt)
            now = self.now()
            if claim is not None and claim.done:
                return
            last = (claim.last_heartbeat or claim.claimed_at) if claim is not None else now
            deadline = last + timedelta(seconds=limit)
            if claim is not None and deadline <= now:
                if await ports.claims.finish(timer.execution_id, seq, attempt, timed_out=True):
                    await ports.queue.enqueue(
                        timer.execution_id,
                        [TaskHeartbeatTimedOut(timestamp=now, seq=seq, attempt=attempt)],
                    )
                    self._cancel_attempt((timer.execution_id, seq, attempt))
                return
            await ports.timers.schedule(
                TimerRequest(
                    timer.timer_id, timer.execution_id, deadline, heartbeat=timer.heartbeat
                )
            )
            return
        assert timer.event is not None
        if isinstance(timer.event, TaskTimedOut):
            await ports.claims.finish(
                timer.execution_id, timer.event.seq, timer.event.attempt, timed_out=True
            )
        await ports.queue.enqueue(timer.execution_id, [self._stamp(timer.event)])
        if isinstance(timer.event, TaskTimedOut):
            self._cancel_attempt((timer.execution_id, timer.event.seq, timer.event.attempt))

    def _cancel_attempt(self, key: tuple[str, int, int]) -> None:
        """A task attempt timed out: if its handler runs in this process, cancel it (it gets
        ``CancelledError`` at its next ``await``; its result would be ignored anyway). One
        running elsewhere learns it from ``heartbeat()`` returning True."""
        running = self._attempts.get(key)
        if running is not None and not running.done():
            self._timed_out.add(key)
            running.cancel(f"task attempt {key[1]}:{key[2]} of {key[0]} timed out")

    async def deliver_event(
        self, event: EmittedEvent, *, subscriptions: Collection[str] | None = None
    ) -> list[str]:
        """Run the subscriptions (and, on a first delivery, the test listeners) of one
        published event; with ``subscriptions``, only those (a retry). Returns the names of the
        subscriptions that raised (each error is logged): the caller delivers again."""
        failed: list[str] = []
        if self.subscriptions_enabled:
            definition = self.service.events.get(event.name)
            schema = definition.schema if definition is not None else Any
            for sub in self.service.subscriptions_for(event.name):
                if subscriptions is not None and sub.name not in subscriptions:
                    continue
                try:
                    with use_runtime(self):
                        await sub.handle(event.name, event.payload, schema)
                except Exception:
                    logger.exception("subscription %s failed on event %s", sub.name, event.name)
                    failed.append(sub.name)
        if subscriptions is None:
            for names, listener in list(self.listeners):
                if names is None or event.name in names:
                    with use_runtime(self):
                        out = listener(event)
                        if inspect.isawaitable(out):
                            await out
        return failed

    def _storage_failures(self) -> int:
        """How many times the storage has failed so far, for a runtime whose storage can be
        unavailable for a while (the SQLite runtime's file: read-only, full, locked); 0 for
        the others."""
        return 0

    async def _storage_backoff(self, failures: int) -> None:
        """Wait before retrying work that met an unavailable storage ``failures`` times."""
        await asyncio.sleep(min(0.1 * 2 ** min(failures, 30), 2.0))

    async def deliver_event_retrying(
        self, event: EmittedEvent, sleep: Callable[[float], Awaitable[None]]
    ) -> list[str]:
        """Deliver an event; retry the subscriptions that failed, after ``sleep(delay)`` (0.1 s
        doubling, at most 5 s), up to :attr:`subscription_attempts` attempts in all. A delivery
        during which the storage failed (what the subscription wrote was not kept, through no
        fault of its own: see :meth:`_storage_failures`) is not an attempt: it is made again
        once the storage may be back. Returns the subscriptions that failed every attempt
        (logged as given up)."""
        before = self._storage_failures()
        failed = await self.deliver_event(event)
        attempt = 1
        stalls = 0
        while failed:
            if self._storage_failures() != before:
                await self._storage_backoff(stalls)
                stalls += 1
            elif attempt < self.subscription_attempts:
                await sleep(min(0.1 * 2 ** (attempt - 1), 5.0))
                attempt += 1
            else:
                break
            before = self._storage_failures()
            failed = await self.deliver_event(event, subscriptions=failed)
        if failed:
            logger.error(
                "gave up delivering event %s to %s after %d attempts",
                event.name,
                ", ".join(failed),
                attempt,
            )
        return failed


def _child_failed(seq: int, exc: BaseException) -> InputEvent:
    from ..history import ChildWorkflowFailed

    p = error_payload(exc)
    return ChildWorkflowFailed(seq=seq, error=p.error, message=p.message)
