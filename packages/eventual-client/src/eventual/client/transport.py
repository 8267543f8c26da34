"""Serve the clients in-process: an ``httpx`` transport over core's ``HttpHandler``.

For tests without a server::

    handler = HttpHandler(service, runtime)
    async with EventualClient("http://service", transport=InProcessTransport(handler)) as c:
        ...

Requests go through the same routing, middleware, validation and error contract as over the
network; only the socket is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from eventual.core.http.api import Request

if TYPE_CHECKING:
    from eventual.core.http.handler import HttpHandler


class InProcessTransport(httpx.AsyncBaseTransport):
    """An async ``httpx`` transport that hands each request to an ``HttpHandler``."""

    def __init__(self, handler: HttpHandler) -> None:
        self.handler = handler

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path = request.url.raw_path.decode("ascii")
        served = await self.handler.handle(
            Request(request.method, path, headers=request.headers.items(), body=body)
        )
        return httpx.Response(
            served.status, headers=list(served.headers.items()), content=served.body
        )
