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
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eventual.aws_runtime import names as n
from eventual.aws_runtime.adapters import log_stream
from eventual.aws_runtime.testing_checks import CfnLint, nag_findings, nag_suppressions
from eventual.aws_runtime.testing_iam import check_calls, queue_arn
from eventual.aws_runtime.testing_lambda import Invocation
from eventual.aws_runtime.testing_stack import DeployedStack, MotoServer, StackHarness, deploy
from eventual.core.errors import MAX_ERROR_MESSAGE
from eventual.core.tokens import encode_token

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
- Lambda keeps neither a function's LoggingConfig nor its DeadLetterConfig: both are read
  from the template (the harness writes each invocation's log lines, and dead-letters what
  fails past its retries, with the function's role, as Lambda does).
- SQS delays and visibility timeouts run on the server's clock, which the harness moves with
  the runtime's (MotoServer.shift_clock) instead of waiting.
- DynamoDB refuses to replace an attribute of more than about 200 KB with another one (AWS
  allows it up to the 400 KB item): the large payloads are written once each.
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

    from eventual.cdk import FunctionProps, Service, SubscriptionProps

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
        # Its code calls nothing of eventual's client: the roles get no grant for it.
        api=FunctionProps(calls=[]),
        subscriptions={"trackOrder": SubscriptionProps(calls=[])},
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


def test_workflow_logs_are_in_the_execution_log_group(aws: StackHarness) -> None:
    """What processOrder logs (``log.info``) reaches the service's log group, a stream per
    execution, read back through CloudWatch Logs and through getExecutionLogs."""
    orchestrator = next(fn for fn in aws.functions.values() if fn.kind == "orchestrator")
    names = n.ServiceNames.from_env(orchestrator.environment or {})
    logs = aws.admin_client("logs")
    events = logs.filter_log_events(
        logGroupName=names.log_group, logStreamNames=[log_stream("processOrder/o-2")]
    )["events"]
    messages = [json.loads(e["message"])["message"] for e in events]
    assert messages == ["order o-2 charged ch_o-2", "order o-2 cancelled: changed my mind"]
    r = aws.http(
        "POST",
        "/rpc/_system/getExecutionLogs",
        body={"executionId": "processOrder/o-2"},
        iam_principal=CALLER,
    )
    assert [e["message"] for e in json.loads(r["body"])["events"]] == messages
    # The function's own log (Lambda's, at the runtime's WARNING) does not repeat them.
    assert not aws.function_logs(orchestrator, "charged ch_o-2")


RECORD = n.ITEM_INLINE_LIMIT + 10_000
"""Characters enough for an execution record to spill to S3 (and any message or event)."""
MESSAGE = n.MESSAGE_INLINE_LIMIT + 5_000
"""Characters enough for a message or an event to spill, not a record (and under CloudWatch
Logs' 256 KB a log event)."""


def _invoice(aws: StackHarness, order: dict[str, Any]) -> str:
    r = aws.http("POST", "/rpc/sendInvoice", body=order)
    assert r["statusCode"] == 200, r
    return json.loads(r["body"])


def _system(aws: StackHarness, command: str, body: Any, service: str | None = None) -> Any:
    r = aws.http(
        "POST", f"/rpc/_system/{command}", body=body, iam_principal=CALLER, service=service
    )
    assert r["statusCode"] == 200, r
    return json.loads(r["body"]) if r.get("body") else None


def test_large_payloads_spill_to_the_payload_buckets(aws: StackHarness) -> None:
    """Inputs, task requests and results, failures, execution records, history steps and
    events too large for an item, a message or an event go to the payload bucket and are read
    back from it, by every function on the way (and, forwarded, by the other service's
    subscription from the producer's bucket).

    (moto's DynamoDB refuses to replace an attribute of more than about 200 KB with another
    one, which DynamoDB allows up to its 400 KB item: each large value here is written once,
    to the orders table, and each execution record large enough to spill.)"""
    import shipping_tracker

    # A large order, one of its items out of stock: its record, its start, its dispatch
    # request, the dispatch's failure and the charge-back's request spill. Invoiced again, it
    # is the same execution (its spilled record read back and compared).
    big = {"id": "o-big", "source": "visa-4", "amount": 5, "dispatch_after": 0}
    big["items"] = ["crate-" + "x" * RECORD, "out-of-stock-" + "y" * MESSAGE]
    first = _invoice(aws, big)
    assert _invoice(aws, big) == first
    # A long card, declined (started by the system command: the order is written once): the
    # charge request spills, and the execution's record, running and failed. The failure's
    # message is cut to MAX_ERROR_MESSAGE characters, so the failure itself never spills.
    body = {
        "workflow": "processOrder",
        "executionName": "o-declined",
        "input": {"id": "o-declined", "source": "declined-" + "z" * RECORD, "amount": 5},
    }
    second = _system(aws, "startExecution", body)["executionId"]
    aws.settle(until=lambda: _done(aws, first, second), timeout=60)
    assert _execution(aws, first)["result"] == "charged back"
    declined = _execution(aws, second)
    assert declined["status"] == "FAILED" and declined["error"] == "CardDeclined"
    assert declined["message"].startswith("the card declined-zzz")
    full = f"the card {body['input']['source']} was declined"
    assert declined["message"].endswith(f"[cut: {len(full):,} characters in all]")
    assert len(declined["message"]) == MAX_ERROR_MESSAGE
    history = _system(aws, "getExecutionHistory", {"executionId": first})
    assert history["events"]
    # A cancel with a long reason: the signal spills, and so the charge-back's request, which
    # carries the reason (read back by the chargeBack task).
    reason = "r" * MESSAGE
    cancelled = _invoice(
        aws, {"id": "o-big2", "source": "visa-6", "amount": 7, "dispatch_after": 3600.0}
    )
    body = {"executionId": cancelled, "signalId": "cancel", "payload": reason}
    _system(aws, "sendSignal", body)
    aws.settle(until=lambda: _done(aws, cancelled), timeout=60)
    assert _execution(aws, cancelled)["result"] == "cancelled"
    # An event too large for EventBridge, emitted on each service's bus.
    tracking = "t" * MESSAGE
    for service, oid in (("order-service", "o-big3"), (shipping_tracker.SERVICE_NAME, "o-big4")):
        _system(
            aws,
            "emitEvents",
            {"events": [{"name": "Order", "event": {"order_id": oid, "tracking": tracking}}]},
            service=service,
        )
    aws.settle(until=lambda: {"o-big3", "o-big4"} <= set(shipping_tracker.tracked), timeout=30)
    assert shipping_tracker.tracked["o-big3"] == tracking  # read from the order bucket
    assert shipping_tracker.tracked["o-big4"] == tracking
    s3 = aws.admin_client("s3")
    for fn in aws.functions.values():
        if fn.kind == "orchestrator":
            bucket = n.ServiceNames.from_env(fn.environment or {}).payload_bucket
            # The large events' payloads, under the prefix the lifecycle rule expires by age.
            keys = s3.list_objects_v2(Bucket=bucket, Prefix=n.PAYLOAD_EVENTS_PREFIX)
            assert keys.get("KeyCount", 0) > 0, bucket


def _bus(aws: StackHarness, service: str) -> str:
    fn = next(
        f
        for f in aws.functions.values()
        if (f.environment or {}).get(n.ENV_SERVICE_NAME) == service
    )
    return n.ServiceNames.from_env(fn.environment or {}).event_bus


def _dead_letters(aws: StackHarness, fn_kind: str, where: str) -> list[dict[str, Any]]:
    """The messages in the dead-letter queue of the function of ``fn_kind`` whose name has
    ``where``."""
    (fn,) = [f for f in aws.functions.values() if f.kind == fn_kind and where in f.name]
    sqs = aws.admin_client("sqs")
    url = sqs.get_queue_url(QueueName=fn.dead_letter.rsplit(":", 1)[-1])["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


def test_events_and_invocations_that_keep_failing_are_dead_lettered(aws: StackHarness) -> None:
    """An Order the subscriptions cannot read (in the shape of an older build of the order
    service) fails every delivery, in both services, and Lambda sends it to each
    subscription's dead-letter queue; an invocation a task function refuses (another task's
    request) goes to the task dead-letter queue."""
    lost = len(aws.lost_invocations)
    # Put on the order bus as the old build put it (emitEvents would refuse it: it checks the
    # event's schema).
    aws.put_events(
        [
            {
                "Source": n.event_source("order-service"),
                "DetailType": "Order",
                "Detail": json.dumps({"order_id": 42}),
                "EventBusName": _bus(aws, "order-service"),
            }
        ]
    )
    aws.run_until_idle()
    assert len(aws.lost_invocations) == lost + 2
    assert len(_dead_letters(aws, "subscription", "SubscriptionOnOrder")) == 1
    assert len(_dead_letters(aws, "subscription", "SubscriptionTrackOrder")) == 1

    tasks = [fn for fn in aws.functions.values() if fn.kind == "task"]
    for fn, other in zip(tasks, tasks[1:] + tasks[:1], strict=True):
        request = {
            "executionId": "processOrder/refused",
            "workflow": "processOrder",
            "seq": 0,
            "attempt": 0,
            "name": (other.environment or {})[n.ENV_TASK],
            "args": [],
        }
        aws.invocations.append(Invocation(fn.name, {"task": request}))
    aws.run_until_idle()
    assert len(aws.lost_invocations) == lost + 2 + len(tasks)
    dead = _dead_letters(aws, "task", tasks[0].name)
    assert {json.loads(m["Body"])["task"]["executionId"] for m in dead} == {"processOrder/refused"}
    assert len(dead) == len(tasks)
    # Lambda logged each refusal in the function's log.
    assert aws.function_logs(tasks[0], "this function runs task")


class _HarnessLambda:
    """What the CLI's ``lambda:Invoke`` (an asynchronous invocation) does here: it is queued
    for the harness, which runs the function in-process (moto's Lambda cannot)."""

    def __init__(self, aws: StackHarness) -> None:
        self.aws = aws
        self.params: dict[str, Any] = {}

    def remember(self, params: dict[str, Any], **kwargs: Any) -> None:
        self.params = dict(params)  # the call's own parameters (before-parameter-build)

    def invoke(self, **kwargs: Any) -> Any:
        class Answer:
            status_code = 202
            headers: dict[str, str] = {}

        params = self.params
        assert params["InvocationType"] == "Event"
        fn = self.aws.invoke_target(params["FunctionName"])
        assert fn is not None, params["FunctionName"]
        self.aws.invocations.append(Invocation(fn.name, json.loads(params["Payload"])))
        return Answer(), {"StatusCode": 202}


def _dlq(aws: StackHarness, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    """``eventual dlq ARGS --service order-service --json``, with the user's credentials,
    against the deployed stack (the discovery record in SSM, the queues in SQS)."""
    from botocore.session import Session
    from typer.testing import CliRunner

    from eventual.cli import deployed
    from eventual.cli.main import app

    def session() -> Session:
        s = Session()
        harness = _HarnessLambda(aws)
        s.register("before-parameter-build.lambda.Invoke", harness.remember)
        s.register("before-call.lambda.Invoke", harness.invoke)
        return s

    monkeypatch.setattr(deployed, "_botocore_session", session)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws.server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    result = CliRunner().invoke(
        app, ["dlq", *args, "--service", "order-service", "--region", REGION, "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_poison_message_fails_its_execution_and_dlq_lists_and_redrives(
    aws: StackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message of an execution that fails on every delivery (an event no build of the
    service can read) is tried the queue's ``maxReceiveCount`` times: on the last attempt the
    orchestrator fails the execution, saying why and where the message went, and SQS moves it
    to the dead-letter queue, where ``eventual dlq list`` shows it. An event that a
    subscription failed past Lambda's retries (its store was down) is redriven by ``eventual
    dlq redrive`` once the store is back, and takes effect."""
    from eventual.aws_runtime.adapters.execution_queue import message_group

    execution_id = _invoice(
        aws, {"id": "o-poison", "source": "visa-4", "amount": 9, "dispatch_after": 3600.0}
    )
    aws.run_until_idle()
    assert _execution(aws, execution_id)["status"] == "IN_PROGRESS"
    orchestrator = next(fn for fn in aws.functions.values() if fn.kind == "orchestrator")
    names = n.ServiceNames.from_env(orchestrator.environment or {})
    limit = int((orchestrator.environment or {})[n.ENV_MAX_RECEIVE_COUNT])
    sqs = aws.admin_client("sqs")
    sqs.send_message(
        QueueUrl=names.execution_queue_url,
        MessageBody=json.dumps({"executionId": execution_id, "event": {"type": "NoSuchEvent"}}),
        MessageGroupId=message_group(execution_id),
        MessageDeduplicationId="poison-1",
    )
    for _ in range(limit + 1):
        aws.run_until_idle()
        aws.advance(n.EXECUTION_QUEUE_VISIBILITY_TIMEOUT + 1)
    aws.run_until_idle()
    failed = _execution(aws, execution_id)
    assert failed["status"] == "FAILED", failed
    assert failed["error"] == "DeadLettered"
    assert f"failed {limit} times" in failed["message"]
    assert "eventual dlq list" in failed["message"]

    listed = _dlq(aws, monkeypatch, "list", "--queue", "executions")
    assert listed["queues"] == {"executions": 1}
    (poison,) = listed["messages"]
    assert poison["executionId"] == execution_id
    assert poison["what"] == "event NoSuchEvent"
    assert poison["receiveCount"] >= limit
    # Listing leaves the message in its queue.
    assert _dlq(aws, monkeypatch, "list", "--queue", "executions")["queues"] == {"executions": 1}

    # onOrder cannot write its store on the first try and on Lambda's two retries.
    on_order = next(f for f in aws.functions.values() if "SubscriptionOnOrder" in f.name)
    aws.crash_before(on_order, "dynamodb.UpdateItem", times=1 + aws.retries(on_order))
    order = {"id": "o-redrive", "source": "visa-5", "amount": 10}
    redriven_id = _invoice(aws, order)
    aws.settle(until=lambda: _done(aws, redriven_id), timeout=60)
    assert json.loads(aws.http("GET", "/orders/o-redrive")["body"])["notified"] is False
    # (The Orders an older build sent, dead-lettered by an earlier test, are there too.)
    listed = _dlq(aws, monkeypatch, "list", "--queue", "onOrder")["messages"]
    dead = [m for m in listed if "o-redrive" in m["body"]]
    assert [m["what"] for m in dead] == ["event Order"]

    answer = _dlq(
        aws, monkeypatch, "redrive", "--queue", "onOrder", "--message", dead[0]["messageId"]
    )
    assert answer["problems"] == []
    assert [r["messageId"] for r in answer["redriven"]] == [dead[0]["messageId"]]
    assert answer["redriven"][0]["to"] == f"function {on_order.name}"
    aws.run_until_idle()
    assert json.loads(aws.http("GET", "/orders/o-redrive")["body"])["notified"] is True
    left = _dlq(aws, monkeypatch, "list", "--queue", "onOrder")["messages"]
    assert len(left) == len(listed) - 1
    assert not [m for m in left if "o-redrive" in m["body"]]


def test_a_crashed_orchestrator_step_is_redone_once(aws: StackHarness) -> None:
    """The orchestrator dies after dispatching an order's first step (the task invoked, the
    workflow's timeout scheduled) and before committing it: the message comes back after the
    queue's visibility timeout, a fresh container redoes the step (the schedule is updated,
    the task's second invocation finds its attempt claimed) and the order completes. A task
    completed again by its token, late, is dropped."""
    orchestrator = next(fn for fn in aws.functions.values() if fn.kind == "orchestrator")
    aws.crash_before(orchestrator, "dynamodb.TransactWriteItems")
    execution_id = _invoice(aws, {"id": "o-crash", "source": "visa-2", "amount": 7})
    aws.run_until_idle()
    assert _execution(aws, execution_id)["status"] == "IN_PROGRESS"
    assert aws.function_logs(orchestrator, "Runtime exited")
    aws.advance(n.EXECUTION_QUEUE_VISIBILITY_TIMEOUT + 1)
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    assert _execution(aws, execution_id)["status"] == "SUCCEEDED"
    history = _system(aws, "getExecutionWorkflowHistory", execution_id)["events"]
    assert sum('"chargeCreditCard"' in json.dumps(e) for e in history) == 1, history

    # Late, the charge is reported done by its token (as an external worker would): the
    # claim is read and finished, the result dropped by the completed execution.
    claims = n.ServiceNames.from_env(orchestrator.environment or {}).claims_table
    items = aws.admin_client("dynamodb").scan(TableName=claims)["Items"]
    keys = [i[n.CLAIMS_PK]["S"] for i in items if i[n.CLAIMS_PK]["S"].startswith(execution_id)]
    _, seq, attempt = min(keys).rsplit("|", 2)
    token = encode_token(execution_id, int(seq), int(attempt))
    _system(aws, "updateTask", {"type": "Success", "taskToken": token, "result": {}})
    aws.settle(timeout=30)
    assert _execution(aws, execution_id)["status"] == "SUCCEEDED"


def test_a_timer_that_arrives_early_is_rearmed(aws: StackHarness) -> None:
    """The timer queue delivers an order's 30-second wait while the timer function's clock
    says it is not due (the queue's and the function's clocks disagree): the timer re-arms
    it on its queue, and the order is dispatched when it is due."""
    execution_id = _invoice(
        aws, {"id": "o-early", "source": "visa-3", "amount": 8, "dispatch_after": 30.0}
    )
    aws.run_until_idle()
    timer = next(fn for fn in aws.functions.values() if fn.kind == "timer")
    names = n.ServiceNames.from_env(timer.environment or {})
    timer_queue = queue_arn(names.timer_queue_url, aws.region, aws.account)
    rearmed = lambda: [  # noqa: E731
        c
        for c in aws.recorder.calls
        if c.principal == timer.role and c.action == "sqs:SendMessage" and c.resource == timer_queue
    ]
    before = len(rearmed())
    aws.server.shift_clock(30)  # the queue's clock only
    aws.run_until_idle()
    assert len(rearmed()) == before + 1
    assert _execution(aws, execution_id)["status"] == "IN_PROGRESS"
    aws.advance(31)
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    assert _execution(aws, execution_id)["result"] == "dispatched"


def test_the_other_commands_of_both_services(aws: StackHarness) -> None:
    """What the scenario did not ask: an order read back through its REST route (the API's
    function reads the orders table), every execution listed, and the tracker's own command
    and system commands (a service without workflows answers with nothing to show)."""
    import shipping_tracker

    order = aws.http("GET", "/orders/o-1")
    assert order["statusCode"] == 200, order
    assert json.loads(order["body"])["status"] == "dispatched"
    listed = _system(aws, "listExecutions", {})
    assert len(listed["executions"]) >= 3
    tracker = shipping_tracker.SERVICE_NAME
    tracked = aws.http("POST", "/rpc/tracked", service=tracker)
    assert tracked["statusCode"] == 200 and "o-1" in json.loads(tracked["body"])
    assert _system(aws, "getExecution", "trackOrder/none", service=tracker) is None
    for body in ({}, {"workflowName": "none"}):
        assert _system(aws, "listExecutions", body, service=tracker)["executions"] == []
    logs = _system(aws, "getExecutionLogs", {"executionId": "none/x"}, service=tracker)
    assert logs["events"] == []


def test_two_orchestrator_containers_on_one_execution(aws: StackHarness) -> None:
    """Lambda runs the orchestrator in two execution environments, and one order's events go
    to both: the first starts the order, the second (cold) applies the charge, then a cancel
    signal reaches the first, whose warm copy of the order is behind. Its commit loses to the
    second's; it reads the step it lost to (not its own), drops its copy, and applies the
    signal to the order as stored: the order is cancelled."""
    orchestrator = next(fn for fn in aws.functions.values() if fn.kind == "orchestrator")
    aws.use_container(orchestrator, 0)
    execution_id = _invoice(
        aws, {"id": "o-twice", "source": "visa-5", "amount": 9, "dispatch_after": 3600.0}
    )
    aws.deliver()  # container 0: the start (the charge invoked)
    aws.use_container(orchestrator, 1)
    aws.deliver()  # the charge runs; container 1: its result (the hour's wait scheduled)
    aws.deliver()
    aws.use_container(orchestrator, 0)
    _system(aws, "sendSignal", {"executionId": execution_id, "signalId": "cancel"})
    aws.settle(until=lambda: _done(aws, execution_id), timeout=60)
    assert _execution(aws, execution_id)["result"] == "cancelled"


# What the roles grant that the scenario and the tests above leave unused, each with why (the
# permission check below asserts the unused grants are exactly these), keyed by the role's
# logical id without its hash, then (statement id, action). Each function declares what its
# code calls of eventual's client (calls= in the stacks), and each role is granted that.
SPILLED_RESULT = (
    "a task's result larger than a message (200 KB) goes to the payload bucket; this task's "
    "results (a charge id, a tracking number) are small, and a grant cannot depend on a size"
)
EXPECTED_UNUSED: dict[str, dict[tuple[str, str], str]] = {
    "OrderService/OrderServiceTaskChargeCreditCardRole": {
        ("Payloads", "s3:PutObject"): SPILLED_RESULT
    },
    "OrderService/OrderServiceTaskDispatchOrderRole": {
        ("Payloads", "s3:PutObject"): SPILLED_RESULT
    },
}


def _role_key(label: str) -> str:
    """``OrderService/OrderServiceApiRole1A2B3C4D (function name)`` -> without hash and name."""
    return re.sub(r"[0-9A-F]{8}$", "", label.split(" ", 1)[0])


def test_every_call_is_allowed_by_the_functions_roles(aws: StackHarness) -> None:
    """Runs after the scenario and the tests above (module order): every call each handler
    (and the AWS services acting with a role) made is checked against that role's policies
    in the template; what AWS services did with a role is what the templates make them do;
    the grants left unused are exactly :data:`EXPECTED_UNUSED`, each with its reason."""
    calls = aws.all_calls()
    assert calls, "the scenario ran first"
    assert not aws.recorder.unknown and not aws.platform.unknown
    policies = aws.role_policies()
    report = check_calls(calls, policies, labels=aws.role_labels(), service=aws.service_actions())
    print("\n".join(report.lines()))
    assert not report.denied, "\n".join(report.lines())
    assert not report.wildcard_actions
    assert not report.unexplained, "\n".join(report.lines())
    unused: dict[str, set[tuple[str, str]]] = {}
    for label, sid, action, _ in report.unused:
        unused.setdefault(_role_key(label), set()).add((sid or "-", action))
    expected = {role: set(reasons) for role, reasons in EXPECTED_UNUSED.items()}
    assert unused == expected, "\n".join(
        [
            f"unused, not expected: {r} {sorted(unused.get(r, set()) - expected.get(r, set()))}"
            for r in sorted(set(unused) | set(expected))
            if unused.get(r, set()) - expected.get(r, set())
        ]
        + [
            f"expected, but used: {r} {sorted(expected.get(r, set()) - unused.get(r, set()))}"
            for r in sorted(set(unused) | set(expected))
            if expected.get(r, set()) - unused.get(r, set())
        ]
    )
