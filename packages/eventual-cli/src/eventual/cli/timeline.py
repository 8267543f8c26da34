"""The dashboard: the executions list, one execution's page and the service's page, in the
browser.

The pages are static HTML, CSS and JavaScript shipped in this package (``timeline.html`` and
the ``dashboard/`` folder beside this module): no build step, no CDN. They read and act
through the service's system commands only (``listExecutions``, ``countExecutions``,
``getExecution``, ``getExecutionWorkflowHistory``, ``getExecutionLogs``, ``getServiceSpec``,
``sendSignal``, ``startExecution``, ``emitEvents``), so they work the same against the dev
server, which serves them under ``/_eventual/``, and against a deployed service through
``eventual timeline --service``, whose local server (``timeline_proxy.py``) serves them and
forwards their requests signed.

- ``/_eventual/executions``: every execution, filtered, searched, sorted and paged on the
  server, with counts per status and live updates.
- ``/_eventual/timeline/{execution id}``: the timeline, the history table, input and result,
  logs, parent and children, and the actions (signal, start, emit).
- ``/_eventual/service``: the service's workflows, commands, tasks, signals, events and
  subscriptions with their schemas, from its spec.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

TIMELINE_PREFIX = "/_eventual/timeline/"
EXECUTIONS_PATH = "/_eventual/executions"
SERVICE_PATH = "/_eventual/service"
ASSETS_PREFIX = "/_eventual/assets/"

_CONFIG_START = "/*CONFIG*/"
_CONFIG_END = "/*END*/"

#: The files served under ASSETS_PREFIX, with their content types.
ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}


@cache
def _read(name: str) -> str:
    folder = resources.files("eventual.cli")
    if name != "timeline.html":
        folder = folder.joinpath("dashboard")
    return folder.joinpath(name).read_text(encoding="utf-8")


def asset(name: str) -> tuple[bytes, str] | None:
    """A static file of the dashboard and its content type, or ``None``."""
    kind = ASSETS.get(name)
    if kind is None:
        return None
    return _read(name).encode("utf-8"), kind


def _safe_json(value: object) -> str:
    # JSON inside a <script>: never let a value close the script element.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(template_name: str, config: dict[str, object]) -> str:
    template = _read(template_name)
    start = template.index(_CONFIG_START)
    end = template.index(_CONFIG_END) + len(_CONFIG_END)
    return template[:start] + _safe_json(config) + template[end:]


def _config(service_url: str, read_only: bool, refresh_ms: int) -> dict[str, object]:
    return {
        "serviceUrl": service_url.rstrip("/"),
        "readOnly": read_only,
        "refreshMs": refresh_ms,
        "paths": {
            "executions": EXECUTIONS_PATH,
            "timeline": TIMELINE_PREFIX,
            "service": SERVICE_PATH,
        },
    }


def timeline_page(
    execution_id: str, *, service_url: str = "", refresh_ms: int = 2000, read_only: bool = False
) -> str:
    """The page for one execution; ``service_url`` empty means "the server that served it"."""
    config = _config(service_url, read_only, refresh_ms)
    config["executionId"] = execution_id
    return _page("timeline.html", config)


def timeline_path(execution_id: str) -> str:
    from urllib.parse import quote

    return TIMELINE_PREFIX + quote(execution_id, safe="")


def executions_page(
    *, service_url: str = "", refresh_ms: int = 2000, read_only: bool = False
) -> str:
    """The executions list: filters, search, paging, counts, live updates."""
    return _page("executions.html", _config(service_url, read_only, refresh_ms))


def service_page(*, service_url: str = "", read_only: bool = False) -> str:
    """The service's definitions, from its spec."""
    return _page("service.html", _config(service_url, read_only, 0))
