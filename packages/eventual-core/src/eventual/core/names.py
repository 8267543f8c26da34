"""What an execution may be called.

An execution id is ``<workflow>/<name>``, and it ends up in URL paths, S3 keys, DynamoDB keys,
file names and CLI arguments. So a name is 1 to 256 characters from a set that is safe in all
of them: ASCII letters and digits and ``- _ . : @ + = ~ ,``, starting with a letter, a digit or
``_`` (not ``-``, which a CLI reads as an option, nor ``.``, so never ``.`` or ``..``).

Names are checked where they enter: a started execution's name and a child execution's
name. An execution id given to a lookup is checked too, more leniently (names given under an
older rule stay reachable), so that a hostile id (control characters, ``..`` segments) is
refused with the rule instead of reaching a store.
"""

from __future__ import annotations

import re

from .errors import InvalidInput

MAX_NAME = 256
# The same rule as a JSON Schema / ECMAScript pattern (the OpenAPI document carries it).
NAME_PATTERN = rf"^[A-Za-z0-9_][A-Za-z0-9_.:@+=~,-]{{0,{MAX_NAME - 1}}}$"
_NAME = re.compile(NAME_PATTERN)
RULE = (
    f"1 to {MAX_NAME} characters from A-Z a-z 0-9 and - _ . : @ + = ~ , "
    "starting with a letter, a digit or _"
)


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot name an execution, or None when it can."""
    if not isinstance(name, str):
        return f"an execution name is a string, got {type(name).__name__}"
    if not _NAME.match(name) or name.endswith("\n"):  # "$" also matches before a final "\n"
        return f"invalid execution name {name[:80]!r}: use {RULE}"
    return None


def check_execution_name(name: str) -> str:
    """``name``, or :class:`InvalidInput` saying what a name may be."""
    problem = name_problem(name)
    if problem is not None:
        raise InvalidInput(problem)
    return name


def id_problem(execution_id: object) -> str | None:
    """Why ``execution_id`` cannot be an execution's id, or None when it can be.

    Lenient on the name, so that executions named under an older, looser rule stay
    reachable: ``<workflow>/<rest>`` of at most 1024 characters, no control characters, and
    no ``.`` or ``..`` segment."""
    if not isinstance(execution_id, str):
        return f"an execution id is a string, got {type(execution_id).__name__}"
    workflow, _, rest = execution_id.partition("/")
    if (
        not workflow.strip(".")  # also "." or "..": a path's segment, never a workflow's name
        or not rest
        or len(execution_id) > 1024
        or any(ord(c) < 32 or c == "\x7f" for c in execution_id)
        or any(not segment.strip(".") for segment in rest.split("/"))
    ):
        return (
            f"invalid execution id {execution_id[:80]!r}: an id is <workflow>/<name>, "
            f"the name {RULE}"
        )
    return None
