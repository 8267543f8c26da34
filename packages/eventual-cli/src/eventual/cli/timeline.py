"""The timeline page: an execution drawn on a time axis, in the browser.

The page is static HTML and JavaScript (``timeline.html`` beside this module). It reads the
execution and its history through the service's system commands (``getExecution`` and
``getExecutionHistory``), draws tasks, timers, retries and child workflows as bars and signals
and emitted events as marks, shows inputs, results and errors on hover or click, and refreshes
while the execution runs. The dev server serves it at ``/_eventual/timeline/{execution id}``,
with a list of executions at ``/_eventual/executions``; ``eventual timeline ID`` prints (and
opens) that URL. For a deployed service, ``eventual timeline`` serves the same pages from a
local server that forwards their requests signed (``timeline_proxy.py``).
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources

TIMELINE_PREFIX = "/_eventual/timeline/"
EXECUTIONS_PATH = "/_eventual/executions"

_CONFIG_START = "/*CONFIG*/"
_CONFIG_END = "/*END*/"


@cache
def _template() -> str:
    return resources.files("eventual.cli").joinpath("timeline.html").read_text(encoding="utf-8")


def _safe_json(value: object) -> str:
    # JSON inside a <script>: never let a value close the script element.
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def timeline_page(execution_id: str, *, service_url: str = "", refresh_ms: int = 2000) -> str:
    """The page for one execution; ``service_url`` empty means "the server that served it"."""
    template = _template()
    start = template.index(_CONFIG_START)
    end = template.index(_CONFIG_END) + len(_CONFIG_END)
    config = {
        "serviceUrl": service_url.rstrip("/"),
        "executionId": execution_id,
        "refreshMs": refresh_ms,
    }
    return template[:start] + _safe_json(config) + template[end:]


def timeline_path(execution_id: str) -> str:
    from urllib.parse import quote

    return TIMELINE_PREFIX + quote(execution_id, safe="")


def executions_page(*, service_url: str = "") -> str:
    """A list of executions, newest first, each linked to its timeline."""
    config = _safe_json({"serviceUrl": service_url.rstrip("/"), "timeline": TIMELINE_PREFIX})
    title = html.escape("Eventual executions")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
 body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d1d1f; }}
 table {{ border-collapse: collapse; width: 100%; }}
 th, td {{ text-align: left; padding: 6px 10px; border-bottom: 1px solid #e3e3e8; }}
 .SUCCEEDED {{ color: #137333; }} .FAILED {{ color: #d93025; }} .IN_PROGRESS {{ color: #2f6fed; }}
</style></head>
<body><h1>{title}</h1>
<table><thead><tr><th>execution</th><th>workflow</th><th>status</th><th>started</th><th>ended</th>
</tr></thead><tbody id="rows"></tbody></table>
<p id="error" style="color:#d93025"></p>
<script>
"use strict";
const CONFIG = {config};
async function load() {{
  try {{
    const r = await fetch(`${{CONFIG.serviceUrl}}/rpc/_system/listExecutions`, {{
      method: "POST", headers: {{"content-type": "application/json"}},
      body: '{{"sortDirection":"DESC"}}'}});
    const data = await r.json();
    if (!r.ok) throw new Error(data.message || r.status);
    const rows = document.getElementById("rows");
    rows.innerHTML = "";
    for (const e of data.executions) {{
      const tr = document.createElement("tr");
      const link = document.createElement("a");
      link.href = CONFIG.timeline + encodeURIComponent(e.id);
      link.textContent = e.id;
      const cells = [link, e.workflowName, e.status, e.startTime, e.endTime || ""];
      for (const c of cells) {{
        const td = document.createElement("td");
        if (typeof c === "string") td.textContent = c; else td.appendChild(c);
        if (c === e.status) td.className = e.status;
        tr.appendChild(td);
      }}
      rows.appendChild(tr);
    }}
    document.body.dataset.rendered = String(data.executions.length);
  }} catch (err) {{ document.getElementById("error").textContent = String(err.message || err); }}
  setTimeout(load, 3000);
}}
load();
</script></body></html>
"""
