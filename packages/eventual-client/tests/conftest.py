"""A real service over HTTP for the client tests.

Until the dev server (eventual-cli) is the test target, the service is core's transport-neutral
``HttpHandler`` over an ``InMemoryRuntime`` (real clock), behind the standard library's HTTP
server on a free loopback port. The runtime lives on its own event loop thread, so sync and
async clients, and subprocesses, all talk to it over real TCP.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

SUPPORT = Path(__file__).parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

import client_example_service  # noqa: E402

from eventual.core.http.api import Request, Response  # noqa: E402
from eventual.core.http.handler import HttpHandler  # noqa: E402
from eventual.core.runtime import InMemoryRuntime  # noqa: E402
from eventual.core.service import Service, load_service  # noqa: E402

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "network: needs PyPI (set EVENTUAL_OFFLINE=1 to skip); runs in CI",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("EVENTUAL_OFFLINE") != "1":
        return
    skip = pytest.mark.skip(reason="EVENTUAL_OFFLINE=1: needs PyPI")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.01)


class LiveService:
    """A service served over HTTP on 127.0.0.1, with what it received."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.received: list[Request] = []
        #: Statuses to answer with (without running the handler) before serving normally.
        self.fail_next: list[int] = []
        self.in_flight = 0
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._loop_thread.start()

        async def start() -> InMemoryRuntime:
            runtime = InMemoryRuntime(service)
            return await runtime.__aenter__()

        self.runtime = self.run(start())
        self.handler = HttpHandler(service, self.runtime)
        live = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, headers=self.headers.items(), body=body)
                with live._lock:
                    live.received.append(request)
                    live.in_flight += 1
                    injected = live.fail_next.pop(0) if live.fail_next else None
                try:
                    if injected is not None:
                        response = Response.json(
                            {"error": "Injected", "message": "injected by the test"},
                            status=injected,
                        )
                    else:
                        response = live.run(live.handler.handle(request))
                finally:
                    with live._lock:
                        live.in_flight -= 1
                self.send_response(response.status)
                for k, v in response.headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.handler.service_url = self.url
        self._server_thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._server_thread.start()

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run a coroutine on the service's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def close(self) -> None:
        wait_until(lambda: self.in_flight == 0, what="requests in flight to finish")
        self.server.shutdown()
        self.server.server_close()
        self.run(self.runtime.__aexit__(None, None, None))
        errors = list(self.runtime.errors)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._loop_thread.join(10)
        self.loop.close()
        assert errors == [], errors


@pytest.fixture
def example() -> Any:
    """The example service module (its definitions, and what its handlers recorded)."""
    client_example_service.RECEIVED.clear()
    client_example_service.TOKENS.clear()
    return client_example_service


@pytest.fixture
def live(example: Any) -> Iterator[LiveService]:
    service = load_service(example, module_only=True, name="example")
    served = LiveService(service)
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
def poll() -> Callable[..., None]:
    return wait_until
