"""The system-command handler: ``POST /rpc/_system/{name}`` (startExecution, getExecution,
listExecutions, sendSignal, updateTask...), behind the IAM-authorised API route, through the
same ``HttpHandler`` as the commands."""

from __future__ import annotations

from typing import Any

from . import _http


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _http.serve(event, system=True)
