"""``eventual dev``: find the service, open the local runtime, serve it over HTTP, reload it.

One process, one asyncio loop: the runtime's workers, the uvicorn server and the file
watcher share it. A reload re-imports the service's modules and swaps the handlers in the
runtime and the HTTP app; the database and every running execution stay as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import types
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from eventual.core.definitions import forget_definitions
from eventual.core.errors import ServiceError
from eventual.core.http.handler import DEFAULT_MAX_BODY
from eventual.core.runtime.collector import settle_after_startup
from eventual.core.service import Service, import_entry, load_service

from .server import OPENAPI_PATH, ServiceApp

logger = logging.getLogger("eventual.dev")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3111
DATA_DIR_ENV = "EVENTUAL_DATA_DIR"


# ---------------------------------------------------------------- the runtime (one place)


def open_runtime(service: Service, db_path: Path, *, retention: Any = "default") -> Any:
    """The dev server's runtime, used as ``async with open_runtime(service, db) as rt``: the
    durable SQLite runtime (switching runtimes is this one function). ``retention`` is how
    long finished executions are kept (a ``timedelta``; None keeps them; the runtime's
    default, 30 days, if not given)."""
    from eventual.core.runtime.sqlite import SqliteRuntime

    if retention == "default":
        return SqliteRuntime(service, db_path=db_path)
    return SqliteRuntime(service, db_path=db_path, retention=retention)


_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta | None:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a number of seconds; ``off`` or
    ``never`` for none."""
    value = text.strip().lower()
    if value in ("off", "never", "none"):
        return None
    unit = value[-1:] if value[-1:] in _DURATION else "s"
    number = value[:-1] if value[-1:] in _DURATION else value
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration: write it as 30d, 12h, 90m, 45s, 2w or off"
        ) from None
    if amount < 0:
        raise ValueError(f"{text!r}: a duration cannot be negative")
    return timedelta(seconds=amount * _DURATION[unit])


def runtime_is_durable(runtime: Any) -> bool:
    return type(runtime).__name__ != "InMemoryRuntime"


def replace_service(runtime: Any, service: Service) -> None:
    """Give a running runtime the reloaded service (its executors are rebuilt on demand)."""
    replace = getattr(runtime, "replace_service", None)
    if replace is not None:
        replace(service)
        return
    runtime.service = service
    clear = getattr(runtime, "clear_cache", None)
    if clear is not None:
        clear()


# ---------------------------------------------------------------- finding the service


@dataclass
class ServiceLocation:
    """Where a service lives: its entry module, top-level package and source root."""

    entry: str
    package: str
    source_paths: list[Path]
    root: Path

    @property
    def default_db(self) -> Path:
        return self.root / ".eventual" / "dev.db"


def locate(module: types.ModuleType) -> ServiceLocation:
    top = module.__name__.split(".", 1)[0]
    top_module = sys.modules.get(top, module)
    file = getattr(top_module, "__file__", None)
    paths = [Path(p) for p in getattr(top_module, "__path__", [])]
    if not paths and file:
        paths = [Path(file)]
    if not paths:
        raise ServiceError(f"cannot tell where the service package {top!r} lives on disk")
    first = paths[0].resolve()
    base = first if first.is_dir() else first.parent
    root = base.parent if first.is_dir() else base
    if root.name == "src":
        root = root.parent
    return ServiceLocation(
        entry=module.__name__, package=top, source_paths=[p.resolve() for p in paths], root=root
    )


def find_service(entry_or_path: str) -> tuple[Service, ServiceLocation]:
    """Import a service from a module name or a path to its package (or project folder)."""
    module = import_entry(entry_or_path)
    service = load_service(module)
    return service, locate(module)


def reimport_service(location: ServiceLocation) -> Service:
    """Import the service's modules afresh. On failure the previous modules are put back and
    the error is raised."""
    prefix = location.package + "."
    old = {
        name: m
        for name, m in sys.modules.items()
        if name == location.package or name.startswith(prefix)
    }
    for name in old:
        del sys.modules[name]
    forget_definitions(location.package)
    importlib.invalidate_caches()
    try:
        return load_service(location.entry)
    except BaseException:
        for name in [n for n in sys.modules if n == location.package or n.startswith(prefix)]:
            del sys.modules[name]
        sys.modules.update(old)
        raise


def describe(service: Service) -> list[tuple[str, str, str]]:
    """(kind, name, details) rows for the banner table."""
    rows: list[tuple[str, str, str]] = []
    for c in sorted(service.commands.values(), key=lambda c: c.name):
        http = f"POST /rpc/{c.name}"
        if c.path:
            http += f", {c.method} {c.path}"
        rows.append(("command", c.name, http))
    for r in sorted(service.routes, key=lambda r: (r.path, r.method)):
        rows.append(("route", f"{r.method} {r.path}", _middleware_note(len(r.middlewares))))
    for w in sorted(service.workflows.values(), key=lambda w: w.name):
        timeout = f"timeout {_duration(w.timeout)}" if w.timeout else ""
        rows.append(("workflow", w.name, timeout))
    for s in sorted(service.subscriptions.values(), key=lambda s: s.name):
        rows.append(("subscription", s.name, "on " + ", ".join(s.event_names)))
    return rows


def _middleware_note(n: int) -> str:
    return f"{n} middleware" if n else ""


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


# ---------------------------------------------------------------- serving


class DevServerError(Exception):
    """A problem `eventual dev` reports as one line."""


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off only on sockets it knows are
    # TCP, and with it on every response on a kept-open connection waits ~40 ms for the
    # client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DevServerError(_bind_failure(host, port, exc)) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _bind_failure(host: str, port: int, exc: OSError) -> str:
    """Why ``bind`` failed, and what to do about it, in one sentence."""
    where = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    if isinstance(exc, socket.gaierror):
        return f"{where}: the host name {host!r} does not resolve; pass --host 127.0.0.1"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}: {host} is not an address of this machine; pass --host 127.0.0.1"
    if exc.errno == errno.EACCES:
        return f"{where}: ports below 1024 need privileges; pass a higher --port"
    return f"{where}; is another dev server running? Stop it or pass another --port"


def _uvicorn_server_class() -> type[Any]:
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's server, minus re-raising the stop signal after a graceful shutdown, so
        Ctrl-C ends `eventual dev` with exit code 0 once the runtime has closed."""

        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return _Server


@dataclass
class DevOptions:
    entry: str = "."
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    db: Path | None = None
    reload: bool = True
    max_body: int = DEFAULT_MAX_BODY
    access_log: bool = True
    retention: timedelta | None = timedelta(days=30)


@dataclass
class DevSession:
    """A running dev server (what the banner shows and the reloader changes)."""

    options: DevOptions
    service: Service
    location: ServiceLocation
    db_path: Path
    url: str
    runtime: Any = None
    app: ServiceApp | None = None
    reloads: int = 0
    events: list[str] = field(default_factory=list)

    def reload(self, changed: Iterable[str] = ()) -> Service | None:
        """Re-import the service and swap it in; ``None`` (and the old service kept) if the
        new code does not import."""
        try:
            service = reimport_service(self.location)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            logger.error(
                "reload failed, still serving the previous code: %s: %s", type(exc).__name__, exc
            )
            return None
        if self.runtime is not None:
            replace_service(self.runtime, service)
        if self.app is not None:
            self.app.replace_service(service)
        self.service = service
        self.reloads += 1
        names = ", ".join(sorted({_short(p, self.location.root) for p in changed})) or "sources"
        logger.info("reloaded %s after a change to %s", service.name, names)
        return service


def _short(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def prepare(options: DevOptions) -> DevSession:
    service, location = find_service(options.entry)
    db_path = (options.db or location.default_db).resolve()
    host = options.host
    url_host = f"[{host}]" if ":" in host else host
    return DevSession(
        options=options,
        service=service,
        location=location,
        db_path=db_path,
        url=f"http://{url_host}:{options.port}",
    )


async def _watch(session: DevSession, stop: asyncio.Event) -> None:
    from watchfiles import PythonFilter, awatch

    paths = [str(p) for p in session.location.source_paths]
    async for changes in awatch(
        *paths, watch_filter=PythonFilter(), stop_event=stop, debounce=400, step=50
    ):
        session.reload(path for _, path in changes)


async def serve(session: DevSession, sock: socket.socket, *, on_ready: Any = None) -> None:
    """Run the runtime and the HTTP server until a stop signal."""
    import uvicorn

    options = session.options
    # (The database makes its folder when it opens, and says so in one line if it cannot.)
    os.environ.setdefault(DATA_DIR_ENV, str(session.db_path.parent))
    async with open_runtime(
        session.service, session.db_path, retention=options.retention
    ) as runtime:
        session.runtime = runtime
        app = ServiceApp(
            session.service, runtime, max_body=options.max_body, service_url=session.url
        )
        session.app = app
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_config=None,
            access_log=options.access_log,
            timeout_graceful_shutdown=5,
        )
        server = _uvicorn_server_class()(config)
        stop = asyncio.Event()
        watcher = asyncio.create_task(_watch(session, stop)) if options.reload else None
        if on_ready is not None:
            on_ready(session)
        # What start-up made lives as long as the server (modules, the service, pydantic's
        # validators, the runtime): out of the collector's generations, so the collections
        # that requests' garbage triggers do not walk it again and again; and young
        # collections rare enough that a step's short-lived objects die young.
        settle_after_startup()
        try:
            await server.serve(sockets=[sock])
        finally:
            stop.set()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``eventual dev --loop`` names: ``uvloop`` (libuv's: requests and steps
    cost less CPU; it does not run on Windows), ``asyncio`` (Python's own: None, the default
    factory) or ``auto``, uvloop where it is installed. ValueError for anything else, or for
    ``uvloop`` where it is not installed."""
    if choice not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"expected auto, uvloop or asyncio, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError(
                "uvloop is not installed here (it is not available on Windows): use --loop asyncio"
            ) from None
        return None
    return uvloop.new_event_loop


__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "OPENAPI_PATH",
    "DevOptions",
    "DevServerError",
    "DevSession",
    "ServiceLocation",
    "bind_socket",
    "describe",
    "event_loop_factory",
    "find_service",
    "open_runtime",
    "prepare",
    "reimport_service",
    "replace_service",
    "serve",
]
