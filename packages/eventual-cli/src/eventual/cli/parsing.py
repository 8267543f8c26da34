"""How the commands read their arguments: a value that is JSON or else a string, a JSON file
(or stdin), HTTP headers and execution statuses."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from eventual.core.serialization import JsonTooDeep, loads

from .errors import CliError

STATUSES = ("IN_PROGRESS", "SUCCEEDED", "FAILED")
_STATUS_ALIASES = {"SUCCESS": "SUCCEEDED", "RUNNING": "IN_PROGRESS", "FAILURE": "FAILED"}


def parse_value(text: str | None, *, what: str = "input") -> Any:
    """JSON if it parses, else the text as a JSON string (``hello`` -> ``"hello"``); text
    that begins as JSON does (``{``, ``[`` or ``"``) and does not parse is a mistake to show,
    not a string to send."""
    if text is None:
        return None
    try:
        return loads(text)
    except JsonTooDeep as exc:
        raise CliError(f"the {what} is refused: {exc}") from None
    except ValueError as exc:
        if text.lstrip()[:1] in ("{", "[", '"'):
            raise CliError(
                f"the {what} is not valid JSON ({exc}); fix it, or quote it as a JSON string "
                "to send it as text"
            ) from None
        return text


def read_json_file(path: Path) -> Any:
    text = read_text(path)
    try:
        return loads(text)
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None


def read_text(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def input_value(text: str | None, file: Path | None) -> Any:
    if text is not None and file is not None:
        raise CliError("give the input as an argument or with --file, not both")
    if file is not None:
        return read_json_file(file)
    return parse_value(text)


def parse_headers(values: list[str] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values or []:
        sep = ":" if ":" in value else "=" if "=" in value else None
        if sep is None:
            raise CliError(f"cannot read header {value!r}: write it as 'Name: value'")
        name, _, v = value.partition(sep)
        if not name.strip():
            raise CliError(f"cannot read header {value!r}: the name is empty")
        headers[name.strip()] = v.strip()
    return headers


def parse_statuses(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out: list[str] = []
    for v in values:
        for part in v.split(","):
            s = part.strip().upper().replace("-", "_")
            s = _STATUS_ALIASES.get(s, s)
            if s not in STATUSES:
                raise CliError(f"unknown status {part!r}: use one of {', '.join(STATUSES)}")
            out.append(s)
    return out
