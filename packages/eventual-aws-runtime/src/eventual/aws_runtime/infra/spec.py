"""Reading a service's spec in a subprocess: the CDK or Pulumi program never imports
user handlers."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


class ServiceSpecError(RuntimeError):
    """The service's spec could not be read (its entry failed to import...)."""


_cache: dict[tuple[str, str], dict[str, Any]] = {}


def load_spec(entry: str, *, python: str | None = None) -> dict[str, Any]:
    """The spec of the service at ``entry``, as ``python -m eventual.core.spec ENTRY`` prints it
    (``python`` defaults to the interpreter running the CDK app or Pulumi
    program). Cached per process."""
    python = python or sys.executable
    key = (python, entry)
    if key in _cache:
        return _cache[key]
    try:
        proc = subprocess.run(
            [python, "-m", "eventual.core.spec", entry],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ServiceSpecError(f"cannot run {python!r} to read the service spec: {exc}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ServiceSpecError(
            f"reading the spec of service entry {entry!r} failed (python -m eventual.core.spec "
            f"{entry} exited with {proc.returncode}); fix the error below, or check that the "
            f"service is installed in {python}'s environment:\n{tail}"
        )
    try:
        spec: dict[str, Any] = json.loads(proc.stdout)
    except ValueError as exc:
        raise ServiceSpecError(
            f"python -m eventual.core.spec {entry} printed something that is not JSON "
            f"(does the service print to stdout when imported?): {exc}"
        ) from exc
    _cache[key] = spec
    return spec
