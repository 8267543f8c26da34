"""What every handler shares: the service, loaded once per container from
``EVENTUAL_SERVICE_ENTRY``, the Runtime on the AWS ports, one asyncio runner, and the pause
of the garbage collector during the container's first invocation (:class:`FirstInvocation`).

Only the standard library is imported here; eventual-core, the user's service and boto3 load
on the first invocation (and stay loaded for the container's life).
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

    from eventual.core.runtime import Clock, Runtime
    from eventual.core.service import Service

    from ..names import ServiceNames

T = TypeVar("T")

_lock = threading.RLock()
_service: Service | None = None
_names: ServiceNames | None = None
_runtimes: dict[str, Runtime] = {}
_runner: asyncio.Runner | None = None
_clock: Clock | None = None
_on_configure: list[Callable[[], None]] = []


GC_PAUSE_SECONDS = 2.0
"""The longest the collector stays paused in a container's first invocation."""

_first_invocation = True
_gc_paused = False
_gc_timer: threading.Timer | None = None


class FirstInvocation:
    """``with FirstInvocation(): ...`` around a handler's body: the process's first invocation
    (a new container's: the imports of the service, eventual-core, pydantic and botocore, the
    runtime and the clients built, the first event) runs with the cyclic garbage collector
    paused; later invocations, and invocations inside the first, are not touched.

    A cold start allocates some hundreds of thousands of objects that live as long as the
    container (modules, classes, the service, pydantic's validators, botocore's models) and
    nearly no garbage: collecting while they are made traverses those made so far again and
    again, for nothing. In the cold-start benchmark that is some 6% of a first invocation's
    instructions and much more of its CPU time, since walking the heap is bound by memory.
    When the first invocation ends, or after :data:`GC_PAUSE_SECONDS` if it runs longer (so
    user code making garbage cycles cannot grow the memory for long), everything alive is
    moved to the collector's permanent generation (``gc.freeze()``): later collections do not
    walk it, and the next invocation does not pay for the collections put off. Then the
    collector is enabled again. A process whose collector is off already is left as it is.
    """

    __slots__ = ("_paused",)

    def __init__(self) -> None:
        self._paused = False  # this one paused the collector (an invocation inside it did not)

    def __enter__(self) -> None:
        global _first_invocation, _gc_paused, _gc_timer
        if not _first_invocation:
            return
        with _lock:
            if not _first_invocation:
                return
            _first_invocation = False
            if not gc.isenabled():
                return
            gc.disable()
            _gc_paused = self._paused = True
            _gc_timer = threading.Timer(GC_PAUSE_SECONDS, _resume_gc)
            _gc_timer.daemon = True
            _gc_timer.start()

    def __exit__(self, *exc: object) -> None:
        if self._paused:
            _resume_gc()


def _resume_gc() -> None:
    global _gc_paused, _gc_timer
    with _lock:
        if not _gc_paused:
            return
        _gc_paused = False
        if _gc_timer is not None:
            _gc_timer.cancel()
            _gc_timer = None
        gc.freeze()
        gc.enable()


def on_configure(reset: Callable[[], None]) -> None:
    """Call ``reset`` whenever :func:`configure` forgets the container's state: a module that
    keeps its own per-container cache (the HTTP layer's handlers) registers its reset here."""
    with _lock:
        _on_configure.append(reset)


def configure(*, clock: Clock | None = None) -> None:
    """Forget the loaded service and runtimes (tests start each scenario afresh), and use
    ``clock`` instead of the real one."""
    global _service, _names, _runner, _clock
    with _lock:
        _service = None
        _names = None
        _runtimes.clear()
        _clock = clock
        for reset in _on_configure:
            reset()
        if _runner is not None:
            _runner.close()
            _runner = None


class ContainerState:
    """What :func:`swap_container` swaps: the service, the names, the warm runtimes and the
    event loop of one container."""

    __slots__ = ("names", "runner", "runtimes", "service")

    def __init__(self) -> None:
        self.service: Service | None = None
        self.names: ServiceNames | None = None
        self.runtimes: dict[str, Runtime] = {}
        self.runner: asyncio.Runner | None = None

    def close(self) -> None:
        """Close the container's event loop and forget its state."""
        if self.runner is not None:
            self.runner.close()
        self.service, self.names, self.runner = None, None, None
        self.runtimes.clear()


def swap_container(state: ContainerState | None) -> ContainerState:
    """Make ``state`` (``None``: a fresh container) this process's container state and return
    the one it replaces: a test harness that plays several Lambda functions in one process
    gives each its own container this way. The caches registered with :func:`on_configure`
    are reset (they are rebuilt from the swapped-in state on first use)."""
    global _service, _names, _runtimes, _runner
    new = state or ContainerState()
    with _lock:
        old = ContainerState()
        old.service, old.names, old.runtimes, old.runner = _service, _names, _runtimes, _runner
        _service, _names, _runtimes, _runner = new.service, new.names, new.runtimes, new.runner
        for reset in _on_configure:
            reset()
        return old


def service() -> Service:
    global _service
    with _lock:
        if _service is None:
            from eventual.core.service import load_service

            from ..names import ENV_SERVICE_ENTRY, ENV_SERVICE_NAME

            entry = os.environ.get(ENV_SERVICE_ENTRY)
            if not entry:
                raise RuntimeError(
                    f"{ENV_SERVICE_ENTRY} is not set: set it to the service's entry module "
                    "(the eventual.cdk construct does)"
                )
            _service = load_service(entry, name=os.environ.get(ENV_SERVICE_NAME) or None)
        return _service


def names() -> ServiceNames:
    global _names
    with _lock:
        if _names is None:
            from ..names import ServiceNames

            _names = ServiceNames.from_env()
        return _names


def runtime(kind: str, *, cache_commits: bool = False, subscription: str | None = None) -> Runtime:
    """The container's Runtime for one kind of handler (kept warm across invocations). With
    ``subscription``, the service it serves has that one subscription only."""
    with _lock:
        found = _runtimes.get(kind)
        if found is None:
            svc = service()
            if subscription is not None:
                import copy

                sub = svc.subscriptions.get(subscription)
                if sub is None:
                    raise RuntimeError(
                        f"service {svc.name!r} has no subscription {subscription!r}; it defines: "
                        f"{', '.join(sorted(svc.subscriptions)) or 'none'}"
                    )
                svc = copy.copy(svc)
                svc.subscriptions = {subscription: sub}
            from eventual.core.runtime import Runtime

            from ..adapters import build_ports

            clock = _clock
            if clock is None:
                from eventual.core.runtime import RealClock

                clock = RealClock()
            ports = build_ports(names(), clock, cache_commits=cache_commits)
            found = Runtime(svc, ports, clock=clock)
            _runtimes[kind] = found
        return found


class DeferredRuntime:
    """Stands for the container's Runtime of one kind and builds it (:func:`runtime`) on first
    use: the command handler gives this to the HTTP layer, so a command that never calls the
    runtime never loads the engine and the AWS adapters."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def __getattr__(self, name: str) -> Any:
        return getattr(runtime(self._kind), name)

    def __repr__(self) -> str:
        return f"DeferredRuntime({self._kind!r})"


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a handler's async body on the container's event loop."""
    global _runner
    with _lock:
        if _runner is None:
            import asyncio

            _runner = asyncio.Runner()
        runner = _runner
    return runner.run(coro)


def sqs_response(failed: list[str]) -> dict[str, Any]:
    """The SQS partial-batch response (``ReportBatchItemFailures``)."""
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def last_attempt(record: dict[str, Any]) -> bool:
    """Whether this SQS record is on its queue's last attempt: failing now sends it to the
    dead-letter queue (``ApproximateReceiveCount`` has reached the queue's ``maxReceiveCount``,
    which the construct puts in the function's environment)."""
    from ..names import DEFAULT_MAX_RECEIVE_COUNT, ENV_MAX_RECEIVE_COUNT

    try:
        received = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        limit = int(os.environ.get(ENV_MAX_RECEIVE_COUNT) or DEFAULT_MAX_RECEIVE_COUNT)
    except ValueError:
        return False
    return received >= limit


async def fail_dead_lettered(
    rt: Runtime, execution_id: str, what: str, count: int, error: BaseException
) -> None:
    """Fail ``execution_id``: ``count`` messages of ``what`` failed on their last attempt
    (``error`` the last time) and go to the dead-letter queue. It cannot go on without them:
    its record says why and where they are; ``eventual dlq`` lists and redrives them. A
    failure to fail it is logged: the messages are dead-lettered either way."""
    import logging

    from eventual.core.errors import EventualError

    from ..names import DEFAULT_MAX_RECEIVE_COUNT, ENV_MAX_RECEIVE_COUNT

    limit = os.environ.get(ENV_MAX_RECEIVE_COUNT) or DEFAULT_MAX_RECEIVE_COUNT
    reason = EventualError(
        f"{count} message(s) of its {what} failed {limit} times and were moved to the "
        f"dead-letter queue (last error: {type(error).__name__}: {error}); see them with "
        "`eventual dlq list`",
        name="DeadLettered",
    )
    try:
        if await rt.fail_execution(execution_id, reason):
            logging.getLogger("eventual.aws").error(
                "execution %s failed: its %s message(s) were dead-lettered", execution_id, what
            )
    except Exception:
        logging.getLogger("eventual.aws").exception(
            "could not mark execution %s failed after its messages were dead-lettered",
            execution_id,
        )
