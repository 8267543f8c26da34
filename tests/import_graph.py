"""The import graph of the workspace's packages, read from their source (nothing is imported).

Every ``import`` counts: at module level, inside functions (lazy imports) and under
``TYPE_CHECKING``. Importing a package runs its ``__init__``, so ``from .pkg import name`` is an
edge to ``pkg`` (and to ``pkg.name`` when that is a submodule).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Module:
    name: str
    path: Path
    # Modules of the workspace this one imports, with the line of the first import of each.
    imports: dict[str, int] = field(default_factory=dict)
    # Top-level names of third-party modules it imports (``boto3``, ``aws_cdk``...).
    external: dict[str, int] = field(default_factory=dict)


def _module_name(path: Path) -> str:
    src = next(p for p in path.parents if p.name == "src")
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if module.path.name != "__init__.py":
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imported(module: Module, tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            for alias in node.names:
                # ``from pkg import sub`` (a submodule) imports ``sub``; ``from pkg import name``
                # runs ``pkg/__init__``.
                yield f"{base}.{alias.name}", node.lineno
                yield base, -node.lineno


def load(root: Path = ROOT) -> dict[str, Module]:
    """Every module under ``packages/*/src/eventual`` and ``apps/*/src``, by dotted name."""
    paths = [*root.glob("packages/*/src/eventual/**/*.py"), *root.glob("apps/*/src/**/*.py")]
    modules = {m.name: m for m in (Module(_module_name(p), p) for p in sorted(paths))}
    for module in modules.values():
        tree = ast.parse(module.path.read_text(), str(module.path))
        found = list(_imported(module, tree))
        submodules = {(name.rpartition(".")[0], line) for name, line in found if name in modules}
        for name, line in found:
            if line < 0:  # the package of a ``from`` import: only when no submodule was named
                line = -line
                if (name, line) in submodules:
                    continue
            if name in modules:
                if name != module.name:
                    module.imports.setdefault(name, line)
            elif not name.startswith("eventual.") and name != "eventual":
                module.external.setdefault(name.split(".")[0], line)
    return modules


def cycles(modules: dict[str, Module]) -> list[list[str]]:
    """The import cycles: each strongly connected set of two or more modules, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in modules[v].imports:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for name in modules:
        if name not in index:
            visit(name)
    return sorted(found)


def main() -> None:
    modules = load()
    for cycle in cycles(modules):
        print("cycle:", " <-> ".join(cycle))
    arrows: dict[str, set[str]] = {}
    for name, module in modules.items():
        for target in module.imports:
            a, b = (".".join(n.split(".")[:2]) for n in (name, target))
            if a != b:
                arrows.setdefault(a, set()).add(b)
    for source, targets in sorted(arrows.items()):
        print(f"{source} -> {', '.join(sorted(targets))}")


if __name__ == "__main__":
    main()
