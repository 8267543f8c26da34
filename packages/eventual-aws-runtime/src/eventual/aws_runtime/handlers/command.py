"""The command/API worker: API Gateway HTTP API events (payload format 2.0) through core's
``HttpHandler``: RPC commands at ``POST /rpc/{name}``, REST paths, ``api`` routes, middleware,
validation and the error contract, as on the dev server. Base64 bodies are decoded on the way
in; binary responses are base64-encoded on the way out."""

from __future__ import annotations

from typing import Any

from . import _http


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return _http.serve(event, system=False)
