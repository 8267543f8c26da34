"""eventual.client: typed HTTP clients for a service's commands and its system commands.

- :class:`ServiceClient` / :class:`SyncServiceClient`: ``await client.call(send_invoice, order)``
  calls ``POST /rpc/{name}``, type-checked against the service's own command definitions.
- :class:`EventualClient` / :class:`SyncEventualClient`: the system commands (start and
  inspect executions, signals, events, task completion).

Errors from the service raise :class:`eventual.core.HttpError` (``status``, ``name``,
``message``); an unreachable service raises :class:`ServiceUnreachable`. SigV4 signing lives
in :mod:`eventual.client.aws` (extra ``eventual-client[aws]``).
"""

from eventual.core.http.api import HttpError

from ._core import Retry, ServiceUnreachable, UnexpectedResponse
from .service import (
    CommandRef,
    ServiceClient,
    ServiceRef,
    SyncServiceClient,
    command_ref,
    service_ref,
)
from .system import (
    EventualClient,
    ExecutionPage,
    LogEntry,
    RemoteExecution,
    SyncEventualClient,
    SyncRemoteExecution,
)
from .transport import InProcessTransport

__all__ = [
    "CommandRef",
    "EventualClient",
    "ExecutionPage",
    "HttpError",
    "InProcessTransport",
    "LogEntry",
    "RemoteExecution",
    "Retry",
    "ServiceClient",
    "ServiceRef",
    "ServiceUnreachable",
    "SyncEventualClient",
    "SyncRemoteExecution",
    "SyncServiceClient",
    "UnexpectedResponse",
    "command_ref",
    "service_ref",
]
