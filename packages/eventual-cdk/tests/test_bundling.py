"""The Lambda bundle: built without Docker for the Lambda platform, importable on its own,
cached by the hash of its inputs."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from eventual.aws_runtime import names as n
from eventual.cdk import bundling
from eventual.cdk.bundling import BundleOptions, _Inputs, build_bundle, bundle_key

# The AWS SDK the Lambda Python runtime provides: the bundle leaves it out, so the import check
# puts the workspace's copy on the path, as the runtime would.
SDK_MODULES = ["boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"]

CHECK = r"""
import json, os, sys
bundle, sdk, names = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [bundle, sdk]
import importlib
loaded = {}
for handler in names["handlers"]:
    module = importlib.import_module(handler.rsplit(".", 1)[0])
    assert callable(getattr(module, handler.rsplit(".", 1)[1]))
heavy = sorted(m for m in ("boto3", "botocore", "pydantic", "order_service") if m in sys.modules)
os.environ.update(names["env"])
from eventual.aws_runtime.handlers import command

def call(method, path, body=None, headers=None):
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", **(headers or {})},
        "requestContext": {"http": {"method": method, "path": path}, "stage": "$default"},
        "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
    }
    return command.handler(event, None)

hello = call("GET", "/hello", headers={"authorization": "Bearer bob"})
missing = call("POST", "/rpc/getOrder", {"id": "nope"})
invalid = call("POST", "/rpc/sendInvoice", {"id": "o1"})
import pydantic_core, order_service, eventual.core
origin = {m.__name__: m.__file__ for m in (pydantic_core, order_service)}
origin["eventual.core"] = list(eventual.core.__path__)[0]
print(json.dumps({"heavy_at_import": heavy, "hello": hello, "missing": missing,
                  "invalid": invalid, "origin": origin}))
"""


@pytest.fixture(scope="module")
def sdk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace's boto3 and its dependencies, linked into one directory."""
    target = tmp_path_factory.mktemp("lambda-sdk")
    for name in SDK_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (target / source.name).symlink_to(source)
    return target


def test_the_bundle_imports_and_serves_in_a_fresh_interpreter(
    synth: Any, tmp_path: Path, sdk_dir: Path
) -> None:
    bundle = synth.orders.bundle
    assert bundle is not None and bundle.path.is_file()
    assert bundle.platform == "x86_64-manylinux_2_17"
    unpacked = tmp_path / "bundle"
    with zipfile.ZipFile(bundle.path) as zf:
        names_in_zip = zf.namelist()
        zf.extractall(unpacked)
    top = {name.split("/")[0] for name in names_in_zip}
    assert {"eventual", "order_service", "pydantic", "pydantic_core"} <= top
    assert not {"boto3", "botocore"} & top, "the Lambda runtime provides the AWS SDK"
    assert not any("__pycache__" in name for name in names_in_zip)
    assert any(
        name.startswith("pydantic_core/") and "cpython-311-x86_64-linux-gnu.so" in name
        for name in names_in_zip
    ), "pydantic-core's manylinux wheel for CPython 3.11"

    env = {
        n.ENV_SERVICE_ENTRY: "order_service",
        n.ENV_SERVICE_NAME: "order-service",
        "AWS_DEFAULT_REGION": "us-east-1",
        "ORDER_SERVICE_DB": str(tmp_path / "orders.db"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-I",  # isolated: no PYTHONPATH, no user site
            "-S",  # no site-packages: only the stdlib, the bundle and the SDK
            "-c",
            CHECK,
            str(unpacked),
            str(sdk_dir),
            json.dumps({"handlers": list(n.HANDLERS.values()), "env": env}),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # Importing every handler loads neither boto3 nor the service (cold start).
    assert result["heavy_at_import"] == []
    assert result["hello"]["statusCode"] == 200
    assert json.loads(result["hello"]["body"]) == {"message": "hello bob"}
    assert result["missing"]["statusCode"] == 404
    assert json.loads(result["missing"]["body"])["error"] == "OrderNotFound"
    assert result["invalid"]["statusCode"] == 400
    for module, path in result["origin"].items():
        assert path.startswith(str(unpacked)), (module, path)


def test_an_unchanged_service_is_not_rebuilt(synth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    options = BundleOptions(cache_dir=synth.cache_dir)
    builds: list[str] = []
    real_build = bundling._build

    def counting_build(*args: Any, **kwargs: Any) -> None:
        builds.append(str(args[1]))
        real_build(*args, **kwargs)

    monkeypatch.setattr(bundling, "_build", counting_build)
    # While other people edit the workspace a rebuild may be due; once two builds in a row
    # see the same sources, the second must come from the cache.
    previous = synth.orders.bundle
    for _ in range(3):
        bundling._memo.clear()
        builds.clear()
        started = time.perf_counter()
        again = build_bundle("order_service", options=options)
        elapsed = time.perf_counter() - started
        if again.key == previous.key:
            break
        previous = again
    assert again.key == previous.key, "the sources kept changing"
    assert again.cached and builds == []
    assert again.path == previous.path and again.path.is_file()
    assert elapsed < 30, "a cache hit only hashes the sources"
    assert sorted(again.local_projects) == [
        "eventual-aws-runtime",
        "eventual-core",
        "order-service",
    ]


def test_the_key_follows_the_sources_and_options(tmp_path: Path) -> None:
    project = tmp_path / "svc"
    (project / "src" / "svc").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "svc"\n')
    module = project / "src" / "svc" / "__init__.py"
    module.write_text("X = 1\n")
    inputs = _Inputs(local={"svc": project}, pinned={"pydantic": "2.0"}, sources=())
    options = BundleOptions()

    def key(**kw: Any) -> str:
        return bundle_key(
            kw.get("inputs", inputs),
            platform=kw.get("platform", "x86_64-manylinux_2_17"),
            python_version="3.11",
            options=kw.get("options", options),
        )

    base = key()
    # Caches, build output and nested projects (an infra app) do not count.
    (project / "src" / "svc" / "__pycache__").mkdir()
    (project / "src" / "svc" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    (project / "cdk.out").mkdir()
    (project / "cdk.out" / "t.json").write_text("{}")
    (project / "infra").mkdir()
    (project / "infra" / "pyproject.toml").write_text('[project]\nname = "infra"\n')
    (project / "infra" / "app.py").write_text("pass\n")
    assert key() == base
    module.write_text("X = 2\n")
    changed = key()
    assert changed != base
    assert key(platform="aarch64-manylinux_2_17") != changed
    assert key(options=BundleOptions(include_boto3=True)) != changed
    assert key(inputs=_Inputs(local=inputs.local, pinned={"pydantic": "2.1"}, sources=())) != (
        changed
    )


def test_lambda_platforms() -> None:
    assert bundling.lambda_platform("3.11") == "x86_64-manylinux_2_17"  # Amazon Linux 2
    assert bundling.lambda_platform("3.12", "arm64") == "aarch64-manylinux_2_28"  # AL2023
    with pytest.raises(bundling.BundlingError, match="use one of"):
        bundling.lambda_platform("3.8")


def test_payload_keys_stay_under_the_granted_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """The construct grants S3 access to ``payloads/*`` only: the runtime must write there."""
    from eventual.aws_runtime import clients
    from eventual.aws_runtime.adapters import PayloadStore

    calls: list[dict[str, Any]] = []

    class FakeS3:
        def put_object(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    monkeypatch.setitem(clients._clients, "s3", FakeS3())
    key = PayloadStore(n.ServiceNames.for_service("svc")).put(b"{}")
    assert key.startswith(n.PAYLOAD_KEY_PREFIX)
    assert calls[0]["Key"].startswith(n.PAYLOAD_KEY_PREFIX)
