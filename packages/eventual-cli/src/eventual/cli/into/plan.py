"""The plan of ``eventual init NAME --into DIR``: the checks, the new package's files, the
dispatch to the target kind's module (``python_cdk``, ``stack_app``; ``workspace`` with any of
them), the next steps, and :func:`apply`, which writes the plan."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ..scaffold import ScaffoldError, package_name, service_sources, validate_name
from . import python_cdk, python_pulumi, stack_app
from .edits import dev_sources, read_exact, revert
from .repo import PYTHON_CDK, PYTHON_PULUMI, IntoPlan, detect
from .workspace import add_workspace_member


def plan_into(
    name: str, repo: Path, *, path: str | None = None, dev_source: Path | None = None
) -> IntoPlan:
    """What ``eventual init NAME --into REPO`` would write and edit (nothing is written)."""
    validate_name(name)
    repo = repo.resolve()
    if not repo.is_dir():
        raise ScaffoldError(f"--into {repo}: no such directory")
    if dev_source is not None:
        dev_source = dev_source.resolve()
        if not (dev_source / "packages" / "eventual-core" / "pyproject.toml").exists():
            raise ScaffoldError(
                f"--dev-source {dev_source} is not an Eventual for Python checkout "
                "(no packages/eventual-core/pyproject.toml there)"
            )
    package = PurePosixPath(path or f"services/{name}")
    if package.is_absolute() or ".." in package.parts or not package.parts:
        raise ScaffoldError(
            f"--path {path} must be a folder inside the repository (like services/{name})"
        )
    target = repo / package
    if target.exists():
        raise ScaffoldError(
            f"{target} already exists: choose another --path or name (nothing was changed)"
        )
    kind, app_dir = detect(repo)
    pkg = package_name(name)
    plan = IntoPlan(
        repo=repo,
        kind=kind,
        name=name,
        dist=name if re.search(r"[-_]service$", name) else f"{name}-service",
        package=package.as_posix(),
        entry=f"{pkg}.service",
        cdk_app=app_dir.relative_to(repo).as_posix() or "." if app_dir else None,
    )
    files = {"pyproject.toml": _service_pyproject(plan, dev_source), "README.md": _readme(plan)}
    files.update(service_sources(name))
    if kind not in (PYTHON_CDK, PYTHON_PULUMI):
        files.update(stack_app.package_files(plan))
    plan.files = {f"{plan.package}/{rel}": text for rel, text in files.items()}

    add_workspace_member(plan, dev_source)
    if kind == PYTHON_CDK and app_dir is not None:
        python_cdk.plan_edits(plan, app_dir, target, dev_source)
    if kind == PYTHON_PULUMI and app_dir is not None:
        python_pulumi.plan_edits(plan, app_dir, dev_source)
    plan.next_steps = _next_steps(plan)
    return plan


def _service_pyproject(plan: IntoPlan, dev_source: Path | None) -> str:
    pkg = package_name(plan.name)
    sources = ""
    if dev_source is not None:
        lines = "\n".join(
            f"{k} = {v}"
            for k, v in dev_sources(
                dev_source, ("eventual-core", "eventual-testing", "eventual-aws-runtime",
                             "eventual-cdk", "eventual-cli")
            )
        )  # fmt: skip
        sources = f"\n[tool.uv.sources]\n{lines}\n"
    return f'''[project]
name = "{plan.dist}"
version = "0.1.0"
description = "The {plan.name} service (Eventual for Python)"
requires-python = ">=3.11"
dependencies = ["eventual-core", "pydantic>=2"]

[dependency-groups]
dev = ["pytest>=8", "anyio>=4", "eventual-testing", "eventual-cli", "eventual-cdk"]

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{pkg}"]

[tool.eventual]
entry = "{plan.entry}"

[tool.pytest.ini_options]
addopts = "--import-mode=importlib"
{sources}'''


def _readme(plan: IntoPlan) -> str:
    return f"""# {plan.name}

An Eventual for Python service (entry `{plan.entry}`), added by `eventual init --into`.

```bash
uv sync                                  # in this folder (or the workspace)
uv run pytest                            # its tests, on a virtual clock
uv run eventual dev .                    # serve it on http://127.0.0.1:3111
```
"""


def _next_steps(plan: IntoPlan) -> list[str]:
    pkg_dir = plan.package
    sync = "uv sync --all-packages" if plan.workspace else f"(cd {pkg_dir} && uv sync)"
    steps = [f"{sync}    # install the service and its test tools"]
    steps.append(
        f"uv run --directory {pkg_dir} pytest    # its tests"
        if not plan.workspace
        else f"uv run pytest {pkg_dir}    # its tests"
    )
    if plan.kind == PYTHON_CDK:
        return steps + python_cdk.next_steps(plan)
    if plan.kind == PYTHON_PULUMI:
        return steps + python_pulumi.next_steps(plan)
    return steps + stack_app.next_steps(plan)


def apply(plan: IntoPlan) -> None:
    """Write the plan: new files first (never over an existing one), then the edits, each file
    checked to be unchanged since it was planned."""
    for rel in plan.files:
        if (plan.repo / rel).exists():
            raise ScaffoldError(f"{plan.repo / rel} exists: nothing was changed")
    for edit in plan.edits:
        current = read_exact(plan.repo / edit.path)
        reverted = revert(edit.text, edit.changes)
        if current != reverted:
            raise ScaffoldError(f"{edit.path} changed while planning: nothing was changed")
    for rel, text in plan.files.items():
        target = plan.repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("x", encoding="utf-8", newline="") as f:
            f.write(text)
    for edit in plan.edits:
        (plan.repo / edit.path).write_bytes(edit.text.encode("utf-8"))
