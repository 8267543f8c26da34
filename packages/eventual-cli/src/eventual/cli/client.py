"""The CLI's client: eventual-client's sync clients, with every failure as a :class:`CliError`.

The system commands go through :class:`eventual.client.SyncEventualClient` (signed with
``system_auth``, e.g. SigV4 for a deployed service), user commands through
:class:`eventual.client.SyncServiceClient` (unsigned: the caller's headers only). The methods
return the wire format (camelCase dicts, history events as JSON), which is what the CLI prints
and what ``--json`` writes. Each error is one sentence saying what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import islice, takewhile
from typing import Any

import httpx

from eventual.client import (
    HttpError,
    ServiceUnreachable,
    SyncEventualClient,
    SyncServiceClient,
    UnexpectedResponse,
)
from eventual.core.history import event_dict
from eventual.core.wire import execution_to_wire

from .errors import DEFAULT_URL, URL_ENV, CliError

__all__ = ["DEFAULT_URL", "URL_ENV", "CliError", "DevClient", "RemoteError"]


class RemoteError(CliError):
    """The service answered a request with an error status: ``status``, the error's ``name``
    (``ExecutionNotFound``...) and ``detail`` (its message) as the service sent them; ``str()``
    is the one line the CLI prints."""

    def __init__(self, text: str, *, status: int, name: str, detail: str) -> None:
        super().__init__(text)
        self.status = status
        self.name = name
        self.detail = detail


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
        self.label = label
        self.timeout = timeout
        self._signed = system_auth is not None
        try:
            self._system = SyncEventualClient(self.url, auth=system_auth, timeout=timeout)
        except ValueError:
            raise CliError(
                f"{url!r} is not a service URL: give one like {DEFAULT_URL} (--url or ${URL_ENV})"
            ) from None
        self._commands: SyncServiceClient | None = None

    def close(self) -> None:
        self._system.close()
        if self._commands is not None:
            self._commands.close()

    def __enter__(self) -> DevClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ errors

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except HttpError as exc:
            raise self._remote_error(exc) from None
        except ServiceUnreachable as exc:
            raise CliError(self._unreachable(exc.__cause__ or exc)) from None
        except (UnexpectedResponse, ValueError, KeyError) as exc:
            raise CliError(
                f"{self.url} answered something that is not an Eventual service's answer "
                f"({type(exc).__name__}: {exc}); check --url / --service"
            ) from None
        except RuntimeError as exc:  # SigV4Auth: no credentials to sign with
            if not self._signed:
                raise
            raise CliError(f"cannot sign the request to {self.url}: {exc}") from None

    def _remote_error(self, exc: HttpError) -> RemoteError:
        """One line from an error answer: ``ExecutionNotFound: no execution 'x' (HTTP 404)``."""
        same = exc.message in ("", exc.name)  # API Gateway's {"message": "Forbidden"}
        text = exc.name if same else f"{exc.name}: {exc.message}"
        details = exc.details
        if isinstance(details, list) and details and "invalid input" not in text:
            extra = [str(_msg(d)) for d in details[:3] if str(_msg(d)) not in text]
            if extra:
                text += " (" + "; ".join(extra) + ")"
        text += f" (HTTP {exc.status})"
        hint = ""
        if self._signed and exc.status == 403:
            hint = (
                ": the API refused the signed request; check that your AWS credentials "
                "may call execute-api:Invoke on it (and that the clock is right)"
            )
        return RemoteError(text + hint, status=exc.status, name=exc.name, detail=exc.message + hint)

    def _unreachable(self, cause: BaseException) -> str:
        if isinstance(cause, httpx.ConnectError):
            if self.label:
                return f"cannot connect to {self.label} at {self.url}"
            return (
                f"the dev server is not running at {self.url}: start it with `eventual dev` "
                f"(or point --url / ${URL_ENV} at a running one)"
            )
        if isinstance(cause, httpx.TimeoutException):
            return f"the server at {self.url} did not answer in time"
        return f"cannot reach {self.url}: {cause}"

    # ------------------------------------------------------------ calls

    def system(self, name: str, body: Any = None) -> Any:
        """Call ``POST /rpc/_system/{name}``; the decoded JSON answer, as the service sent it."""
        with self._errors():
            return self._system.call_system(name, body)

    def invoke(self, command: str, input: Any, headers: dict[str, str] | None = None) -> Any:
        """Call a user command at ``POST /rpc/{command}`` (unsigned); the decoded result."""
        if self._commands is None:
            self._commands = SyncServiceClient(self.url, timeout=self.timeout)
        with self._errors():
            return self._commands.call(command, input, headers=headers)

    def openapi(self) -> dict[str, Any]:
        """The service's OpenAPI document (``GET /openapi.json``, served by the dev server)."""
        try:
            response = httpx.get(self.url + "/openapi.json", timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise CliError(self._unreachable(exc)) from None
        if response.status_code >= 400:
            raise CliError(
                f"{self.url}/openapi.json answered HTTP {response.status_code}: is this the dev "
                "server? (for a deployed service use --service)"
            )
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise CliError(f"{self.url}/openapi.json is not an OpenAPI document")
        return document

    def start_execution(
        self, workflow: str, input: Any, *, name: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        with self._errors():
            started = self._system.start_execution(
                workflow, input, execution_name=name, timeout=timeout
            )
        return {"executionId": started.execution_id, "alreadyRunning": started.already_running}

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        with self._errors():
            return execution_to_wire(self._system.get_execution(execution_id))

    def wait(self, execution_id: str) -> dict[str, Any]:
        """The execution once it has ended: one held ``waitExecution`` request at a time
        (polling a server that has none), for as long as it takes."""
        from eventual.client import SyncRemoteExecution

        with self._errors():
            remote = SyncRemoteExecution(self._system, execution_id)
            return execution_to_wire(remote.wait(timeout=float("inf")))

    def list_executions(
        self,
        *,
        workflow: str | None = None,
        statuses: list[str] | None = None,
        limit: int | None = None,
        build: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, every page up to ``limit``; of one build if given."""
        with self._errors():
            found = self._system.iter_executions(
                workflow=workflow,
                statuses=statuses,
                page_size=min(limit or 100, 100),
                sort_direction="DESC",
                build=build,
            )
            return [execution_to_wire(e) for e in islice(found, limit)]

    def list_executions_started_before(
        self,
        before: datetime,
        *,
        workflow: str | None = None,
        statuses: list[str] | None = None,
        build: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every execution started before ``before``, newest first. Read oldest first, so
        the reading stops at the first page past ``before``: one that ended before a
        moment started before it, and the rest of the list is never read."""
        with self._errors():
            found = self._system.iter_executions(
                workflow=workflow, statuses=statuses, sort_direction="ASC", build=build
            )
            old = list(takewhile(lambda e: e.start_time < before, found))
            return [execution_to_wire(e) for e in reversed(old)]

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        with self._errors():
            # Our own JSON form of the events (what ``--json`` prints and replay reads).
            return [event_dict(e) for e in self._system.get_execution_history(execution_id)]

    def logs(
        self, *, execution_id: str | None = None, workflow: str | None = None
    ) -> list[dict[str, Any]]:
        with self._errors():
            entries = self._system.get_execution_logs(execution_id, workflow=workflow)
        return [
            {
                "timestamp": e.timestamp.isoformat().replace("+00:00", "Z"),
                "level": e.level,
                "message": e.message,
                "source": e.execution_id,
            }
            for e in entries
        ]

    def send_signal(
        self, execution_id: str, signal: str, payload: Any, *, signal_id: str | None = None
    ) -> None:
        with self._errors():
            self._system.send_signal(execution_id, signal, payload, signal_id=signal_id)

    def emit(self, event: str, payloads: list[Any]) -> None:
        with self._errors():
            self._system.emit_events(event, *payloads)

    def workflows(self) -> list[str]:
        with self._errors():
            return self._system.list_workflows()


def _msg(detail: Any) -> Any:
    if not isinstance(detail, dict):
        return detail
    return detail.get("message", detail.get("msg", detail))
