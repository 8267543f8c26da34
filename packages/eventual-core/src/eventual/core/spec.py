"""The service spec: a JSON description of a service, built by importing its entry.

It is the one contract between user code and what deploys or inspects it (CDK, the CLI, the
OpenAPI document). Its shape is documented in the package README; ``SPEC_VERSION`` changes
whenever a field is removed or changes meaning.

Run ``python -m eventual.core.spec ENTRY`` to print a service's spec as JSON (this is how CDK
reads it, in a subprocess, without running any handler).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .serialization import json_schema
from .service import Service, load_service

SPEC_VERSION = 1


def _handler(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}"


def build_spec(service: Service) -> dict[str, Any]:
    """The spec of a loaded service."""
    workflows = [
        {
            "name": wf.name,
            "handler": _handler(wf.fn),
            "timeout": wf.timeout,
            "input_schema": json_schema(wf.input_type),
            "output_schema": json_schema(wf.output_type),
        }
        for wf in sorted(service.workflows.values(), key=lambda d: d.name)
    ]
    tasks = [
        {
            "name": t.name,
            "handler": _handler(t.fn),
            "timeout": t.timeout,
            "heartbeat_timeout": t.heartbeat_timeout,
            "retry": t.retry.to_spec() if t.retry else None,
            "input_schema": t.signature.input_schema(),
            "output_schema": json_schema(t.signature.return_type),
        }
        for t in sorted(service.tasks.values(), key=lambda d: d.name)
    ]
    commands = [
        {
            "name": c.name,
            "handler": _handler(c.fn),
            "rpc_path": f"/rpc/{c.name}",
            "path": c.path,
            "method": c.method,
            "summary": c.summary,
            "middlewares": len(c.middlewares),
            "input_schema": json_schema(c.input_type) if c.has_input else None,
            "output_schema": json_schema(c.output_type),
        }
        for c in sorted(service.commands.values(), key=lambda d: d.name)
    ]
    routes = [
        {
            "method": r.method,
            "path": r.path,
            "handler": _handler(r.fn),
            "middlewares": len(r.middlewares),
        }
        for r in sorted(service.routes, key=lambda d: (d.path, d.method))
    ]
    signals = [
        {"name": s.name, "payload_schema": json_schema(s.payload_type)}
        for s in sorted(service.signals.values(), key=lambda d: d.name)
    ]
    events = [
        {"name": e.name, "schema": json_schema(e.schema)}
        for e in sorted(service.events.values(), key=lambda d: d.name)
    ]
    subscriptions = [
        {"name": s.name, "handler": _handler(s.fn), "events": list(s.event_names)}
        for s in sorted(service.subscriptions.values(), key=lambda d: d.name)
    ]
    return {
        "spec_version": SPEC_VERSION,
        "name": service.name,
        "entry": service.entry,
        "build": service.build,
        "workflows": workflows,
        "tasks": tasks,
        "commands": commands,
        "routes": routes,
        "signals": signals,
        "events": events,
        "subscriptions": subscriptions,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m eventual.core.spec ENTRY\n")
        return 2
    spec = build_spec(load_service(args[0]))
    sys.stdout.write(json.dumps(spec, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
