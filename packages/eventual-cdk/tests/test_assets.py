"""What the functions are deployed with: the Lambda asset (its size line at synthesis, nothing
of the test or development tooling in it), the architecture it is built for (x86_64 by
default, arm64 as an option, with aarch64 wheels), and the environment every function shares
(the service's build, the handlers' defaults)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventual.aws_runtime import names as n
from eventual.aws_runtime.handlers import FUNCTION_ENVIRONMENT
from eventual.cdk import bundling
from eventual.core.service import BUILD_ENV

ACCOUNT = "123456789012"
REGION = "us-east-1"

# Test and development tooling of this workspace (its dev dependency group, the CDK, the CLI's
# server stack...): none of it may reach a Lambda bundle.
DEV_TOOLING = {
    "pytest",
    "_pytest",
    "pluggy",
    "iniconfig",
    "hypothesis",
    "moto",
    "ruff",
    "pyright",
    "cfn_lint",
    "schemathesis",
    "playwright",
    "openapi_spec_validator",
    "aws_cdk",
    "constructs",
    "jsii",
    "cdk_nag",
    "typer",
    "rich",
    "uvicorn",
    "starlette",
    "httpx",
    "pip",
    "setuptools",
    "wheel",
    *bundling.AWS_SDK_PACKAGES,
}

# ELF e_machine of a native library: what CPU it runs on.
EM_X86_64 = 62
EM_AARCH64 = 183


def functions_of(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
    }


def info_messages(assembly: Any, stack: Any) -> list[tuple[str, str]]:
    """The info annotations of a stack (``cdk synth`` prints them): (construct path, text)."""
    artifact = assembly.get_stack_by_name(stack.stack_name)
    return [(m.id, str(m.entry.data)) for m in artifact.messages if m.level.name == "INFO"]


def native_machines(bundle: Path) -> dict[str, int]:
    """Every shared library in the zip, with the ELF machine it is built for."""
    out: dict[str, int] = {}
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            if re.search(r"\.so(\.\d+)*$", name):
                header = zf.read(name)[:20]
                assert header[:4] == b"\x7fELF", name
                out[name] = int.from_bytes(header[18:20], "little")
    return out


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(*roots: str) -> set[str]:
    """The distributions a Lambda of the service needs, from the installed metadata: the
    roots and their requirements (no extras; markers for CPython 3.11 on Linux), without the
    AWS SDK the Lambda runtime provides."""
    import importlib.metadata as md

    from packaging.requirements import Requirement

    target = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux"}
    target |= {"platform_system": "Linux", "implementation_name": "cpython", "extra": ""}
    sdk = {_norm(p) for p in bundling.AWS_SDK_PACKAGES}
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = _norm(todo.pop())
        if name in seen or name in sdk:
            continue
        seen.add(name)
        for text in md.distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(target):
                todo.append(req.name)
    return seen


def bundle_distributions(bundle: Path) -> set[str]:
    with zipfile.ZipFile(bundle) as zf:
        tops = {name.split("/")[0] for name in zf.namelist()}
    return {
        _norm(t[: -len(".dist-info")].rsplit("-", 1)[0]) for t in tops if t.endswith(".dist-info")
    }


@dataclass
class ArmSynth:
    assembly: Any
    stack: Any
    service: Any  # eventual.cdk.Service
    template: dict[str, Any]


@pytest.fixture(scope="module")
def arm(synth: Any, tmp_path_factory: pytest.TempPathFactory) -> ArmSynth:
    """The order service again, for arm64 (its own bundle, in the suite's bundle cache)."""
    import aws_cdk as cdk

    from eventual.cdk import BundleOptions, Service

    outdir = tmp_path_factory.mktemp("cdk.out.arm64")
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, "OrdersArm", env=cdk.Environment(account=ACCOUNT, region=REGION))
    service = Service(
        stack,
        "OrderService",
        entry="order_service",
        name="order-service-arm",
        architecture="arm64",
        bundling=BundleOptions(cache_dir=synth.cache_dir),
    )
    assembly = app.synth()
    template = json.loads((outdir / stack.template_file).read_text())
    return ArmSynth(assembly=assembly, stack=stack, service=service, template=template)


# ---------------------------------------------------------------- the asset and its line


def test_the_synthesis_prints_a_line_per_asset(synth: Any, arm: ArmSynth) -> None:
    for assembly, stack, service, arch in (
        (synth.assembly, synth.orders_stack, synth.orders, "x86_64"),
        (arm.assembly, arm.stack, arm.service, "arm64"),
    ):
        bundle = service.bundle
        lines = [text for path, text in info_messages(assembly, stack) if "Lambda asset" in text]
        assert len(lines) == 1, lines  # one asset holds the code of every function
        (line,) = lines
        commands = 1 + len(service.command_functions)  # the API function and its own ones
        kinds = [
            "orchestrator",
            "timer",
            "system",
            "command" if commands == 1 else f"command x{commands}",
            f"task x{len(service.task_functions)}",
            "subscription",
        ]
        assert len(service.subscription_functions) == 1
        match = re.fullmatch(
            rf"Lambda asset of {service.service_name}: {arch}, Python 3\.11: "
            r"(?P<zipped>[\d.]+) MB zipped, (?P<files>[\d,]+) files, (?P<unpacked>[\d.]+) MB "
            rf"unpacked, (built|from the cache); the code of its {len(service.functions)} "
            rf"functions: {', '.join(kinds)}",
            line,
        )
        assert match, line
        assert int(match["files"].replace(",", "")) == bundle.files
        assert float(match["zipped"]) == round(bundle.zipped_size / 1e6, 1)
        assert float(match["unpacked"]) == round(bundle.unpacked_size / 1e6, 1)
        with zipfile.ZipFile(bundle.path) as zf:
            entries = zf.infolist()
        assert bundle.files == len(entries)
        assert bundle.zipped_size == bundle.path.stat().st_size
        assert bundle.unpacked_size == sum(e.file_size for e in entries)
        # Lambda's limits: 50 MB zipped for a direct upload, 250 MB unpacked.
        assert bundle.zipped_size < 50e6 and bundle.unpacked_size < 250e6
    # A service given its code has no bundle of ours to describe.
    assert not [t for _, t in info_messages(synth.assembly, synth.shipping_stack) if "asset" in t]


def test_no_test_or_dev_dependency_is_in_a_bundle(synth: Any, arm: ArmSynth) -> None:
    expected = runtime_closure("order-service", "eventual-aws-runtime")
    assert {"order-service", "eventual-core", "eventual-aws-runtime", "pydantic"} <= expected
    for bundle in (synth.orders.bundle.path, arm.service.bundle.path):
        with zipfile.ZipFile(bundle) as zf:
            names = zf.namelist()
        tops = {name.split("/")[0] for name in names}
        modules = {t.removesuffix(".py") for t in tops if not t.endswith(".dist-info")}
        assert not modules & DEV_TOOLING, sorted(modules & DEV_TOOLING)
        # Exactly what the service needs at run time: its project, eventual-core and
        # eventual-aws-runtime, and their requirements; nothing of a dev dependency group.
        assert bundle_distributions(bundle) == expected
        eventual = {name.split("/")[1] for name in names if name.startswith("eventual/")}
        assert eventual == {"core", "aws_runtime"}  # not cdk, cli, client, testing
        # eventual-aws-runtime's moto harnesses and IAM evaluator are for tests only.
        testing = [m for m in names if re.match(r"eventual/aws_runtime/(__pycache__/)?testing", m)]
        assert testing == []
        assert not [m for m in names if "/tests/" in m or m.startswith(("tests/", ".lock"))]
        # The dropped modules are out of the installer's record too.
        with zipfile.ZipFile(bundle) as zf:
            (record,) = [m for m in names if re.match(r"eventual_aws_runtime-.*/RECORD$", m)]
            assert "testing" not in zf.read(record).decode()


# ---------------------------------------------------------------- the architecture


def test_x86_64_is_the_default_and_arm64_an_option(synth: Any, arm: ArmSynth) -> None:
    orders = functions_of(synth.template(synth.orders_stack))
    assert orders and all(f["Architectures"] == ["x86_64"] for f in orders.values())
    arm_functions = functions_of(arm.template)
    assert len(arm_functions) == len(arm.service.functions)
    assert all(f["Architectures"] == ["arm64"] for f in arm_functions.values())
    assert synth.orders.bundle.architecture == "x86_64"
    assert synth.orders.bundle.platform == "x86_64-manylinux_2_17"
    assert arm.service.bundle.architecture == "arm64"
    # Lambda's python3.11 on arm64 is Amazon Linux 2 too: manylinux2014 aarch64 wheels.
    assert arm.service.bundle.platform == "aarch64-manylinux_2_17"
    assert arm.service.bundle.key != synth.orders.bundle.key


def test_each_bundle_has_the_native_wheels_of_its_architecture(synth: Any, arm: ArmSynth) -> None:
    for bundle, machine, suffix in (
        (synth.orders.bundle.path, EM_X86_64, "cpython-311-x86_64-linux-gnu.so"),
        (arm.service.bundle.path, EM_AARCH64, "cpython-311-aarch64-linux-gnu.so"),
    ):
        machines = native_machines(bundle)
        core = [name for name in machines if name.startswith("pydantic_core/")]
        assert core and all(name.endswith(suffix) for name in core), core
        assert set(machines.values()) == {machine}, machines


def test_an_architecture_is_an_object_or_its_name(synth: Any) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from eventual.cdk import Service

    app = cdk.App()
    stack = cdk.Stack(app, "ArmObject")
    Service(
        stack,
        "Orders",
        entry="order_service",
        architecture=lambda_.Architecture.ARM_64,
        code=lambda_.Code.from_inline("unused"),
    )
    template = app.synth().get_stack_by_name("ArmObject").template
    assert {tuple(f["Architectures"]) for f in functions_of(template).values()} == {("arm64",)}
    with pytest.raises(ValueError, match=r"'sparc' is not a Lambda architecture; use 'x86_64'"):
        Service(
            cdk.Stack(cdk.App(), "Sparc"),
            "Orders",
            entry="order_service",
            architecture="sparc",
            code=lambda_.Code.from_inline("unused"),
        )


# ---------------------------------------------------------------- the shared environment


def test_every_function_reports_the_build_of_the_spec(synth: Any, arm: ArmSynth) -> None:
    for service, template in (
        (synth.orders, synth.template(synth.orders_stack)),
        (synth.shipping, synth.template(synth.shipping_stack)),
        (arm.service, arm.template),
    ):
        build = service.spec["build"]
        assert build and service.build == build
        for fn in functions_of(template).values():
            env = fn["Environment"]["Variables"]
            assert env[BUILD_ENV] == build
            assert env.items() >= FUNCTION_ENVIRONMENT.items()


def test_the_spec_build_is_the_one_the_bundled_code_computes(synth: Any, tmp_path: Path) -> None:
    """Without EVENTUAL_BUILD a function would compute its build from the code it runs: the
    construct's, read from the spec at synthesis, is that same build."""
    unpacked = tmp_path / "bundle"
    with zipfile.ZipFile(synth.orders.bundle.path) as zf:
        zf.extractall(unpacked)
    # The bundle first on the path (boto3, which the Lambda runtime provides, from this
    # environment if the service imports it).
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from eventual.core.service import load_service, service_build\n"
        "print(service_build(load_service('order_service')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-I", "-c", code, str(unpacked)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"ORDER_SERVICE_DB": str(tmp_path / "orders.db")},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == synth.orders.build


def test_the_build_and_the_handler_defaults_may_be_set_service_wide(synth: Any) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from eventual.cdk import Service, TaskProps

    app = cdk.App()
    stack = cdk.Stack(app, "Named")
    service = Service(
        stack,
        "Orders",
        entry="order_service",
        environment={BUILD_ENV: "2025-06-01.1", "PYDANTIC_DISABLE_PLUGINS": ""},
        code=lambda_.Code.from_inline("unused"),
    )
    assert service.build == "2025-06-01.1"
    template = app.synth().get_stack_by_name("Named").template
    for fn in functions_of(template).values():
        env = fn["Environment"]["Variables"]
        assert env[BUILD_ENV] == "2025-06-01.1"
        assert env["PYDANTIC_DISABLE_PLUGINS"] == ""  # a service using a pydantic plugin
    # One function cannot report another build than the others.
    with pytest.raises(ValueError, match=f"{BUILD_ENV} is the same for every function"):
        Service(
            cdk.Stack(cdk.App(), "OneBuild"),
            "Orders",
            entry="order_service",
            tasks={"chargeCreditCard": TaskProps(environment={BUILD_ENV: "mine"})},
            code=lambda_.Code.from_inline("unused"),
        )
    # The runtime's own variables stay reserved.
    with pytest.raises(ValueError, match=f"{n.ENV_TASK} are set by the construct"):
        Service(
            cdk.Stack(cdk.App(), "Reserved"),
            "Orders",
            entry="order_service",
            environment={n.ENV_TASK: "x"},
            code=lambda_.Code.from_inline("unused"),
        )
