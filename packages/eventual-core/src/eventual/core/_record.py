"""Value classes that cost nothing to define.

A dataclass compiles its generated methods (``__init__``, ``__repr__``, ``__eq__``, and for a
frozen one ``__hash__``, ``__setattr__`` and ``__delattr__``) with ``exec`` when its module is
imported: millions of instructions per class, which every AWS handler pays on a cold start. The
value classes on that path (the engine's commands, the runtime's requests) derive from
:class:`Record` (as ``@dataclass(slots=True)`` would make them) or :class:`FrozenRecord` (as
``@dataclass(frozen=True)``) instead. Each names its fields in ``__slots__`` and ``_fields``,
in the order of its ``__init__``'s parameters, and writes that ``__init__``; equality,
``repr``, ``match`` and, for a frozen one, hashing and immutability behave as the dataclass's.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any, ClassVar

init_field = object.__setattr__
"""``init_field(self, name, value)``: how a :class:`FrozenRecord`'s ``__init__`` sets a field."""


class Record:
    """Base of a mutable value class with slots (unhashable, as a dataclass with ``eq``)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__match_args__ = cls._fields

    def _values(self) -> tuple[Any, ...]:
        return tuple([getattr(self, name) for name in self._fields])

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{self.__class__.__qualname__}({fields})"


class FrozenRecord(Record):
    """Base of an immutable, hashable value class; its ``__init__`` sets each field with
    :data:`init_field`."""

    __slots__ = ()

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # copy and pickle rebuild it through __init__ (they would set the slots one by one).
        return (self.__class__, self._values())
