"""What goes into a bundle, and its key: the local projects and pinned third-party versions
the service's interpreter has installed (found by a subprocess that imports nothing of the
service), and the hash of their files, the versions, the platform and the options."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .options import BundleOptions, BundlingError

BUNDLER_VERSION = "3"
"""Changes whenever the bundle's layout changes, so old cache entries are not reused."""

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
class Inputs:
    local: dict[str, Path]  # distribution name -> project directory
    pinned: dict[str, str]  # distribution name -> version
    sources: tuple[Path, ...]  # module files/packages copied as they are (no project)


def resolve_inputs(python: str, entry: str) -> Inputs:
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
    return Inputs(
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
    inputs: Inputs,
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
