"""API Gateway HTTP API (payload format 2.0) to core's transport-neutral HTTP layer and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from . import _common

if TYPE_CHECKING:
    from eventual.core._context import RuntimeClient
    from eventual.core.http.api import Request, Response
    from eventual.core.http.handler import HttpHandler

SYSTEM_PREFIX = "/rpc/_system/"
_handlers: dict[str, HttpHandler] = {}

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def to_request(event: dict[str, Any]) -> Request:
    from eventual.core.http.api import Request

    ctx = event.get("requestContext") or {}
    http = ctx.get("http") or {}
    method = http.get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or http.get("path") or "/"
    stage = ctx.get("stage")
    if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
        path = path[len(stage) + 1 :] or "/"
    query = event.get("rawQueryString") or ""
    headers = dict(event.get("headers") or {})
    cookies = event.get("cookies")
    if cookies:
        headers["cookie"] = "; ".join(cookies)
    body: bytes | str = event.get("body") or b""
    if body and event.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body)
    return Request(method, path + (f"?{query}" if query else ""), headers=headers, body=body)


def from_response(response: Response) -> dict[str, Any]:
    headers = dict(response.headers.items())
    content_type = headers.get("content-type", "")
    out: dict[str, Any] = {"statusCode": response.status, "headers": headers}
    body = response.body
    text: str | None = None
    if not body or content_type.startswith(_TEXT_TYPES):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None:
        out["body"] = text
        out["isBase64Encoded"] = False
    else:
        import base64

        out["body"] = base64.b64encode(body).decode()
        out["isBase64Encoded"] = True
    return out


def _not_found(message: str) -> dict[str, Any]:
    import json

    return {
        "statusCode": 404,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"error": "NotFound", "message": message}),
        "isBase64Encoded": False,
    }


def _handler(kind: str) -> HttpHandler:
    found = _handlers.get(kind)
    if found is None:
        from eventual.core.http.handler import HttpHandler

        if kind == "system":
            found = HttpHandler(_common.service(), _common.runtime(kind))
        else:
            # Commands: the Runtime (the engine, the AWS adapters, the history models) is
            # built when a command first uses it, so a command that only computes its answer
            # never loads it. System commands are served by the system endpoint only.
            rt = cast("RuntimeClient", _common.DeferredRuntime(kind))
            found = HttpHandler(_common.service(), rt, system=False)
        _handlers[kind] = found
    return found


def serve(event: dict[str, Any], *, system: bool) -> dict[str, Any]:
    with _common.FirstInvocation():
        return _serve(event, system=system)


def _serve(event: dict[str, Any], *, system: bool) -> dict[str, Any]:
    request = to_request(event)
    is_system = request.path.startswith(SYSTEM_PREFIX)
    if is_system and not system:
        return _not_found(
            "system commands are served by the service's IAM-authorised system endpoint"
        )
    if system and not is_system:
        return _not_found(f"this endpoint serves only {SYSTEM_PREFIX}*, not {request.path}")
    kind = "system" if system else "command"
    http = _handler(kind)
    domain = (event.get("requestContext") or {}).get("domainName")
    if domain:
        http.service_url = f"https://{domain}"
    return from_response(_common.run(http.handle(request)))


def reset() -> None:
    _handlers.clear()


_common.on_configure(reset)
