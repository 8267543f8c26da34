"""The dev server's ASGI adapter: ASGI in, core's transport-neutral ``HttpHandler`` out.

``ServiceApp(service, runtime)`` is an ASGI application. It turns each HTTP request into an
``eventual.core.http.api.Request`` (streaming the body in and answering 413 as soon as it
grows past ``max_body``), hands it to ``HttpHandler(service, runtime).handle`` and writes the
``Response`` back. ``GET /openapi.json`` serves the service's OpenAPI 3.1 document. Any
exception that escapes becomes a 500 with ``{"error", "message"}``; the traceback goes to the
``eventual.http`` logger (the server log) and never to the caller.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from eventual.core.http.api import Headers, Request, Response
from eventual.core.http.handler import DEFAULT_MAX_BODY, HttpHandler, error_response
from eventual.core.http.openapi import build_openapi
from eventual.core.service import Service
from eventual.core.spec import build_spec

from .timeline import (
    ASSETS_PREFIX,
    EXECUTIONS_PATH,
    SERVICE_PATH,
    TIMELINE_PREFIX,
    asset,
    executions_page,
    service_page,
    timeline_page,
)

logger = logging.getLogger("eventual.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OPENAPI_PATH = "/openapi.json"


class BodyTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the request body is over {limit} bytes")
        self.size = size
        self.limit = limit


class ClientDisconnected(Exception):
    pass


class ServiceApp:
    """An ASGI app serving one service on one runtime.

    ``runtime`` may be ``None`` (then system commands answer 404). ``replace_service``
    swaps the service (the dev server's reload) for the requests that follow."""

    def __init__(
        self,
        service: Service,
        runtime: Any = None,
        *,
        max_body: int = DEFAULT_MAX_BODY,
        service_url: str = "",
    ) -> None:
        self.max_body = max_body
        self.service_url = service_url
        self.runtime = runtime
        self.service = service
        self.handler = self._make_handler(service)
        self._openapi: bytes | None = None

    def _make_handler(self, service: Service) -> HttpHandler:
        return HttpHandler(
            service, self.runtime, service_url=self.service_url, max_body=self.max_body
        )

    def replace_service(self, service: Service) -> None:
        """Serve ``service`` from the next request on (a request in flight finishes on the old
        one)."""
        self.handler = self._make_handler(service)
        self.service = service
        self._openapi = None

    def openapi(self) -> dict[str, Any]:
        return build_openapi(build_spec(self.service), server_url=self.service_url or None)

    # ------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope.get("method", "GET")).upper()
        try:
            headers = _headers(scope)
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                raise BodyTooLarge(int(declared), self.max_body)
            body = await self._read_body(receive)
        except BodyTooLarge as exc:
            await _send(
                send,
                error_response(
                    413,
                    "PayloadTooLarge",
                    f"the request body is larger than the limit of {exc.limit} bytes",
                ),
                method,
            )
            return
        except ClientDisconnected:
            return

        if scope.get("path") == OPENAPI_PATH and method in ("GET", "HEAD"):
            await _send(send, self._openapi_response(), method)
            return
        page = self._page(str(scope.get("path") or "/")) if method in ("GET", "HEAD") else None
        if page is not None:
            await _send(send, page, method)
            return

        # The decoded path, so path parameters arrive unescaped ("a b", not "a%20b").
        request = Request.received(
            method,
            _url(scope, headers),
            str(scope.get("path") or "/"),
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            body,
        )
        try:
            response = await self.handler.handle(request)
            if not isinstance(response, Response):
                raise TypeError(f"the handler returned {type(response).__name__}, not Response")
        except Exception as exc:
            logger.exception("%s %s failed", method, request.path)
            response = error_response(500, type(exc).__name__, str(exc))
        await _send(send, response, method)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected()
            chunk = message.get("body", b"") or b""
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge(size, self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _page(self, path: str) -> Response | None:
        """The dashboard (``/_eventual/executions``, ``/_eventual/timeline/{id}``,
        ``/_eventual/service`` and their static files)."""
        html_headers = {"content-type": "text/html; charset=utf-8"}
        if path == EXECUTIONS_PATH:
            return Response(executions_page(), headers=html_headers)
        if path == SERVICE_PATH:
            return Response(service_page(), headers=html_headers)
        if path.startswith(ASSETS_PREFIX):
            found = asset(path[len(ASSETS_PREFIX) :])
            if found is None:
                return None
            return Response(found[0], headers={"content-type": found[1]})
        if path.startswith(TIMELINE_PREFIX) and len(path) > len(TIMELINE_PREFIX):
            return Response(timeline_page(path[len(TIMELINE_PREFIX) :]), headers=html_headers)
        return None

    def _openapi_response(self) -> Response:
        if self._openapi is None:
            self._openapi = json.dumps(self.openapi()).encode()
        return Response(self._openapi, headers={"content-type": "application/json"})


def _headers(scope: Scope) -> Headers:
    raw = scope.get("headers") or ()
    out = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw}
    if len(out) != len(raw):  # a repeated header: its values joined, in order
        out = {}
        for raw_name, raw_value in raw:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            out[name] = f"{out[name]}, {value}" if name in out else value
    return Headers.lowered(out)


def _url(scope: Scope, headers: dict[str, str]) -> str:
    scheme = scope.get("scheme", "http")
    host = headers.get("host")
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else str(scope.get("path") or "/")
    path = path.split("?", 1)[0]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


async def _send(send: Send, response: Response, method: str) -> None:
    body = response.body
    headers = [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in response.headers.items()]
    if "content-length" not in response.headers:
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
