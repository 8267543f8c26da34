"""Lambda bundles built without Docker.

A bundle is one zip holding the service's package, every package it depends on, and
eventual-aws-runtime (with eventual-core), installed for the Lambda platform:

1. A subprocess running the service's interpreter finds the *local* projects (the service's own
   project and every dependency installed from a directory, as uv workspace members are) and
   the versions of the third-party packages installed beside them. It imports nothing of the
   service.
2. The bundle's key is a hash of those inputs: the files of each local project (caches,
   virtualenvs, ``cdk.out`` and nested projects left out), the pinned versions, the target
   platform and the options. A zip with that key in the cache is used as it is.
3. Otherwise each local project is built into a wheel (``uv build``), and
   ``uv pip install --target`` installs the wheels and their dependencies for the Lambda
   platform (``--python-platform``, ``--python-version``, ``--only-binary :all:``), with the
   local versions as constraints. boto3 and botocore are left out unless asked for: the
   Lambda Python runtime provides them.
4. The installed packages are compiled to bytecode (``python -m compileall
   --invalidation-mode unchecked-hash``) by an interpreter of the Lambda runtime's Python
   version, found on this machine; Lambda's code directory is read-only, so without them every
   cold start would compile pydantic, eventual and the service from source. Without such an
   interpreter the bundle ships sources only, with a :class:`BundlingWarning`.
5. The staging directory is zipped with fixed timestamps and sorted entries (and without the
   installer's records of temporary paths and install times), so an unchanged input gives a
   byte-identical zip (and an unchanged CDK asset hash: nothing to upload).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUNDLER_VERSION = "2"
"""Changes whenever the bundle's layout changes, so old cache entries are not reused."""

ENV_CACHE_DIR = "EVENTUAL_CDK_CACHE_DIR"

AWS_SDK_PACKAGES = ("boto3", "botocore", "s3transfer")
"""Provided by the Lambda Python runtime; left out of a bundle unless ``include_boto3``."""

_SKIP_DIRS = {
    ".git",
    ".hg",
    ".venv",
    "venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".eventual",
    "cdk.out",
    "node_modules",
    "dist",
    "build",
    ".tox",
    ".nox",
    # Not part of a wheel: a change there does not rebuild the bundle.
    "tests",
    "docs",
    "benchmarks",
}
_SKIP_SUFFIXES = (".pyc", ".pyo")

# Lambda's python3.11 runs on Amazon Linux 2 (glibc 2.26): manylinux2014 (glibc 2.17) wheels.
# python3.12 and later run on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels.
_GLIBC = {"3.11": "2_17", "3.12": "2_28", "3.13": "2_28", "3.14": "2_28"}
_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}


class BundlingError(RuntimeError):
    """A bundle could not be built (the message says which step failed and why)."""


class BundlingWarning(UserWarning):
    """The bundle was built, but not as well as it could be (the message says how to fix it)."""


@dataclass(frozen=True)
class BundleOptions:
    """How the construct builds its Lambda bundle.

    - ``cache_dir``: where finished bundles are kept (default ``$EVENTUAL_CDK_CACHE_DIR``, else
      ``~/.cache/eventual-cdk``).
    - ``python``: the interpreter whose environment has the service installed (default: the
      one running the CDK app). The service spec is read with it too.
    - ``include_boto3``: bundle boto3/botocore instead of using the Lambda runtime's.
    - ``extra_requirements``: more requirement strings to install (``"requests>=2"``).
    - ``uv``: the uv executable (default: ``uv`` on ``PATH``, else ``python -m uv``).
    """

    cache_dir: str | Path | None = None
    python: str | None = None
    include_boto3: bool = False
    extra_requirements: Sequence[str] = ()
    uv: str | None = None


@dataclass(frozen=True)
class Bundle:
    """A built (or cached) bundle: ``path`` is the zip, ``key`` the hash of its inputs."""

    path: Path
    key: str
    cached: bool
    platform: str
    python_version: str
    local_projects: tuple[str, ...] = field(default=())
    bytecode: str | None = None
    """The ``sys.implementation.cache_tag`` of the bundled bytecode (``"cpython-311"``), or
    ``None`` when no interpreter of the runtime's version was found and the bundle ships sources
    only (:func:`no_bytecode_message` says why that matters)."""


def lambda_platform(python_version: str, architecture: str = "x86_64") -> str:
    """The ``uv --python-platform`` of a Lambda runtime (``"x86_64-manylinux_2_17"``...)."""
    if python_version not in _GLIBC:
        raise BundlingError(
            f"Python {python_version} is not a Lambda runtime this bundler knows; use one of "
            f"{', '.join(sorted(_GLIBC))}"
        )
    if architecture not in _ARCH:
        raise BundlingError(
            f"architecture {architecture!r} is not a Lambda architecture; use x86_64 or arm64"
        )
    return f"{_ARCH[architecture]}-manylinux_{_GLIBC[python_version]}"


def default_cache_dir() -> Path:
    configured = os.environ.get(ENV_CACHE_DIR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eventual-cdk"


# ---------------------------------------------------------------- bytecode


def _cache_tag_of(python: str) -> str | None:
    """``sys.implementation.cache_tag`` of an interpreter (``None`` if it cannot be run)."""
    if python == sys.executable:
        return sys.implementation.cache_tag
    try:
        proc = subprocess.run(
            [python, "-I", "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def find_bytecode_python(python_version: str, options: BundleOptions | None = None) -> str | None:
    """An interpreter that compiles bytecode the Lambda runtime ``python_version`` loads.

    Bytecode is specific to a CPython minor version (a 3.11 ``.pyc`` is ignored by 3.12), so
    the interpreter must be CPython ``python_version``: the service's interpreter
    (``BundleOptions.python``) or the one running the CDK app if it is, else the one
    ``uv python find`` locates (installed ones only: nothing is downloaded). ``None`` if there
    is none.
    """
    options = options or BundleOptions()
    wanted = "cpython-" + python_version.replace(".", "")
    for candidate in dict.fromkeys([options.python or sys.executable, sys.executable]):
        if _cache_tag_of(candidate) == wanted:
            return candidate
    try:
        uv = _uv(options)
    except BundlingError:
        return None
    try:
        proc = subprocess.run(
            [*uv, "python", "find", "--no-python-downloads", f"cpython@{python_version}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = proc.stdout.strip()
    if proc.returncode != 0 or not found:
        return None
    return found if _cache_tag_of(found) == wanted else None


def no_bytecode_message(python_version: str) -> str:
    """What a bundle without bytecode costs, and how to get bytecode into it."""
    return (
        f"no CPython {python_version} interpreter was found on this machine to compile the "
        f"Lambda bundle's bytecode (bytecode is specific to the runtime's Python version), so "
        f"the bundle ships sources only and every cold start compiles pydantic, eventual and "
        f"the service from source (CPU time added to every cold start). Install it with "
        f"`uv python install {python_version}` (or point BundleOptions(python=...) at a Python "
        f"{python_version} environment) and synthesize again: the bundle is rebuilt with "
        f"bytecode."
    )


def _compile_bytecode(stage: Path, python: str) -> None:
    """Compile every module of ``stage`` into ``__pycache__/*.{cache_tag}.pyc``.

    ``unchecked-hash`` pycs are used without looking at the source's timestamp or contents: the
    zip's timestamps are all 1980, so timestamp pycs would not match. The output is
    deterministic: no timestamp in the pycs, the recorded file names are ``/var/task/...``
    (Lambda's code directory) whatever the staging directory, and a fixed hash seed.
    """
    # PYTHON* variables (PYTHONPYCACHEPREFIX, PYTHONOPTIMIZE...) would change where the pycs
    # go or what they hold.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    cmd = [
        python,
        "-m",
        "compileall",
        "-q",
        "-f",
        "-o",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-d",
        "/var/task",
        str(stage),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    except OSError as exc:
        raise BundlingError(f"cannot run {python} to compile the bundle's bytecode: {exc}") from exc
    if proc.returncode != 0:
        # A module that does not compile (a template with a .py suffix, a Python 2 leftover)
        # keeps its source only; the bundle is still good.
        warnings.warn(
            f"some modules of the Lambda bundle did not compile to bytecode with {python} "
            f"(they are compiled from source when imported):\n"
            f"{(proc.stdout + proc.stderr).strip()}",
            BundlingWarning,
            stacklevel=2,
        )


# ---------------------------------------------------------------- finding the inputs

_RESOLVER = r"""
import importlib.metadata as md, importlib.util, json, re, sys, pathlib, tomllib
from urllib.parse import unquote, urlparse

entry, extra_roots = sys.argv[1], sys.argv[2:]
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def local_dir(dist):
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    data = json.loads(text)
    url = data.get("url", "")
    if "dir_info" in data and url.startswith("file://"):
        return unquote(urlparse(url).path)
    return None

out = {"local": {}, "pinned": {}, "sources": [], "missing": []}
seen = set()

def walk(name):
    key = norm(name)
    if key in seen:
        return
    seen.add(key)
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        out["missing"].append(name)
        return
    path = local_dir(dist)
    if path is not None:
        out["local"][key] = {"name": dist.metadata["Name"], "path": path}
    else:
        out["pinned"][key] = {"name": dist.metadata["Name"], "version": dist.version}
    for req in dist.requires or []:
        if "extra ==" in req.replace("extra==", "extra =="):
            continue
        m = NAME.match(req)
        if m:
            try:
                md.distribution(m.group(1))
            except md.PackageNotFoundError:
                continue  # not installed here: its marker excludes this platform
            walk(m.group(1))

top = entry.split(".")[0]
spec = importlib.util.find_spec(top)
if spec is None or (spec.origin is None and not spec.submodule_search_locations):
    sys.stderr.write(f"cannot find the module {top!r} of entry {entry!r}\n")
    sys.exit(3)
origin = pathlib.Path(spec.origin or list(spec.submodule_search_locations)[0]).resolve()
module_path = origin.parent if origin.name == "__init__.py" or spec.origin is None else origin
project = None
for parent in module_path.parents:
    candidate = parent / "pyproject.toml"
    if candidate.is_file():
        data = tomllib.loads(candidate.read_text())
        name = data.get("project", {}).get("name")
        if name:
            try:
                md.distribution(name)
                project = name
            except md.PackageNotFoundError:
                pass
        break
if project is not None:
    walk(project)
else:
    out["sources"].append(str(module_path))
for root in extra_roots:
    walk(root)
out["project"] = project
json.dump(out, sys.stdout)
"""


@dataclass(frozen=True)
class _Inputs:
    local: dict[str, Path]  # distribution name -> project directory
    pinned: dict[str, str]  # distribution name -> version
    sources: tuple[Path, ...]  # module files/packages copied as they are (no project)


def _resolve(python: str, entry: str) -> _Inputs:
    try:
        proc = subprocess.run(
            [python, "-c", _RESOLVER, entry, "eventual-aws-runtime"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise BundlingError(f"cannot run the service's Python {python!r}: {exc}") from exc
    if proc.returncode != 0:
        raise BundlingError(
            f"finding the packages of entry {entry!r} with {python} failed: {proc.stderr.strip()}"
        )
    data: dict[str, Any] = json.loads(proc.stdout)
    if "eventual-aws-runtime" in data["missing"]:
        raise BundlingError(
            f"eventual-aws-runtime is not installed in {python}'s environment: install it "
            "beside the service (the Lambda functions run its handlers)"
        )
    return _Inputs(
        local={v["name"]: Path(v["path"]) for v in data["local"].values()},
        pinned={v["name"]: v["version"] for v in data["pinned"].values()},
        sources=tuple(Path(p) for p in data["sources"]),
    )


def _project_files(root: Path) -> Iterator[Path]:
    """The files of a project that can reach its wheel (sorted)."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d in _SKIP_DIRS or d.endswith(".egg-info"):
                continue
            if (here / d / "pyproject.toml").is_file():
                continue  # a nested project (an infra app beside the service...)
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if not f.endswith(_SKIP_SUFFIXES):
                yield here / f


def _hash_tree(digest: Any, root: Path) -> None:
    files = [root] if root.is_file() else list(_project_files(root))
    for path in files:
        rel = path.name if root.is_file() else path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def bundle_key(
    inputs: _Inputs,
    *,
    platform: str,
    python_version: str,
    options: BundleOptions,
    bytecode: str | None = None,
) -> str:
    digest = hashlib.sha256()
    header = {
        "bundler": BUNDLER_VERSION,
        "platform": platform,
        "python": python_version,
        # A bundle built without bytecode is rebuilt once the interpreter is there.
        "bytecode": bytecode,
        "boto3": options.include_boto3,
        "extra": sorted(options.extra_requirements),
        "pinned": sorted(inputs.pinned.items()),
        "local": sorted(inputs.local),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name in sorted(inputs.local):
        digest.update(f"\0project:{name}\0".encode())
        _hash_tree(digest, inputs.local[name])
    for source in inputs.sources:
        digest.update(f"\0source:{source.name}\0".encode())
        _hash_tree(digest, source)
    return digest.hexdigest()[:32]


# ---------------------------------------------------------------- building


def _uv(options: BundleOptions) -> list[str]:
    if options.uv:
        return [options.uv]
    found = shutil.which("uv")
    if found:
        return [found]
    probe = subprocess.run(
        [sys.executable, "-m", "uv", "--version"], capture_output=True, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "uv"]
    raise BundlingError(
        "building the Lambda bundle needs uv (https://docs.astral.sh/uv/): install it, or pass "
        "BundleOptions(uv=...) with its path, or a pre-built Code with Service(code=...)"
    )


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BundlingError(f"{what} failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")


def _write_zip(stage: Path, target: Path) -> None:
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(stage):
        dirnames.sort()
        entries.extend(Path(dirpath) / f for f in sorted(filenames))
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in entries:
            rel = path.relative_to(stage).as_posix()
            info = zipfile.ZipInfo(rel, date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    os.replace(tmp, target)


# Installer records that differ from one build to the next: the temporary path of the wheel
# (direct_url.json) and uv's install time (uv_cache.json). Nothing reads them at run time.
_VOLATILE_METADATA = ("direct_url.json", "uv_cache.json")


def _prune(stage: Path) -> None:
    shutil.rmtree(stage / "bin", ignore_errors=True)
    for dirpath, dirnames, _ in os.walk(stage):
        for d in list(dirnames):
            if d == "__pycache__":
                shutil.rmtree(Path(dirpath) / d, ignore_errors=True)
                dirnames.remove(d)
    for dist_info in stage.glob("*.dist-info"):
        volatile = [dist_info / name for name in _VOLATILE_METADATA]
        if not any(path.exists() for path in volatile):
            continue
        for path in volatile:
            path.unlink(missing_ok=True)
        record = dist_info / "RECORD"
        if record.is_file():
            dropped = {f"{dist_info.name}/{name}" for name in _VOLATILE_METADATA}
            lines = record.read_text().splitlines(keepends=True)
            record.write_text(
                "".join(line for line in lines if line.split(",", 1)[0] not in dropped)
            )


def _build(
    inputs: _Inputs,
    target: Path,
    *,
    platform: str,
    python_version: str,
    python: str,
    options: BundleOptions,
    bytecode_python: str | None = None,
) -> None:
    uv = _uv(options)
    with tempfile.TemporaryDirectory(prefix="eventual-bundle-") as tmp_name:
        tmp = Path(tmp_name)
        wheels = tmp / "wheels"
        stage = tmp / "stage"
        wheels.mkdir()
        stage.mkdir()
        for name, path in sorted(inputs.local.items()):
            _run(
                [*uv, "build", "--wheel", "--quiet", "--out-dir", str(wheels), str(path)],
                f"building a wheel of {name} ({path})",
            )
        constraints = tmp / "constraints.txt"
        constraints.write_text(
            "".join(f"{name}=={version}\n" for name, version in sorted(inputs.pinned.items()))
        )
        cmd = [
            *uv,
            "pip",
            "install",
            "--quiet",
            "--target",
            str(stage),
            "--python",
            python,
            "--python-platform",
            platform,
            "--python-version",
            python_version,
            "--only-binary",
            ":all:",
            "--link-mode",
            "copy",
            "--constraints",
            str(constraints),
        ]
        if not options.include_boto3:
            excludes = tmp / "excludes.txt"
            excludes.write_text("".join(f"{p}\n" for p in AWS_SDK_PACKAGES))
            cmd += ["--excludes", str(excludes)]
        cmd += sorted(str(w) for w in wheels.glob("*.whl"))
        cmd += list(options.extra_requirements)
        _run(cmd, f"installing the bundle's packages for {platform} (Python {python_version})")
        for source in inputs.sources:
            if source.is_dir():
                shutil.copytree(
                    source,
                    stage / source.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
            else:
                shutil.copy2(source, stage / source.name)
        _prune(stage)
        if bytecode_python is not None:
            _compile_bytecode(stage, bytecode_python)  # after pruning: it drops __pycache__
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_zip(stage, target)


_memo: dict[tuple[Any, ...], Bundle] = {}


def build_bundle(
    entry: str,
    *,
    python_version: str = "3.11",
    architecture: str = "x86_64",
    options: BundleOptions | None = None,
) -> Bundle:
    """The bundle of the service at ``entry`` (built, or taken from the cache).

    Without an interpreter of ``python_version`` on this machine the bundle has no bytecode:
    a :class:`BundlingWarning` says so (and :attr:`Bundle.bytecode` is ``None``).
    """
    options = options or BundleOptions()
    python = options.python or sys.executable
    platform = lambda_platform(python_version, architecture)
    inputs = _resolve(python, entry)
    bytecode_python = find_bytecode_python(python_version, options)
    bytecode = "cpython-" + python_version.replace(".", "") if bytecode_python else None
    if bytecode is None:
        warnings.warn(no_bytecode_message(python_version), BundlingWarning, stacklevel=2)
    key = bundle_key(
        inputs,
        platform=platform,
        python_version=python_version,
        options=options,
        bytecode=bytecode,
    )
    cache = Path(options.cache_dir) if options.cache_dir else default_cache_dir()
    memo_key = (key, str(cache))
    if memo_key in _memo:
        return _memo[memo_key]
    target = cache / "bundles" / f"{key}.zip"
    cached = target.is_file()
    if not cached:
        _build(
            inputs,
            target,
            platform=platform,
            python_version=python_version,
            python=python,
            options=options,
            bytecode_python=bytecode_python,
        )
    bundle = Bundle(
        path=target,
        key=key,
        cached=cached,
        platform=platform,
        python_version=python_version,
        local_projects=tuple(sorted(inputs.local)),
        bytecode=bytecode,
    )
    _memo[memo_key] = bundle
    return bundle
