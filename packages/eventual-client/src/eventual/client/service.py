"""``ServiceClient``: call a service's commands over ``POST /rpc/{name}``, type-checked.

A call names its command with the service's own definition object (``send_invoice``), a
:class:`CommandRef` standing in for it, or a plain string. The client only reads the
object's ``name`` (and, when it has them, ``input_type``/``output_type`` to encode the input
and build the typed result); it never runs the handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast, overload

import httpx

from eventual.core.http.api import CommandDefinition, Response
from eventual.core.serialization import from_json, to_json

from ._core import (
    DEFAULT_TIMEOUT,
    AsyncSender,
    AuthLike,
    Call,
    Retry,
    Settings,
    SyncSender,
    UnexpectedResponse,
    rpc_path,
)

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class CommandRef(Generic[I, O]):
    """A command named without importing the service: ``CommandRef("sendInvoice")``.

    ``output_type`` (a pydantic model, dataclass, ``list[...]``...) makes the client build
    the result as that type; without it the result is the decoded JSON."""

    def __init__(self, name: str, *, input_type: Any = Any, output_type: Any = Any) -> None:
        self.name = name
        self.input_type = input_type
        self.output_type = output_type

    def __repr__(self) -> str:
        return f"CommandRef({self.name!r})"


@overload
def command_ref(name: str, /) -> CommandRef[Any, Any]: ...
@overload
def command_ref(name: str, /, *, output: type[O]) -> CommandRef[Any, O]: ...
@overload
def command_ref(name: str, /, *, input: type[I], output: type[O]) -> CommandRef[I, O]: ...
def command_ref(name: str, /, *, input: Any = Any, output: Any = Any) -> CommandRef[Any, Any]:
    """A stand-in for a command definition, for the ``else:`` branch of an
    ``if TYPE_CHECKING:`` import (see the README)."""
    return CommandRef(name, input_type=input, output_type=output)


class ServiceRef:
    """A run-time stand-in for a service module imported only under ``TYPE_CHECKING``.

    ``orders.send_invoice`` is ``CommandRef("send_invoice")``: the attribute name is the
    command name, which is the default for ``@command``. Commands registered under another
    name, or whose output should be built as a model, are given as keywords:
    ``service_ref(create=command_ref("createOrder", output=Order))``."""

    def __init__(self, refs: Mapping[str, CommandRef[Any, Any] | str]) -> None:
        self._refs = {k: CommandRef(v) if isinstance(v, str) else v for k, v in refs.items()}

    def __getattr__(self, attr: str) -> CommandRef[Any, Any]:
        if attr.startswith("__"):
            raise AttributeError(attr)
        ref = self._refs.get(attr)
        return ref if ref is not None else CommandRef(attr)

    def __repr__(self) -> str:
        return f"ServiceRef({sorted(self._refs)})"


def service_ref(**commands: CommandRef[Any, Any] | str) -> Any:
    """A stand-in for a service module imported only under ``TYPE_CHECKING``."""
    return ServiceRef(commands)


def _command_call(
    command: CommandDefinition[Any, Any] | CommandRef[Any, Any] | str,
    input: Any,
    headers: Mapping[str, str] | None,
) -> Call[Any]:
    if isinstance(command, str):
        name, input_type, output_type = command, Any, Any
    else:
        name = command.name
        input_type = getattr(command, "input_type", Any)
        output_type = getattr(command, "output_type", Any)
    if not isinstance(name, str) or not name:
        raise TypeError(f"not a command: {command!r}; pass a command definition or its name")
    what = f"command {name!r}"
    body = to_json(input, input_type if input_type is not type(None) else Any)

    def read(data: Any) -> Any:
        if output_type is Any or output_type is None or output_type is type(None):
            return data
        if isinstance(output_type, type) and issubclass(cast(type, output_type), Response):
            return data
        try:
            return from_json(data, output_type)
        except Exception as exc:
            raise UnexpectedResponse(
                f"{what} answered {str(data)[:200]!r}, which is not a valid "
                f"{getattr(output_type, '__name__', output_type)}: {exc}; is the service "
                "deployed from the same code as the client's copy of it?"
            ) from None

    return Call(rpc_path(name), body, read, idempotent=False, what=what, headers=headers)


class _ClientBase:
    def __init__(
        self,
        service_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: AuthLike = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
    ) -> None:
        self._settings = Settings(
            service_url, headers=headers, auth=auth, timeout=timeout, retry=retry
        )

    @property
    def service_url(self) -> str:
        return self._settings.service_url


class ServiceClient(_ClientBase):
    """Calls a service's commands: ``await client.call(send_invoice, order)``.

    ``ServiceClient(service_url, *, headers=None, auth=None, timeout=30.0, retry=None)``;
    ``auth`` is a bearer token (str) or an ``httpx.Auth`` such as
    :class:`eventual.client.aws.SigV4Auth`. Use it as ``async with`` or call :meth:`aclose`.
    A command may not be idempotent, so a call is retried (``retry=Retry(attempts, backoff)``)
    only when its connection could not be opened: then the request never reached the
    service."""

    def __init__(
        self,
        service_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: AuthLike = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(service_url, headers=headers, auth=auth, timeout=timeout, retry=retry)
        self._sender = AsyncSender(self._settings, transport)

    @overload
    async def call(
        self,
        command: CommandDefinition[None, O] | CommandRef[None, O],
        /,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> O: ...
    @overload
    async def call(
        self,
        command: CommandDefinition[I, O] | CommandRef[I, O],
        input: I,
        /,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> O: ...
    @overload
    async def call(
        self, command: str, input: Any = None, /, *, headers: Mapping[str, str] | None = None
    ) -> Any: ...
    async def call(
        self,
        command: CommandDefinition[Any, Any] | CommandRef[Any, Any] | str,
        input: Any = None,
        /,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call a command and return its output, built as the command's output type."""
        return await self._sender.send(_command_call(command, input, headers))

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class SyncServiceClient(_ClientBase):
    """The blocking form of :class:`ServiceClient`: ``client.call(send_invoice, order)``."""

    def __init__(
        self,
        service_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        auth: AuthLike = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        retry: Retry | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(service_url, headers=headers, auth=auth, timeout=timeout, retry=retry)
        self._sender = SyncSender(self._settings, transport)

    @overload
    def call(
        self,
        command: CommandDefinition[None, O] | CommandRef[None, O],
        /,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> O: ...
    @overload
    def call(
        self,
        command: CommandDefinition[I, O] | CommandRef[I, O],
        input: I,
        /,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> O: ...
    @overload
    def call(
        self, command: str, input: Any = None, /, *, headers: Mapping[str, str] | None = None
    ) -> Any: ...
    def call(
        self,
        command: CommandDefinition[Any, Any] | CommandRef[Any, Any] | str,
        input: Any = None,
        /,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Call a command and return its output, built as the command's output type."""
        return self._sender.send(_command_call(command, input, headers))

    def close(self) -> None:
        self._sender.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
