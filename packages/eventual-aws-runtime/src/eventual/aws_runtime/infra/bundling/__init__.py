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
   installer's records of temporary paths and install times, its lock file, and
   eventual-aws-runtime's test support modules, which only tests run), so an unchanged input
   gives a byte-identical zip (and an unchanged CDK asset hash: nothing to upload).

:class:`Bundle` says what came out: the platform, the bytecode, the zipped and unpacked sizes
and the file count (:meth:`Bundle.summary`, the line the construct prints at synthesis).

Steps 1 and 2 are :mod:`.inputs`, steps 3 to 5 :mod:`.build`; :mod:`.options` has the options,
the result and the errors; :func:`build_bundle` here puts them together with the cache.
"""

from __future__ import annotations

import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

from .build import (
    AWS_SDK_PACKAGES,
    build_zip,
    find_bytecode_python,
    no_bytecode_message,
)
from .inputs import BUNDLER_VERSION, Inputs, bundle_key, resolve_inputs
from .options import (
    ENV_CACHE_DIR,
    Bundle,
    BundleOptions,
    BundlingError,
    BundlingWarning,
    default_cache_dir,
    lambda_platform,
)

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
    inputs = resolve_inputs(python, entry)
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
        build_zip(
            inputs,
            target,
            platform=platform,
            python_version=python_version,
            python=python,
            options=options,
            bytecode_python=bytecode_python,
        )
    with zipfile.ZipFile(target) as zf:
        entries = zf.infolist()
    bundle = Bundle(
        path=target,
        key=key,
        cached=cached,
        platform=platform,
        python_version=python_version,
        local_projects=tuple(sorted(inputs.local)),
        bytecode=bytecode,
        architecture=architecture,
        zipped_size=target.stat().st_size,
        unpacked_size=sum(e.file_size for e in entries),
        files=len(entries),
    )
    _memo[memo_key] = bundle
    return bundle


__all__ = [
    "AWS_SDK_PACKAGES",
    "BUNDLER_VERSION",
    "ENV_CACHE_DIR",
    "Bundle",
    "BundleOptions",
    "BundlingError",
    "BundlingWarning",
    "Inputs",
    "build_bundle",
    "build_zip",
    "bundle_key",
    "default_cache_dir",
    "find_bytecode_python",
    "lambda_platform",
    "no_bytecode_message",
    "resolve_inputs",
]
