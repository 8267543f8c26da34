"""`eventual init NAME --into DIR`: a service package added to an existing repository, with
nothing there changed beyond the lines the command reports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventual.cli.main import app

CHECKOUT = Path(__file__).resolve().parents[3]
runner = CliRunner()
needs_uv = pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv on PATH")

SERVICE_FILES = [
    "README.md",
    "pyproject.toml",
    "src/billing/__init__.py",
    "src/billing/service.py",
    "tests/test_service.py",
]


# ---------------------------------------------------------------- fixture repositories


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


# What `cdk init app --language python` writes (the parts that matter here).
CLASSIC_STACK = """
from aws_cdk import (
    Duration,
    Stack,
    aws_sqs as sqs,
)
from constructs import Construct


class MyAppStack(Stack):

    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        queue = sqs.Queue(
            self, "MyAppQueue",
            visibility_timeout=Duration.seconds(300),
        )
"""


def classic_python_cdk(root: Path, stack: str = CLASSIC_STACK) -> Path:
    return write(
        root,
        {
            "app.py": """
                #!/usr/bin/env python3
                import aws_cdk as cdk

                from my_app.my_app_stack import MyAppStack

                app = cdk.App()
                MyAppStack(app, "MyAppStack")
                app.synth()
            """,
            "cdk.json": '{\n  "app": "python3 app.py",\n  "context": {}\n}\n',
            "requirements.txt": "aws-cdk-lib==2.150.0\nconstructs>=10.0.0,<11.0.0\n",
            "requirements-dev.txt": "pytest==6.2.5\n",
            "README.md": "# my app\n",
            "my_app/__init__.py": "",
            "my_app/my_app_stack.py": stack,
            "tests/unit/test_my_app_stack.py": "import aws_cdk as core\n",
        },
    )


def snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not {".venv", "cdk.out", "__pycache__"} & set(p.parts)
    }  # fmt: skip


def reported_edits(output: str) -> dict[str, list[tuple[int, str | None, str]]]:
    """The `Edited FILE:` blocks of the output: (line, old or None, new) per file."""
    edits: dict[str, list[tuple[int, str | None, str]]] = {}
    current: list[tuple[int, str | None, str]] | None = None
    pending_old: dict[int, str] = {}
    for line in output.splitlines():
        header = re.match(r"^(?:Edited|Would edit) (.+):$", line)
        if header:
            current = edits.setdefault(header.group(1), [])
            continue
        change = re.match(r"^  ([+-]) (\d+):(?: (.*))?$", line)
        if change and current is not None:
            sign, number, text = change.group(1), int(change.group(2)), change.group(3) or ""
            if sign == "-":
                pending_old[number] = text
            else:
                current.append((number, pending_old.pop(number, None), text))
            continue
        current = None
    return edits


def dev_requirements(first_line: int) -> list[tuple[int, None, str]]:
    """The requirements lines that take the eventual packages from this clone (init --into
    run from a clone uses it, as `--dev-source` would)."""
    names = ("eventual-core", "eventual-aws-runtime", "eventual-cdk")
    return [(first_line + i, None, f"-e {CHECKOUT.as_posix()}/packages/{n}") for i, n in
            enumerate(names)]  # fmt: skip


def without_dev_sources(
    changes: list[tuple[int, str | None, str]],
) -> list[tuple[int, str | None, str]]:
    """The changes other than `[tool.uv.sources]` lines pointing at this clone."""
    clone = f'{{ path = "{CHECKOUT.as_posix()}/packages/eventual-'
    return [c for c in changes if clone not in c[2] and c[2] != "[tool.uv.sources]"]


def created_files(output: str) -> list[str]:
    files: list[str] = []
    in_block = False
    for line in output.splitlines():
        if re.match(r"^(?:Added|Would add) \S+ ", line):
            in_block = True
            continue
        if in_block and line.startswith("  ") and not line.startswith("   "):
            files.append(line.strip())
            continue
        in_block = False
    return files


def assert_only_reported_changes(before: dict[str, str], root: Path, output: str) -> None:
    """Every file of the repository is as it was, but for the lines the output reported, and
    the files it reported as added."""
    after = snapshot(root)
    created = created_files(output)
    assert set(after) == set(before) | set(created), output
    edits = reported_edits(output)
    for rel, text in before.items():
        lines = after[rel].split("\n")
        for number, old, new in sorted(edits.get(rel, []), reverse=True):
            assert lines[number - 1].rstrip() == new.rstrip(), (rel, number)
            if old is None:
                del lines[number - 1]
            else:
                lines[number - 1] = old
        assert "\n".join(lines) == text, f"{rel} has changes the output did not report"


def init_into(repo: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["init", "billing", "--into", str(repo), *args])
    return result.exit_code, result.output


def uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    return env


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=env or uv_env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


# ---------------------------------------------------------------- Python CDK


def test_into_a_python_cdk_app_adds_the_construct_and_it_synthesizes(tmp_path: Path) -> None:
    repo = classic_python_cdk(tmp_path / "my-app")
    before = snapshot(repo)
    code, output = init_into(repo)
    assert code == 0, output
    assert output.startswith("Found a Python CDK app.\n")
    assert created_files(output) == [f"services/billing/{f}" for f in SERVICE_FILES]
    assert reported_edits(output) == {
        "my_app/my_app_stack.py": [
            (7, None, "from eventual.cdk import Service"),
            (14, None, '        self.billing_service = Service(self, "BillingService", '
                       'entry="billing.service", name="billing")'),
        ],
        "requirements.txt": [*dev_requirements(3), (6, None, "-e ./services/billing")],
    }  # fmt: skip
    assert "npx aws-cdk@2 synth" in output
    assert_only_reported_changes(before, repo, output)

    # This workspace's environment has aws-cdk-lib and eventual-cdk; the service is on the path
    # (as `pip install -r requirements.txt` would install it).
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(repo), str(repo / "services/billing/src")]),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "CDK_OUTDIR": str(tmp_path / "out"),
        "EVENTUAL_CDK_CACHE_DIR": str(tmp_path / "bundles"),  # not the user's cache
    }
    # `python3 app.py`, as cdk.json says (what `cdk synth` runs, without the Node CLI around it):
    # the edited stack module imports and the app synthesizes.
    run([sys.executable, "app.py"], repo, env)
    template = json.loads((tmp_path / "out" / "MyAppStack.template.json").read_text())
    resources = template["Resources"]
    assert any(k.startswith("MyAppQueue") for k in resources)  # the stack's own queue stays
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 6
    names = [
        r["Properties"]["Name"] for r in resources.values() if r["Type"] == "AWS::SSM::Parameter"
    ]
    assert names == ["/eventual/services/billing"]


def test_into_a_python_cdk_app_with_no_safe_place_prints_the_lines(tmp_path: Path) -> None:
    stack = CLASSIC_STACK.replace(
        "        super().__init__(scope, construct_id, **kwargs)\n",
        "        super().__init__(scope, construct_id, **kwargs); self.ready = True\n",
    )
    repo = classic_python_cdk(tmp_path / "my-app", stack)
    before = snapshot(repo)
    code, output = init_into(repo)
    assert code == 0, output
    assert (
        "Not edited: my_app/my_app_stack.py (the super().__init__(...) call of MyAppStack shares "
        "its line); add these lines:\n"
        "    from eventual.cdk import Service    # with the imports\n"
        '    self.billing_service = Service(self, "BillingService", entry="billing.service", '
        'name="billing")    # in MyAppStack.__init__, after super().__init__(...)\n'
    ) in output
    assert set(reported_edits(output)) == {"requirements.txt"}
    assert_only_reported_changes(before, repo, output)


def test_dry_run_changes_nothing(tmp_path: Path) -> None:
    repo = classic_python_cdk(tmp_path / "my-app")
    before = snapshot(repo)
    code, output = init_into(repo, "--dry-run")
    assert code == 0, output
    assert output.startswith("Dry run: nothing was changed.\nFound a Python CDK app.\n")
    assert "Would add services/billing" in output
    assert reported_edits(output)["requirements.txt"] == [
        *dev_requirements(3),
        (6, None, "-e ./services/billing"),
    ]
    assert snapshot(repo) == before
    code, output = init_into(repo, "--dry-run", "--json", "--path", "backend/billing")
    assert code == 0, output
    plan = json.loads(output)
    assert plan["dryRun"] is True and plan["kind"] == "python-cdk"
    assert plan["stackFile"] == "my_app/my_app_stack.py"
    assert "backend/billing/src/billing/service.py" in plan["created"]
    assert snapshot(repo) == before


def test_an_existing_package_folder_is_refused(tmp_path: Path) -> None:
    repo = classic_python_cdk(tmp_path / "my-app")
    (repo / "services" / "billing").mkdir(parents=True)
    before = snapshot(repo)
    code, output = init_into(repo)
    assert code == 1
    assert "services/billing already exists: choose another --path or name" in output
    assert snapshot(repo) == before
    code, output = init_into(repo, "--path", "../elsewhere")
    assert code == 1 and "must be a folder inside the repository" in output
    code, output = init_into(repo, "--frontend")
    assert code == 1 and "--frontend only applies to a new project" in output


@needs_uv
def test_into_a_uv_workspace_with_a_python_cdk_app(tmp_path: Path) -> None:
    """A uv workspace whose `infra` member is the CDK app: the package becomes a member, the
    app depends on it, and `uv sync`, the service's tests and the stack's import all work."""
    repo = write(
        tmp_path / "shop",
        {
            "pyproject.toml": """
                [project]
                name = "shop"
                version = "0.1.0"
                requires-python = ">=3.11"
                dependencies = []

                [tool.uv]
                package = false

                [tool.uv.workspace]
                members = [
                    "infra"
                ]
            """,
            "infra/pyproject.toml": """
                [project]
                name = "shop-infra"
                version = "0.1.0"
                requires-python = ">=3.11"
                dependencies = [
                    "aws-cdk-lib>=2.150",
                    "constructs>=10.3",
                ]

                [tool.uv]
                package = false
            """,
            "infra/cdk.json": '{"app": "uv run python app.py"}\n',
            "infra/app.py": """
                import aws_cdk as cdk

                from stacks.shop_stack import ShopStack

                app = cdk.App()
                ShopStack(app, "Shop")
                app.synth()
            """,
            "infra/stacks/__init__.py": "",
            "infra/stacks/shop_stack.py": '''
                """The shop."""

                from __future__ import annotations

                import aws_cdk as cdk
                from aws_cdk import aws_s3 as s3
                from constructs import Construct


                class Service:  # a name the module already uses
                    pass


                class ShopStack(cdk.Stack):
                    def __init__(self, scope: Construct, id: str, **kwargs) -> None:
                        super().__init__(
                            scope,
                            id,
                            **kwargs,
                        )
                        self.bucket = s3.Bucket(self, "Assets")


                class NotDeployedStack(cdk.Stack):
                    pass
            ''',
        },
    )
    before = snapshot(repo)
    code, output = init_into(repo, "--dev-source", str(CHECKOUT))
    assert code == 0, output
    assert output.startswith("Found a Python CDK app in infra (a uv workspace).\n")
    edits = reported_edits(output)
    assert edits["pyproject.toml"][:3] == [
        (12, '    "infra"', '    "infra",'),
        (13, None, '    "services/billing",'),
        (15, None, ""),
    ]
    assert edits["pyproject.toml"][-1] == (23, None, "billing-service = { workspace = true }")
    assert edits["infra/pyproject.toml"] == [
        (8, None, '    "eventual-cdk",'),
        (9, None, '    "billing-service",'),
    ]
    assert edits["infra/stacks/shop_stack.py"] == [
        (8, None, "from eventual.cdk import Service as EventualService"),
        (22, None, '        self.billing_service = EventualService(self, "BillingService", '
                   'entry="billing.service", name="billing")'),
    ]  # fmt: skip
    assert_only_reported_changes(before, repo, output)

    run(["uv", "sync", "--all-packages"], repo)
    tested = run(["uv", "run", "pytest", "-q", "services/billing"], repo)
    assert "3 passed" in tested.stdout
    imported = run(
        ["uv", "run", "python", "-c", "import stacks.shop_stack as m; print(m.EventualService)"],
        repo / "infra",
    )
    assert "eventual.cdk.service.Service" in imported.stdout


# ---------------------------------------------------------------- TypeScript CDK, SST


@needs_uv
def test_into_a_typescript_cdk_app(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "web",
        {
            "cdk.json": '{\n  "app": "npx ts-node --prefer-ts-exts bin/web.ts"\n}\n',
            "package.json": '{"name": "web", "dependencies": {"aws-cdk-lib": "2.150.0"}}\n',
            "bin/web.ts": "import * as cdk from 'aws-cdk-lib';\n",
            "lib/web-stack.ts": "export class WebStack {}\n",
        },
    )
    before = snapshot(repo)
    code, output = init_into(repo, "--dev-source", str(CHECKOUT))
    assert code == 0, output
    assert output.startswith("Found a TypeScript CDK app.\n")
    assert created_files(output) == [
        f"services/billing/{f}"
        for f in ["README.md", "infra/app.py", "infra/cdk.json", *SERVICE_FILES[1:]]
    ]
    assert reported_edits(output) == {}
    assert (
        "uv run --directory services/billing eventual deploy --app-dir infra    # deploys the "
        "Eventual stack BillingService beside your other stacks"
    ) in output
    assert "read the SSM parameter /eventual/services/billing" in output
    assert_only_reported_changes(before, repo, output)

    # The package stands alone: its own environment, its tests, its CDK app's imports.
    package = repo / "services" / "billing"
    run(["uv", "sync"], package)
    assert "3 passed" in run(["uv", "run", "pytest", "-q"], package).stdout
    cdk_json = json.loads((package / "infra" / "cdk.json").read_text())
    assert cdk_json["app"] == "uv run --project .. python app.py"
    check = (
        "import ast, eventual.cdk, billing.service; ast.parse(open('app.py').read()); print('ok')"
    )
    checked = run(["uv", "run", "--project", "..", "python", "-c", check], package / "infra")
    assert checked.stdout.strip().endswith("ok")


def test_into_an_sst_app_in_a_uv_workspace(tmp_path: Path) -> None:
    repo = write(
        tmp_path / "site",
        {
            "sst.config.ts": "export default $config({ app() { return { name: 'site' }; } });\n",
            "package.json": '{"name": "site", "dependencies": {"sst": "3.0.0"}}\n',
            "pyproject.toml": """
                [project]
                name = "site-tools"
                version = "0.1.0"
                requires-python = ">=3.11"

                [tool.uv.workspace]
                members = ["packages/*"]  # the Python side

                [tool.uv.sources]
                shared = { workspace = true }
            """,
        },
    )
    before = snapshot(repo)
    code, output = init_into(repo)
    assert code == 0, output
    assert output.startswith("Found an SST app (a uv workspace).\n")
    edits = reported_edits(output)
    assert list(edits) == ["pyproject.toml"]
    assert without_dev_sources(edits["pyproject.toml"]) == [
        (7, 'members = ["packages/*"]  # the Python side',
         'members = ["packages/*", "services/billing"]  # the Python side'),
    ]  # fmt: skip
    assert len(edits["pyproject.toml"]) > 1  # the eventual packages come from this clone
    assert "in sst.config.ts, read the SSM parameter /eventual/services/billing" in output
    assert "uv sync --all-packages" in output
    assert_only_reported_changes(before, repo, output)
    # A member already covered by a glob is not added again.
    code, output = init_into(repo, "--path", "packages/billing", "--dry-run")
    assert code == 0, output
    assert [without_dev_sources(c) for c in reported_edits(output).values()] in ([], [[]])


def test_windows_line_ends_are_kept(tmp_path: Path) -> None:
    repo = classic_python_cdk(tmp_path / "my-app")
    for rel in ("my_app/my_app_stack.py", "requirements.txt"):
        path = repo / rel
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    before = {p: (repo / p).read_bytes() for p in ("my_app/my_app_stack.py", "requirements.txt")}
    code, output = init_into(repo)
    assert code == 0, output
    stack = (repo / "my_app/my_app_stack.py").read_bytes()
    assert b"\r\nfrom eventual.cdk import Service\r\n" in stack
    assert stack.count(b"\n") == stack.count(b"\r\n")
    requirements = (repo / "requirements.txt").read_bytes()
    added = [line for _, _, line in dev_requirements(3)] + ["-e ./services/billing"]
    assert (
        requirements
        == before["requirements.txt"] + "".join(f"{line}\r\n" for line in added).encode()
    )
    lines = stack.split(b"\r\n")
    del lines[13], lines[6]  # the two reported lines, 14 and 7
    assert b"\r\n".join(lines) == before["my_app/my_app_stack.py"]


@needs_uv
def test_into_a_python_cdk_app_with_a_pyproject(tmp_path: Path) -> None:
    """A CDK app that is a uv project of its own (not a workspace): its one-line dependencies
    list gets both requirements, and a path source points at the new package."""
    repo = classic_python_cdk(tmp_path / "my-app")
    (repo / "requirements.txt").unlink()
    (repo / "cdk.json").write_text('{"app": "uv run python app.py"}\n')
    (repo / "pyproject.toml").write_text(
        '[project]\nname = "my-app"\nversion = "0.1.0"\nrequires-python = ">=3.11"\n'
        'dependencies = ["aws-cdk-lib>=2.150", "constructs>=10.3"]\n'
    )
    before = snapshot(repo)
    code, output = init_into(repo, "--dev-source", str(CHECKOUT))
    assert code == 0, output
    edits = reported_edits(output)
    assert edits["pyproject.toml"][0] == (
        5,
        'dependencies = ["aws-cdk-lib>=2.150", "constructs>=10.3"]',
        'dependencies = ["aws-cdk-lib>=2.150", "constructs>=10.3", "eventual-cdk", '
        '"billing-service"]',
    )
    assert edits["pyproject.toml"][1:3] == [(6, None, ""), (7, None, "[tool.uv.sources]")]
    assert edits["pyproject.toml"][-1] == (
        14,
        None,
        'billing-service = { path = "services/billing", editable = true }',
    )
    assert_only_reported_changes(before, repo, output)
    run(["uv", "lock"], repo)  # uv reads the edited project and resolves it with the package
    assert 'name = "billing-service"' in (repo / "uv.lock").read_text()


def test_several_stacks_and_no_cdk_app(tmp_path: Path) -> None:
    stack = CLASSIC_STACK + "\n\nclass OtherStack(Stack):\n    pass\n"
    repo = classic_python_cdk(tmp_path / "my-app", stack)
    (repo / "app.py").write_text("import aws_cdk as cdk\n")  # instantiates neither
    before = snapshot(repo)
    code, output = init_into(repo)
    assert code == 0, output
    assert (
        "Not edited: your stack (several stacks: MyAppStack (my_app/my_app_stack.py), "
        "OtherStack (my_app/my_app_stack.py)); add these lines:"
    ) in output
    assert set(reported_edits(output)) == {"requirements.txt"}
    assert_only_reported_changes(before, repo, output)

    plain = write(tmp_path / "plain", {"README.md": "# plain\n"})
    code, output = init_into(plain)
    assert code == 0, output
    assert output.startswith("Found a repository without a CDK or SST app.\n")
    assert "services/billing/infra/app.py" in created_files(output)
    assert reported_edits(output) == {}
