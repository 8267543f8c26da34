"""JSON conversion of inputs and outputs, driven by type hints through pydantic."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, get_type_hints

from pydantic import TypeAdapter

_EMPTY = inspect.Parameter.empty


@lru_cache(maxsize=4096)
def adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def to_json(value: Any, tp: Any = Any) -> Any:
    """A JSON-compatible value (dicts, lists, str, numbers, bools, None)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    try:
        return adapter(tp).dump_python(value, mode="json")
    except Exception:
        return adapter(Any).dump_python(value, mode="json")


_PLAIN = frozenset({int, str, float, bool})


def from_json(value: Any, tp: Any = Any) -> Any:
    """Validate a JSON-compatible value into ``tp`` (a pydantic ``ValidationError`` if bad)."""
    if tp is Any or (type(value) is tp and tp in _PLAIN):
        return value  # nothing pydantic would change
    return adapter(tp).validate_python(value)


def dumps(value: Any) -> str:
    """Canonical JSON text (sorted keys), used to compare recorded and replayed inputs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def json_schema(tp: Any) -> dict[str, Any]:
    try:
        return adapter(tp).json_schema()
    except Exception:
        return {}


class Signature:
    """Parameters and return type of a handler, resolved once."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        try:
            hints = get_type_hints(fn)
        except Exception:
            hints = {}
        sig = inspect.signature(fn)
        self.sig = sig
        self.params: list[inspect.Parameter] = list(sig.parameters.values())
        self.param_types: list[Any] = [hints.get(p.name, Any) for p in self.params]
        self.return_type: Any = hints.get("return", Any)
        # The common case (plain positional parameters, all passed positionally) skips bind().
        self._simple = all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            or p.kind is inspect.Parameter.POSITIONAL_ONLY
            for p in self.params
        )
        if self.return_type is type(None):
            self.return_type = type(None)

    def bind_json(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Positional JSON arguments for a call, in parameter order."""
        if self._simple and not kwargs and len(args) == len(self.params):
            return [to_json(v, tp) for v, tp in zip(args, self.param_types, strict=True)]
        bound = self.sig.bind(*args, **kwargs)
        bound.apply_defaults()
        out: list[Any] = []
        for p, tp in zip(self.params, self.param_types, strict=True):
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                out.extend(to_json(v) for v in bound.arguments.get(p.name, ()))
            elif p.kind is inspect.Parameter.VAR_KEYWORD:
                if bound.arguments.get(p.name):
                    raise TypeError(f"{self.fn.__name__}: **kwargs are not supported")
            else:
                out.append(to_json(bound.arguments[p.name], tp))
        return out

    def load_args(self, values: list[Any]) -> list[Any]:
        """Typed arguments from their JSON form."""
        out: list[Any] = []
        for i, v in enumerate(values):
            if i < len(self.params) and self.params[i].kind is not inspect.Parameter.VAR_POSITIONAL:
                out.append(from_json(v, self.param_types[i]))
            else:
                out.append(v)
        return out

    def input_schema(self) -> dict[str, Any]:
        props: dict[str, Any] = {}
        required: list[str] = []
        for p, tp in zip(self.params, self.param_types, strict=True):
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            props[p.name] = json_schema(tp)
            if p.default is _EMPTY:
                required.append(p.name)
        return {"type": "object", "properties": props, "required": required}
