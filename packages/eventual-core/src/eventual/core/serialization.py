"""JSON conversion of inputs and outputs, driven by type hints through pydantic."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, get_type_hints

from pydantic import BaseModel, TypeAdapter

_EMPTY = inspect.Parameter.empty
_NOT_PLAIN = object()


@lru_cache(maxsize=4096)
def adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _plain_copy(value: Any) -> Any:
    """A copy of ``value`` if it is plain JSON already (dicts with string keys, lists, str,
    int, finite float, bool, None): what pydantic's JSON-mode dump of it returns; else
    ``_NOT_PLAIN``."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        return value if value - value == 0 else _NOT_PLAIN  # inf and nan are not plain
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                return _NOT_PLAIN
            v = _plain_copy(v)
            if v is _NOT_PLAIN:
                return _NOT_PLAIN
            out[k] = v
        return out
    if t is list:
        items = []
        for v in value:
            v = _plain_copy(v)
            if v is _NOT_PLAIN:
                return _NOT_PLAIN
            items.append(v)
        return items
    return _NOT_PLAIN


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def to_json(value: Any, tp: Any = Any) -> Any:
    """A JSON-compatible value (dicts, lists, str, numbers, bools, None)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # Fast paths that build no adapter: a model of exactly the declared type goes through its
    # own serializer (what an adapter of that type would call), and a value that is plain JSON
    # already is copied as it is (what the adapter of ``Any`` returns for it).
    if isinstance(value, BaseModel) and (tp is Any or type(value) is tp):
        return value.model_dump(mode="json")
    if tp is Any:
        plain = _plain_copy(value)
        if plain is not _NOT_PLAIN:
            return plain
    try:
        return adapter(tp).dump_python(value, mode="json")
    except Exception:
        return adapter(Any).dump_python(value, mode="json")


_PLAIN = frozenset({int, str, float, bool})


def from_json(value: Any, tp: Any = Any) -> Any:
    """Validate a JSON-compatible value into ``tp`` (a pydantic ``ValidationError`` if bad)."""
    if tp is Any or (type(value) is tp and tp in _PLAIN):
        return value  # nothing pydantic would change
    if _is_model(tp):
        # The model's own validator, which an adapter of the model would compile again.
        return tp.model_validate(value)
    return adapter(tp).validate_python(value)


def dumps(value: Any) -> str:
    """Canonical JSON text (sorted keys), used to compare recorded and replayed inputs."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# How deeply JSON from outside (a request body, a CLI argument, a server's answer) may nest.
# Deeper documents would exhaust the stack somewhere between the parser and the store.
MAX_JSON_DEPTH = 100


class JsonTooDeep(ValueError):
    """A JSON document nested deeper than :data:`MAX_JSON_DEPTH` levels."""


def loads(data: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` for input from outside: raises ``ValueError`` for text that is not JSON
    or not UTF-8, and :class:`JsonTooDeep` (a ``ValueError``) for nesting deeper than
    ``max_depth`` (``[[1]]`` is two levels), instead of a ``RecursionError``."""
    if isinstance(data, str):
        brackets = data.count("[") + data.count("{")
    else:
        brackets = data.count(b"[") + data.count(b"{")
    try:
        if not isinstance(data, str):  # as json.loads: UTF-8, -16 or -32, by its first bytes
            # Two leading bytes neither NUL nor a BOM's are UTF-8 (JSON starts in ASCII).
            plain = len(data) > 1 and data[0] and data[1] and data[0] not in _BOM_STARTS
            data = data.decode("utf-8" if plain else json.detect_encoding(data), "surrogatepass")
        value = _DECODER.decode(data)
    except RecursionError:
        raise JsonTooDeep(_too_deep(max_depth)) from None
    # Fewer brackets than the limit cannot nest past it: only then is the value walked.
    if brackets > max_depth and _deeper_than(value, max_depth):
        raise JsonTooDeep(_too_deep(max_depth))
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value (JSON has no NaN or infinities)")


# Made once: json.loads with an argument builds a new decoder for every document.
_DECODER = json.JSONDecoder(parse_constant=_not_json)
_BOM_STARTS = frozenset({0xEF, 0xFE, 0xFF})


def _too_deep(limit: int) -> str:
    return f"the JSON is nested deeper than {limit} levels; send a flatter document"


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


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
