"""`eventual init`: a new project works right away (uv sync, pytest, eventual dev, cdk synth, the
frontend page in a browser).

One project is scaffolded and synced per module and shared by the tests (uv sync and the CDK
synthesis dominate the time)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from eventual.cli.main import app
from eventual.cli.testing import free_port, wait_for

CHECKOUT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def test_init_scaffolds_a_workspace(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "init",
            "my-shop",
            "-C",
            str(tmp_path),
            "--no-git",
            "--frontend",
            "--dev-source",
            str(CHECKOUT),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    root = tmp_path / "my-shop"
    assert written["root"] == str(root)
    assert "packages/service/src/my_shop/service.py" in written["files"]
    assert "infra/app.py" in written["files"]
    assert "apps/frontend/src/frontend/app.py" in written["files"]
    pyproject = (root / "pyproject.toml").read_text()
    assert f'path = "{CHECKOUT.as_posix()}/packages/eventual-core"' in pyproject
    again = runner.invoke(app, ["init", "my-shop", "-C", str(tmp_path)])
    assert again.exit_code == 1
    assert "exists and is not empty" in again.output
    bad = runner.invoke(app, ["init", "9 lives", "-C", str(tmp_path)])
    assert bad.exit_code == 1
    assert "not a valid project name" in bad.output


def test_init_from_a_clone_needs_no_dev_source(tmp_path: Path) -> None:
    """This CLI runs from a clone (the workspace's editable install): that clone is used."""
    result = runner.invoke(app, ["init", "shop", "-C", str(tmp_path), "--no-git"])
    assert result.exit_code == 0, result.output
    assert f"Using the eventual packages of {CHECKOUT}" in result.output
    pyproject = (tmp_path / "shop" / "pyproject.toml").read_text()
    assert f'path = "{CHECKOUT.as_posix()}/packages/eventual-cli"' in pyproject


def test_init_outside_a_clone_says_what_it_needs_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eventual.cli.sources

    # As when the CLI is installed from a wheel: no clone around its own files.
    monkeypatch.setattr(eventual.cli.sources, "running_checkout", lambda: None)
    for args in (["init", "shop", "-C", str(tmp_path)], ["init", "shop", "--into", str(tmp_path)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        assert "not on a package index yet" in result.output
        assert "--dev-source" in result.output
        assert "Nothing was written" in result.output
        assert list(tmp_path.iterdir()) == []
    wrong = runner.invoke(app, ["init", "shop", "-C", str(tmp_path), "--dev-source", str(tmp_path)])
    assert wrong.exit_code == 1
    assert "is not an Eventual for Python checkout" in wrong.output
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the scaffolded project, for real


@dataclass
class Project:
    root: Path
    env: dict[str, str]

    def run(
        self, *args: str, cwd: Path | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            cwd=cwd or self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            list(args),
            cwd=self.root,
            env={**self.env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def project_env() -> dict[str, str]:
    """The environment of a user's shell in the new project: not this workspace's venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    env.pop("EVENTUAL_CDK", None)
    env.pop("EVENTUAL_URL", None)
    return env


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """`eventual init demo-shop --frontend` as a newcomer runs it in a clone (no
    --dev-source), then `uv sync` in it."""
    if shutil.which("uv") is None:
        pytest.skip("needs uv on PATH")
    parent = tmp_path_factory.mktemp("init")
    result = runner.invoke(
        app,
        ["init", "demo-shop", "-C", str(parent), "--no-git", "--frontend"],
    )
    assert result.exit_code == 0, result.output
    assert "uv sync" in result.output  # the next steps it prints
    project = Project(parent / "demo-shop", project_env())
    project.env["EVENTUAL_CDK_CACHE_DIR"] = str(parent / "bundles")  # not the user's cache
    synced = project.run("uv", "sync")  # what the printed next steps say
    assert synced.returncode == 0, synced.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def dev_url(project: Project) -> Iterator[str]:
    """`uv run eventual dev packages/service` in the project, as its README says."""
    port = free_port()
    server = project.popen(
        "uv", "run", "eventual", "dev", "packages/service", "--no-reload", "--port", str(port)
    )
    url = f"http://127.0.0.1:{port}"

    def hello() -> str | None:
        if server.poll() is not None:
            assert server.stdout is not None
            raise AssertionError(f"eventual dev exited: {server.stdout.read()[-3000:]}")
        try:
            r = httpx.post(f"{url}/rpc/hello", json="ada", timeout=2)
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    try:
        assert wait_for(hello, timeout=90, message="the scaffolded service to answer") == (
            "hello ada"
        )
        yield url
    finally:
        stop(server)


def test_the_project_tests_pass(project: Project) -> None:
    tested = project.run("uv", "run", "pytest", "-q")
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
    assert "5 passed" in tested.stdout  # 3 of the service, 2 of the frontend


def test_the_project_serves_with_eventual_dev(project: Project, dev_url: str) -> None:
    invoked = project.run("uv", "run", "eventual", "--url", dev_url, "invoke", "hello", '"world"')
    assert invoked.returncode == 0, invoked.stderr[-3000:]
    assert "hello world" in invoked.stdout
    started = httpx.post(f"{dev_url}/rpc/startGreeting", json="ada", timeout=10)
    assert started.status_code == 200, started.text
    execution_id = started.json()

    def finished() -> dict[str, object] | None:
        r = httpx.post(
            f"{dev_url}/rpc/_system/getExecution", json={"executionId": execution_id}, timeout=5
        )
        body = r.json()
        return body if body.get("status") != "IN_PROGRESS" else None

    execution = wait_for(finished, timeout=30, message="the greet workflow to finish")
    assert execution["status"] == "SUCCEEDED" and execution["result"] == "hello ada"


@pytest.mark.skipif(shutil.which("npx") is None, reason="needs Node.js (npx) for the CDK CLI")
def test_the_project_synthesizes_with_the_cdk_cli(project: Project, tmp_path: Path) -> None:
    """`uv run eventual synth` in the new project: the real `npx aws-cdk@2 synth` of `infra`."""
    out = tmp_path / "cdk.out"
    synth = project.run("uv", "run", "eventual", "synth", "--", "--output", str(out), "--quiet")
    assert synth.returncode == 0, synth.stdout[-3000:] + synth.stderr[-3000:]
    assert "Synthesized" in synth.stdout
    template = json.loads((out / "demo-shop.template.json").read_text())
    resources = template["Resources"].values()
    handlers = sorted(
        r["Properties"]["Handler"].split(".")[-2]
        for r in resources
        if r["Type"] == "AWS::Lambda::Function"
    )
    assert handlers == ["command", "orchestrator", "subscription", "system", "task", "timer"]
    routes = {
        r["Properties"]["RouteKey"] for r in resources if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    assert {"POST /rpc/hello", "POST /rpc/startGreeting"} <= routes
    rules = [r for r in resources if r["Type"] == "AWS::Events::Rule"]
    assert [r["Properties"]["EventPattern"]["detail-type"] for r in rules] == [["Greeted"]]
    parameters = [r["Properties"] for r in resources if r["Type"] == "AWS::SSM::Parameter"]
    assert [p["Name"] for p in parameters] == ["/eventual/services/demo-shop"]


def test_the_frontend_is_typed_against_the_service(project: Project, tmp_path: Path) -> None:
    """pyright sees the service's command types through the ServiceClient in the page."""
    pyright = Path(sys.executable).parent / "pyright"
    if not pyright.exists():
        pytest.skip("pyright is not installed in this environment")
    python = str(project.root / ".venv" / "bin" / "python")
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from typing import TYPE_CHECKING\n"
        "from eventual.client import ServiceClient\n"
        "if TYPE_CHECKING:\n"
        "    from demo_shop import service\n"
        "async def f(client: ServiceClient) -> None:\n"
        '    n: int = await client.call(service.hello, "ada")\n'
        "    await client.call(service.hello, 42)\n"
    )
    # One run over the page (no error) and a misuse of the same call (errors).
    checked = project.run(str(pyright), "--pythonpath", python, "apps/frontend/src", str(wrong))
    errors = [line for line in checked.stdout.splitlines() if " - error: " in line]
    assert errors and all(line.strip().startswith(str(wrong)) for line in errors), checked.stdout
    assert checked.returncode == 1
    assert '"str" is not assignable to "int"' in checked.stdout  # hello returns a str
    assert '"Literal[42]" is not assignable to "str"' in checked.stdout  # and takes one


def test_the_frontend_page_greets_through_the_service(
    project: Project, dev_url: str, tmp_path: Path
) -> None:
    """The scaffolded page in a real browser: type a name, click Greet, read the service's
    answer."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    port = free_port()
    frontend = project.popen(
        "uv", "run", "uvicorn", "frontend.app:app", "--port", str(port),
        extra_env={"SERVICE_URL": dev_url},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"

    def up() -> bool:
        if frontend.poll() is not None:
            assert frontend.stdout is not None
            raise AssertionError(f"the frontend exited: {frontend.stdout.read()[-3000:]}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(up, timeout=60, message="the frontend to serve its page")
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                      "--disable-component-update", "--no-first-run"],
            )  # fmt: skip
            try:
                page = browser.new_page(viewport={"width": 800, "height": 400})
                page.goto(url)
                assert page.locator("#greeting").count() == 0
                page.fill("#name", "Ada Lovelace")
                page.click("#greet")
                page.wait_for_selector("#greeting", timeout=15000)
                assert page.inner_text("#greeting") == "hello Ada Lovelace"
                assert page.input_value("#name") == "Ada Lovelace"
                artifacts = Path(os.environ.get("EVENTUAL_ARTIFACTS", tmp_path))
                artifacts.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(artifacts / "init-frontend.png"), full_page=True)
            finally:
                browser.close()
    finally:
        stop(frontend)
