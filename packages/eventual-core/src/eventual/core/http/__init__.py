"""Commands, routes and middleware, and the transport-neutral HTTP handler."""

from .api import (
    ApiRoute,
    CommandContext,
    CommandDefinition,
    Headers,
    HttpError,
    Middleware,
    Next,
    Request,
    Response,
    Router,
    api,
    command,
)

__all__ = [
    "ApiRoute",
    "CommandContext",
    "CommandDefinition",
    "Headers",
    "HttpError",
    "Middleware",
    "Next",
    "Request",
    "Response",
    "Router",
    "api",
    "command",
]
