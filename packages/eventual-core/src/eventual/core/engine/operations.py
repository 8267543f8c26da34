"""The operations workflow code calls (through ``eventual.core._context.WorkflowOps``): tasks,
child workflows, signals, events, conditions, durable sleep, and the deterministic clock and
randomness. Each takes the next seq in program order and records what it asked for.

``WorkflowOperations`` is the half of :class:`~eventual.core.engine.executor.WorkflowExecutor`
that workflow code calls; the executor's other half applies the recorded events.
"""

from __future__ import annotations

import asyncio
import hashlib
import random as _random
import uuid
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any

from ..definitions import SignalDefinition, SignalHandle, TaskDefinition, WorkflowDefinition
from ..errors import DeterminismError, Timeout
from ..history import (
    ChildWorkflowScheduled,
    EmittedEvent,
    EventsEmitted,
    HistoryEvent,
    ParentRef,
    PatchMarked,
    SignalSent,
)
from ..names import check_execution_name
from .calls import _ChildCall, _Pending, _TaskCall
from .commands import Command, EmitEvents, SendSignal, StartChild
from .loop import WorkflowLoop


class WorkflowOperations:
    """Workflow-time operations over the state the executor keeps."""

    __slots__ = ()

    # The executor's state these operations read and write.
    execution_id: str
    loop: WorkflowLoop
    completion: Any
    _closed: bool
    _clock: datetime
    _pending: dict[int, _Pending]
    _signal_handlers: dict[str, list[tuple[Callable[[Any], Any], SignalDefinition[Any]]]]
    _signal_waiters: dict[str, list[tuple[asyncio.Future[Any], SignalDefinition[Any]]]]
    _conditions: list[tuple[Callable[[], bool], asyncio.Future[bool]]]
    _rng: _random.Random | None
    _seq: int
    replaying: bool
    # Replay only: the patch markers of the history being replayed, by seq.
    _markers: dict[int, str]
    # Each patch id this execution asked about: (asked by deprecate_patch, answer, seq).
    _patches: dict[str, tuple[bool, bool, int]]
    _violation: DeterminismError | None

    def _next_seq(self) -> int:
        raise NotImplementedError

    def _emit(self, event: HistoryEvent | None, commands: list[Command]) -> None:
        raise NotImplementedError

    def _schedule_task(self, seq: int, call: _TaskCall) -> None:
        raise NotImplementedError

    def _refuse_if_closed(self, what: str) -> None:
        if self._closed:
            raise RuntimeError(f"{what}: this execution's state was discarded")

    def call_task(
        self, task: TaskDefinition[Any, Any], args: list[Any]
    ) -> Coroutine[Any, Any, Any]:
        """Schedule the task now (taking the next seq); the returned coroutine awaits it."""
        self._refuse_if_closed(f"task {task.name!r}")
        fut = self.loop.create_future()
        if self.completion is None:
            seq = self._next_seq()
            call = _TaskCall(task, task.name, args, fut)
            self._pending[seq] = call
            self._schedule_task(seq, call)
        return _await(fut)

    def call_child(
        self, workflow: WorkflowDefinition[Any, Any], input: Any, execution_name: str | None
    ) -> Coroutine[Any, Any, Any]:
        """Start the child now (taking the next seq); the returned coroutine awaits it."""
        self._refuse_if_closed(f"workflow {workflow.name!r}")
        if execution_name is not None:
            check_execution_name(execution_name)  # before a seq is taken
        fut = self.loop.create_future()
        if self.completion is not None:
            return _await(fut)
        seq = self._next_seq()
        name = execution_name or f"{self.execution_id.replace('/', '.')}.{seq}"
        child_id = f"{workflow.name}/{name}"
        self._pending[seq] = _ChildCall(workflow, fut)
        parent = ParentRef(execution_id=self.execution_id, seq=seq)
        self._emit(
            ChildWorkflowScheduled(
                timestamp=self._clock,
                seq=seq,
                name=workflow.name,
                input=input,
                execution_id=child_id,
            ),
            [StartChild(parent, workflow.name, child_id, input)],
        )
        return _await(fut)

    def _done_future(self) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = self.loop.create_future()
        fut.set_result(None)
        return fut

    def send_signal(self, execution_id: str, signal: str, payload: Any) -> asyncio.Future[None]:
        self._refuse_if_closed(f"signal {signal!r}")
        if self.completion is None:
            seq = self._next_seq()
            signal_id = f"{self.execution_id}#{seq}"
            self._emit(
                SignalSent(
                    timestamp=self._clock,
                    seq=seq,
                    execution_id=execution_id,
                    signal=signal,
                    payload=payload,
                    signal_id=signal_id,
                ),
                [SendSignal(execution_id, signal, payload, signal_id)],
            )
        return self._done_future()

    def emit_events(self, event: str, payloads: Sequence[Any]) -> asyncio.Future[None]:
        self._refuse_if_closed(f"event {event!r}")
        if self.completion is None and payloads:
            seq = self._next_seq()
            events = [EmittedEvent(name=event, payload=p) for p in payloads]
            self._emit(
                EventsEmitted(timestamp=self._clock, seq=seq, events=events),
                [EmitEvents(events)],
            )
        return self._done_future()

    def on_signal(
        self, signal: SignalDefinition[Any], handler: Callable[[Any], Any]
    ) -> SignalHandle:
        self._refuse_if_closed(f"signal {signal.name!r}")
        entry = (handler, signal)
        handlers = self._signal_handlers.setdefault(signal.name, [])
        handlers.append(entry)

        def dispose() -> None:
            if entry in handlers:
                handlers.remove(entry)

        return SignalHandle(dispose)

    async def expect_signal(self, signal: SignalDefinition[Any], timeout: float | None) -> Any:
        self._refuse_if_closed(f"signal {signal.name!r}")
        fut: asyncio.Future[Any] = self.loop.create_future()
        entry = (fut, signal)
        self._signal_waiters.setdefault(signal.name, []).append(entry)
        try:
            if timeout is None:
                return await fut
            try:
                async with asyncio.timeout(timeout):
                    return await fut
            except TimeoutError:
                raise Timeout(f"no signal {signal.name!r} arrived within {timeout:g}s") from None
        finally:
            waiters = self._signal_waiters.get(signal.name)
            if waiters and entry in waiters:
                waiters.remove(entry)

    async def condition(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        self._refuse_if_closed("condition()")
        if predicate():
            return True
        fut: asyncio.Future[bool] = self.loop.create_future()
        self._conditions.append((predicate, fut))
        if timeout is None:
            return await fut
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            return False

    async def sleep_until(self, until: datetime) -> None:
        self._refuse_if_closed("sleep_until()")
        if until.tzinfo is None:
            raise ValueError("sleep_until() needs a timezone-aware datetime (use UTC)")
        fut: asyncio.Future[None] = self.loop.create_future()
        handle = self.loop.call_at(until.timestamp(), _set_result_unless_done, fut)
        try:
            await fut
        finally:
            handle.cancel()

    def patched(self, patch_id: str) -> bool:
        """Live: record a marker (taking the next seq) and answer True. Replaying: True, and
        the marker consumed, only if the recorded call at the next seq is this patch's
        marker; otherwise False without taking a seq (the history predates the patch). The
        first answer is kept for the rest of the execution."""
        self._refuse_if_closed(f"patched({patch_id!r})")
        return self._patch(patch_id, deprecated=False)

    def deprecate_patch(self, patch_id: str) -> None:
        """Replaying: consume this patch's marker if it is the next recorded call. Live:
        record nothing."""
        self._refuse_if_closed(f"deprecate_patch({patch_id!r})")
        self._patch(patch_id, deprecated=True)

    def _patch(self, patch_id: str, *, deprecated: bool) -> bool:
        known = self._patches.get(patch_id)
        if known is not None:
            was_deprecated, answer, seq = known
            if was_deprecated != deprecated:
                self._patch_misuse(patch_id, was_deprecated, answer, seq)
            return answer
        seq = self._seq
        if self.completion is not None:
            answer = True  # nothing more is recorded once the workflow has completed
        elif self.replaying:
            answer = self._markers.get(seq) == patch_id
        else:
            answer = not deprecated
        if answer and self.completion is None:
            self._next_seq()
            self._emit(PatchMarked(timestamp=self._clock, seq=seq, patch=patch_id), [])
        self._patches[patch_id] = (deprecated, answer, seq)
        return answer

    def _patch_misuse(self, patch_id: str, was_deprecated: bool, answer: bool, seq: int) -> None:
        first, now = (
            ("deprecate_patch", "patched") if was_deprecated else ("patched", "deprecate_patch")
        )
        recorded = (
            f"patch marker {patch_id!r} at seq {seq}"
            if answer
            else f"no marker for {patch_id!r} at seq {seq}"
        )
        error = DeterminismError(
            f"seq {self._seq}: patch {patch_id!r} is used by both patched() and "
            f"deprecate_patch() in this execution ({first}() first, at seq {seq}, where the "
            f"history has {recorded}; now {now}()): a patch id names one change, so use "
            "one of the two for it everywhere in the workflow and give a new change a new id",
            seq=self._seq,
            recorded=recorded,
            actual=f"{now}({patch_id!r})",
        )
        if self._violation is None:
            self._violation = error
        raise error

    def now(self) -> datetime:
        return self._clock

    def _random(self) -> _random.Random:
        rng = self._rng
        if rng is None:
            # Seeded from the execution id: the same sequence in every replay.
            seed = hashlib.sha256(self.execution_id.encode()).digest()
            rng = self._rng = _random.Random(int.from_bytes(seed[:16], "big"))
        return rng

    def random(self) -> float:
        return self._random().random()

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self._random().getrandbits(128), version=4)


async def _await(fut: asyncio.Future[Any]) -> Any:
    return await fut


def _set_result_unless_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
