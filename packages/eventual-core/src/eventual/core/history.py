"""The history format: the recorded events of one execution.

Every event is a pydantic model discriminated by its ``type`` field and serialises to JSON.
*Input* events reach an execution from outside (its start, task results, timers firing,
signals, child results); *call* events are what the workflow did in response (tasks
scheduled, timers started, signals sent, events emitted, its completion). The engine replays
input events and checks that the code makes the recorded calls, in order.

The format is versioned by :data:`HISTORY_FORMAT_VERSION`; see the package README for the
table of events. An exported history is ``{"version": 1, "events": [...]}``.
"""

# No ``from __future__ import annotations`` here: pydantic would have to compile every field's
# annotation from its string when the module is imported; evaluated ones cost nothing more.
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .serialization import dumps

HISTORY_FORMAT_VERSION = 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _empty_list() -> list[Any]:
    # A default factory written in Python: for a builtin such as ``list``, pydantic reads the
    # signature from its text form, which compiles the tokenizer's large regular expression
    # (some 13 million instructions on every cold start of an AWS handler).
    return []


# ``defer_build``: a model's validator and serializer are built when it is first used, not at
# import. A Lambda handler's first event uses two or three of these twenty models; building all
# of them (and the union of all of them) at import was most of what eventual-core cost a cold
# start.
_CONFIG = ConfigDict(frozen=True, defer_build=True)


class _Event(BaseModel):
    model_config = _CONFIG
    timestamp: datetime = _EPOCH

    @property
    def id(self) -> str:
        raise NotImplementedError

    @property
    def is_input(self) -> bool:
        return False


class _Input(_Event):
    @property
    def is_input(self) -> bool:
        return True


class _SeqInput(_Input):
    seq: int

    @property
    def id(self) -> str:
        return f"{self.seq}:{self.type}"  # type: ignore[attr-defined]


class _AttemptInput(_Input):
    seq: int
    attempt: int = 1

    @property
    def id(self) -> str:
        return f"{self.seq}:{self.type}:{self.attempt}"  # type: ignore[attr-defined]


class ParentRef(BaseModel):
    model_config = _CONFIG
    execution_id: str
    seq: int


# ---------------------------------------------------------------- input events


class WorkflowStarted(_Input):
    type: Literal["WorkflowStarted"] = "WorkflowStarted"
    workflow: str
    execution_id: str
    input: Any = None
    timeout_at: datetime | None = None
    parent: ParentRef | None = None

    @property
    def id(self) -> str:
        return "WorkflowStarted"


class TaskSucceeded(_AttemptInput):
    type: Literal["TaskSucceeded"] = "TaskSucceeded"
    result: Any = None


class TaskFailed(_AttemptInput):
    type: Literal["TaskFailed"] = "TaskFailed"
    error: str
    message: str = ""


class TaskTimedOut(_AttemptInput):
    type: Literal["TaskTimedOut"] = "TaskTimedOut"


class TaskHeartbeatTimedOut(_AttemptInput):
    type: Literal["TaskHeartbeatTimedOut"] = "TaskHeartbeatTimedOut"


class TaskRetryDue(_AttemptInput):
    type: Literal["TaskRetryDue"] = "TaskRetryDue"


class TimerCompleted(_SeqInput):
    type: Literal["TimerCompleted"] = "TimerCompleted"


class ChildWorkflowSucceeded(_SeqInput):
    type: Literal["ChildWorkflowSucceeded"] = "ChildWorkflowSucceeded"
    result: Any = None


class ChildWorkflowFailed(_SeqInput):
    type: Literal["ChildWorkflowFailed"] = "ChildWorkflowFailed"
    error: str
    message: str = ""


class SignalReceived(_Input):
    type: Literal["SignalReceived"] = "SignalReceived"
    signal_id: str
    signal: str
    payload: Any = None

    @property
    def id(self) -> str:
        return f"signal:{self.signal_id}"


class WorkflowTimedOut(_Input):
    type: Literal["WorkflowTimedOut"] = "WorkflowTimedOut"

    @property
    def id(self) -> str:
        return "WorkflowTimedOut"


# ---------------------------------------------------------------- call events


class _Call(_Event):
    def signature(self) -> str:
        """What replay compares: kind, name and input (never the timestamp)."""
        return dumps(self.model_dump(mode="json", exclude={"timestamp"}))

    def describe(self) -> str:
        return self.signature()


class TaskScheduled(_Call):
    type: Literal["TaskScheduled"] = "TaskScheduled"
    seq: int
    name: str
    args: list[Any] = Field(default_factory=_empty_list)
    attempt: int = 1
    timeout: float | None = None
    heartbeat_timeout: float | None = None

    @property
    def id(self) -> str:
        return f"{self.seq}:TaskScheduled:{self.attempt}"

    def signature(self) -> str:
        return dumps(["task", self.seq, self.name, self.args, self.attempt])

    def describe(self) -> str:
        return f"task {self.name!r} with arguments {dumps(self.args)}"


class TaskRetryScheduled(_Call):
    type: Literal["TaskRetryScheduled"] = "TaskRetryScheduled"
    seq: int
    attempt: int
    until: datetime
    error: str
    message: str = ""

    @property
    def id(self) -> str:
        return f"{self.seq}:TaskRetryScheduled:{self.attempt}"

    def signature(self) -> str:
        return dumps(["retry", self.seq, self.attempt])

    def describe(self) -> str:
        return f"retry of the task at seq {self.seq} (attempt {self.attempt})"


class TimerScheduled(_Call):
    type: Literal["TimerScheduled"] = "TimerScheduled"
    seq: int
    until: datetime

    @property
    def id(self) -> str:
        return f"{self.seq}:TimerScheduled"

    def signature(self) -> str:
        # A changed duration is tolerated: the recorded timer stands.
        return dumps(["timer", self.seq])

    def describe(self) -> str:
        return f"timer until {self.until.isoformat()}"


class ChildWorkflowScheduled(_Call):
    type: Literal["ChildWorkflowScheduled"] = "ChildWorkflowScheduled"
    seq: int
    name: str
    input: Any = None
    execution_id: str

    @property
    def id(self) -> str:
        return f"{self.seq}:ChildWorkflowScheduled"

    def signature(self) -> str:
        return dumps(["child", self.seq, self.name, self.input])

    def describe(self) -> str:
        return f"child workflow {self.name!r} with input {dumps(self.input)}"


class SignalSent(_Call):
    type: Literal["SignalSent"] = "SignalSent"
    seq: int
    execution_id: str
    signal: str
    payload: Any = None
    signal_id: str

    @property
    def id(self) -> str:
        return f"{self.seq}:SignalSent"

    def signature(self) -> str:
        return dumps(["signal", self.seq, self.execution_id, self.signal, self.payload])

    def describe(self) -> str:
        return f"signal {self.signal!r} to {self.execution_id!r} with {dumps(self.payload)}"


class EmittedEvent(BaseModel):
    model_config = _CONFIG
    name: str
    payload: Any = None


class EventsEmitted(_Call):
    type: Literal["EventsEmitted"] = "EventsEmitted"
    seq: int
    events: list[EmittedEvent]

    @property
    def id(self) -> str:
        return f"{self.seq}:EventsEmitted"

    def signature(self) -> str:
        return dumps(["emit", self.seq, [e.model_dump(mode="json") for e in self.events]])

    def describe(self) -> str:
        names = ", ".join(sorted({e.name for e in self.events}))
        return f"emit of {len(self.events)} event(s) {names}"


class PatchMarked(_Call):
    """``patched(patch)`` answered True: the execution takes the patch's new branch (see
    ``eventual.core.patched``). Replay answers True again only where this marker is recorded."""

    type: Literal["PatchMarked"] = "PatchMarked"
    seq: int
    patch: str

    @property
    def id(self) -> str:
        return f"{self.seq}:PatchMarked"

    def signature(self) -> str:
        return dumps(["patch", self.seq, self.patch])

    def describe(self) -> str:
        return f"patch marker {self.patch!r}"


class WorkflowSucceeded(_Call):
    type: Literal["WorkflowSucceeded"] = "WorkflowSucceeded"
    result: Any = None

    @property
    def id(self) -> str:
        return "WorkflowSucceeded"

    def signature(self) -> str:
        return dumps(["succeeded", self.result])

    def describe(self) -> str:
        return f"workflow succeeded with {dumps(self.result)}"


class WorkflowFailed(_Call):
    type: Literal["WorkflowFailed"] = "WorkflowFailed"
    error: str
    message: str = ""

    @property
    def id(self) -> str:
        return "WorkflowFailed"

    def signature(self) -> str:
        return dumps(["failed", self.error, self.message])

    def describe(self) -> str:
        return f"workflow failed with {self.error}: {self.message}"


InputEvent = (
    WorkflowStarted
    | TaskSucceeded
    | TaskFailed
    | TaskTimedOut
    | TaskHeartbeatTimedOut
    | TaskRetryDue
    | TimerCompleted
    | ChildWorkflowSucceeded
    | ChildWorkflowFailed
    | SignalReceived
    | WorkflowTimedOut
)
CallEvent = (
    TaskScheduled
    | TaskRetryScheduled
    | TimerScheduled
    | ChildWorkflowScheduled
    | SignalSent
    | EventsEmitted
    | PatchMarked
    | WorkflowSucceeded
    | WorkflowFailed
)
HistoryEvent = Annotated[InputEvent | CallEvent, Field(discriminator="type")]

if TYPE_CHECKING:
    # Built on first use (module ``__getattr__`` below): each builds every event's model.
    history_adapter: TypeAdapter[list[HistoryEvent]]
    event_adapter: TypeAdapter[HistoryEvent]

_adapters: dict[str, TypeAdapter[Any]] = {}


def __getattr__(name: str) -> Any:
    if name == "history_adapter" or name == "event_adapter":
        found = _adapters.get(name)
        if found is None:
            tp: Any = list[HistoryEvent] if name == "history_adapter" else HistoryEvent
            found = _adapters[name] = TypeAdapter(tp)
        return found
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_EVENT_TYPES: dict[str, type[BaseModel]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        WorkflowStarted,
        TaskSucceeded,
        TaskFailed,
        TaskTimedOut,
        TaskHeartbeatTimedOut,
        TaskRetryDue,
        TimerCompleted,
        ChildWorkflowSucceeded,
        ChildWorkflowFailed,
        SignalReceived,
        WorkflowTimedOut,
        TaskScheduled,
        TaskRetryScheduled,
        TimerScheduled,
        ChildWorkflowScheduled,
        SignalSent,
        EventsEmitted,
        PatchMarked,
        WorkflowSucceeded,
        WorkflowFailed,
    )
}


def validate_event(data: Any) -> HistoryEvent:
    """One event from its JSON-compatible form (or its JSON text): what
    ``event_adapter.validate_python`` returns, through the model its ``type`` names, so only
    the models actually met are ever built."""
    if isinstance(data, (str, bytes, bytearray)):
        import json

        data = json.loads(data)
    if isinstance(data, BaseModel):
        return data  # type: ignore[return-value]
    cls = _EVENT_TYPES.get(str(data.get("type"))) if isinstance(data, dict) else None
    if cls is not None:
        try:
            return cls.model_validate(data)  # type: ignore[return-value]
        except ValueError:
            pass  # the union's own error, below
    return __getattr__("event_adapter").validate_python(data)  # type: ignore[no-any-return]


def validate_events(data: Any) -> list[HistoryEvent]:
    """A list of events from its JSON-compatible form (or its JSON text), as
    ``history_adapter.validate_python`` reads it."""
    if isinstance(data, (str, bytes, bytearray)):
        import json

        data = json.loads(data)
    if not isinstance(data, list):
        return __getattr__("history_adapter").validate_python(data)  # type: ignore[no-any-return]
    try:
        return [validate_event(e) for e in data]
    except Exception:
        # Report the error the way the list adapter does (with the item's index).
        return __getattr__("history_adapter").validate_python(data)  # type: ignore[no-any-return]


def events_json(events: list[HistoryEvent]) -> bytes:
    """A list of events' JSON: what ``history_adapter.dump_json`` writes, byte for byte."""
    return b"[" + b",".join(event_json(e) for e in events) + b"]"


def event_dict(event: HistoryEvent) -> dict[str, Any]:
    """One event's JSON-compatible form: what ``event_adapter.dump_python(mode="json")``
    returns."""
    return event.model_dump(mode="json")


def event_json(event: HistoryEvent) -> bytes:
    """One event's JSON: what ``event_adapter.dump_json`` writes, through the event's own
    serializer (without the union's dispatch on ``type``, which costs as much again)."""
    return event.__pydantic_serializer__.to_json(event)


def parse_history(data: Any) -> list[HistoryEvent]:
    """Events from their JSON form: a list, or an export ``{"version": 1, "events": [...]}``."""
    if isinstance(data, (str, bytes)):
        import json

        data = json.loads(data)
    if isinstance(data, dict):
        version = data.get("version", HISTORY_FORMAT_VERSION)
        if version != HISTORY_FORMAT_VERSION:
            raise ValueError(
                f"history format version {version} is not supported; this Eventual reads "
                f"version {HISTORY_FORMAT_VERSION}"
            )
        data = data.get("events", [])
    if data and all(isinstance(e, BaseModel) for e in data):
        return list(data)
    return validate_events(data)


def export_history(events: list[HistoryEvent]) -> dict[str, Any]:
    """The versioned JSON form of a history."""
    return {
        "version": HISTORY_FORMAT_VERSION,
        "events": [event_dict(e) for e in events],
    }
