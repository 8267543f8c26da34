"""The workflow engine: replays a history and applies new events, purely.

``WorkflowExecutor.replay(workflow, history)`` rebuilds an execution's state from its history
(cold start); ``executor.step(new_events)`` applies events that are not yet recorded and returns
the history events to append and the outgoing work (warm path). Both go through the same
``_apply`` code, one input event at a time, running workflow code to quiescence after each, so
the recorded history does not depend on how events were batched.

Replay checks the code against the record: every call event in the history must be made again,
in the same order, with the same kind, name and input, and every result must answer a call the
code made. Otherwise :class:`DeterminismError` names the seq, the recorded call and what the
code did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..definitions import (
    SignalDefinition,
    WorkflowDefinition,
)
from ..errors import (
    DeterminismError,
    EventualError,
    HeartbeatTimeout,
    Timeout,
    WorkflowTimeout,
    error_from_payload,
    error_payload,
    matches_error,
)
from ..history import (
    ChildWorkflowFailed,
    ChildWorkflowSucceeded,
    HistoryEvent,
    ParentRef,
    PatchMarked,
    SignalReceived,
    TaskFailed,
    TaskHeartbeatTimedOut,
    TaskRetryDue,
    TaskRetryScheduled,
    TaskScheduled,
    TaskSucceeded,
    TaskTimedOut,
    TimerCompleted,
    TimerScheduled,
    WorkflowFailed,
    WorkflowStarted,
    WorkflowSucceeded,
    WorkflowTimedOut,
)
from .calls import _ChildCall, _Pending, _TaskCall, _TimerCall
from .commands import (
    CancelTimer,
    Command,
    DispatchTask,
    NotifyParent,
    ScheduleTimer,
)
from .loop import WorkflowLoop
from .operations import WorkflowOperations
from .results import LogEntry, StepResult

logger = logging.getLogger("eventual.engine")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------- logging capture

_local = threading.local()
_factory_installed = False


def _install_log_capture() -> None:
    """Route log records made by workflow code (live, not replaying) to the executor."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ex: WorkflowExecutor | None = getattr(_local, "executor", None)
        if ex is not None and not ex.replaying and record.name != logger.name:
            ex.capture_log(record)
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


# ---------------------------------------------------------------- the executor


class WorkflowExecutor(WorkflowOperations):
    """The state of one execution, advanced one input event at a time."""

    def __init__(
        self,
        workflow: WorkflowDefinition[Any, Any],
        *,
        workflows: Callable[[str], WorkflowDefinition[Any, Any] | None] | None = None,
    ) -> None:
        _install_log_capture()
        self.workflow = workflow
        self.execution_id = ""
        self._lookup_workflow = workflows
        self.loop = WorkflowLoop(self)
        self._seq = 0
        self._clock = _EPOCH
        self.clock_seconds = 0.0
        self._main: asyncio.Task[Any] | None = None
        self._parent: ParentRef | None = None
        self._timeout_at: datetime | None = None
        self._pending: dict[int, _Pending] = {}
        self._timer_seq: dict[int, int] = {}  # id(handle) -> seq
        self._signal_handlers: dict[
            str, list[tuple[Callable[[Any], Any], SignalDefinition[Any]]]
        ] = {}
        self._signal_waiters: dict[
            str, list[tuple[asyncio.Future[Any], SignalDefinition[Any]]]
        ] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[bool]]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._outputs: deque[tuple[HistoryEvent | None, list[Command]]] = deque()
        self._seen: set[str] = set()
        self._rng: _random.Random | None = None  # made on first use: most never need it
        self._handler_error: BaseException | None = None
        self.completion: WorkflowSucceeded | WorkflowFailed | None = None
        self.history_length = 0
        self.replaying = False
        self._markers: dict[int, str] = {}
        self._patches: dict[str, tuple[bool, bool, int]] = {}
        self._violation: DeterminismError | None = None
        self._logs: list[LogEntry] = []
        self._closed = False

    # ------------------------------------------------------------ entry points

    @classmethod
    def replay(
        cls,
        workflow: WorkflowDefinition[Any, Any],
        history: Sequence[HistoryEvent],
        *,
        workflows: Callable[[str], WorkflowDefinition[Any, Any] | None] | None = None,
    ) -> WorkflowExecutor:
        """Rebuild state from a recorded history (cold start), checking determinism."""
        ex = cls(workflow, workflows=workflows)
        ex._replay(history)
        return ex

    def step(self, events: Iterable[HistoryEvent]) -> StepResult:
        """Apply new input events (live); returns what to record and dispatch."""
        result = StepResult()
        with self._running():
            for event in events:
                if not event.is_input:
                    raise ValueError(f"step() takes input events, not {event.type}")
                if self.completion is not None or event.id in self._seen:
                    result.dropped.append(event)
                    continue
                if not self._apply(event):
                    result.dropped.append(event)
                    continue
                result.events.append(event)
                while self._outputs:
                    out, commands = self._outputs.popleft()
                    if out is not None:
                        result.events.append(out)
                    result.commands.extend(commands)
        self.history_length += len(result.events)
        result.completion = self.completion
        result.logs, self._logs = self._logs, []
        return result

    def close(self) -> None:
        """Discard the execution's state: pending coroutines are closed without running
        any further workflow operation (anything they try is refused)."""
        if self._closed:
            return
        self._closed = True
        with self._running():
            for task in list(self._tasks):
                if not task.done():
                    # finally blocks of discarded code may raise; nothing is recorded any more.
                    with contextlib.suppress(Exception):
                        task.get_coro().close()  # type: ignore[union-attr]
                    # A pending task and the future it awaits refer to each other (its wake-up
                    # is the future's callback): cancelling the future moves the callback to
                    # the loop's queue, which closing the loop empties, so reference counting
                    # frees both. (A task awaiting another task is left to the collector.)
                    waiter = getattr(task, "_fut_waiter", None)
                    if waiter is not None and not isinstance(waiter, asyncio.Task):
                        waiter.cancel()
        self._tasks.clear()
        self._main = None
        self.loop.close()

    @property
    def completed(self) -> bool:
        return self.completion is not None

    @property
    def awaiting_task(self) -> bool:
        """Whether a task this execution dispatched is still to answer (its next step is due
        when a worker finishes it, not when a signal or a timer comes)."""
        return any(type(call) is _TaskCall for call in self._pending.values())

    # ------------------------------------------------------------ replay

    def _replay(self, history: Sequence[HistoryEvent]) -> None:
        if not history:
            return  # a new execution (logging.disable() walks every logger: not for nothing)
        previous_disable = logging.root.manager.disable
        logging.disable(logging.CRITICAL)
        # patched() answers from the marker recorded at the seq it would take; the code runs
        # ahead of the recorded calls it is matched against, so the markers are indexed first
        # (one pass, and a dict lookup per patched() call: replay stays linear).
        self._markers = {e.seq: e.patch for e in history if type(e) is PatchMarked}
        self.replaying = True
        try:
            with self._running():
                for event in history:
                    if event.is_input:
                        self._expect_no_unrecorded_calls()
                        if event.id in self._seen:
                            raise DeterminismError(
                                f"the history records event {event.id!r} twice; it is corrupt",
                            )
                        if not self._apply(event):
                            seq = getattr(event, "seq", None)
                            raise DeterminismError(
                                f"seq {seq}: the history records {event.type} for a call the "
                                "code no longer makes at that point",
                                seq=seq,
                                recorded=event.type,
                            )
                    else:
                        self._match_recorded(event)
                self._expect_no_unrecorded_calls()
        finally:
            self.replaying = False
            self._markers = {}
            logging.disable(previous_disable)
        self.history_length = len(history)
        self._logs.clear()

    def _match_recorded(self, recorded: HistoryEvent) -> None:
        while self._outputs and self._outputs[0][0] is None:
            self._outputs.popleft()
        seq = getattr(recorded, "seq", None)
        if type(recorded) is PatchMarked:
            actual_marker = self._outputs[0][0] if self._outputs else None
            if actual_marker is None or actual_marker.signature() != recorded.signature():  # type: ignore[union-attr]
                self._removed_patch(recorded, actual_marker)
        if not self._outputs:
            raise DeterminismError(
                f"seq {seq}: the history records {recorded.describe()}, "  # type: ignore[union-attr]
                "but the code made no call there",
                seq=seq,
                recorded=recorded.describe(),  # type: ignore[union-attr]
                actual=None,
            )
        actual, _ = self._outputs.popleft()
        assert actual is not None
        if actual.signature() != recorded.signature():  # type: ignore[union-attr]
            raise DeterminismError(
                f"seq {seq}: the history records {recorded.describe()}, "  # type: ignore[union-attr]
                f"but the code did {actual.describe()}",  # type: ignore[union-attr]
                seq=seq,
                recorded=recorded.describe(),  # type: ignore[union-attr]
                actual=actual.describe(),  # type: ignore[union-attr]
            )

    def _removed_patch(self, recorded: PatchMarked, actual: HistoryEvent | None) -> None:
        patch, seq = recorded.patch, recorded.seq
        did = (
            f"the code did {actual.describe()}"  # type: ignore[union-attr]
            if actual is not None
            else "the code made no call there"
        )
        raise DeterminismError(
            f"seq {seq}: the history records patch marker {patch!r}, but {did}: the patch "
            f"{patch!r} was removed (or moved) while executions that took it still run; keep "
            f"patched({patch!r}) or deprecate_patch({patch!r}) at that point until none runs "
            "(`eventual executions --status IN_PROGRESS --build BUILD` lists them by build)",
            seq=seq,
            recorded=recorded.describe(),
            actual=actual.describe() if actual is not None else None,  # type: ignore[union-attr]
        )

    def _expect_no_unrecorded_calls(self) -> None:
        while self._outputs:
            out, _ = self._outputs.popleft()
            if out is None:
                continue
            seq = getattr(out, "seq", None)
            raise DeterminismError(
                f"seq {seq}: the code did {out.describe()}, "  # type: ignore[union-attr]
                "which the history does not record",
                seq=seq,
                recorded=None,
                actual=out.describe(),  # type: ignore[union-attr]
            )

    # ------------------------------------------------------------ applying one input

    def _apply(self, event: HistoryEvent) -> bool:
        """Apply one input event and run the code to quiescence. False if it is stale."""
        clock = self._clock
        if event.timestamp > clock:
            self._set_clock(event.timestamp)
        accepted = True
        if isinstance(event, WorkflowStarted):
            self._start(event)
        elif isinstance(event, TaskSucceeded):
            accepted = self._task_result(event)
        elif isinstance(event, (TaskFailed, TaskTimedOut, TaskHeartbeatTimedOut)):
            accepted = self._task_failure(event)
        elif isinstance(event, TaskRetryDue):
            accepted = self._task_retry_due(event)
        elif isinstance(event, TimerCompleted):
            accepted = self._timer_completed(event)
        elif isinstance(event, (ChildWorkflowSucceeded, ChildWorkflowFailed)):
            accepted = self._child_result(event)
        elif isinstance(event, SignalReceived):
            self._signal(event)
        elif isinstance(event, WorkflowTimedOut):
            self._complete_failed(
                WorkflowTimeout(f"workflow {self.workflow.name!r} did not complete in time")
            )
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"not an input event: {event!r}")
        if not accepted:
            self._set_clock(clock)
            return False
        self._seen.add(event.id)
        self._run()
        return True

    def _run(self) -> None:
        loop = self.loop
        while True:
            loop.run_ready()
            if self._violation is not None:
                raise self._violation  # even if the workflow code caught it
            if self._handler_error is not None and self.completion is None:
                error, self._handler_error = self._handler_error, None
                self._complete_failed(error)
            if self.completion is None and self._main is not None and self._main.done():
                self._main_done(self._main)
            if not self._check_conditions():
                break

    def _check_conditions(self) -> bool:
        if not self._conditions or self.completion is not None:
            return False
        progressed = False
        remaining: list[tuple[Callable[[], bool], asyncio.Future[bool]]] = []
        for predicate, fut in self._conditions:
            if fut.done():
                continue
            try:
                ok = predicate()
            except Exception as exc:
                fut.set_exception(exc)
                progressed = True
                continue
            if ok:
                fut.set_result(True)
                progressed = True
            else:
                remaining.append((predicate, fut))
        self._conditions = remaining
        return progressed

    def _start(self, event: WorkflowStarted) -> None:
        if self._main is not None:
            raise DeterminismError("the history records WorkflowStarted twice; it is corrupt")
        self.execution_id = event.execution_id
        self._parent = event.parent
        self._timeout_at = event.timeout_at
        if event.timeout_at is not None:
            self._emit(
                None,
                [ScheduleTimer(self.execution_id, event.timeout_at, WorkflowTimedOut())],
            )
        self._main = self.loop.create_task(self._run_main(event.input), name=self.execution_id)

    async def _run_main(self, input_json: Any) -> Any:
        wf = self.workflow
        if wf.signature.params:
            value = wf.input_from_json(input_json)
            return await wf.fn(value)
        return await wf.fn()  # type: ignore[call-arg]

    def _main_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self._complete_failed(EventualError("the workflow was cancelled", name="Cancelled"))
            return
        exc = task.exception()
        if exc is not None:
            self._complete_failed(exc)
            return
        try:
            result = self.workflow.output_to_json(task.result())
        except Exception as e:
            self._complete_failed(e)
            return
        self._complete(WorkflowSucceeded(timestamp=self._clock, result=result))

    def _complete_failed(self, exc: BaseException) -> None:
        payload = error_payload(exc)
        self._complete(
            WorkflowFailed(timestamp=self._clock, error=payload.error, message=payload.message)
        )

    def _complete(self, outcome: WorkflowSucceeded | WorkflowFailed) -> None:
        if self.completion is not None:
            return
        self.completion = outcome
        commands: list[Command] = []
        if self._timeout_at is not None:
            commands.append(CancelTimer(self.execution_id, f"{self.execution_id}|WorkflowTimedOut"))
        if self._parent is not None:
            result: HistoryEvent
            if isinstance(outcome, WorkflowSucceeded):
                result = ChildWorkflowSucceeded(seq=self._parent.seq, result=outcome.result)
            else:
                result = ChildWorkflowFailed(
                    seq=self._parent.seq, error=outcome.error, message=outcome.message
                )
            commands.append(NotifyParent(self._parent, result))  # type: ignore[arg-type]
        self._emit(outcome, commands)

    # ------------------------------------------------------------ results

    def _pending_of(self, event: HistoryEvent, kind: type) -> Any:
        seq: int = event.seq  # type: ignore[union-attr]
        pending = self._pending.get(seq)
        if pending is None:
            if seq >= self._seq:
                if not self.replaying:
                    logger.warning(
                        "%s: dropped %s for seq %s, which the workflow never called",
                        self.execution_id,
                        event.type,
                        seq,
                    )
                    return None
                raise DeterminismError(
                    f"seq {seq}: the history has {event.type} for a call the code never made",
                    seq=seq,
                    recorded=event.type,
                )
            return None  # already resolved: a late or duplicate result
        if not isinstance(pending, kind):
            if not self.replaying:
                logger.warning(
                    "%s: dropped %s for seq %s, which is not that kind of call",
                    self.execution_id,
                    event.type,
                    seq,
                )
                return None
            raise DeterminismError(
                f"seq {seq}: the history has {event.type}, but the code's call at seq {seq} "
                f"is a {type(pending).__name__.strip('_').replace('Call', '').lower()}",
                seq=seq,
                recorded=event.type,
            )
        return pending

    def _task_result(self, event: TaskSucceeded) -> bool:
        call: _TaskCall | None = self._pending_of(event, _TaskCall)
        if call is None or call.attempt != event.attempt or call.waiting_retry:
            return False
        del self._pending[event.seq]
        if not call.future.done():
            try:
                value = (
                    call.definition.result_from_json(event.result)
                    if call.definition is not None
                    else event.result
                )
            except Exception as exc:
                call.future.set_exception(exc)
            else:
                call.future.set_result(value)
        return True

    def _task_failure(self, event: TaskFailed | TaskTimedOut | TaskHeartbeatTimedOut) -> bool:
        call: _TaskCall | None = self._pending_of(event, _TaskCall)
        if call is None or call.attempt != event.attempt or call.waiting_retry:
            return False
        definition = call.definition
        exc: EventualError
        if isinstance(event, TaskFailed):
            exc = error_from_payload(event.error, event.message)
        elif isinstance(event, TaskTimedOut):
            limit = definition.timeout if definition else None
            exc = Timeout(
                f"task {call.name!r} did not complete within {limit:g}s"
                if limit
                else f"task {call.name!r} timed out"
            )
        else:
            limit = definition.heartbeat_timeout if definition else None
            exc = HeartbeatTimeout(
                f"task {call.name!r} sent no heartbeat within {limit:g}s"
                if limit
                else f"task {call.name!r} missed its heartbeat"
            )
        policy = definition.retry if definition is not None else None
        if (
            policy is not None
            and call.attempt < policy.max_attempts
            and not matches_error(exc.name, list(policy.non_retryable))
            and not call.future.done()
        ):
            next_attempt = call.attempt + 1
            until = self._clock + timedelta(seconds=policy.interval(call.attempt))
            call.attempt = next_attempt
            call.waiting_retry = True
            self._emit(
                TaskRetryScheduled(
                    timestamp=self._clock,
                    seq=event.seq,
                    attempt=next_attempt,
                    until=until,
                    error=exc.name,
                    message=exc.message,
                ),
                [
                    ScheduleTimer(
                        self.execution_id, until, TaskRetryDue(seq=event.seq, attempt=next_attempt)
                    )
                ],
            )
            return True
        del self._pending[event.seq]
        if not call.future.done():
            call.future.set_exception(exc)
        return True

    def _task_retry_due(self, event: TaskRetryDue) -> bool:
        call: _TaskCall | None = self._pending_of(event, _TaskCall)
        if call is None or call.attempt != event.attempt or not call.waiting_retry:
            return False
        call.waiting_retry = False
        if call.future.done():  # nobody waits for it any more (a wait_for gave up)
            del self._pending[event.seq]
            return True
        self._schedule_task(event.seq, call)
        return True

    def _timer_completed(self, event: TimerCompleted) -> bool:
        timer: _TimerCall | None = self._pending_of(event, _TimerCall)
        if timer is None:
            return False
        del self._pending[event.seq]
        self._timer_seq.pop(id(timer.handle), None)
        if timer.until > self._clock:
            self._set_clock(timer.until)
        if not timer.handle.cancelled():
            self.loop._ready.append(timer.handle)
        return True

    def _child_result(self, event: ChildWorkflowSucceeded | ChildWorkflowFailed) -> bool:
        child: _ChildCall | None = self._pending_of(event, _ChildCall)
        if child is None:
            return False
        del self._pending[event.seq]
        if child.future.done():
            return True
        if isinstance(event, ChildWorkflowSucceeded):
            try:
                child.future.set_result(child.definition.output_from_json(event.result))
            except Exception as exc:
                child.future.set_exception(exc)
        else:
            child.future.set_exception(error_from_payload(event.error, event.message))
        return True

    def _signal(self, event: SignalReceived) -> None:
        handlers = self._signal_handlers.get(event.signal)
        waiters = self._signal_waiters.pop(event.signal, None)
        for handler, definition in list(handlers or ()):
            try:
                payload = definition.payload_from_json(event.payload)
                result = handler(payload)
            except Exception as exc:
                self._handler_error = exc
                return
            if asyncio.iscoroutine(result):
                task = self.loop.create_task(result)
                task.add_done_callback(self._handler_done)
        for fut, definition in waiters or ():
            if fut.done():
                continue
            try:
                fut.set_result(definition.payload_from_json(event.payload))
            except Exception as exc:
                fut.set_exception(exc)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None and self._handler_error is None:
            self._handler_error = task.exception()

    # ------------------------------------------------------------ outputs

    def _emit(self, event: HistoryEvent | None, commands: list[Command]) -> None:
        self._outputs.append((event, commands))

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _schedule_task(self, seq: int, call: _TaskCall) -> None:
        definition = call.definition
        timeout = definition.timeout if definition else None
        heartbeat = definition.heartbeat_timeout if definition else None
        commands: list[Command] = [
            DispatchTask(
                self.execution_id,
                self.workflow.name,
                seq,
                call.attempt,
                call.name,
                call.args,
                timeout,
                heartbeat,
            )
        ]
        if timeout is not None:
            commands.append(
                ScheduleTimer(
                    self.execution_id,
                    self._clock + timedelta(seconds=timeout),
                    TaskTimedOut(seq=seq, attempt=call.attempt),
                )
            )
        self._emit(
            TaskScheduled(
                timestamp=self._clock,
                seq=seq,
                name=call.name,
                args=call.args,
                attempt=call.attempt,
                timeout=timeout,
                heartbeat_timeout=heartbeat,
            ),
            commands,
        )

    # ------------------------------------------------------------ loop callbacks

    def start_timer(self, handle: asyncio.TimerHandle, when: float) -> None:
        self._refuse_if_closed("a timer")
        if self.completion is not None:
            return
        seq = self._next_seq()
        until = datetime.fromtimestamp(when, UTC)
        self._pending[seq] = _TimerCall(handle, until)
        self._timer_seq[id(handle)] = seq
        self._emit(
            TimerScheduled(timestamp=self._clock, seq=seq, until=until),
            [ScheduleTimer(self.execution_id, until, TimerCompleted(seq=seq))],
        )

    def timer_cancelled(self, handle: asyncio.TimerHandle) -> None:
        seq = self._timer_seq.pop(id(handle), None)
        if seq is None or self._closed:
            return
        self._pending.pop(seq, None)
        self._emit(
            None, [CancelTimer(self.execution_id, f"{self.execution_id}|{seq}:TimerCompleted")]
        )

    def track_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def loop_exception(self, context: dict[str, Any]) -> None:
        if self._closed or self.replaying:
            return
        exc = context.get("exception")
        logger.debug("workflow %s: %s", self.execution_id, context.get("message"), exc_info=exc)

    def capture_log(self, record: logging.LogRecord) -> None:
        self._logs.append(
            LogEntry(
                timestamp=self._clock,
                level=record.levelname,
                logger=record.name,
                message=record.getMessage(),
            )
        )

    # ------------------------------------------------------------ helpers

    def _set_clock(self, t: datetime) -> None:
        self._clock = t
        self.clock_seconds = t.timestamp()

    def _running(self) -> _Running:
        return _Running(self)


class _Running:
    """Makes the executor's loop the running loop for the duration of a synchronous step."""

    __slots__ = ("_ex", "_previous", "_previous_ex")

    def __init__(self, ex: WorkflowExecutor) -> None:
        self._ex = ex

    def __enter__(self) -> None:
        self._previous = asyncio.events._get_running_loop()
        self._previous_ex = getattr(_local, "executor", None)
        asyncio.events._set_running_loop(self._ex.loop)
        _local.executor = self._ex

    def __exit__(self, *exc: object) -> None:
        asyncio.events._set_running_loop(self._previous)
        _local.executor = self._previous_ex
