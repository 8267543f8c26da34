"""What ``eventual init --into`` found and what it will do: the repository's kind (detected from
its ``cdk.json``, ``package.json`` or ``sst.config.ts``), the plan (new files, line edits, the
lines left to add by hand, the next steps) and the names it gives the construct."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..scaffold import package_name

PYTHON_CDK = "python-cdk"
TYPESCRIPT_CDK = "typescript-cdk"
SST = "sst"
PYTHON_PULUMI = "python-pulumi"
OTHER = "other"


KIND_LABELS = {
    PYTHON_CDK: "a Python CDK app",
    TYPESCRIPT_CDK: "a TypeScript CDK app",
    SST: "an SST app",
    PYTHON_PULUMI: "a Pulumi Python program",
    OTHER: "a repository without a CDK or SST app",
}


SKIP_DIRS = {
    ".git", ".venv", "venv", "node_modules", "cdk.out", "__pycache__", ".eventual", ".sst",
    "dist", "build", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
}  # fmt: skip

# ---------------------------------------------------------------- the plan


@dataclass
class LineChange:
    """One line of an edited file: ``line`` is its number in the edited file (1-based);
    ``old`` is the line it replaced, ``None`` for an added line."""

    line: int
    new: str
    old: str | None = None


@dataclass
class FileEdit:
    path: str  # relative to the repository, POSIX
    changes: list[LineChange]
    text: str  # the whole new text


@dataclass
class ManualStep:
    """Lines to add by hand to ``path`` (no safe place to add them was found), and why."""

    path: str
    reason: str
    lines: list[str]


@dataclass
class IntoPlan:
    repo: Path
    kind: str
    name: str
    dist: str
    package: str  # the package folder, relative to the repo, POSIX
    entry: str
    files: dict[str, str] = field(default_factory=dict)  # new files, relative to the repo
    edits: list[FileEdit] = field(default_factory=list)
    manual: list[ManualStep] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    workspace: bool = False
    cdk_app: str | None = None  # the CDK app's folder, relative to the repo
    stack_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo),
            "kind": self.kind,
            "package": self.package,
            "distribution": self.dist,
            "entry": self.entry,
            "workspace": self.workspace,
            "cdkApp": self.cdk_app,
            "stackFile": self.stack_file,
            "created": sorted(self.files),
            "edited": [
                {
                    "path": e.path,
                    "changes": [{"line": c.line, "old": c.old, "new": c.new} for c in e.changes],
                }
                for e in self.edits
            ],
            "manual": [{"path": m.path, "reason": m.reason, "lines": m.lines} for m in self.manual],
            "next": self.next_steps,
        }


# ---------------------------------------------------------------- detection


def walk(root: Path, max_depth: int) -> list[Path]:
    found: list[Path] = []

    def visit(d: Path, depth: int) -> None:
        try:
            entries = sorted(d.iterdir())
        except OSError:
            return
        for p in entries:
            if p.is_dir():
                if depth < max_depth and p.name not in SKIP_DIRS and not p.name.startswith("."):
                    visit(p, depth + 1)
            else:
                found.append(p)

    visit(root, 0)
    return found


def _find_cdk_json(repo: Path) -> Path | None:
    if (repo / "cdk.json").is_file():
        return repo / "cdk.json"
    candidates = [p for p in walk(repo, 2) if p.name == "cdk.json"]
    return candidates[0] if len(candidates) == 1 else None


def cdk_app_command(cdk_json: Path) -> str:
    try:
        data = json.loads(cdk_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    app = data.get("app") if isinstance(data, dict) else None
    return app if isinstance(app, str) else ""


def _has_aws_cdk_lib(package_json: Path) -> bool:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    for key in ("dependencies", "devDependencies", "peerDependencies"):
        deps = data.get(key)
        if isinstance(deps, dict) and "aws-cdk-lib" in deps:
            return True
    return False


def detect(repo: Path) -> tuple[str, Path | None]:
    """The repository's kind and, for a CDK app, the folder of its ``cdk.json``."""
    if any((repo / f"sst.config.{ext}").is_file() for ext in ("ts", "mjs", "js")):
        return SST, None
    pulumi_yaml = repo / "Pulumi.yaml"
    if pulumi_yaml.is_file() and re.search(
        r"^runtime:\s*(python\b|\n\s+name:\s*python\b)",
        pulumi_yaml.read_text(encoding="utf-8", errors="replace"),
        re.MULTILINE,
    ):
        return PYTHON_PULUMI, repo
    cdk_json = _find_cdk_json(repo)
    if cdk_json is not None:
        command = cdk_app_command(cdk_json)
        if re.search(r"\bpython[0-9.]*\b|\.py\b", command):
            return PYTHON_CDK, cdk_json.parent
        return TYPESCRIPT_CDK, cdk_json.parent
    if (repo / "package.json").is_file() and _has_aws_cdk_lib(repo / "package.json"):
        return TYPESCRIPT_CDK, None
    return OTHER, None


# ---------------------------------------------------------------- names


def attribute(name: str) -> str:
    """The stack attribute holding the construct: ``billing`` -> ``billing_service``."""
    pkg = package_name(name)
    return pkg if pkg.endswith("_service") else f"{pkg}_service"


def construct_id(name: str) -> str:
    """``billing`` -> ``BillingService`` (``billing-service`` too)."""
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)
    return camel if camel.endswith("Service") else camel + "Service"
