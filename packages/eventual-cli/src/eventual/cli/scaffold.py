"""``eventual init``: scaffold a new Eventual project as a uv workspace.

The layout it writes::

    NAME/
      pyproject.toml          the workspace root, with the dev tools
      README.md
      packages/service/       the service package: a `hello` command, a workflow calling a task
                              and emitting an event, a subscription, and TestEnvironment tests
      infra/                  a CDK app deploying the service with eventual.cdk.Service, or
                              (--infra pulumi) a Pulumi program with eventual.pulumi.Service
      apps/frontend/          (--frontend) a small web app calling the service through ServiceClient

``dev_source`` points the eventual dependencies at a clone of Eventual for Python (the packages
are not on a package index yet); ``eventual init`` passes the clone it runs from, or
``--dev-source`` (see :mod:`eventual.cli.sources`).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

EVENTUAL_PACKAGES = (
    "eventual-core",
    "eventual-client",
    "eventual-testing",
    "eventual-aws-runtime",
    "eventual-cdk",
    "eventual-cli",
)

INFRAS = ("cdk", "pulumi")
"""What ``infra/`` deploys the service with: a CDK app, or a Pulumi program."""


class ScaffoldError(Exception):
    """The scaffold cannot be written; the message says why and what to do."""


@dataclass
class Scaffold:
    """What ``eventual init`` wrote, for the summary it prints."""

    root: Path
    files: list[Path] = field(default_factory=list)
    git: bool = False


def package_name(name: str) -> str:
    """The Python package of the service: ``my-shop`` -> ``my_shop``."""
    module = re.sub(r"[^0-9a-zA-Z_]", "_", name).strip("_").lower()
    if not module or module[0].isdigit():
        module = f"svc_{module}"
    return module


def validate_name(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
        raise ScaffoldError(
            f"{name!r} is not a valid project name: use letters, digits, '-' and '_', "
            "starting with a letter (for example: my-service)"
        )


def _sources(dev_source: Path | None, names: tuple[str, ...]) -> str:
    if dev_source is None:
        return ""
    lines = ["", "[tool.uv.sources]"]
    for n in names:
        lines.append(
            f'{n} = {{ path = "{(dev_source / "packages" / n).as_posix()}", editable = true }}'
        )
    return "\n".join(lines) + "\n"


def service_sources(name: str) -> dict[str, str]:
    """The service's source files, relative to its package folder: ``src/{pkg}/__init__.py``,
    ``src/{pkg}/service.py`` (a ``hello`` command, a workflow calling a task and emitting an
    event, a subscription) and ``tests/test_service.py`` (TestEnvironment tests)."""
    pkg = package_name(name)
    files: dict[str, str] = {}
    files[f"src/{pkg}/__init__.py"] = (
        f'"""The {name} service. Its entry module is `{pkg}.service`."""\n\n'
        "from . import service as service  # importing the package registers the service\n"
    )
    files[
        f"src/{pkg}/service.py"
    ] = f'''"""The {name} service: commands, a workflow, a task, an event and a subscription."""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import BaseModel

from eventual.core import command, event, subscription, task, workflow

log = logging.getLogger(__name__)


class Greeting(BaseModel):
    name: str
    message: str


greeted = event("Greeted", Greeting)


@task("formatGreeting", timeout=timedelta(seconds=30))
async def format_greeting(name: str) -> str:
    return f"hello {{name}}"


@workflow("greet")
async def greet(name: str) -> str:
    message = await format_greeting(name)
    log.info("formatted the greeting")
    await greeted.emit(Greeting(name=name, message=message))
    return message


@subscription("logGreeting", events=[greeted])
async def log_greeting(greeting: Greeting) -> None:
    log.info("greeted %s", greeting.name)


@command
async def hello(name: str) -> str:
    """Say hello (an RPC: POST /rpc/hello with a JSON string)."""
    return f"hello {{name}}"


@command("startGreeting")
async def start_greeting(name: str) -> str:
    """Start the greet workflow and return its execution id."""
    execution = await greet.start_execution(name)
    return execution.execution_id
'''
    files["tests/test_service.py"] = f'''from __future__ import annotations

import pytest

from eventual.core import ExecutionStatus
from eventual.testing import TestEnvironment

from {pkg}.service import format_greeting, greet, greeted, hello

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_hello() -> None:
    assert await hello("world") == "hello world"


async def test_greet_runs_the_task_and_emits_an_event() -> None:
    async with TestEnvironment(entry="{pkg}.service") as env:
        seen = []
        env.subscribe_events([greeted], seen.append)
        execution = await env.start_execution(greet, "ada")
        await env.tick()
        status = await execution.get_status()
        assert status.status is ExecutionStatus.SUCCEEDED
        assert status.result == "hello ada"
        assert [g.name for g in seen] == ["ada"]


async def test_greet_with_a_mocked_task() -> None:
    async with TestEnvironment(entry="{pkg}.service") as env:
        env.mock_task(format_greeting).succeed("hi from a mock")
        execution = await env.start_execution(greet, "ada")
        await env.tick()
        assert (await execution.get_status()).result == "hi from a mock"
'''
    return files


def packages_for(infra: str) -> tuple[str, ...]:
    """The eventual packages a project deploying with ``infra`` takes from a clone."""
    return EVENTUAL_PACKAGES + (("eventual-pulumi",) if infra == "pulumi" else ())


SCAFFOLD_CALLS = (
    "    # What each function's code calls of eventual's client: its role is granted just\n"
    "    # that (leave calls= out to allow every call).\n"
    '    api=FunctionProps(calls=["start_execution"]),\n'
    '    orchestrator=FunctionProps(calls=["emit"]),\n'
    '    tasks={"formatGreeting": TaskProps(calls=[])},\n'
    '    subscriptions={"logGreeting": SubscriptionProps(calls=[])},\n'
)
"""The ``calls=`` of the scaffolded service's functions (``startGreeting`` starts ``greet``,
which emits ``Greeted``; the task and the subscription call nothing), in both infra apps."""
SCAFFOLD_PROPS = "FunctionProps, Service, SubscriptionProps, TaskProps"


def pulumi_program(
    name: str, entry: str, *, docstring: bool = True, scaffolded: bool = False
) -> str:
    """The ``__main__.py`` of a Pulumi program deploying the service at ``entry``; with the
    scaffolded service's ``calls=`` when ``scaffolded``."""
    head = '"""The Pulumi program: `pulumi up` (or `pulumi preview`) in this directory."""\n\n'
    if scaffolded:
        service = (
            "service = Service(\n"
            f'    "{name}",\n'
            f'    entry="{entry}",\n'
            f'    service_name="{name}",\n'
            f"{SCAFFOLD_CALLS})\n"
        )
    else:
        service = f'service = Service("{name}", entry="{entry}", service_name="{name}")\n'
    return (head if docstring else "") + (
        "import pulumi\n\n"
        f"from eventual.pulumi import {SCAFFOLD_PROPS if scaffolded else 'Service'}\n\n"
        f"{service}"
        'pulumi.export("api_url", service.api_url)\n'
        'pulumi.export("event_bus_arn", service.event_bus.arn)\n'
    )


def pulumi_project(name: str) -> str:
    """A ``Pulumi.yaml`` running the program with uv (the workspace's environment)."""
    return (
        f"name: {name}\n"
        f"description: Deploys the {name} Eventual service\n"
        "runtime:\n"
        "  name: python\n"
        "  options:\n"
        "    toolchain: uv\n"
    )


def _infra_files(name: str, pkg: str, service_dist: str, infra: str) -> dict[str, str]:
    files: dict[str, str] = {}
    if infra == "pulumi":
        files["infra/pyproject.toml"] = f'''[project]
name = "{name}-infra"
version = "0.1.0"
description = "The Pulumi program of {name}"
requires-python = ">=3.11"
dependencies = ["eventual-pulumi", "{service_dist}"]

[tool.uv]
package = false
'''
        files["infra/Pulumi.yaml"] = pulumi_project(name)
        files["infra/__main__.py"] = pulumi_program(name, f"{pkg}.service", scaffolded=True)
        return files
    files["infra/pyproject.toml"] = f'''[project]
name = "{name}-infra"
version = "0.1.0"
description = "The AWS CDK app of {name}"
requires-python = ">=3.11"
dependencies = ["eventual-cdk", "{service_dist}"]

[tool.uv]
package = false
'''
    files[
        "infra/app.py"
    ] = f'''"""The CDK app: `npx aws-cdk@2 synth` (or `uv run python app.py`) writes it."""

import aws_cdk as cdk

from eventual.cdk import {SCAFFOLD_PROPS}

app = cdk.App()
stack = cdk.Stack(app, "{name}")
Service(
    stack,
    "{name}",
    entry="{pkg}.service",
    name="{name}",
{SCAFFOLD_CALLS})
app.synth()
'''
    files["infra/cdk.json"] = '{\n  "app": "uv run python app.py"\n}\n'
    return files


def _files(
    name: str, *, frontend: bool, dev_source: Path | None, infra: str = "cdk"
) -> dict[str, str]:
    pkg = package_name(name)
    service_dist = f"{name}-service"
    members = ['"packages/*"', '"infra"'] + (['"apps/*"'] if frontend else [])
    # The members the root's dev group installs, so that a plain `uv sync` is enough to run
    # every test (the infra member syncs itself when `uv run` runs its app).
    local = [service_dist] + ([f"{name}-frontend"] if frontend else [])
    workspace_sources = (
        "\n[tool.uv.sources]\n" if dev_source is None else _sources(dev_source, packages_for(infra))
    ) + "".join(f"{d} = {{ workspace = true }}\n" for d in local)
    dev_locals = "".join(f'    "{d}",\n' for d in local)
    files: dict[str, str] = {}
    files["pyproject.toml"] = f'''[project]
name = "{name}"
version = "0.1.0"
description = "The {name} workspace (not published)"
requires-python = ">=3.11"
dependencies = []

[dependency-groups]
dev = [
    "pytest>=8",
    "anyio>=4",
    "eventual-testing",
    "eventual-cli",
{dev_locals}]

[tool.uv]
package = false

[tool.uv.workspace]
members = [{", ".join(members)}]
{workspace_sources}
[tool.eventual]
entry = "{pkg}.service"

[tool.pytest.ini_options]
testpaths = ["packages", "apps"]
addopts = "--import-mode=importlib"
eventual_entry = "{pkg}.service"
'''
    files[".gitignore"] = (
        "__pycache__/\n.venv/\n.eventual/\ncdk.out/\n*.egg-info/\n.pytest_cache/\n"
    )
    frontend_row = (
        "| `apps/frontend` | a web page that calls the service with the typed `ServiceClient` |\n"
        if frontend
        else ""
    )
    frontend_run = (
        "uv run uvicorn frontend.app:app --port 8000   # the page, on http://127.0.0.1:8000\n"
        if frontend
        else ""
    )
    infra_row, infra_run = {
        "cdk": (
            "| `infra` | the AWS CDK app that deploys it (`eventual.cdk.Service`) |",
            "uv run eventual synth                     # npx aws-cdk@2 synth in ./infra",
        ),
        "pulumi": (
            "| `infra` | the Pulumi program that deploys it (`eventual.pulumi.Service`) |",
            "pulumi preview --cwd infra               # then pulumi up --cwd infra",
        ),
    }[infra]
    files["README.md"] = f"""# {name}

An [Eventual for Python](https://github.com/) service.

| path | what it is |
| --- | --- |
| `packages/service` | the service: commands, workflows, tasks, events (`{pkg}.service`) |
{infra_row}
{frontend_row}
```bash
uv sync                                   # install the service, its tests' tools and the CLI
uv run pytest                             # the service's tests, on a virtual clock
uv run eventual dev packages/service      # the service on http://127.0.0.1:3111
uv run eventual invoke hello '"world"'    # call its hello command
{frontend_run}{infra_run}
```
"""
    files["packages/service/pyproject.toml"] = f'''[project]
name = "{service_dist}"
version = "0.1.0"
description = "The {name} service"
requires-python = ">=3.11"
dependencies = ["eventual-core", "pydantic>=2"]

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/{pkg}"]
{_sources(dev_source, ("eventual-core",))}'''
    for rel, text in service_sources(name).items():
        files[f"packages/service/{rel}"] = text
    files.update(_infra_files(name, pkg, service_dist, infra))
    if frontend:
        files["apps/frontend/pyproject.toml"] = f'''[project]
name = "{name}-frontend"
version = "0.1.0"
description = "A web page that calls the {name} service"
requires-python = ">=3.11"
dependencies = ["eventual-client", "starlette>=0.37", "uvicorn>=0.30"]

[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/frontend"]
{_sources(dev_source, ("eventual-core", "eventual-client"))}'''
        files["apps/frontend/src/frontend/__init__.py"] = ""
        files[
            "apps/frontend/src/frontend/app.py"
        ] = f'''"""A page that greets through the service, with the typed ServiceClient.

    uv run eventual dev packages/service                          # the service, on :3111
    uv run uvicorn frontend.app:app --port 8000                   # this page, on :8000

``SERVICE_URL`` is the service's URL (default: the dev server's); for a deployed service it is
its API URL (the ``ApiUrl`` output of the stack, or ``eventual --service NAME service``).
"""

from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from eventual.client import HttpError, ServiceClient, ServiceUnreachable, service_ref

if TYPE_CHECKING:  # read by pyright only: the page never imports the service's handlers
    from {pkg} import service
else:
    service = service_ref()

DEFAULT_SERVICE_URL = "http://127.0.0.1:3111"

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{name}</title>
<style>body {{{{ font: 16px system-ui, sans-serif; margin: 3rem; }}}}
 .error {{{{ color: #b00020; }}}}</style></head>
<body>
<h1>{name}</h1>
<form method="get" action="/">
  <label for="name">Your name</label>
  <input id="name" name="name" value="{{value}}" autofocus>
  <button id="greet" type="submit">Greet</button>
</form>
{{answer}}
</body>
</html>
"""


def service_url() -> str:
    return os.environ.get("SERVICE_URL", DEFAULT_SERVICE_URL)


async def page(request: Request) -> HTMLResponse:
    name = request.query_params.get("name", "").strip()
    if not name:
        return HTMLResponse(PAGE.format(value="", answer=""))
    try:
        async with ServiceClient(service_url()) as client:
            message = await client.call(service.hello, name)  # typed: str
    except (HttpError, ServiceUnreachable) as exc:
        answer = (
            f"<p id=\'error\' class=\'error\'>The service at {{html.escape(service_url())}} "
            f"did not answer: {{html.escape(str(exc))}}</p>"
        )
        return HTMLResponse(PAGE.format(value=html.escape(name), answer=answer), 502)
    answer = f"<p id=\'greeting\'>{{html.escape(message)}}</p>"
    return HTMLResponse(PAGE.format(value=html.escape(name), answer=answer))


app = Starlette(routes=[Route("/", page)])
'''
        files[
            "apps/frontend/tests/test_frontend.py"
        ] = """from starlette.testclient import TestClient

from frontend.app import app


def test_the_page_asks_for_a_name() -> None:
    page = TestClient(app).get("/")
    assert page.status_code == 200
    assert 'id="name"' in page.text and "greeting" not in page.text


def test_the_page_says_when_the_service_does_not_answer(monkeypatch) -> None:
    monkeypatch.setenv("SERVICE_URL", "http://127.0.0.1:9")
    page = TestClient(app).get("/", params={"name": "ada"})
    assert page.status_code == 502
    assert "The service at http://127.0.0.1:9 did not answer" in page.text
"""
    return files


def scaffold(
    name: str,
    parent: Path,
    *,
    frontend: bool = False,
    git: bool = True,
    dev_source: Path | None = None,
    infra: str = "cdk",
) -> Scaffold:
    """Write a new project ``parent/name``; refuses to write into a non-empty directory.
    ``infra``: ``"cdk"`` (a CDK app in ``infra/``) or ``"pulumi"`` (a Pulumi program)."""
    validate_name(name)
    if infra not in INFRAS:
        raise ScaffoldError(f"--infra {infra!r} is not known: use {' or '.join(INFRAS)}")
    root = parent / name
    if root.exists() and any(root.iterdir()):
        raise ScaffoldError(f"{root} exists and is not empty: choose another name or directory")
    if dev_source is not None:
        dev_source = dev_source.resolve()
        if not (dev_source / "packages" / "eventual-core" / "pyproject.toml").exists():
            raise ScaffoldError(
                f"--dev-source {dev_source} is not an Eventual for Python checkout "
                "(no packages/eventual-core/pyproject.toml there)"
            )
    result = Scaffold(root=root)
    for rel, text in _files(name, frontend=frontend, dev_source=dev_source, infra=infra).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.files.append(path)
    if git:
        try:
            subprocess.run(["git", "init", "-q", str(root)], check=True, capture_output=True)
            result.git = True
        except (OSError, subprocess.CalledProcessError):
            result.git = False
    return result
