"""Every package builds (``uv build --all-packages``: a wheel and an sdist each), and each wheel
installs alone (with only the eventual wheels it declares, and its third-party dependencies)
into a fresh virtual environment, where its public surface imports.

Needs PyPI for the third-party dependencies (uv's cache keeps it fast); EVENTUAL_OFFLINE=1
skips the installs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {p.parent.name: p.parent for p in sorted(ROOT.glob("packages/*/pyproject.toml"))}

# What a user of each package imports; every name in a module's ``__all__`` must resolve too.
SURFACE: dict[str, list[str]] = {
    "eventual-core": [
        "eventual.core",
        "eventual.core.definitions",
        "eventual.core.http",
        "eventual.core.runtime",
        "eventual.core.runtime.sqlite",
        "eventual.core.spec",
        "eventual.core.history",
    ],
    "eventual-client": ["eventual.client"],
    # (its pytest plugin loads under pytest only: its entry point is checked in the wheel)
    "eventual-testing": ["eventual.testing"],
    "eventual-aws-runtime": [
        "eventual.aws_runtime",
        "eventual.aws_runtime.names",
        "eventual.aws_runtime.adapters",
        *(
            f"eventual.aws_runtime.handlers.{h}"
            for h in ("orchestrator", "task", "command", "system", "subscription", "timer")
        ),
    ],
    "eventual-cdk": ["eventual.cdk"],
    "eventual-pulumi": ["eventual.pulumi", "eventual.pulumi.testing"],
    "eventual-cli": ["eventual.cli.main"],
}

CHECK = r"""
import importlib, importlib.metadata, json, sys

out = {"missing": [], "distributions": sorted(
    d.metadata["Name"].lower() for d in importlib.metadata.distributions()
    if d.metadata["Name"].lower().startswith("eventual")
)}
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    for attr in getattr(module, "__all__", []):
        try:
            getattr(module, attr)
        except Exception as exc:
            out["missing"].append(f"{name}.{attr}: {exc!r}")
    if name.startswith("eventual.aws_runtime.handlers."):
        if not callable(getattr(module, "handler", None)):
            out["missing"].append(f"{name}.handler")
print(json.dumps(out))
"""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build and install the packages (pip install uv)")
    return uv


def _eventual_dependencies(package: str) -> set[str]:
    """``package`` and the eventual packages it depends on, transitively."""
    found: set[str] = set()
    todo = [package]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        project = tomllib.loads((PACKAGES[name] / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            dep = requirement.split("[")[0].split(">")[0].split("=")[0].strip()
            if dep in PACKAGES:
                todo.append(dep)
    return found


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [_uv(), "build", "--all-packages", "--out-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return out


def _artifact(dist: Path, package: str, suffix: str) -> Path:
    stem = package.replace("-", "_")
    found = sorted(dist.glob(f"{stem}-*{suffix}"))
    assert len(found) == 1, f"expected one {suffix} of {package} in {dist}: {found}"
    return found[0]


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_the_wheel_and_sdist_hold_the_package(dist: Path, package: str) -> None:
    module_dir = "eventual/" + package.removeprefix("eventual-").replace("-", "_")
    with zipfile.ZipFile(_artifact(dist, package, ".whl")) as wheel:
        names = wheel.namelist()
    # PEP 420: no package may ship eventual/__init__.py, or it would hide the others.
    assert "eventual/__init__.py" not in names
    assert f"{module_dir}/__init__.py" in names
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
    sources = [
        p.relative_to(PACKAGES[package] / "src").as_posix()
        for p in (PACKAGES[package] / "src").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert sorted(set(sources) - set(names)) == []  # every source and data file ships
    if package == "eventual-testing":
        with zipfile.ZipFile(_artifact(dist, package, ".whl")) as wheel:
            entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
            text = wheel.read(entry_points).decode()
        assert "[pytest11]" in text
        assert "eventual.testing.pytest_plugin" in text
    with tarfile.open(_artifact(dist, package, ".tar.gz")) as sdist:
        members = sdist.getnames()
    assert any(m.endswith("/pyproject.toml") for m in members)
    assert any(m.endswith("/README.md") for m in members)


@pytest.mark.skipif(os.environ.get("EVENTUAL_OFFLINE") == "1", reason="EVENTUAL_OFFLINE=1")
@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_each_wheel_installs_alone_and_imports(dist: Path, package: str, tmp_path: Path) -> None:
    uv = _uv()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_PROJECT"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"

    def run(*args: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(a) for a in args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{args}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done

    wanted = _eventual_dependencies(package)
    run(uv, "venv", "--quiet", "--python", "3.11", venv)
    run(
        uv, "pip", "install", "--quiet", "--python", python,
        *(_artifact(dist, name, ".whl") for name in sorted(wanted)),
    )  # fmt: skip
    checked = run(python, "-c", CHECK, *SURFACE[package], timeout=180)
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert result["missing"] == []
    assert result["distributions"] == sorted(wanted)
    if package == "eventual-cli":
        helped = run(venv / "bin" / "eventual", "--help")
        for command in ("init", "dev", "start", "executions", "history", "replay"):
            assert command in helped.stdout
