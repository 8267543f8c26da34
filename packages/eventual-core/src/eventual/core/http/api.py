"""Commands, HTTP routes and middleware: the definitions and their transport-neutral types.

``Request``/``Response`` are plain objects, independent of any server: the dev server's ASGI
adapter and the API Gateway adapter translate to and from them.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar, cast, overload
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel

from ..definitions.base import Definition, _register
from ..errors import EventualError
from ..serialization import MAX_JSON_DEPTH, JsonTooDeep, Signature, from_json, loads, to_json

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
# Made once (json.dumps with an argument builds a new encoder for every document).
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_SLOW: Any = object()
"""``CommandDefinition.parse_body``: the body needs the general path."""


class Headers(dict[str, str]):
    """A case-insensitive header mapping (keys are stored lower-cased)."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        super().__init__()
        if not items:
            return
        if isinstance(items, Headers):  # lower-cased already
            super().update(items)
            return
        for k, v in dict(items).items():
            super().__setitem__(k.lower(), v)

    @classmethod
    def lowered(cls, items: dict[str, str]) -> Headers:
        """Headers from a dict whose keys are lower-case already (a server's parsed request
        headers): no key is lowered again."""
        headers = cls()
        dict.update(headers, items)
        return headers

    def __setitem__(self, key: str, value: str) -> None:
        super().__setitem__(key.lower(), value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class HttpError(EventualError):
    """Raise from a route, command or middleware to answer with ``status`` and a message.

    Clients raise it too, carrying the status and the server's error body."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        name: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, name=name)
        self.status = status
        self.details = details

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.name}: {self.message}"


class Request:
    """An HTTP request, independent of the server that received it."""

    def __init__(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.method = method.upper()
        self.url = url
        parts = urlsplit(url)
        self.path = parts.path or "/"
        self.query: dict[str, str] = (
            dict(parse_qsl(parts.query, keep_blank_values=True)) if parts.query else {}
        )
        self.headers = Headers(headers)
        if isinstance(body, str):
            body = body.encode()
        self._body = body or b""
        self.params: dict[str, str] = dict(params) if params else {}

    async def body(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode("utf-8", errors="replace")

    async def json(self) -> Any:
        if not self._body:
            return None
        try:
            return loads(self._body)
        except JsonTooDeep as exc:
            raise HttpError(400, f"the request body is refused: {exc}", name="BadRequest") from None
        except ValueError as exc:
            raise HttpError(
                400, f"the request body is not valid JSON: {exc}", name="BadRequest"
            ) from None

    @classmethod
    def received(
        cls, method: str, url: str, path: str, query: str, headers: Headers, body: bytes
    ) -> Request:
        """A request as a server parsed it (``url`` for the record, ``path`` decoded, the raw
        ``query`` string, ``headers`` lower-cased and the request's own): nothing is parsed
        or copied again."""
        request = cls.__new__(cls)
        request.method = method
        request.url = url
        request.path = path or "/"
        request.query = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        request.headers = headers
        request._body = body
        request.params = {}
        return request

    def __repr__(self) -> str:
        return f"Request({self.method} {self.url})"


class Response:
    """An HTTP response: ``Response(body=None, *, status=200, headers=None)``."""

    def __init__(
        self,
        body: str | bytes | None = None,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.headers = Headers(headers)
        if isinstance(body, str):
            self.headers.setdefault("content-type", "text/plain; charset=utf-8")
            body = body.encode()
        self.body: bytes = body or b""

    @classmethod
    def json(
        cls, obj: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        return cls.json_value(to_json(obj), status=status, headers=headers)

    @classmethod
    def json_value(
        cls, value: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Response:
        """:meth:`json` of a value that is JSON already (dicts, lists, str, numbers, bools,
        None), as a command's serialized output is: not converted again."""
        response = cls.__new__(cls)  # its own headers, made here: not copied again
        response.status = status
        response.headers = h = Headers(headers)
        dict.__setitem__(h, "content-type", "application/json")
        response.body = _COMPACT.encode(value).encode()
        return response

    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"Response(status={self.status}, body={self.body[:80]!r})"


class CommandContext(dict[str, Any]):
    """The context middleware passes along; commands receive it as their second parameter.

    A dict for middleware data (``context["user"]``) with the service's ``service_name`` and
    ``service_url`` and the ``request`` being served."""

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        service_name: str = "",
        service_url: str = "",
        request: Request | None = None,
    ) -> None:
        super().__init__(data or {})
        self.service_name = service_name
        self.service_url = service_url
        self.request = request

    def derive(self, data: Mapping[str, Any]) -> CommandContext:
        if isinstance(data, CommandContext):
            return data
        return CommandContext(
            data, service_name=self.service_name, service_url=self.service_url, request=self.request
        )


Next = Callable[[Mapping[str, Any]], Awaitable[Response]]
Middleware = Callable[[Request, CommandContext, Next], Awaitable[Response]]
RouteHandler = Callable[..., Awaitable[Response]]


def _caller_module(depth: int) -> str:
    import sys

    return sys._getframe(depth).f_globals.get("__name__", "__main__")


class CommandDefinition(Definition, Generic[I, O]):
    """An RPC over HTTP: ``POST /rpc/{name}``, and REST at ``path`` when given."""

    kind = "commands"

    def __init__(
        self,
        name: str,
        fn: Callable[..., Awaitable[O]],
        *,
        path: str | None = None,
        method: str = "POST",
        middlewares: list[Middleware] | None = None,
        summary: str | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"command {name!r}: the handler must be an `async def` function")
        self.name = name
        self.fn = fn
        self.module = fn.__module__
        self.path = _normalise_path(path) if path else None
        self.method = method.upper()
        if self.method not in METHODS:
            raise ValueError(f"command {name!r}: unknown method {method!r}")
        self.middlewares = middlewares if middlewares is not None else []
        self.signature = Signature(fn)
        params = self.signature.params
        if len(params) > 2:
            raise TypeError(
                f"command {name!r}: a command takes an input and, optionally, a CommandContext"
            )
        self.has_input = len(params) >= 1
        self.wants_context = len(params) == 2
        self.input_type: Any = self.signature.param_types[0] if params else type(None)
        self.output_type: Any = self.signature.return_type
        self.summary = summary or (inspect.getdoc(fn) or "").split("\n\n")[0] or None
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        _register(self)

    async def __call__(self, input: I, context: CommandContext | None = None) -> O:
        """Call the handler directly (no HTTP, no middleware)."""
        args: list[Any] = []
        if self.has_input:
            args.append(input)
        if self.wants_context:
            args.append(context or CommandContext())
        return await self.fn(*args)

    def parse_input(self, data: Any) -> Any:
        return from_json(data, self.input_type)

    def parse_body(self, body: bytes) -> Any:
        """The input of an RPC body parsed straight into a model input (pydantic parses and
        validates the bytes at once), or ``_SLOW`` where the general path must decide: any
        other input type, a body nested deep enough to be refused, a JSON constant
        pydantic's parser would take (``NaN``), or any error (the general path words it)."""
        tp = self.input_type
        if not (isinstance(tp, type) and issubclass(tp, BaseModel)):
            return _SLOW
        if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH:
            return _SLOW
        if b"NaN" in body or b"Infinity" in body:
            return _SLOW
        try:
            return tp.model_validate_json(body)
        except ValueError:  # a ValidationError too: worded by the general path
            return _SLOW

    def output_to_json(self, value: Any) -> Any:
        return to_json(value, self.output_type)

    def output_bytes(self, value: Any) -> bytes | None:
        """The JSON of an output that is exactly the declared model, serialized by the model
        at once (as ``output_to_json`` would, then encoded); ``None`` for any other value."""
        if type(value) is self.output_type and isinstance(value, BaseModel):
            return value.__pydantic_serializer__.to_json(value)
        return None


class CommandDecorator(Protocol):
    """What ``@command("name", ...)`` returns: types the definition from the handler, so
    ``CommandDefinition[I, O]`` carries the handler's input (first parameter) and output."""

    @overload
    def __call__(self, fn: Callable[[], Awaitable[O]], /) -> CommandDefinition[None, O]: ...
    @overload
    def __call__(self, fn: Callable[[I], Awaitable[O]], /) -> CommandDefinition[I, O]: ...
    @overload
    def __call__(
        self, fn: Callable[[I, CommandContext], Awaitable[O]], /
    ) -> CommandDefinition[I, O]: ...


class ApiRoute(Definition):
    """A raw HTTP route: ``Request -> Response`` behind a middleware chain."""

    kind = "routes"

    def __init__(
        self, method: str, path: str, fn: RouteHandler, middlewares: list[Middleware]
    ) -> None:
        self.method = method.upper()
        self.path = _normalise_path(path)
        self.name = f"{self.method} {self.path}"
        self.fn = fn
        self.module = getattr(fn, "__module__", None) or _caller_module(4)
        self.middlewares = middlewares
        sig = inspect.signature(fn)
        self.wants_context = len(sig.parameters) >= 2
        _register(self)

    async def __call__(self, request: Request, context: CommandContext | None = None) -> Response:
        if self.wants_context:
            return await self.fn(request, context or CommandContext())
        return await self.fn(request)


def _normalise_path(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    return path


# A pattern string, compiled (and cached by ``re``) when a service first declares a path: a
# service without REST paths does not pay for it on a Lambda's cold start.
_PARAM = r"\{([A-Za-z_][A-Za-z0-9_]*)(\+)?\}"


def compile_path(path: str) -> re.Pattern[str]:
    """``/users/{id}`` -> a regex with named groups; ``{rest+}`` matches several segments."""
    out = ""
    pos = 0
    for m in re.finditer(_PARAM, path):
        out += re.escape(path[pos : m.start()])
        out += f"(?P<{m.group(1)}>.+)" if m.group(2) else f"(?P<{m.group(1)}>[^/]+)"
        pos = m.end()
    out += re.escape(path[pos:])
    return re.compile(f"^{out}/?$")


class Router:
    """Registers commands and routes behind a middleware chain.

    ``api`` is the root router; ``api.use(mw)`` returns a new router whose chain starts with
    ``mw``; ``router.use(mw2)`` appends to that router's chain."""

    def __init__(self, middlewares: list[Middleware] | None = None) -> None:
        self.middlewares: list[Middleware] = list(middlewares or [])

    def use(self, middleware: Middleware) -> Router:
        if self is api:
            return Router([middleware])
        self.middlewares.append(middleware)
        return self

    @overload
    def command(self, fn: Callable[[], Awaitable[O]], /) -> CommandDefinition[None, O]: ...
    @overload
    def command(self, fn: Callable[[I], Awaitable[O]], /) -> CommandDefinition[I, O]: ...
    @overload
    def command(
        self, fn: Callable[[I, CommandContext], Awaitable[O]], /
    ) -> CommandDefinition[I, O]: ...
    @overload
    def command(
        self,
        name: str | None = None,
        fn: None = None,
        /,
        *,
        path: str | None = None,
        method: str = "POST",
        summary: str | None = None,
    ) -> CommandDecorator: ...
    @overload
    def command(
        self, name: str, fn: Callable[[], Awaitable[O]], /, **options: Any
    ) -> CommandDefinition[None, O]: ...
    @overload
    def command(
        self, name: str, fn: Callable[[I], Awaitable[O]], /, **options: Any
    ) -> CommandDefinition[I, O]: ...
    @overload
    def command(
        self, name: str, fn: Callable[[I, CommandContext], Awaitable[O]], /, **options: Any
    ) -> CommandDefinition[I, O]: ...
    def command(self, name: Any = None, fn: Any = None, /, **options: Any) -> Any:
        """``@router.command``, ``@router.command("name", path="/x")``, ``command("name", fn)``."""
        # Definitions share the router's list, so a middleware added later with use() applies.
        chain = self.middlewares if self is not api else []
        if callable(name):
            f = cast(Any, name)
            return CommandDefinition(f.__name__, f, middlewares=chain, **options)
        if fn is not None:
            return CommandDefinition(name, fn, middlewares=chain, **options)

        def deco(f: Callable[..., Awaitable[O]]) -> CommandDefinition[Any, O]:
            return CommandDefinition(name or f.__name__, f, middlewares=chain, **options)

        return deco

    def route(self, method: str, path: str) -> Callable[[RouteHandler], ApiRoute]:
        chain = self.middlewares if self is not api else []

        def deco(fn: RouteHandler) -> ApiRoute:
            return ApiRoute(method, path, fn, chain)

        return deco

    def get(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("POST", path)

    def put(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("PUT", path)

    def patch(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("PATCH", path)

    def delete(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("DELETE", path)

    def head(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("HEAD", path)

    def options(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("OPTIONS", path)

    def all(self, path: str) -> Callable[[RouteHandler], ApiRoute]:
        return self.route("ANY", path)


api = Router()


@overload
def command(fn: Callable[[], Awaitable[O]], /) -> CommandDefinition[None, O]: ...
@overload
def command(fn: Callable[[I], Awaitable[O]], /) -> CommandDefinition[I, O]: ...
@overload
def command(fn: Callable[[I, CommandContext], Awaitable[O]], /) -> CommandDefinition[I, O]: ...
@overload
def command(
    name: str | None = None,
    fn: None = None,
    /,
    *,
    path: str | None = None,
    method: str = "POST",
    summary: str | None = None,
) -> CommandDecorator: ...
@overload
def command(
    name: str, fn: Callable[[], Awaitable[O]], /, **options: Any
) -> CommandDefinition[None, O]: ...
@overload
def command(
    name: str, fn: Callable[[I], Awaitable[O]], /, **options: Any
) -> CommandDefinition[I, O]: ...
@overload
def command(
    name: str, fn: Callable[[I, CommandContext], Awaitable[O]], /, **options: Any
) -> CommandDefinition[I, O]: ...
def command(name: Any = None, fn: Any = None, /, **options: Any) -> Any:
    """Define a command: ``@command``, ``@command("name", path="/orders/{id}", method="GET")``."""
    return api.command(name, fn, **options)
