"""Making the bundle's zip from its inputs: each local project built into a wheel, everything
installed for the Lambda platform by uv, compiled to bytecode by an interpreter of the runtime's
Python, and zipped deterministically (same inputs, same bytes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from pathlib import Path

from .inputs import Inputs
from .options import BundleOptions, BundlingError, BundlingWarning

AWS_SDK_PACKAGES = ("boto3", "botocore", "s3transfer")
"""Provided by the Lambda Python runtime; left out of a bundle unless ``include_boto3``."""


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

# What of eventual-aws-runtime a function never imports: its test support (``testing.py``,
# ``testing_*.py``: moto harnesses, the template's IAM evaluator...), which would fail without
# its test dependencies (moto), and the package ``infra`` (the spec, IAM and bundling that
# synthesis uses, this module among them). Handlers import neither.
_TEST_SUPPORT = ("eventual/aws_runtime/testing.py", "eventual/aws_runtime/testing_*.py")
_NOT_SHIPPED_DIRS = ("eventual/aws_runtime/infra",)


def _prune(stage: Path) -> None:
    """Drop from ``stage`` what a function never reads: the installer's scripts and lock, the
    bytecode it compiled (compiled again, deterministically, afterwards), the volatile
    installer records, the test support modules and the infrastructure code
    (:data:`_TEST_SUPPORT`, :data:`_NOT_SHIPPED_DIRS`); the ``RECORD`` of
    each distribution loses the lines of the files removed."""
    shutil.rmtree(stage / "bin", ignore_errors=True)
    (stage / ".lock").unlink(missing_ok=True)  # uv's lock of the --target directory
    removed: set[str] = set()
    for pattern in _TEST_SUPPORT:
        for path in stage.glob(pattern):
            removed.add(path.relative_to(stage).as_posix())
            path.unlink()
    for directory in _NOT_SHIPPED_DIRS:
        path = stage / directory
        removed.update(f.relative_to(stage).as_posix() for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
    for dirpath, dirnames, _ in os.walk(stage):
        for d in list(dirnames):
            if d == "__pycache__":
                shutil.rmtree(Path(dirpath) / d, ignore_errors=True)
                dirnames.remove(d)
    for dist_info in stage.glob("*.dist-info"):
        dropped = set(removed)
        for name in _VOLATILE_METADATA:
            path = dist_info / name
            if path.exists():
                path.unlink()
                dropped.add(f"{dist_info.name}/{name}")
        record = dist_info / "RECORD"
        if not record.is_file():
            continue
        lines = record.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.split(",", 1)[0] not in dropped]
        if len(kept) != len(lines):
            record.write_text("".join(kept))


def build_zip(
    inputs: Inputs,
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
