"""The component's resources, their properties and their policies, under Pulumi's mocks."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from eventual.aws_runtime import names as n
from eventual.pulumi.testing import ACCOUNT, Deployment, run_program

from .conftest import no_code, order_service_props, policy, statements_by_sid

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FN = "aws:lambda/function:Function"
POLICY = "aws:iam/rolePolicy:RolePolicy"
QUEUE = "aws:sqs/queue:Queue"
TABLE = "aws:dynamodb/table:Table"


def arn_of(deployed: Deployment, type: str, name: str) -> str:
    return deployed.one(type, name).state["arn"]


def test_the_tables_are_those_the_runtime_reads(deployed: Deployment) -> None:
    names = n.ServiceNames.for_service("order-service")
    tables = {t["TableName"]: t for t in n.dynamodb_tables(names)}
    executions = deployed.one(TABLE, "orders-Executions").inputs
    expected = tables[names.executions_table]
    assert executions["hashKey"] == "id"
    assert {a["name"]: a["type"] for a in executions["attributes"]} == {
        a["AttributeName"]: a["AttributeType"] for a in expected["AttributeDefinitions"]
    }
    assert {i["name"] for i in executions["globalSecondaryIndexes"]} == {
        n.EXECUTIONS_INDEX_BY_TIME,
        n.EXECUTIONS_INDEX_BY_WORKFLOW,
    }
    for table in ("Executions", "History", "TaskClaims"):
        inputs = deployed.one(TABLE, f"orders-{table}").inputs
        assert inputs["billingMode"] == "PAY_PER_REQUEST"
        assert inputs["pointInTimeRecovery"] == {"enabled": True}
        assert inputs["serverSideEncryption"] == {"enabled": True}
    claims = deployed.one(TABLE, "orders-TaskClaims").inputs
    assert claims["ttl"] == {"attributeName": n.CLAIMS_TTL, "enabled": True}


def test_the_execution_queue_is_fifo_with_its_dead_letter_queue(deployed: Deployment) -> None:
    queue = deployed.one(QUEUE, "orders-ExecutionQueue").inputs
    attrs = n.execution_queue_attributes()
    assert queue["fifoQueue"] is True
    assert queue["deduplicationScope"] == attrs["DeduplicationScope"]
    assert queue["visibilityTimeoutSeconds"] == int(attrs["VisibilityTimeout"])
    assert queue["sqsManagedSseEnabled"] is True
    redrive = json.loads(queue["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": arn_of(deployed, QUEUE, "orders-ExecutionDlq"),
        "maxReceiveCount": n.DEFAULT_MAX_RECEIVE_COUNT,
    }
    assert deployed.one(QUEUE, "orders-ExecutionDlq").inputs["fifoQueue"] is True
    # Every queue refuses plain HTTP.
    for qp in deployed.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        deny = policy(qp)["Statement"][0]
        assert deny["Effect"] == "Deny"
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_payload_bucket_is_private_encrypted_and_tls_only(deployed: Deployment) -> None:
    block = deployed.one(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "orders-Payloads-PublicAccessBlock",
    ).inputs
    assert all(block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls"))
    assert block["restrictPublicBuckets"]
    sse = deployed.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "orders-Payloads-Encryption",
    ).inputs
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    bucket_policy = policy(
        deployed.one("aws:s3/bucketPolicy:BucketPolicy", "orders-Payloads-Policy")
    )
    assert bucket_policy["Statement"][0]["Effect"] == "Deny"


def test_every_function_runs_its_handler_with_the_runtime_environment(
    deployed: Deployment,
) -> None:
    functions = {r.name: r.inputs for r in deployed.of_type(FN) if r.name.startswith("orders-")}
    assert len(functions) == 9
    handlers = sorted(f["handler"] for f in functions.values())
    assert handlers.count(n.HANDLERS["task"]) == 3
    assert handlers.count(n.HANDLERS["command"]) == 2  # the API function and sendInvoice
    for f in functions.values():
        env = f["environment"]["variables"]
        assert set(n.ENV_OF_FIELD.values()) <= set(env)
        assert env[n.ENV_SERVICE_NAME] == "order-service"
        assert env[n.ENV_SERVICE_ENTRY] == "order_service"
        assert f["runtime"] == "python3.11"
    charge = functions["orders-TaskChargeCreditCard-Function"]
    assert charge["name"] == n.ServiceNames.for_service("order-service").task_function(
        "chargeCreditCard"
    )
    assert charge["timeout"] == 60
    assert charge["environment"]["variables"][n.ENV_TASK] == "chargeCreditCard"
    assert charge["deadLetterConfig"]["targetArn"] == arn_of(deployed, QUEUE, "orders-TaskDlq")
    invoke = deployed.one(
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "orders-TaskChargeCreditCard-Function-EventInvokeConfig",
    ).inputs
    assert invoke["maximumRetryAttempts"] == 2
    assert functions["orders-CommandSendInvoice-Function"]["memorySize"] == 256
    assert functions["orders-Orchestrator-Function"]["environment"]["variables"][
        n.ENV_MAX_RECEIVE_COUNT
    ] == str(n.DEFAULT_MAX_RECEIVE_COUNT)


def test_the_orchestrator_is_granted_what_it_does_and_nothing_more(
    deployed: Deployment,
) -> None:
    statements = statements_by_sid(deployed.one(POLICY, "orders-Orchestrator-Role-DefaultPolicy"))
    assert set(statements) == {
        "OwnLogs",
        "QueueTrigger",
        "Executions",
        "History",
        "ExecutionQueue",
        "Events",
        "Payloads",
        "ListExecutionPayloads",
        "InvokeTasks",
        "TimerQueue",
        "Schedules",
        "PassSchedulerRole",
        "WorkflowLogs",
    }
    # Retention: the finished execution's payloads listed under their prefix only, then
    # tagged; its history items re-put with their expiry.
    assert statements["ListExecutionPayloads"]["Action"] == "s3:ListBucket"
    assert statements["ListExecutionPayloads"]["Resource"] == arn_of(
        deployed, "aws:s3/bucket:Bucket", "orders-Payloads"
    )
    assert statements["ListExecutionPayloads"]["Condition"] == {
        "StringLike": {"s3:prefix": f"{n.PAYLOAD_EXECUTIONS_PREFIX}*"}
    }
    assert "s3:PutObjectTagging" in statements["Payloads"]["Action"]
    assert "dynamodb:BatchWriteItem" in statements["History"]["Action"]
    assert statements["InvokeTasks"]["Resource"] == sorted(
        arn_of(deployed, FN, f"orders-Task{t}-Function")
        for t in ("ChargeBack", "ChargeCreditCard", "DispatchOrder")
    ) or set(statements["InvokeTasks"]["Resource"]) == {
        arn_of(deployed, FN, f"orders-Task{t}-Function")
        for t in ("ChargeBack", "ChargeCreditCard", "DispatchOrder")
    }
    assert statements["PassSchedulerRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
    }
    assert statements["Schedules"]["Resource"].endswith("/*")
    assert ":schedule/" in statements["Schedules"]["Resource"]
    assert statements["QueueTrigger"]["Action"] == [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    ]


def test_no_statement_has_a_wildcard_action_or_a_foreign_resource(
    deployed: Deployment,
) -> None:
    own = {r.state["arn"] for r in deployed.resources if "arn" in r.state}
    own |= {r.state["executionArn"] for r in deployed.resources if "executionArn" in r.state}
    for rp in deployed.of_type(POLICY):
        for s in policy(rp)["Statement"]:
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            assert not any("*" in a for a in actions), (rp.name, s)
            resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for resource in resources:
                # A schedule of the group is named in the group's ARN space.
                resource = resource.replace(":schedule/", ":schedule-group/")
                base = resource.split("/index/")[0].removesuffix("/*").removesuffix("/payloads/*")
                assert base in own or any(resource.startswith(a) for a in own), (rp.name, s)


def test_a_service_without_workflows_gets_no_orchestration_grants(
    deployed: Deployment,
) -> None:
    # No workflow: no orchestrator or timer function at all, so no role or trigger for them.
    billing = [r.name for r in deployed.resources if r.name.startswith("billing-")]
    assert not [
        n
        for n in billing
        if n.startswith(("billing-Orchestrator", "billing-Timer-"))
        or n in ("billing-TimerFunction", "billing-Timer")
    ]
    assert "billing-System-Function" in billing
    system = statements_by_sid(deployed.one(POLICY, "billing-System-Role-DefaultPolicy"))
    assert system["Executions"]["Action"] == "dynamodb:GetItem"
    assert "History" not in system
    # No workflow, no task: the scheduler's role has nothing to do.
    assert not [
        r for r in deployed.of_type(POLICY) if r.name == "billing-SchedulerRole-DefaultPolicy"
    ]


def test_a_subscription_has_its_rule_and_its_own_dead_letter_queue(
    deployed: Deployment,
) -> None:
    rule = deployed.one("aws:cloudwatch/eventRule:EventRule", "orders-RuleOnOrder").inputs
    assert json.loads(rule["eventPattern"]) == {"detail-type": ["Order"]}
    target = deployed.one("aws:cloudwatch/eventTarget:EventTarget", "orders-RuleOnOrder-Target0")
    assert target.inputs["arn"] == arn_of(deployed, FN, "orders-SubscriptionOnOrder-Function")
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 10}
    dlq = arn_of(deployed, QUEUE, "orders-SubscriptionOnOrderDlq")
    assert target.inputs["deadLetterConfig"] == {"arn": dlq}
    dlq_policy = policy(
        deployed.one("aws:sqs/queuePolicy:QueuePolicy", "orders-SubscriptionOnOrderDlq-Policy")
    )
    allow = dlq_policy["Statement"][1]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == arn_of(
        deployed, "aws:cloudwatch/eventRule:EventRule", "orders-RuleOnOrder"
    )


def test_the_http_api_routes_system_commands_behind_iam(deployed: Deployment) -> None:
    routes = {
        r.inputs["routeKey"]: r.inputs
        for r in deployed.of_type("aws:apigatewayv2/route:Route")
        if r.name.startswith("orders-")
    }
    assert routes[f"POST {n.SYSTEM_ROUTE_PREFIX}{{proxy+}}"]["authorizationType"] == "AWS_IAM"
    assert routes["GET /orders/{id}"]["authorizationType"] == "NONE"
    assert {"$default", "POST /rpc/getOrder", "POST /rpc/sendInvoice", "GET /hello"} <= set(routes)
    send = deployed.one(
        "aws:apigatewayv2/integration:Integration", "orders-HttpApi-CommandSendInvoice"
    )
    assert routes["POST /rpc/sendInvoice"]["target"] == f"integrations/{send.id}"
    stage = deployed.one("aws:apigatewayv2/stage:Stage", "orders-Stage").inputs
    assert stage["name"] == "$default"
    assert json.loads(stage["accessLogSettings"]["format"])["status"] == "$context.status"


def test_the_discovery_record_names_the_api_bus_and_dead_letter_queues(
    deployed: Deployment,
) -> None:
    param = deployed.one("aws:ssm/parameter:Parameter", "orders-Discovery").inputs
    assert param["name"] == n.service_parameter("order-service")
    record = json.loads(param["value"])
    assert record["version"] == n.SERVICE_RECORD_VERSION
    assert record["account"] == ACCOUNT
    assert record["apiUrl"].startswith("https://") and record["apiUrl"].endswith("/")
    assert [d["kind"] for d in record["deadLetters"]] == [
        "execution",
        "timer",
        "task",
        "subscription",
    ]


def test_subscribe_forwards_the_events_to_the_other_bus(deployed: Deployment) -> None:
    rule = deployed.one("aws:cloudwatch/eventRule:EventRule", "billing-orders")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail-type"] == ["Order"]
    assert pattern["source"] == [n.event_source("order-service")]
    assert rule.inputs["eventBusName"] == "orders-Bus-0000"
    target = deployed.one("aws:cloudwatch/eventTarget:EventTarget", "billing-orders-Target0")
    billing_bus = arn_of(deployed, "aws:cloudwatch/eventBus:EventBus", "billing-Bus")
    assert target.inputs["arn"] == billing_bus
    role_policy = policy(deployed.one(POLICY, "billing-orders-EventsRole-DefaultPolicy"))
    assert role_policy["Statement"] == [
        {"Effect": "Allow", "Action": "events:PutEvents", "Resource": billing_bus}
    ]
    payloads = policy(deployed.one(POLICY, "billing-orders-SubscriptionBillOrder-Payloads"))
    assert payloads["Statement"][0]["Resource"].endswith("orders-Payloads/payloads/*")


def test_grants_name_the_system_route_and_the_bus(deployed: Deployment) -> None:
    start = policy(deployed.one(POLICY, "caller-start"))["Statement"][0]
    assert start["Action"] == "execute-api:Invoke"
    assert start["Resource"].endswith("/$default/POST/rpc/_system/startExecution")
    emit = policy(deployed.one(POLICY, "caller-emit"))["Statement"][0]
    assert emit["Resource"] == arn_of(deployed, "aws:cloudwatch/eventBus:EventBus", "orders-Bus")


def _deploy(**overrides: Any) -> Deployment:
    from eventual.pulumi import Service

    props = {**order_service_props(), "code": no_code(), **overrides}
    return run_program(lambda: Service("orders", **props))


def test_an_unknown_command_fails_with_the_names_the_service_defines() -> None:
    from eventual.pulumi import CommandProps, UnknownNameError

    with pytest.raises(UnknownNameError) as info:
        _deploy(commands={"sendInvoce": CommandProps()})
    assert str(info.value) == (
        "commands= names 'sendInvoce', which service 'order-service' does not define; its "
        "commands are: getOrder, sendInvoice"
    )


def test_settings_are_checked_with_the_cdk_constructs_messages() -> None:
    from eventual.pulumi import CommandProps

    with pytest.raises(ValueError, match="set by the construct for the runtime"):
        _deploy(environment={n.ENV_SERVICE_NAME: "x"})
    with pytest.raises(ValueError, match=r"CommandSendInvoice: timeout 31s is over the 30s"):
        _deploy(commands={"sendInvoice": CommandProps(timeout=31)})
    with pytest.raises(ValueError, match=r"python_version '3\.9' is not supported"):
        _deploy(python_version="3.9")
    with pytest.raises(ValueError, match="architecture 'arm' is not a Lambda architecture"):
        _deploy(architecture="arm")
    for bad in (0, 1.5, "30d"):
        with pytest.raises(ValueError, match="a whole number, 1 or more"):
            _deploy(retention=bad)


def test_retention_sets_the_lifecycle_rule_and_every_functions_period(
    deployed: Deployment,
) -> None:
    """The default period (30 days) and ``retention=7``: the payload bucket's rule expires a
    finished execution's tagged objects after it, and every function writes TTLs of it."""
    week = _deploy(retention=7)
    for deployment, days in ((deployed, n.RETENTION_DAYS), (week, 7)):
        lifecycle = deployment.one(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "orders-Payloads-Lifecycle",
        ).inputs
        rules = {r["id"]: r for r in lifecycle["rules"]}
        assert rules["FinishedExecutionPayloads"]["expiration"]["days"] == days
        assert rules["FinishedExecutionPayloads"]["filter"]["tag"] == {
            "key": n.PAYLOAD_EXPIRE_TAG,
            "value": "true",
        }
        # Emitted events' payloads go by age, never before a dead-lettered delivery's redrive.
        assert rules["EmittedEventPayloads"]["filter"]["prefix"] == n.PAYLOAD_EVENTS_PREFIX
        assert rules["EmittedEventPayloads"]["expiration"]["days"] == max(
            days, n.EVENT_PAYLOAD_MIN_DAYS
        )
        functions = [r for r in deployment.of_type(FN) if r.name.startswith("orders-")]
        assert functions
        for fn in functions:
            assert fn.inputs["environment"]["variables"][n.RETENTION_DAYS_ENV] == str(days)


def test_without_code_the_shared_bundler_builds_the_functions_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from eventual.aws_runtime.infra.bundling import Bundle
    from eventual.pulumi import service

    zip_path = tmp_path / "bundle.zip"
    zip_path.write_bytes(b"")
    calls: list[tuple[str, str, str]] = []

    def fake_build(entry: str, *, python_version: str, architecture: str, options: Any) -> Bundle:
        calls.append((entry, python_version, architecture))
        return Bundle(path=zip_path, key="k", cached=True, platform="p", python_version="3.12")

    monkeypatch.setattr(service, "build_bundle", fake_build)
    props = {**order_service_props(), "python_version": "3.12", "architecture": "arm64"}
    deployed = run_program(lambda: service.Service("orders", **props))
    assert calls == [("order_service", "3.12", "arm64")]
    fn = deployed.one(FN, "orders-Api-Function").inputs
    assert fn["architectures"] == ["arm64"]
    assert fn["runtime"] == "python3.12"
    assert isinstance(deployed.result.code, pulumi.FileArchive)
