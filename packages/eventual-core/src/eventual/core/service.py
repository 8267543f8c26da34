"""Discovering a service: import its entry module and collect what it defines.

A service's definitions are those made in the entry's top-level package (any module under it)
plus any definition those modules reference from elsewhere (a task imported from a shared
library, say). Two services imported in one process therefore do not see each other's
definitions, even though definitions register in one process-wide list.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from .definitions import (
    Definition,
    EventDefinition,
    SignalDefinition,
    SubscriptionDefinition,
    TaskDefinition,
    WorkflowDefinition,
    registered,
)
from .errors import ServiceError
from .http.api import ApiRoute, CommandDefinition


class Service:
    """The definitions of one service, by kind and name."""

    def __init__(self, name: str, definitions: Iterable[Definition], *, entry: str = "") -> None:
        self.name = name
        self.entry = entry
        self.workflows: dict[str, WorkflowDefinition[Any, Any]] = {}
        self.tasks: dict[str, TaskDefinition[Any, Any]] = {}
        self.commands: dict[str, CommandDefinition[Any, Any]] = {}
        self.routes: list[ApiRoute] = []
        self.signals: dict[str, SignalDefinition[Any]] = {}
        self.events: dict[str, EventDefinition[Any]] = {}
        self.subscriptions: dict[str, SubscriptionDefinition] = {}
        self._build: str | None = None
        seen: set[int] = set()
        for d in definitions:
            if id(d) in seen:
                continue
            seen.add(id(d))
            self._add(d)
        for sub in self.subscriptions.values():
            for e in sub.events:
                if isinstance(e, EventDefinition) and e.name not in self.events:
                    self.events[e.name] = e

    def _add(self, d: Definition) -> None:
        if isinstance(d, ApiRoute):
            for r in self.routes:
                if r.method == d.method and r.path == d.path:
                    raise ServiceError(
                        f"service {self.name!r}: route {d.name} is defined twice "
                        f"(in {r.module} and {d.module})"
                    )
            self.routes.append(d)
            return
        table: dict[str, Any] | None = {
            "workflows": self.workflows,
            "tasks": self.tasks,
            "commands": self.commands,
            "signals": self.signals,
            "events": self.events,
            "subscriptions": self.subscriptions,
        }.get(d.kind)
        if table is None:
            return
        existing = table.get(d.name)
        if existing is not None and existing is not d:
            if d.kind in ("signals", "events"):
                return  # the same signal or event declared twice is one thing
            raise ServiceError(
                f"service {self.name!r}: {d.kind[:-1]} {d.name!r} is defined twice "
                f"(in {existing.module} and {d.module}); rename one of them"
            )
        table[d.name] = d
        if d.name.startswith("_"):
            raise ServiceError(
                f"service {self.name!r}: {d.kind[:-1]} {d.name!r}: names starting with '_' are "
                "reserved for Eventual"
            )

    @property
    def build(self) -> str:
        """The build this code is: what each execution started on it records (see
        :func:`service_build`). Computed on first use (when an execution starts), not at
        import: a Lambda's cold start does not pay for hashing sources."""
        found = self._build
        if found is None:
            found = self._build = service_build(self)
        return found

    def workflow(self, name: str) -> WorkflowDefinition[Any, Any]:
        return _lookup(self, "workflow", self.workflows, name)

    def task(self, name: str) -> TaskDefinition[Any, Any]:
        return _lookup(self, "task", self.tasks, name)

    def signal(self, name: str) -> SignalDefinition[Any]:
        return _lookup(self, "signal", self.signals, name)

    def event(self, name: str) -> EventDefinition[Any]:
        return _lookup(self, "event", self.events, name)

    def subscriptions_for(self, event_name: str) -> list[SubscriptionDefinition]:
        return [s for s in self.subscriptions.values() if event_name in s.event_names]

    def __repr__(self) -> str:
        return (
            f"<Service {self.name!r}: {len(self.workflows)} workflows, {len(self.tasks)} tasks, "
            f"{len(self.commands)} commands, {len(self.routes)} routes>"
        )


D = TypeVar("D", bound=Definition)


def _lookup(service: Service, kind: str, table: dict[str, D], name: str) -> D:
    """``table[name]``, or a :class:`ServiceError` listing the names the service defines."""
    found = table.get(name)
    if found is None:
        raise ServiceError(
            f"service {service.name!r} has no {kind} {name!r}; "
            f"it defines: {', '.join(sorted(table)) or 'none'}"
        )
    return found


def _top(module: str) -> str:
    return module.split(".", 1)[0]


BUILD_ENV = "EVENTUAL_BUILD"


def service_build(service: Service) -> str:
    """The service's build: ``EVENTUAL_BUILD`` if set (a deploy sets it, e.g. from the spec at
    synth time), else a ``BUILD = "..."`` string in the entry module, else the version of the
    distribution that provides the entry's top package (``"0"`` if none) plus ``+`` and 12 hex
    digits of a sha256 of the workflows' code: the source files of the modules that define
    workflows and each workflow function's own source."""
    import os

    from_env = os.environ.get(BUILD_ENV)
    if from_env:
        return from_env
    module = sys.modules.get(service.entry) if service.entry else None
    declared = getattr(module, "BUILD", None)
    if isinstance(declared, str) and declared:
        return declared
    version = _distribution_version(_top(service.entry)) if service.entry else "0"
    return f"{version}+{_workflows_digest(service)}"


@functools.cache  # a scan of every installed distribution's metadata: once per process
def _distribution_version(package: str) -> str:
    import importlib.metadata as metadata

    try:
        return metadata.version(package)  # names are normalised: order_service, order-service
    except metadata.PackageNotFoundError:
        pass
    except Exception:  # a broken installation's metadata: the hash still tells builds apart
        return "0"
    try:
        for name in metadata.packages_distributions().get(package, []):
            return metadata.version(name)
    except Exception:
        pass
    return "0"


def _workflows_digest(service: Service) -> str:
    import contextlib
    import hashlib
    import inspect

    digest = hashlib.sha256()
    files: set[str] = set()
    for wf in sorted(service.workflows.values(), key=lambda w: w.name):
        module = sys.modules.get(wf.module)
        path = getattr(module, "__file__", None)
        if path and path not in files:
            files.add(path)
            with contextlib.suppress(OSError):
                digest.update(Path(path).read_bytes())
        try:
            source = inspect.getsource(wf.fn)
        except (OSError, TypeError):
            source = wf.fn.__qualname__
        digest.update(f"\0{wf.name}\0{wf.module}\0{source}".encode())
    return digest.hexdigest()[:12]


def collect(package: str, *, exact: bool = False) -> list[Definition]:
    """Definitions made under ``package`` (only in that module if ``exact``) and those its
    modules reference."""
    prefix = package + "."

    def inside(name: str) -> bool:
        return name == package or (not exact and name.startswith(prefix))

    own = [d for d in registered() if inside(d.module)]
    found: dict[int, Definition] = {id(d): d for d in own}
    for name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType) or not inside(name):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Definition) and id(value) not in found:
                found[id(value)] = value
    # Keep registration order, so the spec is stable.
    order = {id(d): i for i, d in enumerate(registered())}
    return sorted(found.values(), key=lambda d: order.get(id(d), 0))


def import_entry(entry: str) -> types.ModuleType:
    """Import a service entry: a module name (``order_service.service``) or a path to a
    service package or module file."""
    path = Path(entry)
    pathlike = "/" in entry or "\\" in entry
    if entry.endswith(".py") or path.is_dir() or (pathlike and path.exists()):
        path = path.resolve()
        if path.is_dir():
            if (path / "__init__.py").exists():
                if str(path.parent) not in sys.path:
                    sys.path.insert(0, str(path.parent))
                return importlib.import_module(path.name)
            src = path / "src"
            candidates = [
                p
                for p in (src.iterdir() if src.is_dir() else path.iterdir())
                if (p / "__init__.py").exists()
            ]
            if len(candidates) == 1:
                root = str(candidates[0].parent)
                if root not in sys.path:
                    sys.path.insert(0, root)
                return importlib.import_module(candidates[0].name)
            raise ServiceError(
                f"cannot find the service package in {entry}: pass the module name instead "
                "(for example `order_service`)"
            )
        if not path.exists():
            raise ServiceError(f"no such file: {entry}")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))
        return importlib.import_module(path.stem)
    if pathlike or entry[:1] == ".":
        raise ServiceError(
            f"there is no file or folder {entry!r}: pass the path to the service's package or "
            "project folder, or its module name"
        )
    try:
        return importlib.import_module(entry)
    except ModuleNotFoundError as exc:
        if exc.name and entry.startswith(exc.name):
            raise ServiceError(
                f"cannot import the service entry {entry!r}: no module named {exc.name!r}. "
                "Install the service package in this environment or pass its path."
            ) from exc
        raise


def load_service(
    entry: str | types.ModuleType, *, name: str | None = None, module_only: bool = False
) -> Service:
    """Import a service's entry module and return its definitions: those of the entry's
    top-level package, or with ``module_only`` those of the entry module alone (handy for a
    service defined in one test file)."""
    module = entry if isinstance(entry, types.ModuleType) else import_entry(entry)
    package = module.__name__ if module_only else _top(module.__name__)
    default = _top(module.__name__).replace("_", "-")
    service_name = name or getattr(module, "SERVICE_NAME", None) or default
    return Service(service_name, collect(package, exact=module_only), entry=module.__name__)


def find_spec(entry: str) -> bool:
    """Whether an entry module can be found without importing it."""
    try:
        return importlib.util.find_spec(entry) is not None
    except (ImportError, ValueError):
        return False
