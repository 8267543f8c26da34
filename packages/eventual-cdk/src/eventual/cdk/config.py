"""The ``Service`` construct's configuration: the defaults and argument checks it shares with
eventual-pulumi (:mod:`eventual.aws_runtime.infra.config`, re-exported here), and the CDK's
Lambda runtimes and architectures."""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_

from eventual.aws_runtime.infra.config import (
    API_MAX_TIMEOUT,
    COMMAND,
    LAMBDA_MAX_TIMEOUT,
    ORCHESTRATOR,
    RESERVED_ENV,
    SUBSCRIPTION,
    SYSTEM,
    TASK,
    TIMER,
    UnknownNameError,
    check_architecture,
    check_environment,
    check_names,
    check_python_version,
    check_retention,
    check_subscribed_events,
    check_timeout,
    function_calls,
    pascal,
    service_build,
    task_timeout,
)

RUNTIMES = {
    "3.11": lambda_.Runtime.PYTHON_3_11,
    "3.12": lambda_.Runtime.PYTHON_3_12,
    "3.13": lambda_.Runtime.PYTHON_3_13,
}

ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}
"""``Service(architecture=...)``: the Lambda architectures, by the name the bundler knows."""


def lambda_architecture(
    architecture: lambda_.Architecture | str | None,
) -> tuple[lambda_.Architecture, str]:
    """The Lambda architecture and the bundler's name of it (``"x86_64"`` or ``"arm64"``) of
    ``Service(architecture=...)``: an ``Architecture``, its name, or ``None`` for x86_64."""
    if architecture is None:
        return ARCHITECTURES["x86_64"], "x86_64"
    name = architecture if isinstance(architecture, str) else architecture.name
    check_architecture(name, hint=" (or lambda_.Architecture.X86_64 / ARM_64)")
    return ARCHITECTURES[name], name


def lambda_runtime(python_version: str) -> lambda_.Runtime:
    """The Lambda runtime of ``python_version`` (``ValueError`` names the supported ones)."""
    return RUNTIMES[check_python_version(python_version)]


__all__ = [
    "API_MAX_TIMEOUT",
    "ARCHITECTURES",
    "COMMAND",
    "LAMBDA_MAX_TIMEOUT",
    "ORCHESTRATOR",
    "RESERVED_ENV",
    "RUNTIMES",
    "SUBSCRIPTION",
    "SYSTEM",
    "TASK",
    "TIMER",
    "UnknownNameError",
    "check_environment",
    "check_names",
    "check_retention",
    "check_subscribed_events",
    "check_timeout",
    "function_calls",
    "lambda_architecture",
    "lambda_runtime",
    "pascal",
    "service_build",
    "task_timeout",
]
