"""The static checks of the templates a deploy test deploys, paid for by the synthesis it runs
anyway.

- :func:`nag_findings`: the error and warning annotations of a cloud assembly's stacks (a
  cdk-nag pack, ``AwsSolutionsChecks``, added as an Aspect before ``app.synth()``, annotates
  each unsuppressed finding; the CDK's own warnings are annotations too).
- :func:`nag_suppressions`: every cdk-nag suppression a template carries (resource metadata),
  with its reason.
- :class:`CfnLint`: ``cfn-lint`` over the synthesized templates in a subprocess, started as
  soon as they are written (it runs while the stacks deploy) and read when the test asks.

Nothing here imports the CDK or cdk-nag: the test adds the Aspect and passes the assembly.
Test support only.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RULE = re.compile(r"^(AwsSolutions-[A-Za-z0-9]+)(\[[^\]]*\])?:")


@dataclass(frozen=True)
class Finding:
    """One error or warning annotation of a synthesized stack."""

    stack: str
    level: str  # "ERROR" or "WARNING"
    path: str  # the construct's path
    rule: str  # "AwsSolutions-IAM5", or "" for an annotation that is not cdk-nag's
    message: str

    def line(self) -> str:
        return f"{self.level} {self.stack} {self.path}: {self.message[:400]}"


def nag_findings(assembly: Any, stacks: Iterable[str]) -> list[Finding]:
    """The ERROR and WARNING annotations of ``stacks`` (names) in ``assembly`` (what
    ``app.synth()`` returned): cdk-nag's unsuppressed findings and the CDK's own warnings."""
    found: list[Finding] = []
    for name in stacks:
        artifact = assembly.get_stack_by_name(name)
        for m in artifact.messages:
            level = m.level.name
            if level not in ("ERROR", "WARNING"):
                continue
            data = str(m.entry.data)
            rule = _RULE.match(data)
            found.append(Finding(name, level, m.id, rule.group(1) if rule else "", data))
    return found


@dataclass(frozen=True)
class Suppression:
    resource: str  # logical id
    rule: str
    reason: str
    applies_to: tuple[str, ...] = ()

    def line(self) -> str:
        where = f" {list(self.applies_to)}" if self.applies_to else ""
        return f"{self.resource}: {self.rule}{where}: {self.reason}"


def nag_suppressions(template: Mapping[str, Any]) -> list[Suppression]:
    """Every cdk-nag suppression of the template (``Metadata.cdk_nag``): the stack's own (as
    resource ``"(stack)"``) and its resources'."""
    out: list[Suppression] = []
    where = [("(stack)", template), *template.get("Resources", {}).items()]
    for logical, r in where:
        for s in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            applies = tuple(
                a if isinstance(a, str) else str(a.get("regex", a)) for a in s.get("applies_to", [])
            )
            out.append(Suppression(logical, s["id"], s.get("reason", ""), applies))
    return out


def _cfn_lint() -> str:
    beside = Path(sys.executable).parent / "cfn-lint"
    found = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if found is None:
        raise RuntimeError("cfn-lint is not installed (the workspace's dev dependencies have it)")
    return found


class CfnLint:
    """``with CfnLint(paths) as lint: ...; lint.errors()``: cfn-lint over ``paths`` in a
    subprocess started on entry; :meth:`findings` waits for it. Stopped by its PID on exit if
    still running."""

    def __init__(self, paths: Iterable[Path | str]) -> None:
        self.paths = [str(p) for p in paths]
        self._proc: subprocess.Popen[str] | None = None
        self._findings: list[dict[str, Any]] | None = None

    def __enter__(self) -> CfnLint:
        self._proc = subprocess.Popen(
            [_cfn_lint(), "--format", "json", *self.paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()

    def findings(self, timeout: float = 300.0) -> list[dict[str, Any]]:
        if self._findings is None:
            assert self._proc is not None, "use CfnLint as a context manager"
            out, err = self._proc.communicate(timeout=timeout)
            # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational.
            if self._proc.returncode & ~(2 | 4 | 8):
                raise RuntimeError(f"cfn-lint failed ({self._proc.returncode}): {err[-2000:]}")
            self._findings = json.loads(out or "[]")
        assert self._findings is not None
        return self._findings

    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.findings() if f["Level"] == "Error"]

    def lines(self) -> list[str]:
        return [
            f"{f['Level']} {f['Rule']['Id']} {Path(f['Filename']).name} "
            f"{'/'.join(map(str, f['Location']['Path']))}: {f['Message'][:200]}"
            for f in self.findings()
        ]


__all__ = ["CfnLint", "Finding", "Suppression", "nag_findings", "nag_suppressions"]
