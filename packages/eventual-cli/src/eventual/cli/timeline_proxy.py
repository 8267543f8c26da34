"""The timeline of a deployed service, served from this machine.

A deployed service's system commands need AWS SigV4 signatures, which a browser cannot make,
and its API does not serve the timeline page. So ``eventual timeline ID --service NAME`` runs
a small local server (starlette + uvicorn on 127.0.0.1) that serves the same pages as the dev
server (``/_eventual/timeline/{id}``, ``/_eventual/executions``, with the service URL empty:
same origin) and forwards the pages' ``POST /rpc/_system/{command}`` requests to the service
through the CLI's signed client. Only the commands the pages call are forwarded: the
read-only ones (:data:`FORWARDED`) always, the actions (:data:`ACTIONS`: send a signal, start
an execution, emit an event) only when the server was started with ``--allow-actions``.
In read-only mode (the default) the server itself refuses them with 403, whatever the page
sends, so the page (or another local page) cannot change the service with your credentials.

Other pages of the browser cannot use it either: the server answers only requests whose
``Host`` is the loopback address it listens on (no DNS rebinding), and it forwards only JSON
bodies, which a page of another origin can send only after a CORS preflight this server never
allows.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .client import CliError, RemoteError
from .timeline import (
    ASSETS_PREFIX,
    EXECUTIONS_PATH,
    SERVICE_PATH,
    TIMELINE_PREFIX,
    asset,
    executions_page,
    service_page,
    timeline_page,
    timeline_path,
)

#: The read-only system commands the dashboard calls: always forwarded.
FORWARDED = frozenset(
    {
        "getExecution",
        "getExecutionHistory",
        "getExecutionWorkflowHistory",
        "getExecutionLogs",
        "listExecutions",
        "countExecutions",
        "listWorkflows",
        "getServiceSpec",
    }
)
#: The dashboard's actions: forwarded only when the server is not read-only.
ACTIONS = frozenset({"sendSignal", "startExecution", "emitEvents"})
HOST = "127.0.0.1"
MAX_BODY = 64 * 1024


class SystemCaller(Protocol):
    """What the proxy forwards through: the CLI's client (signed for a deployed service)."""

    def system(self, name: str, body: Any = None) -> Any: ...


def _error(status: int, name: str, message: str) -> Response:
    return JSONResponse({"error": name, "message": message}, status_code=status)


def create_app(
    client: SystemCaller, *, label: str = "the service", read_only: bool = True
) -> Starlette:
    """The ASGI app: the dashboard's pages and files, and the forwarded system commands (the
    actions refused with 403 when ``read_only``)."""
    # The client is blocking: its calls run in worker threads, one at a time (the pages make
    # a couple of small requests every few seconds).
    lock = threading.Lock()

    def call(name: str, body: Any) -> Any:
        with lock:
            return client.system(name, body)

    async def timeline(request: Request) -> Response:
        return HTMLResponse(timeline_page(request.path_params["execution_id"], read_only=read_only))

    async def executions(request: Request) -> Response:
        return HTMLResponse(executions_page(read_only=read_only))

    async def service(request: Request) -> Response:
        return HTMLResponse(service_page(read_only=read_only))

    async def assets(request: Request) -> Response:
        found = asset(request.path_params["name"])
        if found is None:
            return _error(404, "NotFound", "no such file")
        return Response(found[0], media_type=found[1])

    async def home(request: Request) -> Response:
        return RedirectResponse(EXECUTIONS_PATH)

    async def system(request: Request) -> Response:
        name = request.path_params["command"]
        if name in ACTIONS and read_only:
            return _error(
                403,
                "ReadOnly",
                f"the dashboard of {label} is read-only, so it does not forward {name}: "
                "restart it with `eventual timeline --service ... --allow-actions`, or use the "
                "eventual CLI (eventual start, signal, emit)",
            )
        if name not in FORWARDED and name not in ACTIONS:
            return _error(
                403,
                "Forbidden",
                f"the timeline server forwards only the system commands the dashboard uses "
                f"({', '.join(sorted(FORWARDED | ACTIONS))}) to {label}, not {name}: use the "
                "eventual CLI for anything else",
            )
        if "json" not in request.headers.get("content-type", ""):
            return _error(
                415,
                "UnsupportedMediaType",
                "send the body as JSON (content-type: application/json)",
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return _error(413, "PayloadTooLarge", f"the body is larger than {MAX_BODY} bytes")
        raw = await request.body()
        if len(raw) > MAX_BODY:
            return _error(413, "PayloadTooLarge", f"the body is larger than {MAX_BODY} bytes")
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            return _error(400, "BadRequest", f"the body is not valid JSON: {exc}")
        try:
            result = await run_in_threadpool(call, name, body)
        except RemoteError as exc:
            return _error(exc.status, exc.name, exc.detail)
        except CliError as exc:  # unreachable, no credentials...
            return _error(502, "BadGateway", str(exc))
        if result is None:  # the service answered 200 with no body (an unknown execution)
            return Response(b"", status_code=200)
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/", home),
            Route(EXECUTIONS_PATH, executions),
            Route(SERVICE_PATH, service),
            Route(ASSETS_PREFIX + "{name}", assets),
            Route(TIMELINE_PREFIX + "{execution_id:path}", timeline),
            Route("/rpc/_system/{command}", system, methods=["POST"]),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=[HOST, "localhost"])],
    )


def bind(port: int = 0) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: a free one), made as the dev server makes
    its own (TCP explicitly, so asyncio turns Nagle's algorithm off)."""
    from .dev import DevServerError, bind_socket

    try:
        return bind_socket(HOST, port)
    except DevServerError as exc:
        reason = str(exc).split(";")[0]
        raise CliError(f"{reason}: pass another --port, or leave it out for a free one") from None


class TimelineServer:
    """The local timeline server, running in a background thread until :meth:`stop`.

    ``with TimelineServer(client) as server: server.url``."""

    def __init__(
        self,
        client: SystemCaller,
        *,
        port: int = 0,
        label: str = "the service",
        read_only: bool = True,
    ) -> None:
        self._socket = bind(port)
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(
            create_app(client, label=label, read_only=read_only),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="eventual-timeline", daemon=True)
        self._failed: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start() / wait()
            self._failed = exc

    def page_url(self, execution_id: str | None = None) -> str:
        return self.url + (timeline_path(execution_id) if execution_id else EXECUTIONS_PATH)

    def start(self, timeout: float = 10.0) -> TimelineServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise CliError(
                    f"the timeline server did not start on {self.url}: {self._failed or 'timeout'}"
                )
            self._thread.join(0.01)
        return self

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C ends the wait with KeyboardInterrupt)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(10)
        self._socket.close()

    def __enter__(self) -> TimelineServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
