"""A small synchronous HTTP client for the CLI: system commands and user commands.

It speaks the wire protocol of DESIGN.md directly with httpx and turns every failure into a
:class:`CliError` with one sentence that says what happened and what to do.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from .errors import DEFAULT_URL, URL_ENV, CliError

__all__ = ["DEFAULT_URL", "URL_ENV", "CliError", "DevClient", "error_text"]


class DevClient:
    """``system_auth`` (e.g. SigV4 for a deployed service) signs the system commands only: a
    user command keeps the headers the caller gives it. ``label`` names the target in errors
    (default: the dev server)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        timeout: float = 30.0,
        system_auth: httpx.Auth | None = None,
        label: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.system_auth = system_auth
        self.label = label
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DevClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(
        self,
        path: str,
        body: Any,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | None = None,
    ) -> httpx.Response:
        try:
            return self._http.post(
                path,
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json", **(headers or {})},
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.ConnectError:
            if self.label:
                raise CliError(f"cannot connect to {self.label} at {self.url}") from None
            raise CliError(
                f"the dev server is not running at {self.url}: start it with `eventual dev` "
                f"(or point --url / ${URL_ENV} at a running one)"
            ) from None
        except RuntimeError as exc:  # SigV4Auth: no credentials to sign with
            if auth is None:
                raise
            raise CliError(f"cannot sign the request to {self.url}: {exc}") from None
        except httpx.TimeoutException:
            raise CliError(f"the server at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None

    def system(self, name: str, body: Any = None) -> Any:
        """Call ``POST /rpc/_system/{name}``; the decoded JSON result."""
        response = self._post(
            f"/rpc/_system/{name}", body if body is not None else {}, auth=self.system_auth
        )
        if response.status_code >= 400:
            text = error_text(response)
            if self.system_auth is not None and response.status_code == 403:
                text += (
                    ": the API refused the signed request; check that your AWS credentials "
                    "may call execute-api:Invoke on it (and that the clock is right)"
                )
            raise CliError(text)
        return _json(response)

    def invoke(self, command: str, input: Any, headers: dict[str, str] | None = None) -> Any:
        """Call a user command at ``POST /rpc/{command}``; the decoded result."""
        response = self._post(f"/rpc/{command}", input, headers)
        if response.status_code >= 400:
            raise CliError(error_text(response))
        return _json(response)

    def openapi(self) -> dict[str, Any]:
        """The service's OpenAPI document (``GET /openapi.json``)."""
        try:
            response = self._http.get("/openapi.json")
        except httpx.ConnectError:
            raise CliError(
                f"cannot connect to {self.label or 'the dev server'} at {self.url}"
                + ("" if self.label else ": start it with `eventual dev`")
            ) from None
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code >= 400:
            raise CliError(error_text(response))
        document = _json(response)
        if not isinstance(document, dict):
            raise CliError(f"{self.url}/openapi.json is not an OpenAPI document")
        return document

    # ------------------------------------------------------------ typed helpers

    def start_execution(
        self, workflow: str, input: Any, *, name: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"workflow": workflow, "input": input}
        if name:
            body["executionName"] = name
        if timeout is not None:
            body["timeout"] = timeout
        return self.system("startExecution", body)

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        return self.system("getExecution", execution_id)

    def list_executions(
        self,
        *,
        workflow: str | None = None,
        statuses: list[str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {"maxResults": min(limit or 100, 100)}
            if workflow:
                body["workflowName"] = workflow
            if statuses:
                body["statuses"] = statuses
            if token:
                body["nextToken"] = token
            page = self.system("listExecutions", body)
            out.extend(page.get("executions", []))
            token = page.get("nextToken")
            if not token or (limit is not None and len(out) >= limit):
                return out[:limit] if limit is not None else out

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        return self.system("getExecutionHistory", {"executionId": execution_id})["events"]

    def logs(
        self, *, execution_id: str | None = None, workflow: str | None = None
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if execution_id:
            body["executionId"] = execution_id
        if workflow:
            body["workflowName"] = workflow
        return self.system("getExecutionLogs", body)["events"]

    def send_signal(
        self, execution_id: str, signal: str, payload: Any, *, signal_id: str | None = None
    ) -> None:
        body: dict[str, Any] = {"executionId": execution_id, "signalId": signal, "payload": payload}
        if signal_id:
            body["id"] = signal_id
        self.system("sendSignal", body)

    def emit(self, event: str, payloads: list[Any]) -> None:
        self.system("emitEvents", {"events": [{"name": event, "event": p} for p in payloads]})

    def workflows(self) -> list[str]:
        return [w["name"] for w in self.system("listWorkflows", {})["workflows"]]


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def error_text(response: httpx.Response) -> str:
    """One line from an error response: ``NotFound: no execution 'x' (HTTP 404)``."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        name = body.get("error")  # API Gateway's own errors have only a message
        text = f"{name}: {body['message']}" if name else str(body["message"])
        details = body.get("details")
        if isinstance(details, list) and details and "invalid input" not in text:
            text += " (" + "; ".join(str(d.get("msg", d)) for d in details[:3]) + ")"
        return f"{text} (HTTP {response.status_code})"
    snippet = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return f"HTTP {response.status_code} from {response.request.url}" + (
        f": {snippet}" if snippet else ""
    )
