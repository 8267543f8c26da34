"""A Python CDK app (``cdk.json`` running Python): the ``eventual.cdk.Service`` construct added
to its stack's ``__init__`` (with its import), and ``eventual-cdk`` and the service to the CDK
app's ``requirements.txt`` or ``pyproject.toml`` dependencies."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ..scaffold import EVENTUAL_PACKAGES, ScaffoldError
from .edits import (
    Edit,
    add_toml_entries,
    append_to_array,
    commit_edit,
    dev_sources,
    end_index,
    load_toml,
    local_path,
    pending_edit,
    read_exact,
    relative,
    split_lines,
)
from .repo import FileEdit, IntoPlan, ManualStep, attribute, cdk_app_command, construct_id, walk
from .workspace import app_is_member


def plan_edits(plan: IntoPlan, app_dir: Path, target: Path, dev_source: Path | None) -> None:
    """The construct added to the stack (or the lines to add by hand), then the CDK app's
    dependencies; ``target`` is the new package's folder (no stack is looked for there)."""
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
                    f'self.{attribute(plan.name)} = Service(self, "{construct_id(plan.name)}", '
                    f'entry="{plan.entry}", name="{plan.name}")',
                ],
            )
        )
    _add_python_cdk_dependencies(plan, app_dir, dev_source)


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
    for path in walk(app_dir, 3):
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
    command = cdk_app_command(app_dir / "cdk.json")
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


def _edit_stack(
    plan: IntoPlan, path: Path, tree: ast.Module, cls: ast.ClassDef
) -> FileEdit | ManualStep:
    rel = path.relative_to(plan.repo).as_posix()
    text = read_exact(path)
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
    attr = attribute(plan.name)
    call = (
        f'self.{attr} = {construct}(self, "{construct_id(plan.name)}", '
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
    lines = split_lines(text)
    first = lines[super_call.lineno - 1]
    if first[: super_call.col_offset].strip() or ";" in "".join(
        lines[super_call.lineno - 1 : super_call.end_lineno]
    ):
        return manual(f"the super().__init__(...) call of {cls.name} shares its line")
    edit = Edit(rel, text)
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


def _add_python_cdk_dependencies(
    plan: IntoPlan, app_dir: Path, dev_source: Path | None, infra: str = "eventual-cdk"
) -> None:
    """The app's dependencies gain ``infra`` (the package of its ``Service``) and the
    service's package."""
    requirements = app_dir / "requirements.txt"
    pyproject = app_dir / "pyproject.toml"
    service_dir = plan.repo / plan.package
    if requirements.is_file():
        rel = requirements.relative_to(plan.repo).as_posix()
        edit = pending_edit(plan, rel)
        present = {ln.strip() for ln in edit.lines}
        wanted: list[str] = []
        if dev_source is not None:
            wanted += [
                f"-e {(dev_source / 'packages' / n).as_posix()}"
                for n in ("eventual-core", "eventual-aws-runtime", infra)
            ]
        else:
            wanted.append(infra)
        wanted.append(f"-e {local_path(app_dir, service_dir)}")
        at = end_index(edit)
        for w in wanted:
            if w not in present:
                edit.insert(at, w)
                at += 1
        commit_edit(plan, edit)
        return
    data = load_toml(pyproject.read_text(encoding="utf-8")) if pyproject.is_file() else None
    if data is not None and isinstance(data.get("project", {}).get("dependencies"), list):
        rel = pyproject.relative_to(plan.repo).as_posix()
        edit = pending_edit(plan, rel)
        existing = {
            re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower()
            for d in data["project"]["dependencies"]
        }
        for dep in (infra, plan.dist):
            if dep not in existing and not append_to_array(edit, "project", "dependencies", dep):
                plan.manual.append(
                    ManualStep(rel, "its dependencies list is not in a form this can extend",
                               [f'"{dep}",  # in [project] dependencies'])
                )  # fmt: skip
        in_workspace = plan.workspace and (app_dir == plan.repo or app_is_member(plan, app_dir))
        if not in_workspace:
            sources: list[tuple[str, str]] = [
                (plan.dist, f'{{ path = "{relative(app_dir, service_dir)}", editable = true }}')
            ]
            if dev_source is not None:
                names = EVENTUAL_PACKAGES + tuple({infra} - set(EVENTUAL_PACKAGES))
                sources = dev_sources(dev_source, names) + sources
            add_toml_entries(edit, "tool.uv.sources", sources)
        if load_toml(edit.text) is None:
            raise ScaffoldError(f"editing {rel} would break it: nothing was changed")
        commit_edit(plan, edit)
        return
    where = app_dir.relative_to(plan.repo).as_posix() or "."
    plan.manual.append(
        ManualStep(
            f"{where}/requirements.txt" if where != "." else "requirements.txt",
            "the CDK app has no requirements.txt or pyproject.toml dependencies list",
            [infra, f"-e {local_path(app_dir, service_dir)}"],
        )
    )


def next_steps(plan: IntoPlan) -> list[str]:
    """What to run after: the CDK app's environment, then ``cdk synth``."""
    steps: list[str] = []
    app = plan.cdk_app or "."
    cd = "" if app == "." else f"cd {app} && "
    app_dir = plan.repo / app
    if (app_dir / "requirements.txt").is_file():
        steps.append(
            f"{cd}pip install -r requirements.txt    # the CDK app's environment now needs "
            "eventual-cdk and the service"
        )
    elif not (plan.workspace and (app == "." or app_is_member(plan, app_dir))):
        steps.append(f"{cd}uv sync    # the CDK app now needs eventual-cdk and the service")
    steps.append(f"{cd}npx aws-cdk@2 synth    # the stack now holds the {plan.name} service")
    return steps
