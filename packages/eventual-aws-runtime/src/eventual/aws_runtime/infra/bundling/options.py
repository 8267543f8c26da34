"""What a Lambda bundle is built with and what comes out of it: the options, the built bundle,
the errors and warnings, the Lambda platforms and the cache directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ENV_CACHE_DIR = "EVENTUAL_CDK_CACHE_DIR"

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
    architecture: str = "x86_64"
    """The Lambda architecture it was built for: ``"x86_64"`` or ``"arm64"``."""
    zipped_size: int = 0
    """Bytes of the zip (what Lambda's 50 MB limit on a direct upload counts)."""
    unpacked_size: int = 0
    """Bytes of its files once unpacked (what Lambda's 250 MB limit counts)."""
    files: int = 0
    """Files in the zip."""

    def summary(self) -> str:
        """One line: what the bundle is built for, its size and file count
        (``x86_64, Python 3.11: 5.1 MB zipped, 593 files, 13.8 MB unpacked, built``)."""
        return (
            f"{self.architecture}, Python {self.python_version}: "
            f"{_megabytes(self.zipped_size)} zipped, {self.files:,} files, "
            f"{_megabytes(self.unpacked_size)} unpacked, "
            f"{'from the cache' if self.cached else 'built'}"
            + ("" if self.bytecode else ", without bytecode")
        )


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


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
