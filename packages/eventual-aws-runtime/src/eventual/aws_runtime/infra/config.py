"""The configuration both infrastructure packages check the same way: the functions' defaults
(memory, timeouts), the Lambda runtimes and architectures they accept, and the checks of a
``Service``'s arguments against the service's spec, which fail the deploy program with the names
the service does define (the same messages from ``eventual.cdk`` and ``eventual.pulumi``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eventual.aws_runtime import names as n
from eventual.aws_runtime.infra import permissions as perms
from eventual.core.service import BUILD_ENV

PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
"""The Lambda Python runtimes a service may run on (``python_version=``)."""

ARCHITECTURE_NAMES = ("x86_64", "arm64")
"""``Service(architecture=...)``: the Lambda architectures, by the name the bundler knows."""

# Defaults: (memory MB, timeout s). A command's timeout stays under API Gateway's 30 s; the
# orchestrator's and the timer's are a sixth of their queue's visibility timeout (AWS's advice
# for SQS event sources, so a batch is retried only after a real failure).
ORCHESTRATOR = (512, n.EXECUTION_QUEUE_VISIBILITY_TIMEOUT // 6)
TIMER = (256, n.TIMER_QUEUE_VISIBILITY_TIMEOUT // 6)
COMMAND = (512, 29)
SYSTEM = (512, 29)
TASK = (512, 300)
SUBSCRIPTION = (512, 60)
LAMBDA_MAX_TIMEOUT = 900
API_MAX_TIMEOUT = 30

RESERVED_ENV = {
    n.ENV_SERVICE_NAME,
    n.ENV_SERVICE_ENTRY,
    n.ENV_TASK,
    n.ENV_SUBSCRIPTION,
    *n.ENV_OF_FIELD.values(),
}
"""The variables the construct sets for the runtime: user settings may not use these names.
(``EVENTUAL_BUILD`` too, but the service-wide ``environment`` may name the build: see
:func:`service_build`.)"""


class UnknownNameError(ValueError):
    """``commands``, ``tasks`` or ``subscriptions`` names something the service does not define."""


def _check_names(
    service: str, kind: str, given: Mapping[str, Any] | None, defined: Sequence[str]
) -> str | None:
    if not given:
        return None
    unknown = sorted(set(given) - set(defined))
    if not unknown:
        return None
    return (
        f"{kind}= names {', '.join(repr(u) for u in unknown)}, which service {service!r} does "
        f"not define; its {kind} are: {', '.join(sorted(defined)) or '(none)'}"
    )


def check_names(
    service: str,
    *,
    commands: Mapping[str, Any] | None,
    tasks: Mapping[str, Any] | None,
    subscriptions: Mapping[str, Any] | None,
    defined_commands: Sequence[str],
    defined_tasks: Sequence[str],
    defined_subscriptions: Sequence[str],
) -> None:
    """:class:`UnknownNameError` if the per-function props name a command, task or
    subscription the service does not define (every such name in one message)."""
    problems = [
        p
        for p in (
            _check_names(service, "commands", commands, defined_commands),
            _check_names(service, "tasks", tasks, defined_tasks),
            _check_names(service, "subscriptions", subscriptions, defined_subscriptions),
        )
        if p
    ]
    if problems:
        raise UnknownNameError("; ".join(problems))


def function_calls(
    *,
    api: Any,
    orchestrator: Any,
    timer: Any,
    system: Any,
    commands: Mapping[str, Any],
    tasks: Mapping[str, Any],
    subscriptions: Mapping[str, Any],
) -> dict[str, frozenset[str]]:
    """The ``calls=`` of the functions whose props set it, checked, by function id
    (``"Api"``, ``"Orchestrator"``, ``"Command<Name>"``, ``"Task<Name>"``,
    ``"Subscription<Name>"``); a function without one may make every call. The timer and the
    system functions run no user code: ``calls=`` on them is an error."""
    for label, props in (("timer", timer), ("system", system)):
        if props is not None and props.calls is not None:
            raise ValueError(
                f"{label}=: calls= is for the functions that run your code (api, commands, "
                f"tasks, subscriptions, orchestrator); the {label} function runs none"
            )
    given: dict[str, Any] = {"Api": api, "Orchestrator": orchestrator}
    given.update({f"Command{pascal(k)}": v for k, v in commands.items()})
    given.update({f"Task{pascal(k)}": v for k, v in tasks.items()})
    given.update({f"Subscription{pascal(k)}": v for k, v in subscriptions.items()})
    return {
        key: perms.check_calls(props.calls, key)
        for key, props in given.items()
        if props is not None and props.calls is not None
    }


def check_environment(
    environments: Iterable[Mapping[str, str]],
    function_environments: Iterable[Mapping[str, str]] = (),
) -> None:
    """``ValueError`` if any of the user's environments (the service-wide ones, then those of
    single functions) sets a variable the runtime reads; a single function may not set
    ``EVENTUAL_BUILD`` either (every function of a deploy reports the same build)."""
    function_environments = list(function_environments)
    if any(BUILD_ENV in env for env in function_environments):
        raise ValueError(
            f"{BUILD_ENV} is the same for every function of a deploy: set it in the service's "
            f'environment=, not in one function\'s props (or set BUILD = "..." in the entry '
            "module)"
        )
    envs = [*environments, *function_environments]
    reserved = sorted({k for props in envs for k in props if k in RESERVED_ENV})
    if reserved:
        raise ValueError(
            f"environment variables {', '.join(reserved)} are set by the construct for the "
            "runtime; give your settings other names"
        )


def service_build(spec: Mapping[str, Any], environment: Mapping[str, str]) -> str | None:
    """The build every function of the deploy reports (``EVENTUAL_BUILD``): the one the
    service-wide ``environment`` names, else the spec's (read at synthesis from the code the
    bundle holds: ``EVENTUAL_BUILD`` of the synthesis, a ``BUILD`` string in the entry module,
    or the package version and a hash of the workflows' code). ``None`` for a spec without one
    (an older eventual-core), which leaves each function to compute its own."""
    build = environment.get(BUILD_ENV) or spec.get("build")
    return str(build) if build else None


def check_subscribed_events(
    events: Sequence[str],
    *,
    producer: str,
    produced: Iterable[str],
    consumer: str,
    heard: Iterable[str],
) -> list[str]:
    """The events ``consumer`` subscribes to from ``producer`` (duplicates dropped); each must
    be one ``producer`` defines (``produced``) and one of ``consumer``'s subscriptions listens
    to (``heard``), else :class:`UnknownNameError`."""
    wanted = list(dict.fromkeys(events))
    if not wanted:
        raise ValueError("subscribe: give at least one event name")
    theirs = set(produced)
    unknown = [e for e in wanted if e not in theirs]
    if unknown:
        raise UnknownNameError(
            f"service {producer!r} defines no event "
            f"{', '.join(repr(u) for u in unknown)}; its events are: "
            f"{', '.join(sorted(theirs)) or '(none)'}"
        )
    ours = set(heard)
    unheard = [e for e in wanted if e not in ours]
    if unheard:
        raise UnknownNameError(
            f"no subscription of service {consumer!r} listens to "
            f"{', '.join(repr(u) for u in unheard)}; its subscriptions listen to: "
            f"{', '.join(sorted(ours)) or '(none)'}"
        )
    return wanted


def pascal(name: str) -> str:
    """The construct id part of a command, task or subscription name (``"getOrder"`` ->
    ``"GetOrder"``)."""
    parts = re.split(r"[^A-Za-z0-9]+", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p) or "X"


def check_python_version(python_version: str) -> str:
    """``python_version`` if Lambda runs it (``ValueError`` names the supported ones)."""
    if python_version not in PYTHON_VERSIONS:
        raise ValueError(
            f"python_version {python_version!r} is not supported; use one of "
            f"{', '.join(PYTHON_VERSIONS)}"
        )
    return python_version


def check_architecture(name: str, *, hint: str = "") -> str:
    """``name`` if it is a Lambda architecture (``ValueError`` names them, then ``hint``)."""
    if name not in ARCHITECTURE_NAMES:
        raise ValueError(
            f"architecture {name!r} is not a Lambda architecture; use "
            f"{' or '.join(repr(a) for a in ARCHITECTURE_NAMES)}{hint}"
        )
    return name


def check_retention(days: object) -> int:
    """``days``, the ``retention=`` of a service (how many days a finished execution's record,
    history and payloads are kept), if it is a whole number of days, 1 or more
    (``ValueError`` otherwise)."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(
            f"retention={days!r}: give the days a finished execution is kept, a whole number, "
            f"1 or more (the default is {n.RETENTION_DAYS})"
        )
    return days


def check_timeout(id: str, seconds: float, max_timeout: int = LAMBDA_MAX_TIMEOUT) -> None:
    """``ValueError`` if function ``id``'s timeout is over what it allows (15 minutes, or API
    Gateway's 30 seconds for a command)."""
    if seconds > max_timeout:
        raise ValueError(
            f"{id}: timeout {seconds:g}s is over the {max_timeout}s this function allows"
            + (" (API Gateway's limit)" if max_timeout == API_MAX_TIMEOUT else "")
        )


def task_timeout(spec: Mapping[str, Any]) -> int:
    """A task function's default timeout: the task's own ``timeout`` (rounded up, capped at 15
    minutes), else :data:`TASK`'s."""
    if spec.get("timeout"):
        return max(1, min(LAMBDA_MAX_TIMEOUT, int(spec["timeout"] + 0.999)))
    return TASK[1]
