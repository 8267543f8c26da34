"""The transport-neutral HTTP layer: routing, middleware, validation and the error contract.

``HttpHandler(service, runtime).handle(request) -> response`` serves

- user commands at ``POST /rpc/{name}`` (and at their REST ``path`` when declared),
- ``api`` routes with their middleware chains,
- the system commands at ``POST /rpc/_system/{name}`` (see :mod:`.system`).

Errors follow one contract, the TypeScript Eventual's: a JSON body ``{"message": text}``
with ``data`` when there is more to say (the issue list of a validation error, each issue
``{code, path, message}``), and our error's name in ``error``; 400 for bad input, 404 for
unknown routes, 405 for a known path with another method, 413 for an oversized body, 503 when
the runtime's storage cannot take the request's writes (``StorageUnavailable``) and 500
otherwise. A handler's exception never puts a stack trace in the response; it is logged
instead.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .._context import pop_runtime, push_runtime
from ..errors import (
    EventualError,
    ExecutionAlreadyExists,
    ExecutionNotFound,
    InvalidInput,
    InvalidTaskToken,
    StorageUnavailable,
    validation_details,
    validation_summary,
)
from .api import (
    _SLOW,
    ApiRoute,
    CommandContext,
    CommandDefinition,
    Headers,
    HttpError,
    Middleware,
    Request,
    Response,
    compile_path,
)

if TYPE_CHECKING:
    from .._context import RuntimeClient
    from ..service import Service

logger = logging.getLogger("eventual.http")

DEFAULT_MAX_BODY = 1024 * 1024
RPC_PREFIX = "/rpc/"
SYSTEM_PREFIX = "/rpc/_system/"


def error_response(
    status: int,
    error: str,
    message: str,
    *,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``{"message", "error", "data"?}``: ``data`` carries ``details`` (validation issues)."""
    body: dict[str, Any] = {"message": message, "error": error}
    if details is not None:
        body["data"] = details
    return Response.json(body, status=status, headers=headers)


def _validation_message(exc: ValidationError) -> str:
    return "invalid input: " + validation_summary(exc)


class _Match:
    def __init__(self, target: CommandDefinition[Any, Any] | ApiRoute, params: dict[str, str]):
        self.target = target
        self.params = params


class HttpHandler:
    """Serves one service over any transport that can build a :class:`Request`."""

    def __init__(
        self,
        service: Service,
        runtime: RuntimeClient | None = None,
        *,
        service_url: str = "",
        max_body: int = DEFAULT_MAX_BODY,
        system: Any = None,
    ) -> None:
        self.service = service
        self.runtime = runtime
        self.service_url = service_url
        self.max_body = max_body
        self._rest: list[tuple[re.Pattern[str], str, CommandDefinition[Any, Any] | ApiRoute]] = []
        for c in service.commands.values():
            if c.path:
                self._rest.append((compile_path(c.path), c.method, c))
        for r in service.routes:
            self._rest.append((compile_path(r.path), r.method, r))
        # Literal paths before parameterised ones, longer before shorter.
        self._rest.sort(key=lambda t: ("{" in getattr(t[2], "path", ""), -len(t[0].pattern)))
        if system is None and runtime is not None:
            from .system import SystemCommands

            system = SystemCommands(service, runtime)
        # ``system=False``: this handler serves no system commands (404), even with a runtime.
        self.system = system if system is not False else None

    # ------------------------------------------------------------ entry point

    async def handle(self, request: Request) -> Response:
        try:
            body = await request.body()
            if len(body) > self.max_body:
                return error_response(
                    413,
                    "PayloadTooLarge",
                    f"the request body is {len(body)} bytes; the limit is {self.max_body}",
                )
            if self.runtime is not None:
                token = push_runtime(self.runtime)
                try:
                    return await self._route(request)
                finally:
                    pop_runtime(token)
            return await self._route(request)
        except HttpError as exc:
            return error_response(exc.status, exc.name, exc.message, details=exc.details)
        except ValidationError as exc:
            return error_response(
                400, "ValidationError", _validation_message(exc), details=validation_details(exc)
            )
        except InvalidInput as exc:
            return error_response(400, exc.name, exc.message, details=exc.details)
        except InvalidTaskToken as exc:
            return error_response(400, exc.name, exc.message)
        except ExecutionNotFound as exc:
            return error_response(404, exc.name, exc.message)
        except ExecutionAlreadyExists as exc:
            # Also from a command that starts an execution under a name already taken.
            return error_response(409, exc.name, exc.message)
        except StorageUnavailable as exc:
            # The runtime's storage cannot take the write (read-only, disk full, locked):
            # nothing was recorded, and the same request succeeds once the cause is gone.
            return error_response(503, exc.name, exc.message, headers={"retry-after": "1"})
        except Exception as exc:
            logger.exception("%s %s failed", request.method, request.path)
            name = exc.name if isinstance(exc, EventualError) else type(exc).__name__
            message = exc.message if isinstance(exc, EventualError) else str(exc)
            return error_response(500, name, message)

    async def _route(self, request: Request) -> Response:
        path = request.path
        if path.startswith(SYSTEM_PREFIX):
            return await self._system(request, path[len(SYSTEM_PREFIX) :])
        if path.startswith(RPC_PREFIX):
            name = path[len(RPC_PREFIX) :].strip("/")
            command = self.service.commands.get(name)
            if command is not None:
                if request.method != "POST":
                    return error_response(
                        405,
                        "MethodNotAllowed",
                        f"RPC command {name!r} is called with POST, not {request.method}",
                        headers={"allow": "POST"},
                    )
                return await self._command(command, request, rpc=True)
        match, allowed = self._match(request.method, path)
        if match is None:
            if allowed:
                return error_response(
                    405,
                    "MethodNotAllowed",
                    f"{path} does not accept {request.method}; "
                    f"it accepts {', '.join(sorted(allowed))}",
                    headers={"allow": ", ".join(sorted(allowed))},
                )
            return error_response(404, "NotFound", f"no route for {request.method} {path}")
        request.params = match.params
        if isinstance(match.target, CommandDefinition):
            return await self._command(match.target, request, rpc=False)
        return await self._api_route(match.target, request)

    def _match(self, method: str, path: str) -> tuple[_Match | None, set[str]]:
        allowed: set[str] = set()
        for pattern, m, target in self._rest:
            found = pattern.match(path)
            if found is None:
                continue
            if m == method or m == "ANY" or (m == "GET" and method == "HEAD"):
                return _Match(target, found.groupdict()), allowed
            allowed.add(m)
        return None, allowed

    # ------------------------------------------------------------ middleware

    def _context(self, request: Request) -> CommandContext:
        return CommandContext(
            service_name=self.service.name, service_url=self.service_url, request=request
        )

    async def _chain(
        self,
        middlewares: list[Middleware],
        request: Request,
        final: Callable[[CommandContext], Awaitable[Response]],
    ) -> Response:
        root = self._context(request)
        if not middlewares:
            return await final(root)

        async def call(index: int, context: CommandContext) -> Response:
            if index == len(middlewares):
                return await final(context)

            async def next_(ctx: Mapping[str, Any] | None = None) -> Response:
                return await call(index + 1, context.derive(ctx if ctx is not None else context))

            response = await middlewares[index](request, context, next_)
            if not isinstance(response, Response):
                raise TypeError(
                    f"middleware {getattr(middlewares[index], '__name__', middlewares[index])!r} "
                    "must return a Response (return await next(context))"
                )
            return response

        return await call(0, root)

    # ------------------------------------------------------------ commands and routes

    async def _command(
        self, command: CommandDefinition[Any, Any], request: Request, *, rpc: bool
    ) -> Response:
        async def final(context: CommandContext) -> Response:
            args: list[Any] = []
            if command.has_input:
                body = await request.body()
                value = command.parse_body(body) if rpc and body else _SLOW
                if value is _SLOW:
                    data = await self._command_input(command, request, rpc=rpc)
                    value = command.parse_input(data)
                args.append(value)
            if command.wants_context:
                args.append(context)
            result = await command.fn(*args)
            if isinstance(result, Response):
                return result
            data = command.output_bytes(result)
            if data is not None:
                return Response(data, headers=_JSON_HEADERS)
            return Response.json_value(command.output_to_json(result))

        return await self._chain(command.middlewares, request, final)

    async def _command_input(
        self, command: CommandDefinition[Any, Any], request: Request, *, rpc: bool
    ) -> Any:
        body = await request.body()
        data: Any = await request.json() if body.strip() else None
        if rpc:
            return data
        # REST: path parameters (and the query string for methods without a body) merge into
        # an object input; a scalar input takes the single path parameter.
        merged: dict[str, Any] = {}
        if request.method in ("GET", "HEAD", "DELETE"):
            merged.update(request.query)
        if isinstance(data, dict):
            merged.update(data)
        elif data is not None:
            return data
        merged.update(request.params)
        if not command.has_input:
            return None
        if len(request.params) == 1 and not isinstance(data, dict) and not _is_object_type(command):
            return next(iter(request.params.values()))
        return merged

    async def _api_route(self, route: ApiRoute, request: Request) -> Response:
        async def final(context: CommandContext) -> Response:
            response = await route(request, context)
            if not isinstance(response, Response):
                raise TypeError(f"route {route.name} must return a Response")
            return response

        return await self._chain(route.middlewares, request, final)

    # ------------------------------------------------------------ system commands

    async def _system(self, request: Request, name: str) -> Response:
        if self.system is None:
            return error_response(404, "NotFound", "system commands are not served here")
        if request.method != "POST":
            return error_response(
                405,
                "MethodNotAllowed",
                "system commands are called with POST",
                headers={"allow": "POST"},
            )
        handler = self.system.get(name)
        if handler is None:
            return error_response(
                404,
                "NotFound",
                f"unknown system command {name!r}; known: {', '.join(self.system.names())}",
            )
        body = await request.json()
        if body is None and name not in _ID_BODY and not (await request.body()).strip():
            body = {}  # no body: no parameters (a JSON null is refused below, as any non-object)
        # The TypeScript clients send getExecution/getExecutionWorkflowHistory the bare
        # execution id as a JSON string.
        if not isinstance(body, dict) and not (isinstance(body, str) and name in _ID_BODY):
            message = (
                f"{name} takes the execution id as a JSON string"
                if name in _ID_BODY
                else f"{name} takes a JSON object"
            )
            raise HttpError(
                400,
                message,
                name="ValidationError",
                details=[{"code": "invalid_type", "path": [], "message": message}],
            )
        result = await handler(body)
        if isinstance(result, Response):
            return result
        if result is None:  # the original's ``undefined``: a 200 with no body
            return Response(b"", status=200)
        return Response.json(result)


_JSON_HEADERS = Headers({"content-type": "application/json"})

_ID_BODY = frozenset(
    {"getExecution", "waitExecution", "getExecutionHistory", "getExecutionWorkflowHistory"}
)


def _is_object_type(command: CommandDefinition[Any, Any]) -> bool:
    from pydantic import BaseModel

    tp = command.input_type
    return (isinstance(tp, type) and issubclass(tp, (BaseModel, dict))) or getattr(
        tp, "__origin__", None
    ) is dict


def json_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
