"""A uv workspace (``[tool.uv.workspace]`` in the root ``pyproject.toml``): the new package
added to its members (unless a glob covers it) and, for a Python CDK app, as a workspace
source."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from ..scaffold import EVENTUAL_PACKAGES, ScaffoldError
from .edits import (
    add_toml_entries,
    append_to_array,
    commit_edit,
    dev_sources,
    load_toml,
    pending_edit,
)
from .repo import PYTHON_CDK, IntoPlan, ManualStep


def workspace_root(repo: Path) -> dict[str, Any] | None:
    path = repo / "pyproject.toml"
    if not path.is_file():
        return None
    data = load_toml(path.read_text(encoding="utf-8"))
    if data is None:
        return None
    ws = data.get("tool", {}).get("uv", {}).get("workspace")
    return data if isinstance(ws, dict) else None


def is_member(package: str, members: list[str], exclude: list[str]) -> bool:
    matched = any(fnmatch.fnmatch(package, m.rstrip("/")) for m in members)
    return matched and not any(fnmatch.fnmatch(package, e.rstrip("/")) for e in exclude)


def app_is_member(plan: IntoPlan, app_dir: Path) -> bool:
    data = workspace_root(plan.repo)
    if data is None:
        return False
    ws = data["tool"]["uv"]["workspace"]
    rel = app_dir.relative_to(plan.repo).as_posix()
    return is_member(rel, ws.get("members", []), ws.get("exclude", []))


def add_workspace_member(plan: IntoPlan, dev_source: Path | None) -> None:
    data = workspace_root(plan.repo)
    if data is None:
        return
    plan.workspace = True
    ws = data["tool"]["uv"]["workspace"]
    members = [m for m in ws.get("members", []) if isinstance(m, str)]
    exclude = [m for m in ws.get("exclude", []) if isinstance(m, str)]
    edit = pending_edit(plan, "pyproject.toml")
    if not is_member(plan.package, members, exclude) and not append_to_array(
        edit, "tool.uv.workspace", "members", plan.package
    ):
        plan.manual.append(
            ManualStep(
                "pyproject.toml",
                "the workspace's members list is not written in a form this can extend",
                ["[tool.uv.workspace]", f'members = [..., "{plan.package}"]'],
            )
        )
    entries: list[tuple[str, str]] = []
    if dev_source is not None:
        entries += dev_sources(dev_source, EVENTUAL_PACKAGES)
    if plan.kind == PYTHON_CDK:  # the CDK app depends on the service: a workspace source
        entries.append((plan.dist, "{ workspace = true }"))
    if entries:
        add_toml_entries(edit, "tool.uv.sources", entries)
    parsed = load_toml(edit.text)
    if parsed is None:
        raise ScaffoldError("editing pyproject.toml would break it: nothing was changed")
    commit_edit(plan, edit)
