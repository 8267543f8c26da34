"""The example's infra app deployed to a moto server, and the order service run from it.

One synthesis of the app (``OrderServiceStack`` with real bundling, and a second small service,
``shipping_tracker``, subscribing to the order service's ``Order`` event through
``Service.subscribe``), one ``moto.server`` process: both stacks are created through
CloudFormation from the cloud assembly (its Lambda zip uploaded to the bootstrap bucket), and
every handler is then configured only from what the deployed stacks hold (each function's
handler and environment, its event source mappings, the buses' rules and targets, the API's
routes). Lambda itself is played in-process (moto runs functions in Docker only, and
EventBridge in moto cannot target a function): SQS batches per mapping, asynchronous invokes
captured from ``lambda:Invoke``, EventBridge envelopes per rule pattern, API Gateway 2.0
events per route. Every AWS call goes to the moto server and is checked against the IAM
policies of the calling function's role in the synthesized template.

The same synthesis runs cdk-nag's ``AwsSolutionsChecks`` (an Aspect added before
``app.synth()``), and cfn-lint reads both templates while the stacks deploy: no unsuppressed
finding, no cfn-lint error, every suppression with its reason.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventual.aws_runtime import names as n
from eventual.aws_runtime.testing_checks import CfnLint, nag_findings, nag_suppressions
from eventual.aws_runtime.testing_iam import check_calls
from eventual.aws_runtime.testing_stack import DeployedStack, MotoServer, StackHarness, deploy

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

INFRA = Path(__file__).resolve().parents[1]
SERVICES = Path(__file__).resolve().parent / "services"
ACCOUNT = "123456789012"
REGION = "us-east-1"
ORDERS = "OrderService"
TRACKER = "ShippingTracker"
CALLER = f"arn:aws:iam::{ACCOUNT}:role/deploy-test-caller"

# What moto cannot create or run, and what the test does instead (also in the eventual-cdk
# README, "Tested against moto"):
MOTO_LIMITS = """\
- FIFO queue without QueueName: refused; the test names it as CloudFormation would.
- AWS::Events::Rule with EventBusName {Ref: bus}: 500; rewritten to the bus's literal name.
- {Ref: bus} in a function's environment: breaks GetFunctionConfiguration; literal name.
- Lambda invocation (needs Docker) and EventBridge -> Lambda targets: played in-process.
- EventBridge Scheduler never fires schedules: the harness fires due ones (with the target's
  role) onto the target queue.
"""


@dataclass
class Synthesized:
    outdir: Path
    assembly: Any  # aws_cdk.cx_api.CloudAssembly

    def template(self, stack: str) -> Path:
        return self.outdir / f"{stack}.template.json"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """Synthesizes the app once for the module: the order service as the example's
    ``OrderServiceStack`` (real bundling), and the tracker subscribing to its events, with
    cdk-nag's AwsSolutions pack over both."""
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_
    from cdk_nag import AwsSolutionsChecks

    sys.path.insert(0, str(INFRA))
    sys.path.insert(0, str(SERVICES))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(SERVICES), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    from order_service_stack import OrderServiceStack

    from eventual.cdk import Service

    outdir = tmp_path_factory.mktemp("cdk.out")
    placeholder = tmp_path_factory.mktemp("tracker-code")
    # The tracker's handlers run in-process from the test's sources: its bundle is never read.
    (placeholder / "README").write_text("the deploy test runs this service in-process\n")
    # The tracker's rule reads the order bus's name from the order stack (Service.subscribe):
    # a cross-stack reference, "strong" (an export and an import) as the CDK defaults to; said
    # explicitly, or the CDK warns that no strength is configured.
    context = {"@aws-cdk/core:defaultCrossStackReferences": "strong"}
    app = cdk.App(outdir=str(outdir), context=context)
    env = cdk.Environment(account=ACCOUNT, region=REGION)
    orders = OrderServiceStack(app, ORDERS, env=env)
    tracker_stack = cdk.Stack(app, TRACKER, env=env)
    tracker = Service(
        tracker_stack,
        "Tracker",
        entry="shipping_tracker",
        code=lambda_.Code.from_asset(str(placeholder)),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    tracker.subscribe(tracker_stack, "FromOrders", service=orders.service, events=["Order"])
    cdk.Aspects.of(app).add(AwsSolutionsChecks())
    return Synthesized(outdir, app.synth())


@pytest.fixture(scope="module")
def lint(synthesized: Synthesized) -> Iterator[CfnLint]:
    """cfn-lint over both templates, running while the stacks deploy."""
    with CfnLint([synthesized.template(ORDERS), synthesized.template(TRACKER)]) as lint:
        yield lint


@pytest.fixture(scope="module")
def deployed(
    synthesized: Synthesized, lint: CfnLint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[MotoServer, list[DeployedStack]]]:
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    outdir = synthesized.outdir
    with MotoServer(log=log) as server:
        stacks = [deploy(server, outdir, ORDERS), deploy(server, outdir, TRACKER)]
        yield server, stacks
    # The server is stopped by its PID on exit of the block above.


@pytest.fixture(scope="module")
def aws(deployed: tuple[MotoServer, list[DeployedStack]]) -> Iterator[StackHarness]:
    server, stacks = deployed
    with StackHarness(server, stacks) as harness:
        yield harness


def test_both_stacks_are_created(deployed: tuple[MotoServer, list[DeployedStack]]) -> None:
    server, stacks = deployed
    cf = server.client("cloudformation")
    for stack in stacks:
        status = cf.describe_stacks(StackName=stack.name)["Stacks"][0]["StackStatus"]
        assert status == "CREATE_COMPLETE"
        print(f"{stack.name}: {len(stack.physical)} resources in {stack.seconds:.1f}s")
        for fix in stack.fixes:
            print(f"  moto fix: {fix}")
    orders = stacks[0]
    assert len(orders.of_type("AWS::Lambda::Function")) == 9
    # The bundle the functions were created from is the one synthesized (uploaded as is).
    s3 = server.client("s3")
    code = [
        r["Properties"]["Code"]
        for r in orders.original["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    keys = {c["S3Key"] for c in code}
    assert len(keys) == 1
    bucket = orders.resolver().resolve(code[0]["S3Bucket"])
    head = s3.head_object(Bucket=bucket, Key=keys.pop())
    assert head["ContentLength"] > 1_000_000


def test_the_templates_pass_cdk_nag_and_cfn_lint(
    synthesized: Synthesized, lint: CfnLint, deployed: tuple[MotoServer, list[DeployedStack]]
) -> None:
    """Both deployed templates: no unsuppressed AwsSolutions finding (nor any other error or
    warning annotation), every suppression with its reason, and no cfn-lint error. (All of the
    suppressions are the construct's, ``eventual.cdk.nag``: the example adds none.)"""
    findings = nag_findings(synthesized.assembly, [ORDERS, TRACKER])
    _, stacks = deployed
    for stack in stacks:
        suppressions = nag_suppressions(stack.original)
        print(f"{stack.name}: {len(suppressions)} cdk-nag suppressions")
        for s in suppressions:
            print(f"  {s.line()}")
        assert suppressions and all(len(s.reason) >= 20 for s in suppressions)
    assert not findings, "\n".join(f.line() for f in findings)
    print("cfn-lint:", *lint.lines() or ["nothing"], sep="\n  ")
    assert not lint.errors(), "\n".join(lint.lines())


def test_every_function_is_configured_from_the_stack(aws: StackHarness) -> None:
    kinds = sorted(fn.kind for fn in aws.functions.values())
    assert kinds.count("task") == 3 and kinds.count("subscription") == 2
    for fn in aws.functions.values():
        assert fn.kind, f"{fn.name}: handler not one of eventual's"
        env = fn.environment or {}
        names = n.ServiceNames.from_env(env)
        # Every name the runtime reads is a real resource on the server.
        aws.admin_client("dynamodb").describe_table(TableName=names.executions_table)
        aws.admin_client("dynamodb").describe_table(TableName=names.history_table)
        aws.admin_client("dynamodb").describe_table(TableName=names.claims_table)
        aws.admin_client("s3").head_bucket(Bucket=names.payload_bucket)
        aws.admin_client("sqs").get_queue_attributes(QueueUrl=names.execution_queue_url)
        aws.admin_client("sqs").get_queue_attributes(QueueUrl=names.timer_queue_url)
        aws.admin_client("events").describe_event_bus(Name=names.event_bus)
        aws.admin_client("scheduler").get_schedule_group(Name=names.schedule_group)
        aws.admin_client("iam").get_role(RoleName=names.scheduler_role_arn.rsplit("/", 1)[-1])
        assert aws.admin_client("logs").describe_log_groups(logGroupNamePrefix=names.log_group)[
            "logGroups"
        ]
    # The orchestrator and the timer are fed by their queues, with partial batch responses.
    by_kind = {fn.kind: url for url, fn, _, partial in aws.mappings if partial}
    assert set(by_kind) == {"orchestrator", "timer"}
    # The orchestrator invokes tasks by the names the deployed task functions have.
    for fn in aws.functions.values():
        if fn.kind == "task":
            env = fn.environment or {}
            names = n.ServiceNames.from_env(env)
            assert names.task_function(env[n.ENV_TASK]) == fn.name


def _execution(aws: StackHarness, execution_id: str) -> dict[str, Any]:
    response = aws.http(
        "POST", "/rpc/_system/getExecution", body=execution_id, iam_principal=CALLER
    )
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])


def _done(aws: StackHarness, *ids: str) -> bool:
    return all(_execution(aws, i)["status"] != "IN_PROGRESS" for i in ids)


def test_the_order_scenario_end_to_end(aws: StackHarness) -> None:
    import shipping_tracker

    started = time.monotonic()
    # A command over the API: the deployed API routes POST /rpc/sendInvoice to its function.
    invoice = aws.function_for("POST", "/rpc/sendInvoice")
    assert invoice is not None and "CommandSendInvoice" in invoice.name
    order = {"id": "o-1", "source": "visa-4242", "amount": 900, "dispatch_after": 1.0}
    response = aws.http("POST", "/rpc/sendInvoice", body=order)
    assert response["statusCode"] == 200, response
    first = json.loads(response["body"])

    # The system API is IAM-only.
    assert aws.http("POST", "/rpc/_system/getExecution", body=first)["statusCode"] == 403

    # A second order, waiting an hour for the warehouse (a Scheduler schedule), is cancelled
    # by a signal; a third waits 20 minutes and is dispatched when its schedule fires.
    starts = {}
    for oid, wait in (("o-2", 3600.0), ("o-3", 1200.0)):
        body = {
            "workflow": "processOrder",
            "executionName": oid,
            "input": {"id": oid, "source": "visa-1", "amount": 5, "dispatch_after": wait},
        }
        r = aws.http("POST", "/rpc/_system/startExecution", body=body, iam_principal=CALLER)
        assert r["statusCode"] == 200, r
        starts[oid] = json.loads(r["body"])["executionId"]

    # The first order: charge (task), a 1 s timer (SQS delay), dispatch (task), Order event.
    aws.settle(until=lambda: _done(aws, first), timeout=60)
    assert _execution(aws, first)["status"] == "SUCCEEDED"
    schedules = [
        s
        for g in aws.groups
        for s in aws.admin_client("scheduler").list_schedules(GroupName=g)["Schedules"]
    ]
    assert schedules, "the long waits are Scheduler schedules"

    r = aws.http(
        "POST",
        "/rpc/_system/sendSignal",
        body={"executionId": starts["o-2"], "signalId": "cancel", "payload": "changed my mind"},
        iam_principal=CALLER,
    )
    assert r["statusCode"] == 200, r
    aws.settle(until=lambda: _done(aws, starts["o-2"]), timeout=60)
    cancelled = _execution(aws, starts["o-2"])
    assert cancelled["status"] == "SUCCEEDED" and cancelled["result"] == "cancelled"

    # Twenty minutes later (the runtime's clock moves; the schedule falls due and fires).
    aws.advance(1201)
    aws.settle(until=lambda: _done(aws, starts["o-3"]), timeout=60)
    assert _execution(aws, starts["o-3"])["status"] == "SUCCEEDED"
    aws.settle(until=lambda: set(shipping_tracker.tracked) >= {"o-1", "o-3"}, timeout=30)
    print("left in the queues:", aws.queue_counts())

    # The Order events reached the order service's own subscription and, forwarded by the
    # tracker's rule on the order bus, the tracker's subscription in the other stack.
    rules = {rule for rule, _, _ in aws.event_deliveries}
    assert len(rules) >= 2, aws.event_deliveries
    assert set(shipping_tracker.tracked) == {"o-1", "o-3"}
    targets = {target.rsplit(":", 1)[-1] for _, target, _ in aws.event_deliveries}
    assert any("SubscriptionOnOrder" in t for t in targets)
    assert any("SubscriptionTrackOrder" in t for t in targets)

    # The system commands read what the scenario wrote.
    history = aws.http(
        "POST",
        "/rpc/_system/getExecutionHistory",
        body={"executionId": first},
        iam_principal=CALLER,
    )
    assert history["statusCode"] == 200
    listed = aws.http(
        "POST",
        "/rpc/_system/listExecutions",
        body={"workflowName": "processOrder"},
        iam_principal=CALLER,
    )
    assert listed["statusCode"] == 200
    assert len(json.loads(listed["body"])["executions"]) == 3
    logs = aws.http(
        "POST", "/rpc/_system/getExecutionLogs", body={"executionId": first}, iam_principal=CALLER
    )
    assert logs["statusCode"] == 200, logs
    # An HTTP route behind the service's middleware, on the API's default function.
    hello = aws.http("GET", "/hello", headers={"authorization": "Bearer ada"})
    assert hello["statusCode"] == 200, hello
    print(f"scenario: {time.monotonic() - started:.1f}s, {len(aws.all_calls())} AWS requests")


def test_every_call_is_allowed_by_the_functions_roles(aws: StackHarness) -> None:
    """Runs after the scenario (module order): every call each handler (and the AWS services
    acting with a role) made is checked against that role's policies in the template."""
    calls = aws.all_calls()
    assert calls, "the scenario ran first"
    assert not aws.recorder.unknown and not aws.platform.unknown
    policies = aws.role_policies()
    report = check_calls(calls, policies, labels=aws.role_labels())
    print("\n".join(report.lines()))
    assert not report.denied, "\n".join(report.lines())
    assert not report.wildcard_actions
    # FIXME(construct): the roles grant actions the scenario never uses (printed above as
    # UNUSED); the target is none. Until the construct narrows them, this only prints them.
    if report.unused:
        pytest.xfail(f"{len(report.unused)} granted action(s) unused (see the output)")
