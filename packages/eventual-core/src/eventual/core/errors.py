"""Errors that cross execution boundaries.

An exception escaping a task, a child workflow or a workflow is recorded as
``{"error": <name>, "message": <text>}`` and raised again at the awaiting side as an
:class:`EventualError`. A user subclass of :class:`EventualError` is raised as itself:
subclasses register themselves by class name when they are defined.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError


class ErrorPayload(BaseModel):
    """The serialised form of an error: ``{"error": name, "message": text}``."""

    # Built when first used: importing this module (every handler does) builds no validator.
    model_config = ConfigDict(defer_build=True)

    error: str
    message: str = ""


class EventualError(Exception):
    """Base class of every error that crosses an Eventual boundary.

    ``EventualError(message="", *, name=None)``; ``.name`` defaults to the class name.
    """

    # Every subclass defined under each name, oldest first (two modules may reuse a name).
    _registry: ClassVar[dict[str, list[type[EventualError]]]] = {}

    def __init__(self, message: str = "", *, name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.name = name or type(self).__name__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_combined", False):
            EventualError._registry.setdefault(cls.__name__, []).append(cls)

    def __str__(self) -> str:
        if self.name == type(self).__name__:
            return self.message
        return f"{self.name}: {self.message}" if self.message else self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, message={self.message!r})"

    def to_payload(self) -> ErrorPayload:
        return ErrorPayload(error=self.name, message=self.message)


class Timeout(EventualError):
    """A task, a wait or an operation did not complete within its timeout."""


class HeartbeatTimeout(Timeout):
    """A task did not send a heartbeat within its ``heartbeat_timeout``."""


class WorkflowTimeout(Timeout):
    """A workflow did not complete within its ``timeout``."""


class DeterminismError(EventualError):
    """Workflow code did something other than what its recorded history says it did."""

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        seq: int | None = None,
        recorded: Any = None,
        actual: Any = None,
    ) -> None:
        super().__init__(message, name=name)
        self.seq = seq
        self.recorded = recorded
        self.actual = actual


class ServiceError(EventualError):
    """The service definition is invalid (duplicate names, unknown references, ...)."""


class InvalidInput(EventualError):
    """A value passed to an Eventual operation is not acceptable (served as HTTP 400).

    ``details``: the validation issues, ``[{code, path, message}]``, when a model refused it."""

    def __init__(
        self, message: str = "", *, name: str | None = None, details: list[Any] | None = None
    ) -> None:
        super().__init__(message, name=name)
        self.details = details


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    """The issues of a validation error as the original lists them (zod's shape)."""
    return [
        {
            "code": e.get("type", ""),
            "path": list(e.get("loc", ())),
            "message": e.get("msg", ""),
        }
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def check_valid(what: str, read: Callable[[Any], Any], value: Any) -> None:
    """``read(value)`` (a model's validation), its failure raised as :class:`InvalidInput`
    naming ``what``: a value that fails its declared model is refused before anything is
    recorded."""
    try:
        read(value)
    except ValidationError as exc:
        raise InvalidInput(
            f"invalid {what}: {validation_summary(exc)}", details=validation_details(exc)
        ) from None


def validation_summary(exc: ValidationError) -> str:
    """The first three issues in one line: ``items.0.qty: Input should be a valid integer``."""
    parts = []
    for e in exc.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in e.get("loc", ())) or "input"
        parts.append(f"{loc}: {e.get('msg', '')}")
    more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
    return "; ".join(parts) + more


class ExecutionAlreadyExists(EventualError):
    """An execution with that name exists with a different input."""


class ExecutionNotFound(EventualError):
    """No execution has that id."""


class InvalidTaskToken(EventualError):
    """A task token could not be decoded or names no waiting task."""


class StorageUnavailable(EventualError):
    """The runtime's storage cannot do what was asked right now (its file is read-only, the disk
    is full, another process holds its lock, ...): nothing was recorded, and the operation can
    be retried once the cause is removed. Served as HTTP 503; the message names the file and
    the fix. ``path`` is the file, ``reason`` one of ``read-only``, ``disk-full``, ``locked``,
    ``io-error``, ``damaged`` or ``cannot-open``."""

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        path: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, name=name)
        self.path = path
        self.reason = reason


class HistoryCorrupted(EventualError):
    """An execution's recorded history cannot be read back (a damaged row): the execution cannot
    be replayed, and fails with this error. ``execution_id`` and ``position`` (the index of the
    first unreadable event) say where."""

    def __init__(
        self,
        message: str = "",
        *,
        name: str | None = None,
        execution_id: str | None = None,
        position: int | None = None,
    ) -> None:
        super().__init__(message, name=name)
        self.execution_id = execution_id
        self.position = position


MAX_ERROR_MESSAGE = 16 * 1024
"""The longest message (in characters) recorded for an exception that escapes a task or a
workflow: the rest is cut, and the message says how long it was. So a failure always fits in
one queue message and history item (it never spills to the payload bucket)."""


def bounded_message(message: str) -> str:
    """``message``, cut to :data:`MAX_ERROR_MESSAGE` characters in all, ending with a note of
    its length (a message cut once, rethrown, is not cut again)."""
    if len(message) <= MAX_ERROR_MESSAGE:
        return message
    note = f"... [cut: {len(message):,} characters in all]"
    return message[: MAX_ERROR_MESSAGE - len(note)] + note


def error_payload(exc: BaseException) -> ErrorPayload:
    """Serialise any exception to ``{error, message}`` (the message bounded by
    :data:`MAX_ERROR_MESSAGE`)."""
    if isinstance(exc, EventualError):
        payload = exc.to_payload()
    else:
        payload = ErrorPayload(error=type(exc).__name__, message=str(exc))
    if len(payload.message) > MAX_ERROR_MESSAGE:
        payload = payload.model_copy(update={"message": bounded_message(payload.message)})
    return payload


_combined: dict[str, type[EventualError]] = {}


def _class_for(name: str) -> type[EventualError] | None:
    """The registered class of that name. When several modules define an error class with the
    same name, an error of that name is raised as an instance of all of them (a class made on
    the fly that inherits from each), so ``except TheirName`` catches it in every module."""
    classes = EventualError._registry.get(name)
    if not classes:
        return None
    if len(classes) == 1:
        return classes[0]
    bases = tuple(reversed(classes))
    combined = _combined.get(name)
    if combined is None or combined.__bases__ != bases:
        try:
            combined = type(name, bases, {"_combined": True})
        except TypeError:  # incompatible layouts: fall back to the newest definition
            return classes[-1]
        _combined[name] = combined
    return combined


def error_from_payload(error: str, message: str = "") -> EventualError:
    """Rebuild the exception to raise at the awaiting side.

    A registered :class:`EventualError` subclass of that name is raised as itself (see
    :func:`_class_for` when several modules share the name); anything else (``ValueError`` in
    a task, say) comes back as :class:`EventualError` carrying the name.
    """
    cls = _class_for(error)
    if cls is not None:
        try:
            exc = cls(message)
        except TypeError:
            exc = EventualError(message, name=error)
        exc.name = error
        return exc
    if error == "EventualError":
        return EventualError(message)
    return EventualError(message, name=error)


def matches_error(exc_name: str, candidates: list[str | type[BaseException]]) -> bool:
    """Whether an error name is listed (by name or by class, subclasses included)."""
    for c in candidates:
        if isinstance(c, str):
            if c == exc_name:
                return True
            continue
        if c.__name__ == exc_name:
            return True
        sub = _class_for(exc_name) or getattr(builtins, exc_name, None)
        if isinstance(sub, type) and issubclass(sub, c):
            return True
    return False
