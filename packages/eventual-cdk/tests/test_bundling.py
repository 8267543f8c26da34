"""The Lambda bundle: built without Docker for the Lambda platform, importable on its own,
with the runtime's bytecode, cached by the hash of its inputs, byte-identical when rebuilt."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from eventual.aws_runtime import names as n
from eventual.cdk import bundling
from eventual.cdk.bundling import (
    BundleOptions,
    BundlingWarning,
    Inputs,
    build_bundle,
    bundle_key,
)

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
    # Nor what synthesis and tests use: eventual-aws-runtime's infra and test support.
    shipped = [name for name in names_in_zip if name.startswith("eventual/aws_runtime/")]
    assert "eventual/aws_runtime/handlers/command.py" in shipped
    assert not [m for m in shipped if m.startswith("eventual/aws_runtime/infra/")]
    assert not [m for m in shipped if m.startswith("eventual/aws_runtime/testing")]
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


# Modules whose source is replaced by a `raise` before importing them from the unpacked bundle:
# they import only if Python takes their code from the bundled bytecode.
TAMPERED = {
    "order_service.service": "order_service/service.py",
    "eventual.core.history": "eventual/core/history.py",
    "eventual.aws_runtime.handlers.command": "eventual/aws_runtime/handlers/command.py",
    "pydantic.main": "pydantic/main.py",
}

IMPORT_FROM_BYTECODE = r"""
import importlib, json, sys
bundle, sdk, modules = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [bundle, sdk]
loaded = {}
for name in modules:
    module = importlib.import_module(name)
    loaded[name] = {"file": module.__file__, "cached": module.__cached__}
from pydantic import BaseModel
class Item(BaseModel):
    sku: str
    quantity: int
print(json.dumps({"loaded": loaded, "item": Item(sku="a", quantity="2").model_dump()}))
"""


def _unchecked_hash_pyc(header: bytes) -> bool:
    """Bytes 4..8 of a pyc are its flags: 0b01 hash-based, 0b10 check the source."""
    return int.from_bytes(header[4:8], "little") == 0b01


def test_the_bundle_ships_bytecode_the_runtime_uses(
    synth: Any, tmp_path: Path, sdk_dir: Path
) -> None:
    bundle = synth.orders.bundle
    assert bundle.bytecode == sys.implementation.cache_tag == "cpython-311"
    unpacked = tmp_path / "bundle"
    with zipfile.ZipFile(bundle.path) as zf:
        names = set(zf.namelist())
        pycs = {name: zf.read(name)[:16] for name in names if name.endswith(".pyc")}
        zf.extractall(unpacked)
    sources = {name for name in names if name.endswith(".py")}
    # Every module has its bytecode, in the __pycache__ layout the import system looks in.
    missing = sorted(s for s in sources if importlib.util.cache_from_source(s) not in names)
    assert missing == []
    for module in TAMPERED.values():
        assert importlib.util.cache_from_source(module) in pycs
    assert all(name.endswith(".cpython-311.pyc") for name in pycs), "Python 3.11, no -O"
    # For the runtime's Python (same magic number) and unchecked-hash: used as it is, whatever
    # the zip's timestamps.
    assert {header[:4] for header in pycs.values()} == {importlib.util.MAGIC_NUMBER}
    assert all(_unchecked_hash_pyc(header) for header in pycs.values())

    for path in TAMPERED.values():
        (unpacked / path).write_text(
            'raise ImportError("compiled from source: the bundled bytecode was not used")\n'
        )
    proc = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",  # writes no bytecode, as in Lambda's read-only code directory
            "-c",
            IMPORT_FROM_BYTECODE,
            str(unpacked),
            str(sdk_dir),
            json.dumps(sorted(TAMPERED)),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, path in TAMPERED.items():
        assert result["loaded"][name] == {
            "file": str(unpacked / path),
            "cached": str(unpacked / importlib.util.cache_from_source(path)),
        }
    assert result["item"] == {"sku": "a", "quantity": 2}
    # And the check can fail: without its bytecode, a tampered module is compiled from source.
    (unpacked / importlib.util.cache_from_source(TAMPERED["pydantic.main"])).unlink()
    proc = subprocess.run(
        [
            *(sys.executable, "-I", "-S", "-B", "-c", IMPORT_FROM_BYTECODE),
            *(str(unpacked), str(sdk_dir), json.dumps(["pydantic.main"])),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "compiled from source" in proc.stderr


def _zip_difference(a: Path, b: Path) -> list[str]:
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        left = {i.filename: (i.CRC, i.file_size) for i in za.infolist()}
        right = {i.filename: (i.CRC, i.file_size) for i in zb.infolist()}
    return sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))


def test_a_rebuild_is_byte_identical(synth: Any, tmp_path: Path) -> None:
    """Same inputs, another build (another temporary directory, uv install, compileall): the
    same bytes, so the CDK asset hash does not change and nothing is uploaded again."""
    reference, reference_key = synth.orders.bundle.path, synth.orders.bundle.key
    options = BundleOptions(cache_dir=synth.cache_dir)
    python = sys.executable
    platform = synth.orders.bundle.platform

    def current_key() -> tuple[Inputs, str]:
        inputs = bundling.resolve_inputs(python, "order_service")
        key = bundle_key(
            inputs,
            platform=platform,
            python_version="3.11",
            options=options,
            bytecode="cpython-311",
        )
        return inputs, key

    # Other people edit the workspace meanwhile: compare two builds of the same sources.
    for attempt in range(3):
        inputs, key = current_key()
        target = tmp_path / f"rebuild-{attempt}.zip"
        bundling.build_zip(
            inputs,
            target,
            platform=platform,
            python_version="3.11",
            python=python,
            options=options,
            bytecode_python=python,
        )
        if current_key()[1] != key:
            continue  # the sources changed during the build
        if key == reference_key:
            assert _zip_difference(reference, target) == []
            assert target.read_bytes() == reference.read_bytes()
            return
        reference, reference_key = target, key
    pytest.fail("the sources kept changing")


def test_without_an_interpreter_of_the_runtime_version_the_synth_warns(
    synth: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aws_cdk as cdk
    from aws_cdk.assertions import Annotations, Match

    from eventual.cdk import Service

    asked: list[str] = []

    def no_interpreter(python_version: str, options: BundleOptions | None = None) -> str | None:
        asked.append(python_version)
        return None

    monkeypatch.setattr(bundling, "find_bytecode_python", no_interpreter)
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = cdk.Stack(app, "NoBytecode")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        service = Service(
            stack,
            "Orders",
            entry="order_service",
            bundling=BundleOptions(cache_dir=synth.cache_dir),
        )
        app.synth()
    assert asked == ["3.11"]
    bundle = service.bundle
    assert bundle is not None and bundle.bytecode is None
    assert bundle.key != synth.orders.bundle.key, "a bundle with bytecode is another bundle"
    with zipfile.ZipFile(bundle.path) as zf:
        names = zf.namelist()
    assert "order_service/service.py" in names
    assert not any(name.endswith(".pyc") for name in names)
    # Printed where the CDK app runs, and shown by `cdk synth` / `cdk deploy`.
    messages = [str(w.message) for w in caught if issubclass(w.category, BundlingWarning)]
    assert len(messages) == 1 and "uv python install 3.11" in messages[0]
    assert "cold start" in messages[0]
    Annotations.from_stack(stack).has_warning(
        "/NoBytecode/Orders", Match.string_like_regexp("uv python install 3.11")
    )


def test_finding_an_interpreter_for_the_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bundling.find_bytecode_python("3.11") == sys.executable
    # Not this interpreter's version: uv is asked for an installed CPython, never a download,
    # and its answer is checked.
    log = tmp_path / "uv-args"
    fake_uv = tmp_path / "uv"
    fake_uv.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n[ "$FAIL" = 1 ] && exit 2\necho {sys.executable}\n'
    )
    fake_uv.chmod(0o755)
    options = BundleOptions(uv=str(fake_uv))
    assert bundling.find_bytecode_python("3.12", options) is None  # it found a 3.11
    assert log.read_text().split() == ["python", "find", "--no-python-downloads", "cpython@3.12"]
    monkeypatch.setenv("FAIL", "1")
    assert bundling.find_bytecode_python("3.13", options) is None
    python312 = bundling.find_bytecode_python("3.12")  # this machine's, if it has one
    if python312 is not None:
        tag = subprocess.run(
            [python312, "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert tag == "cpython-312"


def test_an_unchanged_service_is_not_rebuilt(synth: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    options = BundleOptions(cache_dir=synth.cache_dir)
    builds: list[str] = []
    real_build = bundling.build_zip

    def counting_build(*args: Any, **kwargs: Any) -> None:
        builds.append(str(args[1]))
        real_build(*args, **kwargs)

    monkeypatch.setattr(bundling, "build_zip", counting_build)
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
    inputs = Inputs(local={"svc": project}, pinned={"pydantic": "2.0"}, sources=())
    options = BundleOptions()

    def key(**kw: Any) -> str:
        return bundle_key(
            kw.get("inputs", inputs),
            platform=kw.get("platform", "x86_64-manylinux_2_17"),
            python_version="3.11",
            options=kw.get("options", options),
            bytecode=kw.get("bytecode"),
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
    assert key(bytecode="cpython-311") != changed  # installing the runtime's Python rebuilds
    assert key(inputs=Inputs(local=inputs.local, pinned={"pydantic": "2.1"}, sources=())) != (
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
    store = PayloadStore(n.ServiceNames.for_service("svc"))
    event_key = store.put(b"{}")  # an emitted event's
    execution_key = store.put(b"{}", "wf/1")
    assert event_key.startswith(n.PAYLOAD_EVENTS_PREFIX)
    assert execution_key.startswith(n.execution_payload_prefix("wf/1"))
    for call in calls:
        assert call["Key"].startswith(n.PAYLOAD_KEY_PREFIX)
