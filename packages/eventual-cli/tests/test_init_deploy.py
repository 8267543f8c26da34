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
import re
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
from eventual.aws_runtime.testing_iam import check_calls, queue_arn
from eventual.aws_runtime.testing_lambda import Invocation, LambdaFunction
from eventual.aws_runtime.testing_stack import DeployedStack, MotoServer, StackHarness, deploy
from eventual.cli.main import app as cli
from eventual.core.tokens import encode_token

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


def _before_synth(app: Any) -> None:
    """What the test adds to the scaffold's app before it synthesizes: cdk-nag's AwsSolutions
    pack."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

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
    # logGreeting logs at INFO: on Lambda the Python runtime's root logger is at WARNING, so
    # its line reaches the function's log group only with its logger's level set, as here.
    service_logger = logging.getLogger(f"{ENTRY_PACKAGE}.service")
    level = service_logger.level
    service_logger.setLevel(logging.INFO)
    try:
        with StackHarness(server, [stack]) as harness:
            yield harness
    finally:
        service_logger.setLevel(level)


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
    every suppression with its reason (all of them the construct's, for this
    environment-agnostic stack too: the scaffold and the test add none), and no cfn-lint
    error."""
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


def test_the_scaffolded_scenario_end_to_end(aws: StackHarness) -> None:
    started = time.monotonic()
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

    # Greeted, put on the bus, matched the subscription's rule and ran logGreeting, whose line
    # is in the function's log group.
    subscription = next(fn for fn in aws.functions.values() if fn.kind == "subscription")
    aws.settle(until=lambda: bool(aws.function_logs(subscription, "greeted ada")), timeout=30)
    targets = [target for _, target, event in aws.event_deliveries]
    assert any("SubscriptionLogGreeting" in t for t in targets), aws.event_deliveries
    assert [e["detail-type"] for _, _, e in aws.event_deliveries] == ["Greeted"]
    assert not aws.lost_invocations and not aws.failed_deliveries
    print(f"scenario: {time.monotonic() - started:.1f}s, {len(aws.all_calls())} AWS requests")


def _system(aws: StackHarness, command: str, body: Any) -> Any:
    r = aws.http("POST", f"/rpc/_system/{command}", body=body, iam_principal=CALLER)
    assert r["statusCode"] == 200, r
    return json.loads(r["body"]) if r.get("body") else None


def _fn(aws: StackHarness, kind: str) -> LambdaFunction:
    return next(fn for fn in aws.functions.values() if fn.kind == kind)


def _done(aws: StackHarness, *ids: str) -> bool:
    return all(_execution(aws, i).get("status") not in (None, "IN_PROGRESS") for i in ids)


MESSAGE = n.MESSAGE_INLINE_LIMIT + 5_000
"""Characters enough for a message or an event to spill to S3."""


def test_a_long_name_spills_to_the_payload_bucket(aws: StackHarness) -> None:
    """A greeting too large for a message: the start, the task's request and result, the
    Greeted event, the history and the record go to the payload bucket, and every function on
    the way reads them back; the system commands read the execution as it is."""
    name = "n" * MESSAGE
    r = aws.http("POST", "/rpc/startGreeting", body=name)
    assert r["statusCode"] == 200, r
    execution_id = json.loads(r["body"])
    subscription = _fn(aws, "subscription")
    before = len(aws.function_logs(subscription, "greeted nnnn"))
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    assert _execution(aws, execution_id)["result"] == f"hello {name}"
    aws.settle(
        until=lambda: len(aws.function_logs(subscription, "greeted nnnn")) > before, timeout=30
    )
    assert _system(aws, "getExecutionHistory", {"executionId": execution_id})["events"]
    # The system commands: a large event emitted, every execution listed, by workflow too,
    # the workflow's log line read.
    _system(
        aws,
        "emitEvents",
        {"events": [{"name": "Greeted", "event": {"name": "bo", "message": "m" * MESSAGE}}]},
    )
    aws.settle(until=lambda: bool(aws.function_logs(subscription, "greeted bo")), timeout=30)
    for body in ({}, {"workflowName": "greet"}):
        assert len(_system(aws, "listExecutions", body)["executions"]) == 2
    logs = _system(aws, "getExecutionLogs", {"executionId": execution_id})["events"]
    assert [e["message"] for e in logs] == ["formatted the greeting"]


def test_a_workflow_whose_task_never_ran_times_out(aws: StackHarness) -> None:
    """greet started with a 20-minute timeout (a Scheduler schedule) while its task's
    invocation waits in Lambda's queue: 20 minutes later the task's own 30-second timeout and
    the workflow's schedule (firing with the scheduler's role) have both fallen due, the
    execution fails, and the task's late result, and a late completion by its token, are
    dropped."""
    body = {"workflow": "greet", "executionName": "late", "input": "cy", "timeout": 1200}
    execution_id = _system(aws, "startExecution", body)["executionId"]
    aws.deliver()  # the orchestrator's first step; the task's invocation is held back
    held, aws.invocations = aws.invocations, []
    assert held, "the task was invoked"
    aws.advance(1201)
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    failed = _execution(aws, execution_id)
    # Whichever timeout reaches the execution first fails it (here the task's, sent first).
    assert failed["status"] == "FAILED" and failed["error"] in ("Timeout", "WorkflowTimeout")
    aws.invocations.extend(held)
    aws.run_until_idle()
    assert _execution(aws, execution_id)["status"] == "FAILED"
    # The greeting's attempt reported done by its token, late.
    claims = n.ServiceNames.from_env(_fn(aws, "orchestrator").environment or {}).claims_table
    items = aws.admin_client("dynamodb").scan(TableName=claims)["Items"]
    key = next(i[n.CLAIMS_PK]["S"] for i in items if i[n.CLAIMS_PK]["S"].startswith(execution_id))
    _, seq, attempt = key.rsplit("|", 2)
    token = encode_token(execution_id, int(seq), int(attempt))
    _system(aws, "updateTask", {"type": "Success", "taskToken": token, "result": "late"})
    aws.run_until_idle()
    assert _execution(aws, execution_id)["status"] == "FAILED"


def test_a_crashed_step_is_redone_and_an_early_timer_rearmed(aws: StackHarness) -> None:
    """The orchestrator dies after dispatching greet's first step (its task invoked, its
    timeout scheduled) and before committing it: a fresh container redoes the step after the
    queue's visibility timeout (the schedule updated, the second invocation finding the
    attempt claimed). Then the task's 30-second timeout timer reaches the timer function
    before its clock says it is due (the queue's and the function's clocks disagree): it is
    re-armed on the timer queue."""
    orchestrator = _fn(aws, "orchestrator")
    aws.crash_before(orchestrator, "dynamodb.TransactWriteItems")
    body = {"workflow": "greet", "executionName": "crash", "input": "di", "timeout": 3600}
    execution_id = _system(aws, "startExecution", body)["executionId"]
    aws.run_until_idle()
    assert _execution(aws, execution_id)["status"] == "IN_PROGRESS"
    assert aws.function_logs(orchestrator, "Runtime exited")
    aws.advance(n.EXECUTION_QUEUE_VISIBILITY_TIMEOUT + 1)
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    assert _execution(aws, execution_id)["result"] == "hello di"

    again = _system(aws, "startExecution", {"workflow": "greet", "input": "ed"})["executionId"]
    aws.settle(until=lambda: _done(aws, again), timeout=60)
    timer = _fn(aws, "timer")
    names = n.ServiceNames.from_env(timer.environment or {})
    timer_queue = queue_arn(names.timer_queue_url, aws.region, aws.account)

    def rearmed() -> int:
        return sum(
            1
            for c in aws.recorder.calls
            if c.principal == timer.role
            and c.action == "sqs:SendMessage"
            and c.resource == timer_queue
        )

    before = rearmed()
    aws.server.shift_clock(30)  # the queue's clock only
    aws.run_until_idle()
    assert rearmed() > before


def test_two_orchestrator_containers_on_one_execution(aws: StackHarness) -> None:
    """Lambda runs the orchestrator in two execution environments, and one greeting's events
    go to both: the first starts it, the second (cold) applies the task's result and
    completes it; 30 seconds later the task's timeout timer reaches the first, whose warm
    copy still waits for the task. Its commit loses to the second's; it reads the step it
    lost to, drops its copy, and finds the greeting done."""
    orchestrator = _fn(aws, "orchestrator")
    aws.use_container(orchestrator, 0)
    execution_id = _system(aws, "startExecution", {"workflow": "greet", "input": "fy"})[
        "executionId"
    ]
    aws.deliver()  # container 0: the start (the task invoked)
    aws.use_container(orchestrator, 1)
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    aws.use_container(orchestrator, 0)
    aws.advance(31)
    aws.run_until_idle()
    done = _execution(aws, execution_id)
    assert done["status"] == "SUCCEEDED" and done["result"] == "hello fy", done


def test_events_and_invocations_that_keep_failing_are_dead_lettered(aws: StackHarness) -> None:
    """A Greeted the subscription cannot read (in an older shape) and an invocation the task
    function refuses (a request for another task) fail past Lambda's retries into their
    dead-letter queues."""
    subscription, task = _fn(aws, "subscription"), _fn(aws, "task")
    bus = n.ServiceNames.from_env(subscription.environment or {}).event_bus
    lost = len(aws.lost_invocations)
    aws.put_events(
        [
            {
                "Source": n.event_source(PROJECT),
                "DetailType": "Greeted",
                "Detail": json.dumps({"who": "old shape"}),
                "EventBusName": bus,
            }
        ]
    )
    request = {"executionId": "greet/x", "workflow": "greet", "seq": 0, "attempt": 0}
    aws.invocations.append(Invocation(task.name, {"task": {**request, "name": "noSuchTask"}}))
    aws.run_until_idle()
    assert len(aws.lost_invocations) == lost + 2
    sqs = aws.admin_client("sqs")
    for fn in (subscription, task):
        url = sqs.get_queue_url(QueueName=fn.dead_letter.rsplit(":", 1)[-1])["QueueUrl"]
        assert sqs.receive_message(QueueUrl=url).get("Messages"), fn.name


# What the roles grant that the tests above leave unused, each with why (asserted exactly
# below). Keyed by the role's logical id without its hash, then (statement id, action). The
# scaffolded infra declares what each function's code calls of eventual's client (calls=), so
# each role is granted that and no more.
NAMELESS = (
    "start_execution reads back an execution of the same name when one exists; startGreeting "
    "gives no execution name, so no start ever finds one"
)
EXPECTED_UNUSED: dict[str, dict[tuple[str, str], str]] = {
    "demo-shop/demoshopApiRole": {
        ("Executions", "dynamodb:GetItem"): NAMELESS,
        ("Payloads", "s3:GetObject"): NAMELESS + " (whose record spilled)",
    },
}


def _role_key(label: str) -> str:
    """``demo-shop/demoshopApiRole1A2B3C4D (function name)`` -> without hash and name."""
    return re.sub(r"[0-9A-F]{8}$", "", label.split(" ", 1)[0])


def test_every_call_is_allowed_by_the_functions_roles(aws: StackHarness) -> None:
    """Runs after the tests above (module order): every call is allowed by its role, every
    call an AWS service made with a role is one the template makes it make, and the grants
    left unused are exactly :data:`EXPECTED_UNUSED`."""
    calls = aws.all_calls()
    assert calls, "the scenario ran first"
    assert not aws.recorder.unknown and not aws.platform.unknown
    report = check_calls(
        calls, aws.role_policies(), labels=aws.role_labels(), service=aws.service_actions()
    )
    print("\n".join(report.lines()))
    assert not report.denied, "\n".join(report.lines())
    assert not report.wildcard_actions
    assert not report.unexplained, "\n".join(report.lines())
    unused: dict[str, set[tuple[str, str]]] = {}
    for label, sid, action, _ in report.unused:
        unused.setdefault(_role_key(label), set()).add((sid or "-", action))
    expected = {role: set(reasons) for role, reasons in EXPECTED_UNUSED.items()}
    differences = [
        f"{role}: unused, not expected {sorted(unused.get(role, set()) - want)}; "
        f"expected, but used {sorted(want - unused.get(role, set()))}"
        for role in sorted(set(unused) | set(expected))
        for want in [expected.get(role, set())]
        if unused.get(role, set()) != want
    ]
    assert not differences, "\n".join(differences)
