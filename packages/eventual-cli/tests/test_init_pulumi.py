"""`eventual init NAME --infra pulumi`: the project's infra/ is a Pulumi program, and that
program declares the service's component (run in-process under Pulumi's mocks: no Pulumi CLI,
no AWS)."""

from __future__ import annotations

import json
import os
import runpy
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from eventual.cli.main import app

CHECKOUT = Path(__file__).resolve().parents[3]
runner = CliRunner()

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_init_with_pulumi_writes_a_pulumi_program(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["init", "my-shop", "-C", str(tmp_path), "--no-git", "--infra", "pulumi", "--json"],
    )
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    root = tmp_path / "my-shop"
    assert {"infra/Pulumi.yaml", "infra/__main__.py", "infra/pyproject.toml"} <= set(files)
    assert "infra/app.py" not in files and "infra/cdk.json" not in files
    assert "runtime:\n  name: python" in (root / "infra" / "Pulumi.yaml").read_text()
    assert '"eventual-pulumi"' in (root / "infra" / "pyproject.toml").read_text()
    assert "eventual-pulumi" in (root / "pyproject.toml").read_text()  # its source
    assert "pulumi preview --cwd infra" in (root / "README.md").read_text()


def test_an_unknown_infra_and_infra_with_into_are_refused(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["init", "shop", "-C", str(tmp_path), "--infra", "terraform"])
    assert bad.exit_code == 1
    assert "--infra 'terraform' is not known: use cdk or pulumi" in bad.output
    into = runner.invoke(app, ["init", "shop", "--into", str(tmp_path), "--infra", "pulumi"])
    assert into.exit_code == 1
    assert "--infra only applies to a new project" in into.output


def test_the_scaffolded_program_declares_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventual.aws_runtime.infra.bundling import Bundle
    from eventual.pulumi import service as component
    from eventual.pulumi.testing import run_program

    result = runner.invoke(
        app, ["init", "pulumi-shop", "-C", str(tmp_path), "--no-git", "--infra", "pulumi"]
    )
    assert result.exit_code == 0, result.output
    root = tmp_path / "pulumi-shop"
    src = root / "packages" / "service" / "src"
    # The spec is read in a subprocess: it must find the new service (uv sync would install it).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(sys, "path", [str(src), *sys.path])
    zip_path = tmp_path / "bundle.zip"
    zip_path.write_bytes(b"")
    built: list[str] = []

    def fake_build(entry: str, **_: object) -> Bundle:
        built.append(entry)
        return Bundle(path=zip_path, key="k", cached=True, platform="p", python_version="3.11")

    monkeypatch.setattr(component, "build_bundle", fake_build)
    deployed = run_program(lambda: runpy.run_path(str(root / "infra" / "__main__.py")))
    assert built == ["pulumi_shop.service"]
    services = deployed.of_type("eventual:aws:Service")
    assert [s.name for s in services] == ["pulumi-shop"]
    functions = deployed.of_type("aws:lambda/function:Function")
    assert {f.inputs["environment"]["variables"]["EVENTUAL_SERVICE_NAME"] for f in functions} == {
        "pulumi-shop"
    }


def _into(repo: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["init", "billing", "--into", str(repo), *args])
    return result.exit_code, result.output


def test_into_a_pulumi_python_program_adds_the_component(tmp_path: Path) -> None:
    repo = tmp_path / "infra-repo"
    repo.mkdir()
    (repo / "Pulumi.yaml").write_text(
        "name: shop\nruntime:\n  name: python\n  options:\n    toolchain: pip\n"
    )
    main = 'import pulumi\n\npulumi.export("hello", "world")\n'
    (repo / "__main__.py").write_text(main)
    (repo / "requirements.txt").write_text("pulumi>=3\npulumi-aws>=6\n")
    code, output = _into(repo, "--dev-source", str(CHECKOUT))
    assert code == 0, output
    assert "Pulumi Python program" in output
    text = (repo / "__main__.py").read_text()
    assert text.startswith(main)  # the program's own lines are kept as they were
    assert "from eventual.pulumi import Service as EventualService" in text
    assert 'EventualService("billing", entry="billing.service", service_name="billing")' in text
    compile(text, "__main__.py", "exec")
    requirements = (repo / "requirements.txt").read_text().splitlines()
    assert f"-e {(CHECKOUT / 'packages' / 'eventual-pulumi').as_posix()}" in requirements
    assert "-e ./services/billing" in requirements or "-e services/billing" in requirements
    assert (repo / "services" / "billing" / "src" / "billing" / "service.py").is_file()
    assert not (repo / "services" / "billing" / "infra").exists()  # no CDK app of its own
    assert "pulumi preview" in output


def test_into_an_sst_app_prints_the_pulumi_program_to_deploy_it(tmp_path: Path) -> None:
    repo = tmp_path / "sst-app"
    repo.mkdir()
    (repo / "sst.config.ts").write_text("export default $config({ app() { return {} } })\n")
    (repo / "package.json").write_text('{"name": "sst-app", "dependencies": {"sst": "^3"}}\n')
    code, output = _into(repo, "--dry-run")
    assert code == 0, output
    assert "SST app" in output
    assert "to deploy it with Pulumi" in output
    assert 'Service("billing", entry="billing.service", service_name="billing")' in output
    assert "cannot declare a Python component" in output
