"""Lambda bundles built without Docker: the bundler both infrastructure packages share,
:mod:`eventual.aws_runtime.infra.bundling` (see its docstring). ``eventual.cdk.bundling`` and
its submodules are that package and its submodules, so patching one patches the other."""

import sys

from eventual.aws_runtime.infra import bundling as _shared
from eventual.aws_runtime.infra.bundling import (
    AWS_SDK_PACKAGES,
    BUNDLER_VERSION,
    ENV_CACHE_DIR,
    Bundle,
    BundleOptions,
    BundlingError,
    BundlingWarning,
    Inputs,
    build,
    build_bundle,
    build_zip,
    bundle_key,
    default_cache_dir,
    find_bytecode_python,
    inputs,
    lambda_platform,
    no_bytecode_message,
    options,
    resolve_inputs,
)

for _sub in ("build", "inputs", "options"):
    sys.modules[f"{__name__}.{_sub}"] = sys.modules[f"{_shared.__name__}.{_sub}"]
sys.modules[__name__] = _shared

__all__ = [
    "AWS_SDK_PACKAGES",
    "BUNDLER_VERSION",
    "ENV_CACHE_DIR",
    "Bundle",
    "BundleOptions",
    "BundlingError",
    "BundlingWarning",
    "Inputs",
    "build",
    "build_bundle",
    "build_zip",
    "bundle_key",
    "default_cache_dir",
    "find_bytecode_python",
    "inputs",
    "lambda_platform",
    "no_bytecode_message",
    "options",
    "resolve_inputs",
]
