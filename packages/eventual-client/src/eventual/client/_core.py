"""The request-building and response-reading core shared by the async and sync clients.

Every client method describes its request as a :class:`Call` (path, JSON body, how to read
the answer, whether it is safe to repeat). :class:`AsyncSender` and :class:`SyncSender` are
the only code that differs between the two forms: they send a call over ``httpx`` with the
same retry policy and hand the response back to :func:`read_response`.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import anyio
import httpx

from eventual.core.errors import EventualError
from eventual.core.http.api import HttpError
from eventual.core.serialization import JsonTooDeep, loads

R = TypeVar("R")

DEFAULT_TIMEOUT = 30.0
#: Statuses that mean "the request may not have been processed; try again later".
RETRY_STATUSES = frozenset({429, 502, 503, 504})

AuthLike = str | httpx.Auth | None


class ServiceUnreachable(EventualError):
    """The service could not be reached (connection refused, DNS failure, timeout...)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class UnexpectedResponse(EventualError):
    """The service answered with something the client cannot read as the declared type."""


@dataclass(frozen=True)
class Retry:
    """Retries with exponential backoff and jitter.

    Calls that are safe to repeat (reads, starts with an execution name, signals with a
    dedup id) are retried on connection errors, timeouts and 429/502/503/504. Any call is
    retried when the connection could not be opened (the request never left)."""

    attempts: int = 3
    backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return base * (0.5 + random.random() / 2)


NO_RETRY = Retry(attempts=1)


@dataclass(frozen=True)
class Call(Generic[R]):
    """One request: ``POST {service_url}{path}`` with ``body`` as JSON."""

    path: str
    body: Any
    read: Callable[[Any], R]
    idempotent: bool
    what: str
    headers: Mapping[str, str] | None = None


def rpc_path(name: str) -> str:
    return "/rpc/" + quote(name, safe="")


def system_path(name: str) -> str:
    return "/rpc/_system/" + name


def encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class Settings:
    """What both forms of both clients are configured with."""

    def __init__(
        self,
        service_url: str,
        *,
        headers: Mapping[str, str] | None,
        auth: AuthLike,
        timeout: float | httpx.Timeout | None,
        retry: Retry | None,
    ) -> None:
        if not service_url.startswith(("http://", "https://")):
            raise ValueError(
                f"service_url must start with http:// or https://, got {service_url!r} "
                "(for the dev server: http://127.0.0.1:PORT)"
            )
        self.service_url = service_url.rstrip("/")
        self.headers: dict[str, str] = {"accept": "application/json", **(headers or {})}
        self.auth: httpx.Auth | None
        if isinstance(auth, str):
            self.headers["authorization"] = f"Bearer {auth}"
            self.auth = None
        else:
            self.auth = auth
        self.timeout = httpx.Timeout(timeout) if not isinstance(timeout, httpx.Timeout) else timeout
        self.retry = retry or Retry()

    def request(self, client: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        headers = {**self.headers, "content-type": "application/json", **(call.headers or {})}
        return client.build_request(
            "POST", self.service_url + call.path, headers=headers, content=encode(call.body)
        )

    def unreachable(self, call: Call[Any], exc: Exception) -> ServiceUnreachable:
        url = self.service_url + call.path
        if isinstance(exc, httpx.TimeoutException):
            return ServiceUnreachable(
                f"{call.what}: no answer from {url} within the timeout ({exc!r}); raise the "
                "client's timeout= or check that the service is healthy",
                url=url,
            )
        return ServiceUnreachable(
            f"{call.what}: could not reach {url} ({type(exc).__name__}: {exc}); check the "
            "service URL and that the service is running (locally: `eventual dev`)",
            url=url,
        )

    def retry_after(self, call: Call[Any], attempt: int, outcome: Any) -> float | None:
        """Seconds to wait before trying again, or None to stop."""
        if attempt >= self.retry.attempts:
            return None
        if isinstance(outcome, httpx.ConnectError):
            return self.retry.delay(attempt)  # the request never reached the service
        if not call.idempotent:
            return None
        if isinstance(outcome, httpx.TransportError) or (
            isinstance(outcome, httpx.Response) and outcome.status_code in RETRY_STATUSES
        ):
            return self.retry.delay(attempt)
        return None


def read_response(call: Call[R], response: httpx.Response) -> R:
    """The call's result, or :class:`HttpError` carrying the server's error body."""
    status = response.status_code
    content = response.content
    if 200 <= status < 300:
        if not content.strip():
            return call.read(None)
        try:
            data = loads(content)
        except JsonTooDeep as exc:
            raise UnexpectedResponse(
                f"{call.what}: the service's answer is refused: {exc}"
            ) from None
        except ValueError:
            ctype = response.headers.get("content-type", "")
            if "json" in ctype:
                raise UnexpectedResponse(
                    f"{call.what}: the service answered {status} with invalid JSON: "
                    f"{content[:200]!r}"
                ) from None
            data = response.text
        return call.read(data)
    raise http_error(call, response)


def http_error(call: Call[Any], response: httpx.Response) -> HttpError:
    status = response.status_code
    body: Any = None
    try:
        body = loads(response.content) if response.content.strip() else None
    except ValueError:
        body = None
    if isinstance(body, dict) and ("error" in body or "message" in body):
        name = str(body.get("error") or response.reason_phrase.replace(" ", "") or "HttpError")
        # ``data``: the original's field (validation issues); ``details``: older servers.
        details = body.get("data", body.get("details"))
        return HttpError(status, str(body.get("message") or ""), name=name, details=details)
    text = response.text.strip()[:500]
    name = response.reason_phrase.replace(" ", "") or "HttpError"
    return HttpError(status, text or f"{call.what} failed with HTTP {status}", name=name)


class SyncSender:
    """Sends calls with an ``httpx.Client``."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._client = httpx.Client(
            auth=settings.auth, timeout=settings.timeout, transport=transport
        )

    def send(self, call: Call[R]) -> R:
        attempt = 1
        while True:
            outcome: httpx.Response | Exception
            try:
                outcome = self._client.send(self.settings.request(self._client, call))
            except httpx.TransportError as exc:
                outcome = exc
            wait = self.settings.retry_after(call, attempt, outcome)
            if wait is None:
                if isinstance(outcome, Exception):
                    raise self.settings.unreachable(call, outcome) from outcome
                return read_response(call, outcome)
            if isinstance(outcome, httpx.Response):
                outcome.close()
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self._client.close()


class AsyncSender:
    """Sends calls with an ``httpx.AsyncClient``."""

    def __init__(
        self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._client = httpx.AsyncClient(
            auth=settings.auth, timeout=settings.timeout, transport=transport
        )

    async def send(self, call: Call[R]) -> R:
        attempt = 1
        while True:
            outcome: httpx.Response | Exception
            try:
                outcome = await self._client.send(self.settings.request(self._client, call))
            except httpx.TransportError as exc:
                outcome = exc
            wait = self.settings.retry_after(call, attempt, outcome)
            if wait is None:
                if isinstance(outcome, Exception):
                    raise self.settings.unreachable(call, outcome) from outcome
                return read_response(call, outcome)
            if isinstance(outcome, httpx.Response):
                await outcome.aclose()
            await anyio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self._client.aclose()
