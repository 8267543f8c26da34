"""``eventual init NAME --into DIR``: add an Eventual service package to an existing repository.

It writes a new folder (``services/NAME`` unless ``--path`` says otherwise) and edits existing
files only by adding (or, for a one-line TOML array, extending) the lines it reports:

- a Python CDK app (``cdk.json`` running Python): an import and an ``eventual.cdk.Service`` line
  in the stack's ``__init__``, and the dependencies in the CDK app's ``requirements.txt`` or
  ``pyproject.toml``;
- a TypeScript CDK app (``cdk.json`` running ts-node/node, or ``aws-cdk-lib`` in
  ``package.json``), an SST app (``sst.config.ts``) or any other repository: the service package
  with its own small Python CDK app (``infra/`` inside it) that deploys the Eventual stack
  beside the rest; the printed next steps say how the other stacks find it;
- a uv workspace (``[tool.uv.workspace]`` in the root ``pyproject.toml``): the new package as a
  member.

Where there is no safe place to edit, it edits nothing there and prints the lines to add. Every
edit is checked (the Python still parses, the TOML still loads) before anything is written.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .scaffold import EVENTUAL_PACKAGES, ScaffoldError, package_name, service_sources, validate_name

PYTHON_CDK = "python-cdk"
TYPESCRIPT_CDK = "typescript-cdk"
SST = "sst"
OTHER = "other"

KIND_LABELS = {
    PYTHON_CDK: "a Python CDK app",
    TYPESCRIPT_CDK: "a TypeScript CDK app",
    SST: "an SST app",
    OTHER: "a repository without a CDK or SST app",
}

SKIP_DIRS = {
    ".git", ".venv", "venv", "node_modules", "cdk.out", "__pycache__", ".eventual", ".sst",
    "dist", "build", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
}  # fmt: skip


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


def _walk(root: Path, max_depth: int) -> list[Path]:
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
    candidates = [p for p in _walk(repo, 2) if p.name == "cdk.json"]
    return candidates[0] if len(candidates) == 1 else None


def _cdk_app_command(cdk_json: Path) -> str:
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
    cdk_json = _find_cdk_json(repo)
    if cdk_json is not None:
        command = _cdk_app_command(cdk_json)
        if re.search(r"\bpython[0-9.]*\b|\.py\b", command):
            return PYTHON_CDK, cdk_json.parent
        return TYPESCRIPT_CDK, cdk_json.parent
    if (repo / "package.json").is_file() and _has_aws_cdk_lib(repo / "package.json"):
        return TYPESCRIPT_CDK, None
    return OTHER, None


# ---------------------------------------------------------------- line-level edits


def _read(path: Path) -> str:
    """A file's text exactly as it is (its line ends kept, unlike ``read_text``)."""
    return path.read_bytes().decode("utf-8")


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _join(lines: list[str]) -> str:
    return "\n".join(lines)


class _Edit:
    """Accumulates line insertions/replacements on one file's text, tracking final numbers."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.original = text
        self.lines = _lines(text)
        self.changes: list[LineChange] = []
        self.cr = "\r\n" in text  # keep Windows line ends

    def insert(self, index: int, line: str) -> None:
        """Insert ``line`` before 0-based ``index`` of the current lines."""
        line = line.removesuffix("\r")
        self.lines.insert(index, line + "\r" if self.cr else line)
        for c in self.changes:
            if c.line - 1 >= index:
                c.line += 1
        self.changes.append(LineChange(line=index + 1, new=line))

    def replace(self, index: int, line: str) -> None:
        line = line.removesuffix("\r")
        old = self.lines[index]
        self.lines[index] = line + "\r" if self.cr else line
        for c in self.changes:
            if c.line - 1 == index:
                c.new = line
                return
        self.changes.append(LineChange(line=index + 1, new=line, old=old.removesuffix("\r")))

    def save(self) -> tuple[list[str], list[LineChange]]:
        return list(self.lines), [LineChange(c.line, c.new, c.old) for c in self.changes]

    def restore(self, saved: tuple[list[str], list[LineChange]]) -> None:
        self.lines, self.changes = saved

    @property
    def text(self) -> str:
        return _join(self.lines)

    def result(self) -> FileEdit | None:
        if not self.changes:
            return None
        return FileEdit(self.path, sorted(self.changes, key=lambda c: c.line), self.text)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _section_range(lines: list[str], section: str) -> tuple[int, int] | None:
    """(header index, end index exclusive) of ``[section]``."""
    start = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if not m:
            continue
        if start is not None:
            return start, i
        if m.group(1).replace(" ", "") == section and not line.lstrip().startswith("[["):
            start = i
    return (start, len(lines)) if start is not None else None


def _append_to_array(edit: _Edit, section: str, key: str, item: str) -> bool:
    """Add the TOML string ``item`` to the array ``key`` of ``[section]``; False (and the text
    unchanged) when the array is not written in a way this can extend safely."""
    saved = edit.save()
    if _append_lines(edit, section, key, item):
        data: Any = _load_toml(edit.text)
        for part in [*section.split("."), key]:
            data = data.get(part) if isinstance(data, dict) else None
        if isinstance(data, list) and item in data:
            return True
    edit.restore(saved)
    return False


def _append_lines(edit: _Edit, section: str, key: str, item: str) -> bool:
    bounds = _section_range(edit.lines, section)
    if bounds is None:
        return False
    start, end = bounds
    key_re = re.compile(rf"^(\s*){re.escape(key)}\s*=\s*\[(.*)$")
    for i in range(start + 1, end):
        m = key_re.match(edit.lines[i])
        if not m:
            continue
        rest = m.group(2)
        quoted = json.dumps(item)
        if "]" in rest:  # one line: key = [a, b]  (# a comment)
            inside, after = rest.split("]", 1)
            if "#" in inside or "[" in inside or (after.strip() and after.strip()[0] != "#"):
                return False
            inside = inside.rstrip()
            if inside.strip() == "":
                new_inside = quoted
            else:
                new_inside = inside.rstrip(",").rstrip() + ", " + quoted
            line = edit.lines[i]
            prefix = line[: line.index("[") + 1]
            edit.replace(i, f"{prefix}{new_inside}]{after}")
            return True
        # several lines: find the closing bracket
        for j in range(i + 1, end):
            stripped = edit.lines[j].strip()
            if stripped.startswith("]"):
                items = [
                    k
                    for k in range(i + 1, j)
                    if edit.lines[k].strip() and not edit.lines[k].strip().startswith("#")
                ]
                indent = "    "
                if items:
                    last = items[-1]
                    last_line = edit.lines[last]
                    indent = last_line[: len(last_line) - len(last_line.lstrip())]
                    if not last_line.rstrip().endswith(","):
                        if "#" in last_line:
                            return False
                        edit.replace(last, last_line.rstrip() + ",")
                edit.insert(j, f"{indent}{quoted},")
                return True
            if "]" in stripped and not stripped.startswith("#"):
                return False
        return False
    return False


def _toml_entries(edit: _Edit, section: str, entries: list[tuple[str, str]]) -> None:
    """Add ``key = value`` lines to ``[section]`` (created at the end when absent), skipping keys
    it already has."""
    data = _load_toml(edit.text) or {}
    table: Any = data
    for part in section.split("."):
        table = table.get(part, {}) if isinstance(table, dict) else {}
    missing = [(k, v) for k, v in entries if not (isinstance(table, dict) and k in table)]
    if not missing:
        return
    bounds = _section_range(edit.lines, section)
    if bounds is not None:
        at = bounds[0] + 1
        for k, v in missing:
            edit.insert(at, f"{k} = {v}")
            at += 1
        return
    at = _end(edit)
    if at > 0 and edit.lines[at - 1].strip():
        edit.insert(at, "")
        at += 1
    edit.insert(at, f"[{section}]")
    for k, v in missing:
        at += 1
        edit.insert(at, f"{k} = {v}")


def _end(edit: _Edit) -> int:
    """Where to append lines: before the file's final newline, if it has one."""
    n = len(edit.lines)
    return n - 1 if n > 1 and edit.lines[-1] == "" else n


def _load_toml(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


# ---------------------------------------------------------------- the stack file


def _stack_classes(tree: ast.Module) -> list[ast.ClassDef]:
    out: list[ast.ClassDef] = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        for base in node.bases:
            name = (
                base.attr
                if isinstance(base, ast.Attribute)
                else base.id
                if isinstance(base, ast.Name)
                else ""
            )
            if name == "Stack":
                out.append(node)
                break
    return out


def _imports_aws_cdk(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name == "aws_cdk" or a.name.startswith("aws_cdk.") for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "aws_cdk":
            return True
    return False


def _find_stacks(app_dir: Path, exclude: Path) -> list[tuple[Path, ast.Module, ast.ClassDef]]:
    found: list[tuple[Path, ast.Module, ast.ClassDef]] = []
    for path in _walk(app_dir, 3):
        if path.suffix != ".py" or "tests" in path.relative_to(app_dir).parts[:-1]:
            continue
        if exclude in path.parents:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        if not _imports_aws_cdk(tree):
            continue
        for cls in _stack_classes(tree):
            found.append((path, tree, cls))
    return found


def _app_script(app_dir: Path) -> Path | None:
    command = _cdk_app_command(app_dir / "cdk.json")
    for token in command.split():
        if token.endswith(".py") and (app_dir / token).is_file():
            return app_dir / token
    return None


def _bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
    return names


def _is_super_init(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
        return False
    func = stmt.value.func
    if not (isinstance(func, ast.Attribute) and func.attr == "__init__"):
        return False
    target = func.value  # super().__init__(...), Stack.__init__(self, ...), cdk.Stack.__init__
    return (
        (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id == "super"
        )
        or (isinstance(target, ast.Name) and target.id == "Stack")
        or (isinstance(target, ast.Attribute) and target.attr == "Stack")
    )


def _attribute(name: str) -> str:
    """The stack attribute holding the construct: ``billing`` -> ``billing_service``."""
    pkg = package_name(name)
    return pkg if pkg.endswith("_service") else f"{pkg}_service"


def _construct_id(name: str) -> str:
    """``billing`` -> ``BillingService`` (``billing-service`` too)."""
    camel = "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)
    return camel if camel.endswith("Service") else camel + "Service"


def _edit_stack(
    plan: IntoPlan, path: Path, tree: ast.Module, cls: ast.ClassDef
) -> FileEdit | ManualStep:
    rel = path.relative_to(plan.repo).as_posix()
    text = _read(path)
    bound = _bound_names(tree)
    already = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "eventual.cdk"
        and any(a.name == "Service" and a.asname is None for a in n.names)
        for n in tree.body
    )
    if already:
        construct, import_line = "Service", None
    elif "Service" in bound:
        construct = "EventualService"
        import_line = "from eventual.cdk import Service as EventualService"
    else:
        construct, import_line = "Service", "from eventual.cdk import Service"
    attr = _attribute(plan.name)
    call = (
        f'self.{attr} = {construct}(self, "{_construct_id(plan.name)}", '
        f'entry="{plan.entry}", name="{plan.name}")'
    )

    def manual(reason: str) -> ManualStep:
        lines = ([f"{import_line}    # with the imports"] if import_line else []) + [
            f"{call}    # in {cls.name}.__init__, after super().__init__(...)"
        ]
        return ManualStep(rel, reason, lines)

    init = next(
        (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
    )
    if init is None:
        return manual(f"{cls.name} has no __init__")
    if re.search(rf"\bself\.{attr}\b", text):
        return manual(f"{cls.name} already has a self.{attr}")
    super_call = next((s for s in init.body if _is_super_init(s)), None)
    if super_call is None or super_call.end_lineno is None:
        return manual(f"{cls.name}.__init__ does not call super().__init__(...) at its top level")
    lines = _lines(text)
    first = lines[super_call.lineno - 1]
    if first[: super_call.col_offset].strip() or ";" in "".join(
        lines[super_call.lineno - 1 : super_call.end_lineno]
    ):
        return manual(f"the super().__init__(...) call of {cls.name} shares its line")
    edit = _Edit(rel, text)
    indent = first[: super_call.col_offset]
    edit.insert(super_call.end_lineno, indent + call)
    if import_line:
        top_imports = [
            n
            for n in tree.body
            if isinstance(n, ast.Import | ast.ImportFrom) and n.lineno < cls.lineno
        ]
        if not top_imports:
            return manual("the module has no import statements before the stack class")
        last = max(n.end_lineno or n.lineno for n in top_imports)
        edit.insert(last, import_line)
    try:
        ast.parse(edit.text)
    except SyntaxError:
        return manual("adding the lines would not parse")
    result = edit.result()
    assert result is not None
    return result


# ---------------------------------------------------------------- dependencies


def _relative(from_dir: Path, to: Path) -> str:
    return PurePosixPath(os.path.relpath(to, from_dir).replace(os.sep, "/")).as_posix()


def _local(from_dir: Path, to: Path) -> str:
    """A pip-style local path: ``./services/billing`` or ``../services/billing``."""
    rel = _relative(from_dir, to)
    return rel if rel.startswith("../") else f"./{rel}"


def _dev_sources(dev_source: Path, names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (n, f'{{ path = "{(dev_source / "packages" / n).as_posix()}", editable = true }}')
        for n in names
    ]


def _workspace_root(repo: Path) -> dict[str, Any] | None:
    path = repo / "pyproject.toml"
    if not path.is_file():
        return None
    data = _load_toml(path.read_text(encoding="utf-8"))
    if data is None:
        return None
    ws = data.get("tool", {}).get("uv", {}).get("workspace")
    return data if isinstance(ws, dict) else None


def _is_member(package: str, members: list[str], exclude: list[str]) -> bool:
    matched = any(fnmatch.fnmatch(package, m.rstrip("/")) for m in members)
    return matched and not any(fnmatch.fnmatch(package, e.rstrip("/")) for e in exclude)


def _pending(plan: IntoPlan, rel: str) -> _Edit:
    """The edit in progress for ``rel`` (several steps may edit one file)."""
    for i, e in enumerate(plan.edits):
        if e.path == rel:
            edit = _Edit(rel, _read(plan.repo / rel))
            edit.lines = _lines(e.text)
            edit.changes = list(e.changes)
            del plan.edits[i]
            return edit
    return _Edit(rel, _read(plan.repo / rel))


def _commit(plan: IntoPlan, edit: _Edit) -> None:
    result = edit.result()
    if result is not None:
        plan.edits.append(result)


def _add_workspace_member(plan: IntoPlan, dev_source: Path | None) -> None:
    data = _workspace_root(plan.repo)
    if data is None:
        return
    plan.workspace = True
    ws = data["tool"]["uv"]["workspace"]
    members = [m for m in ws.get("members", []) if isinstance(m, str)]
    exclude = [m for m in ws.get("exclude", []) if isinstance(m, str)]
    edit = _pending(plan, "pyproject.toml")
    if not _is_member(plan.package, members, exclude) and not _append_to_array(
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
        entries += _dev_sources(dev_source, EVENTUAL_PACKAGES)
    if plan.kind == PYTHON_CDK:  # the CDK app depends on the service: a workspace source
        entries.append((plan.dist, "{ workspace = true }"))
    if entries:
        _toml_entries(edit, "tool.uv.sources", entries)
    parsed = _load_toml(edit.text)
    if parsed is None:
        raise ScaffoldError("editing pyproject.toml would break it: nothing was changed")
    _commit(plan, edit)


def _add_python_cdk_dependencies(plan: IntoPlan, app_dir: Path, dev_source: Path | None) -> None:
    requirements = app_dir / "requirements.txt"
    pyproject = app_dir / "pyproject.toml"
    service_dir = plan.repo / plan.package
    if requirements.is_file():
        rel = requirements.relative_to(plan.repo).as_posix()
        edit = _pending(plan, rel)
        present = {ln.strip() for ln in edit.lines}
        wanted: list[str] = []
        if dev_source is not None:
            wanted += [
                f"-e {(dev_source / 'packages' / n).as_posix()}"
                for n in ("eventual-core", "eventual-aws-runtime", "eventual-cdk")
            ]
        else:
            wanted.append("eventual-cdk")
        wanted.append(f"-e {_local(app_dir, service_dir)}")
        at = _end(edit)
        for w in wanted:
            if w not in present:
                edit.insert(at, w)
                at += 1
        _commit(plan, edit)
        return
    data = _load_toml(pyproject.read_text(encoding="utf-8")) if pyproject.is_file() else None
    if data is not None and isinstance(data.get("project", {}).get("dependencies"), list):
        rel = pyproject.relative_to(plan.repo).as_posix()
        edit = _pending(plan, rel)
        existing = {
            re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower()
            for d in data["project"]["dependencies"]
        }
        for dep in ("eventual-cdk", plan.dist):
            if dep not in existing and not _append_to_array(edit, "project", "dependencies", dep):
                plan.manual.append(
                    ManualStep(rel, "its dependencies list is not in a form this can extend",
                               [f'"{dep}",  # in [project] dependencies'])
                )  # fmt: skip
        in_workspace = plan.workspace and (app_dir == plan.repo or _app_is_member(plan, app_dir))
        if not in_workspace:
            sources: list[tuple[str, str]] = [
                (plan.dist, f'{{ path = "{_relative(app_dir, service_dir)}", editable = true }}')
            ]
            if dev_source is not None:
                sources = _dev_sources(dev_source, EVENTUAL_PACKAGES) + sources
            _toml_entries(edit, "tool.uv.sources", sources)
        if _load_toml(edit.text) is None:
            raise ScaffoldError(f"editing {rel} would break it: nothing was changed")
        _commit(plan, edit)
        return
    where = app_dir.relative_to(plan.repo).as_posix() or "."
    plan.manual.append(
        ManualStep(
            f"{where}/requirements.txt" if where != "." else "requirements.txt",
            "the CDK app has no requirements.txt or pyproject.toml dependencies list",
            ["eventual-cdk", f"-e {_local(app_dir, service_dir)}"],
        )
    )


def _app_is_member(plan: IntoPlan, app_dir: Path) -> bool:
    data = _workspace_root(plan.repo)
    if data is None:
        return False
    ws = data["tool"]["uv"]["workspace"]
    rel = app_dir.relative_to(plan.repo).as_posix()
    return _is_member(rel, ws.get("members", []), ws.get("exclude", []))


# ---------------------------------------------------------------- the new package


def _service_pyproject(plan: IntoPlan, dev_source: Path | None) -> str:
    pkg = package_name(plan.name)
    sources = ""
    if dev_source is not None:
        lines = "\n".join(
            f"{k} = {v}"
            for k, v in _dev_sources(
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


def _stack_app(plan: IntoPlan) -> dict[str, str]:
    """A Python CDK app deploying only the Eventual stack (for repos whose CDK app is not
    Python)."""
    stack = f"{_construct_id(plan.name)}"
    return {
        "infra/app.py": f'''"""The Eventual stack of {plan.name}, deployed beside your other stacks.

`npx aws-cdk@2 synth` (or `deploy`) in this folder, or from the repository:
`uv run --directory {plan.package} eventual deploy --app-dir infra`."""

import aws_cdk as cdk

from eventual.cdk import Service

app = cdk.App()
stack = cdk.Stack(app, "{stack}")
Service(stack, "{stack}", entry="{plan.entry}", name="{plan.name}")
app.synth()
''',
        "infra/cdk.json": '{\n  "app": "uv run --project .. python app.py"\n}\n',
    }


def _readme(plan: IntoPlan) -> str:
    return f"""# {plan.name}

An Eventual for Python service (entry `{plan.entry}`), added by `eventual init --into`.

```bash
uv sync                                  # in this folder (or the workspace)
uv run pytest                            # its tests, on a virtual clock
uv run eventual dev .                    # serve it on http://127.0.0.1:3111
```
"""


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
    if kind != PYTHON_CDK:
        files.update(_stack_app(plan))
    plan.files = {f"{plan.package}/{rel}": text for rel, text in files.items()}

    _add_workspace_member(plan, dev_source)
    if kind == PYTHON_CDK and app_dir is not None:
        _plan_python_cdk(plan, app_dir, target, dev_source)
    plan.next_steps = _next_steps(plan)
    return plan


def _plan_python_cdk(plan: IntoPlan, app_dir: Path, target: Path, dev_source: Path | None) -> None:
    stacks = _find_stacks(app_dir, target)
    if len(stacks) > 1:
        script = _app_script(app_dir)
        used = script.read_text(encoding="utf-8") if script else ""
        in_app = [s for s in stacks if re.search(rf"\b{re.escape(s[2].name)}\s*\(", used)]
        if len(in_app) == 1:
            stacks = in_app
    if len(stacks) == 1:
        path, tree, cls = stacks[0]
        plan.stack_file = path.relative_to(plan.repo).as_posix()
        result = _edit_stack(plan, path, tree, cls)
        if isinstance(result, FileEdit):
            plan.edits.append(result)
        else:
            plan.manual.append(result)
    else:
        reason = (
            "no class deriving from Stack was found in the CDK app"
            if not stacks
            else "several stacks: "
            + ", ".join(f"{s[2].name} ({s[0].relative_to(plan.repo).as_posix()})" for s in stacks)
        )
        plan.manual.append(
            ManualStep(
                "your stack",
                reason,
                [
                    "from eventual.cdk import Service",
                    f'self.{_attribute(plan.name)} = Service(self, "{_construct_id(plan.name)}", '
                    f'entry="{plan.entry}", name="{plan.name}")',
                ],
            )
        )
    _add_python_cdk_dependencies(plan, app_dir, dev_source)


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
        app = plan.cdk_app or "."
        cd = "" if app == "." else f"cd {app} && "
        app_dir = plan.repo / app
        if (app_dir / "requirements.txt").is_file():
            steps.append(
                f"{cd}pip install -r requirements.txt    # the CDK app's environment now needs "
                "eventual-cdk and the service"
            )
        elif not (plan.workspace and (app == "." or _app_is_member(plan, app_dir))):
            steps.append(f"{cd}uv sync    # the CDK app now needs eventual-cdk and the service")
        steps.append(f"{cd}npx aws-cdk@2 synth    # the stack now holds the {plan.name} service")
        return steps
    steps.append(
        f"uv run --directory {pkg_dir} eventual deploy --app-dir infra    # deploys the Eventual "
        f"stack {_construct_id(plan.name)} beside your other stacks"
    )
    record = f"/eventual/services/{plan.name}"
    if plan.kind == SST:
        steps.append(
            f"in sst.config.ts, read the SSM parameter {record} (JSON: apiUrl, eventBusArn...) "
            "to call the service: see 'eventual init --into' in the eventual-cli README"
        )
    elif plan.kind == TYPESCRIPT_CDK:
        steps.append(
            f"in your TypeScript stacks, read the SSM parameter {record} (JSON: apiUrl, "
            "eventBusArn...): see 'eventual init --into' in the eventual-cli README"
        )
    return steps


def apply(plan: IntoPlan) -> None:
    """Write the plan: new files first (never over an existing one), then the edits, each file
    checked to be unchanged since it was planned."""
    for rel in plan.files:
        if (plan.repo / rel).exists():
            raise ScaffoldError(f"{plan.repo / rel} exists: nothing was changed")
    for edit in plan.edits:
        current = _read(plan.repo / edit.path)
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


def revert(text: str, changes: list[LineChange]) -> str:
    """The text before ``changes`` (what the file held before the edit)."""
    lines = _lines(text)
    cr = "\r" if "\r\n" in text else ""
    for c in sorted(changes, key=lambda c: c.line, reverse=True):
        if c.old is None:
            del lines[c.line - 1]
        else:
            lines[c.line - 1] = c.old + cr
    return _join(lines)
