"""The layering of ../shared/DESIGN.md, checked on the source: no import cycle anywhere, no
package importing one it may not, no layer of eventual-core importing one below it, and every
third-party import declared by the package that makes it.

Read the graph with ``python tests/import_graph.py`` (it prints the cycles and the arrows
between packages). A failure names the file and line of the import that breaks the rule.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import import_graph

MODULES = import_graph.load()

# Which eventual packages each package may import (DESIGN.md, "Packages").
ALLOWED_PACKAGES: dict[str, set[str]] = {
    "eventual.core": set(),
    "eventual.client": {"eventual.core"},
    "eventual.testing": {"eventual.core"},
    "eventual.aws_runtime": {"eventual.core"},
    # The resource names, environment variables and IAM actions live in aws_runtime.names.
    "eventual.cdk": {"eventual.core", "eventual.aws_runtime"},
    "eventual.pulumi": {"eventual.core", "eventual.aws_runtime", "eventual.cdk"},
    # ``eventual replay`` replays through eventual.testing.replay.
    "eventual.cli": {"eventual.core", "eventual.client", "eventual.testing"},
}

# The distribution that provides each third-party import of the packages' src.
DISTRIBUTIONS = {
    "pydantic": "pydantic",
    "anyio": "anyio",
    "httpx": "httpx",
    "botocore": "botocore",
    "boto3": "boto3",
    "aws_cdk": "aws-cdk-lib",
    "constructs": "constructs",
    "cdk_nag": "cdk-nag",
    "typer": "typer",
    "rich": "rich",
    "uvicorn": "uvicorn",
    "starlette": "starlette",
    "watchfiles": "watchfiles",
    "uvloop": "uvloop",
    "pulumi": "pulumi",
    "pulumi_aws": "pulumi-aws",
    "moto": "moto",
    "pytest": "pytest",
}

# Imports a module may make without its package depending on the distribution, because only
# code that already has it runs the module: the test harness (run under pytest, with moto),
# the pytest plugin, and botocore, which boto3 brings.
# (A module name ending in ``*`` stands for every module whose name starts so.)
OPTIONAL_IMPORTS = {
    ("eventual.aws_runtime.testing*", "moto"),
    ("eventual.testing.pytest_plugin", "pytest"),
}


def _optional(module: str, top: str) -> bool:
    return any(
        top == t and (module == m or (m.endswith("*") and module.startswith(m[:-1])))
        for m, t in OPTIONAL_IMPORTS
    )


# eventual-core's layers, top first (DESIGN.md, "Inside eventual-core"): a module may import
# its own layer and the layers above it, never one below.
CORE_LAYERS: list[set[str]] = [
    # foundations: values, errors, serialization, the history format
    {
        "_lazy",
        "_record",
        "errors",
        "serialization",
        "tokens",
        "history",
        "models",
        "history_checks",
        "wire",
        "names",
    },
    # 1. definitions (commands and routes are defined in http.api), and the context through
    #    which they reach the engine and the runtime without importing them
    {"definitions", "http.api", "_context"},
    # 2. the service and its spec; the transport-neutral HTTP layer serves a service
    {"service", "spec", "http.handler", "http.system", "http.openapi", "http"},
    # 3. the engine
    {"engine"},
    # 4. the runtime over ports
    {"runtime"},
]


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "eventual" else parts[0]


def _where(module: str, line: int) -> str:
    path = MODULES[module].path.relative_to(import_graph.ROOT)
    return f"{path}:{line}"


def _core_layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["eventual", "core"]:
        return None
    if len(parts) == 2:
        return None  # the package's lazy face re-exports every layer
    for depth in (2, 1):
        key = ".".join(parts[2 : 2 + depth])
        for level, names in enumerate(CORE_LAYERS):
            if key in names:
                return level
    raise AssertionError(f"{module} is in no layer of CORE_LAYERS: add it where it belongs")


def _distribution_names(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower())
    return names


def test_no_import_cycles() -> None:
    found = import_graph.cycles(MODULES)
    described = []
    for cycle in found:
        ties = [
            f"    {a} -> {b} ({_where(a, MODULES[a].imports[b])})"
            for a in cycle
            for b in cycle
            if b in MODULES[a].imports
        ]
        described.append(" <-> ".join(cycle) + "\n" + "\n".join(ties))
    assert not found, "import cycles:\n" + "\n".join(described)


def test_packages_import_only_what_design_allows() -> None:
    wrong = []
    for name, module in MODULES.items():
        package = _package(name)
        if package not in ALLOWED_PACKAGES:
            continue
        for target, line in module.imports.items():
            other = _package(target)
            if other != package and other not in ALLOWED_PACKAGES[package]:
                wrong.append(f"{_where(name, line)}: {package} imports {target}")
    assert not wrong, "imports DESIGN.md does not allow:\n" + "\n".join(wrong)


def test_core_layers_import_only_upward() -> None:
    wrong = []
    for name, module in MODULES.items():
        level = _core_layer(name)
        if level is None:
            continue
        for target, line in module.imports.items():
            target_level = _core_layer(target)
            if target_level is not None and target_level > level:
                wrong.append(
                    f"{_where(name, line)}: {name} (layer {level}) imports {target} "
                    f"(layer {target_level}, below it)"
                )
    assert not wrong, "upward imports in eventual-core:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "package_dir", sorted(p.parent for p in import_graph.ROOT.glob("packages/*/pyproject.toml"))
)
def test_every_import_is_declared(package_dir: Path) -> None:
    declared = _distribution_names(package_dir / "pyproject.toml")
    stdlib = sys.stdlib_module_names
    wrong = []
    for name, module in MODULES.items():
        if package_dir not in module.path.parents:
            continue
        for target, line in module.imports.items():
            dist = target.split(".")[1].replace("_", "-")
            if _package(target) != _package(name) and f"eventual-{dist}" not in declared:
                wrong.append(f"{_where(name, line)}: imports {target}, not a dependency")
        for top, line in module.external.items():
            if top in stdlib or top == "__future__" or _optional(name, top):
                continue
            dist = DISTRIBUTIONS.get(top)
            if dist is None:
                wrong.append(f"{_where(name, line)}: imports {top}, unknown to DISTRIBUTIONS")
            elif dist not in declared and not (dist == "botocore" and "boto3" in declared):
                wrong.append(f"{_where(name, line)}: imports {top} ({dist}), not a dependency")
    assert not wrong, "undeclared imports:\n" + "\n".join(wrong)
