"""The project `eventual init` scaffolds, deployed to a moto server and run from the stack.

As a newcomer gets it (from a clone, no ``--dev-source``), the project's own CDK app
(``infra/app.py``, real bundling) is synthesized once, in-process: the script is run as
``__main__``, as ``cdk synth`` runs it, with cdk-nag's ``AwsSolutionsChecks`` added to its
``App`` just before the script's own ``app.synth()`` (the script builds and synthesizes its
app in one go, so the Aspect goes in through a wrapper of ``App.synth``). Its stack is then
created through CloudFormation in one ``moto.server`` process (``CREATE_COMPLETE``), every
handler is configured only from what the deployed stack holds (``StackHarness``, as in the
order service's deploy test, apps/order-service/infra/tests/test_deploy.py), and the
scaffolded scenario runs end to end: ``hello`` over the API payload, ``startGreeting``
starting the ``greet`` workflow, its ``formatGreeting`` task, and its ``Greeted`` event
reaching the ``logGreeting`` subscription through the bus's rule. Every AWS call is checked
against the calling role's policies in the template; the template passes cdk-nag and
cfn-lint (run while the stack deploys).
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from eventual.aws_runtime import names as n
from eventual.aws_runtime.testing_checks import CfnLint, nag_findings, nag_suppressions
from eventual.aws_runtime.testing_iam import check_calls
from eventual.aws_runtime.testing_stack import DeployedStack, MotoServer, StackHarness, deploy
from eventual.cli.main import app as cli

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="the CDK needs Node.js")

PROJECT = "demo-shop"
STACK = "demo-shop"  # infra/app.py: cdk.Stack(app, "demo-shop")
ENTRY_PACKAGE = "demo_shop"
CALLER = "arn:aws:iam::123456789012:role/deploy-test-caller"


@dataclass
class Synthesized:
    root: Path  # the scaffolded project
    outdir: Path
    assembly: Any  # aws_cdk.cx_api.CloudAssembly

    @property
    def template(self) -> Path:
        return self.outdir / f"{STACK}.template.json"


# FIXME(construct): eventual.cdk.nag accepts the timer schedules' wildcard with a regex whose
# region and account are ``[^:]*``; in an environment-agnostic stack (the scaffold's
# ``cdk.Stack(app, "demo-shop")`` has no env) they are ``<AWS::Region>`` and
# ``<AWS::AccountId>``, which contain ':', so the construct's suppression misses and cdk-nag
# reports AwsSolutions-IAM5 on the orchestrator's and the timer's policies. Until the
# construct's regex takes both forms, the test accepts the same wildcard, for the same reason.
SCHEDULES_WILDCARD = (
    r"/^Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:"
    r"schedule\/[^\/]+\/\*$/g"
)
SCHEDULES_REASON = (
    "Timers are one-time schedules named at run time; access is limited to the service's own "
    "schedule group (the construct's own suppression, for an environment-agnostic stack)."
)


def _before_synth(app: Any) -> None:
    """What the test adds to the scaffold's app before it synthesizes: the test's one
    suppression (above) and cdk-nag's AwsSolutions pack."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks, NagPackSuppression, NagSuppressions, RegexAppliesTo

    for stack in app.node.children:
        if isinstance(stack, cdk.Stack):
            NagSuppressions.add_stack_suppressions(
                stack,
                [
                    NagPackSuppression(
                        id="AwsSolutions-IAM5",
                        reason=SCHEDULES_REASON,
                        applies_to=[RegexAppliesTo(regex=SCHEDULES_WILDCARD)],
                    )
                ],
            )
    cdk.Aspects.of(app).add(AwsSolutionsChecks())


@contextmanager
def _on_synth(before: Callable[[Any], None]) -> Iterator[list[Any]]:
    """While active, every ``App.synth()`` first calls ``before(app)``; the cloud assemblies
    made are collected."""
    import aws_cdk as cdk

    original = cdk.App.synth
    made: list[Any] = []

    def synth(self: Any, *args: Any, **kwargs: Any) -> Any:
        before(self)
        assembly = original(self, *args, **kwargs)
        made.append(assembly)
        return assembly

    cdk.App.synth = synth  # type: ignore[method-assign]
    try:
        yield made
    finally:
        cdk.App.synth = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    parent = tmp_path_factory.mktemp("init-deploy")
    result = CliRunner().invoke(cli, ["init", PROJECT, "-C", str(parent), "--no-git"])
    assert result.exit_code == 0, result.output
    root = parent / PROJECT
    # The service's sources, as the project's environment would have them installed: for
    # the spec subprocess and the bundler (PYTHONPATH) and for the in-process handlers.
    src = root / "packages" / "service" / "src"
    sys.path.insert(0, str(src))
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [saved])])
    try:
        with _on_synth(_before_synth) as made:
            runpy.run_path(str(root / "infra" / "app.py"), run_name="__main__")
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    assert len(made) == 1, "infra/app.py synthesizes one app"
    # The App picks its own output directory (CDK_OUTDIR of the CDK's Node process, else a
    # temporary one): the assembly says where.
    return Synthesized(root, Path(made[0].directory), made[0])


@pytest.fixture(scope="module")
def lint(synthesized: Synthesized) -> Iterator[CfnLint]:
    with CfnLint([synthesized.template]) as lint:
        yield lint


@pytest.fixture(scope="module")
def deployed(
    synthesized: Synthesized, lint: CfnLint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MotoServer, DeployedStack]]:
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with MotoServer(log=log) as server:
        yield server, deploy(server, synthesized.outdir, STACK)


@pytest.fixture(scope="module")
def aws(deployed: tuple[MotoServer, DeployedStack]) -> Iterator[StackHarness]:
    server, stack = deployed
    with StackHarness(server, [stack]) as harness:
        yield harness


def test_the_scaffolded_stack_is_created(deployed: tuple[MotoServer, DeployedStack]) -> None:
    server, stack = deployed
    cf = server.client("cloudformation")
    assert cf.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    print(f"{stack.name}: {len(stack.physical)} resources in {stack.seconds:.1f}s")
    for fix in stack.fixes:
        print(f"  moto fix: {fix}")
    handlers = sorted(
        r["Properties"]["Handler"].split(".")[-2]
        for r in stack.original["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    )
    assert handlers == ["command", "orchestrator", "subscription", "system", "task", "timer"]
    assert len(stack.of_type("AWS::Lambda::Function")) == 6


def test_the_template_passes_cdk_nag_and_cfn_lint(
    synthesized: Synthesized, lint: CfnLint, deployed: tuple[MotoServer, DeployedStack]
) -> None:
    """No unsuppressed AwsSolutions finding (nor any other error or warning annotation),
    every suppression with its reason (the construct's, and the test's one above: the
    scaffold adds none), and no cfn-lint error."""
    _, stack = deployed
    suppressions = nag_suppressions(stack.original)
    print(f"{stack.name}: {len(suppressions)} cdk-nag suppressions")
    for s in suppressions:
        print(f"  {s.line()}")
    assert suppressions and all(len(s.reason) >= 20 for s in suppressions)
    findings = nag_findings(synthesized.assembly, [STACK])
    assert not findings, "\n".join(f.line() for f in findings)
    print("cfn-lint:", *lint.lines() or ["nothing"], sep="\n  ")
    assert not lint.errors(), "\n".join(lint.lines())


def _execution(aws: StackHarness, execution_id: str) -> dict[str, Any]:
    r = aws.http("POST", "/rpc/_system/getExecution", body=execution_id, iam_principal=CALLER)
    assert r["statusCode"] == 200, r
    return json.loads(r["body"]) if r.get("body") else {}


def test_the_scaffolded_scenario_end_to_end(
    aws: StackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    caplog.set_level(logging.INFO, logger=f"{ENTRY_PACKAGE}.service")
    # hello over the API (HTTP API payload 2.0), on the function the deployed route names.
    assert aws.function_for("POST", "/rpc/hello") is not None
    hello = aws.http("POST", "/rpc/hello", body="ada")
    assert hello["statusCode"] == 200, hello
    assert json.loads(hello["body"]) == "hello ada"

    # startGreeting starts greet; its task formats the greeting; it emits Greeted.
    r = aws.http("POST", "/rpc/startGreeting", body="ada")
    assert r["statusCode"] == 200, r
    execution_id = json.loads(r["body"])
    aws.settle(
        until=lambda: _execution(aws, execution_id).get("status") not in (None, "IN_PROGRESS")
    )
    execution = _execution(aws, execution_id)
    assert execution["status"] == "SUCCEEDED" and execution["result"] == "hello ada", execution
    # The greeting came from the task's own function (its role made the task's calls).
    tasks = [fn for fn in aws.functions.values() if fn.kind == "task"]
    assert [(fn.environment or {}).get(n.ENV_TASK) for fn in tasks] == ["formatGreeting"]
    assert any(c.principal == tasks[0].role for c in aws.recorder.calls)

    # Greeted, put on the bus, matched the subscription's rule and ran logGreeting.
    aws.settle(until=lambda: any("greeted ada" in m for m in caplog.messages), timeout=30)
    targets = [target for _, target, event in aws.event_deliveries]
    assert any("SubscriptionLogGreeting" in t for t in targets), aws.event_deliveries
    assert [e["detail-type"] for _, _, e in aws.event_deliveries] == ["Greeted"]
    assert not aws.lost_invocations and not aws.failed_deliveries
    print(f"scenario: {time.monotonic() - started:.1f}s, {len(aws.all_calls())} AWS requests")


def test_every_call_is_allowed_by_the_functions_roles(aws: StackHarness) -> None:
    """Runs after the scenario (module order)."""
    calls = aws.all_calls()
    assert calls, "the scenario ran first"
    assert not aws.recorder.unknown and not aws.platform.unknown
    report = check_calls(calls, aws.role_policies(), labels=aws.role_labels())
    print("\n".join(report.lines()))
    assert not report.denied, "\n".join(report.lines())
    assert not report.wildcard_actions
    # FIXME(construct): as in the order service's deploy test, the roles grant actions the
    # scenario never uses (printed above as UNUSED) until the construct narrows them.
    if report.unused:
        pytest.xfail(f"{len(report.unused)} granted action(s) unused (see the output)")
