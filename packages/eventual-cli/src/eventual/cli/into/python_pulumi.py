"""A Pulumi Python program (``Pulumi.yaml`` with a python runtime): its ``__main__.py`` gains
the ``eventual.pulumi.Service`` of the new service (a few lines at its end), and its
dependencies gain ``eventual-pulumi`` and the service's package. An SST v3 app is not one: see
:func:`sst_lines` for what it is told."""

from __future__ import annotations

import ast
from pathlib import Path

from ..scaffold import pulumi_program
from .edits import commit_edit, end_index, pending_edit
from .python_cdk import _add_python_cdk_dependencies
from .repo import IntoPlan, ManualStep, attribute


def _lines(plan: IntoPlan) -> list[str]:
    var = attribute(plan.name)
    return [
        "",
        f"# The Eventual service {plan.name} (added by `eventual init --into`).",
        "import pulumi  # noqa: E402",
        "from eventual.pulumi import Service as EventualService  # noqa: E402",
        "",
        f'{var} = EventualService("{plan.name}", entry="{plan.entry}", service_name="{plan.name}")',
        f'pulumi.export("{var}_api_url", {var}.api_url)',
    ]


def plan_edits(plan: IntoPlan, app_dir: Path, dev_source: Path | None) -> None:
    """Append the component to ``__main__.py`` and add the dependencies."""
    plan.cdk_app = app_dir.relative_to(plan.repo).as_posix() or "."
    main = app_dir / "__main__.py"
    rel = main.relative_to(plan.repo).as_posix()
    lines = _lines(plan)
    if not main.is_file():
        plan.manual.append(ManualStep(rel, "the Pulumi program has no __main__.py", lines))
    else:
        edit = pending_edit(plan, rel)
        at = end_index(edit)
        for line in lines:
            edit.insert(at, line)
            at += 1
        try:
            ast.parse(edit.text)
        except SyntaxError:
            plan.manual.append(ManualStep(rel, "adding the lines would not parse", lines))
        else:
            commit_edit(plan, edit)
            plan.stack_file = rel
    _add_python_cdk_dependencies(plan, app_dir, dev_source, infra="eventual-pulumi")


def next_steps(plan: IntoPlan) -> list[str]:
    app = plan.cdk_app or "."
    cd = "" if app == "." else f"cd {app} && "
    return [f"{cd}pulumi preview    # the program now declares the {plan.name} service"]


def sst_lines(plan: IntoPlan) -> list[str]:
    """For an SST v3 app: its config is TypeScript, and ``eventual.pulumi.Service`` is a
    Python component, so the service deploys from a Pulumi Python program of its own."""
    program = pulumi_program(plan.name, plan.entry, docstring=False).splitlines()
    return [
        f"mkdir {plan.package}/infra-pulumi && cd {plan.package}/infra-pulumi; write Pulumi.yaml "
        f"(name: {plan.name}, runtime: python) and __main__.py:",
        *[f"    {line}" for line in program],
        "then `pulumi up` there; sst.config.ts cannot declare a Python component (SST v3 "
        "runs TypeScript): read the SSM parameter "
        f"/eventual/services/{plan.name} to call the service",
    ]
