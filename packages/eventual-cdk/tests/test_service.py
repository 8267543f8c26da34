"""The synthesized order-service template: resources, routes, environment, permissions, the
discovery record, cfn-lint and cdk-nag. The app is synthesized once (conftest)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from eventual.aws_runtime import names as n


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def ref_id(value: Any) -> str | None:
    """The logical id a ``Ref``/``Fn::GetAtt`` points at."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def logical_id(construct: Any) -> str:
    """The logical id of a construct's CloudFormation resource (of a Function: its L1)."""
    import aws_cdk as cdk

    resource = construct.node.default_child or construct
    return cdk.Stack.of(construct).get_logical_id(resource)


def function(template: dict[str, Any], fn: Any) -> tuple[str, dict[str, Any]]:
    lid = logical_id(fn)
    return lid, template["Resources"][lid]


def policy_statements(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if any(ref_id(r) == role_id for r in policy["Properties"]["Roles"]):
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for s in statements:
        acts = s["Action"]
        out.update([acts] if isinstance(acts, str) else acts)
    return out


def test_state_resources_match_the_runtime_names(orders_template: dict[str, Any]) -> None:
    t = Template.from_json(orders_template)
    t.resource_count_is("AWS::DynamoDB::Table", 3)
    t.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": n.EXECUTIONS_PK, "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    Match.object_like(
                        {
                            "IndexName": n.EXECUTIONS_INDEX_BY_TIME,
                            "KeySchema": [
                                {"AttributeName": n.EXECUTIONS_LIST_SHARD, "KeyType": "HASH"},
                                {"AttributeName": n.EXECUTIONS_START_KEY, "KeyType": "RANGE"},
                            ],
                            "Projection": {
                                "ProjectionType": "INCLUDE",
                                "NonKeyAttributes": n.EXECUTIONS_INDEX_PROJECTION,
                            },
                        }
                    )
                ]
            ),
            "SSESpecification": {"SSEEnabled": True},
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    t.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [
                {"AttributeName": n.HISTORY_PK, "KeyType": "HASH"},
                {"AttributeName": n.HISTORY_SK, "KeyType": "RANGE"},
            ],
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )
    t.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": n.CLAIMS_PK, "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": n.CLAIMS_TTL, "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
        },
    )
    # Retention: TTL on the executions and history tables too, and the payload bucket's
    # lifecycle rule for a finished execution's objects.
    for table in resources(orders_template, "AWS::DynamoDB::Table").values():
        assert table["Properties"]["TimeToLiveSpecification"] == {
            "AttributeName": n.RETENTION_TTL,
            "Enabled": True,
        }
    (bucket,) = resources(orders_template, "AWS::S3::Bucket").values()
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["FinishedExecutionPayloads"]["ExpirationInDays"] == n.RETENTION_DAYS
    assert rules["FinishedExecutionPayloads"]["TagFilters"] == [
        {"Key": n.PAYLOAD_EXPIRE_TAG, "Value": "true"}
    ]
    assert rules["EmittedEventPayloads"]["Prefix"] == n.PAYLOAD_EVENTS_PREFIX
    assert rules["EmittedEventPayloads"]["ExpirationInDays"] == n.RETENTION_DAYS
    # Every function reads the same period (the TTL the stores write) from its environment.
    for fn in resources(orders_template, "AWS::Lambda::Function").values():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env[n.RETENTION_DAYS_ENV] == str(n.RETENTION_DAYS)
    # The FIFO execution queue, as names.execution_queue_attributes() describes it, with a
    # FIFO dead-letter queue.
    attrs = n.execution_queue_attributes()
    queues = resources(orders_template, "AWS::SQS::Queue")
    fifo = [q for q in queues.values() if q["Properties"].get("FifoQueue")]
    assert len(fifo) == 2
    (main,) = [q for q in fifo if "RedrivePolicy" in q["Properties"]]
    props = main["Properties"]
    assert props["DeduplicationScope"] == attrs["DeduplicationScope"]
    assert props["FifoThroughputLimit"] == attrs["FifoThroughputLimit"]
    assert props["ContentBasedDeduplication"] is False
    assert props["VisibilityTimeout"] == int(attrs["VisibilityTimeout"])
    dlq_id = ref_id(props["RedrivePolicy"]["deadLetterTargetArn"])
    assert queues[dlq_id]["Properties"]["FifoQueue"] is True
    # Every queue encrypted; 6 queues: execution + DLQ, timer + DLQ, task DLQ, subscription DLQ.
    assert len(queues) == 6
    assert all(q["Properties"].get("SqsManagedSseEnabled") for q in queues.values())
    timer = [
        q
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"] and not q["Properties"].get("FifoQueue")
    ]
    assert timer[0]["Properties"]["VisibilityTimeout"] == n.TIMER_QUEUE_VISIBILITY_TIMEOUT
    # The payload bucket: encrypted, no public access, TLS required.
    t.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    t.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    t.resource_count_is("AWS::Events::EventBus", 1)
    t.resource_count_is("AWS::Scheduler::ScheduleGroup", 1)
    # The scheduler's role: assumed by EventBridge Scheduler of this account only, and allowed
    # to send to the timer queue only.
    t.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "scheduler.amazonaws.com"},
                            "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}},
                        }
                    )
                ]
            }
        },
    )


def test_retention_sets_the_lifecycle_rule_and_every_functions_period(
    shipping_template: dict[str, Any],
) -> None:
    """``retention=Duration.days(7)`` (the shipping service's): the bucket's rule expires
    finished executions' payloads after 7 days, and every function writes 7-day TTLs."""
    (bucket,) = resources(shipping_template, "AWS::S3::Bucket").values()
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["FinishedExecutionPayloads"]["ExpirationInDays"] == 7
    # An emitted event's payload outlives a dead-lettered delivery of it (14 days).
    assert rules["EmittedEventPayloads"]["ExpirationInDays"] == n.EVENT_PAYLOAD_MIN_DAYS
    functions = resources(shipping_template, "AWS::Lambda::Function").values()
    assert functions
    for fn in functions:
        assert fn["Properties"]["Environment"]["Variables"][n.RETENTION_DAYS_ENV] == "7"


def test_retention_must_be_whole_days(synth: Any) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from eventual.cdk import Service

    for bad, says in (
        (0, "retention=0"),
        (cdk.Duration.hours(12), "whole number of days"),
    ):
        stack = cdk.Stack(cdk.App(), "Retention")
        with pytest.raises(Exception, match=says):
            Service(
                stack,
                "Orders",
                entry="order_service",
                retention=bad,
                code=lambda_.Code.from_inline("unused"),
            )


def test_functions_and_their_environment(synth: Any, orders_template: dict[str, Any]) -> None:
    functions = resources(orders_template, "AWS::Lambda::Function")
    spec = synth.orders.spec
    # orchestrator, timer, system, api, getOrder (has props), 3 tasks, 1 subscription
    assert len(functions) == 5 + len(spec["tasks"]) + len(spec["subscriptions"])
    roles = {ref_id(f["Properties"]["Role"]) for f in functions.values()}
    assert len(roles) == len(functions), "every function has its own role"
    handlers = {f["Properties"]["Handler"] for f in functions.values()}
    assert handlers == set(n.HANDLERS.values())

    defaults = n.ServiceNames.for_service("order-service")
    for fn in functions.values():
        env = fn["Properties"]["Environment"]["Variables"]
        expected = {n.ENV_SERVICE_NAME, n.ENV_SERVICE_ENTRY, *n.ENV_OF_FIELD.values()}
        assert expected <= set(env), sorted(expected - set(env))
        assert env[n.ENV_SERVICE_ENTRY] == "order_service"
        assert env[n.ENV_SERVICE_NAME] == "order-service"
        assert env[n.ENV_TASK_FUNCTION_PREFIX] == defaults.task_function_prefix
        assert env["ORDER_SERVICE_DB"] == "/tmp/orders.db"  # the service-wide environment
        assert fn["Properties"]["Runtime"] == "python3.11"
        # The queue handlers know their last attempt (the queues' maxReceiveCount).
        queue_handler = fn["Properties"]["Handler"] in (
            n.HANDLERS["orchestrator"],
            n.HANDLERS["timer"],
        )
        assert env.get(n.ENV_MAX_RECEIVE_COUNT) == ("10" if queue_handler else None)

    # One function per task, named as the runtime's dispatcher invokes it.
    for task in spec["tasks"]:
        (fn,) = [
            f
            for f in functions.values()
            if f["Properties"].get("Environment", {}).get("Variables", {}).get(n.ENV_TASK)
            == task["name"]
        ]
        assert fn["Properties"]["FunctionName"] == defaults.task_function(task["name"])
        assert fn["Properties"]["Handler"] == n.HANDLERS["task"]
        assert "DeadLetterConfig" in fn["Properties"]
    _, charge = function(orders_template, synth.orders.task_functions["chargeCreditCard"])
    assert charge["Properties"]["MemorySize"] == 1024
    assert charge["Properties"]["Timeout"] == 30
    assert charge["Properties"]["Environment"]["Variables"]["PSP"] == "test"
    _, dispatch = function(orders_template, synth.orders.task_functions["dispatchOrder"])
    assert dispatch["Properties"]["MemorySize"] == 512
    assert "PSP" not in dispatch["Properties"]["Environment"]["Variables"]
    configs = resources(orders_template, "AWS::Lambda::EventInvokeConfig")
    # Only the task with retry_attempts gets an invoke config (Lambda's default is 2).
    assert [c["Properties"]["MaximumRetryAttempts"] for c in configs.values()] == [1]

    _, get_order = function(orders_template, synth.orders.command_functions["getOrder"])
    assert get_order["Properties"]["MemorySize"] == 256
    assert get_order["Properties"]["ReservedConcurrentExecutions"] == 5
    _, sub = function(orders_template, synth.orders.subscription_functions["onOrder"])
    assert sub["Properties"]["Environment"]["Variables"][n.ENV_SUBSCRIPTION] == "onOrder"

    # The orchestrator reads the execution queue in batches, reporting partial failures.
    t = Template.from_json(orders_template)
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "BatchSize": n.ORCHESTRATOR_BATCH_SIZE,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "FunctionName": {"Ref": function(orders_template, synth.orders.orchestrator)[0]},
        },
    )
    t.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "FunctionName": {"Ref": function(orders_template, synth.orders.timer_function)[0]},
        },
    )


def test_routes(synth: Any, orders_template: dict[str, Any]) -> None:
    routes = resources(orders_template, "AWS::ApiGatewayV2::Route")
    integrations = resources(orders_template, "AWS::ApiGatewayV2::Integration")

    def target_function(route: dict[str, Any]) -> str:
        target = route["Properties"]["Target"]["Fn::Join"][1][1]
        integration = integrations[ref_id(target)]  # type: ignore[index]
        return ref_id(integration["Properties"]["IntegrationUri"])  # type: ignore[return-value]

    by_key = {r["Properties"]["RouteKey"]: r for r in routes.values()}
    assert set(by_key) == {
        "POST /rpc/_system/{proxy+}",
        "POST /rpc/sendInvoice",
        "POST /rpc/getOrder",
        "GET /orders/{id}",
        "GET /hello",
        "$default",
    }
    assert by_key["POST /rpc/_system/{proxy+}"]["Properties"]["AuthorizationType"] == "AWS_IAM"
    for key, route in by_key.items():
        if not key.startswith("POST /rpc/_system/"):
            assert route["Properties"].get("AuthorizationType", "NONE") == "NONE", key
    api_fn = function(orders_template, synth.orders.api_function)[0]
    command_fn = function(orders_template, synth.orders.command_functions["getOrder"])[0]
    system_fn = function(orders_template, synth.orders.system_function)[0]
    assert target_function(by_key["POST /rpc/_system/{proxy+}"]) == system_fn
    # getOrder has props: its own function serves both its RPC and its REST route.
    assert target_function(by_key["POST /rpc/getOrder"]) == command_fn
    assert target_function(by_key["GET /orders/{id}"]) == command_fn
    for key in ("POST /rpc/sendInvoice", "GET /hello", "$default"):
        assert target_function(by_key[key]) == api_fn, key
    # Access logs on the stage.
    (stage,) = resources(orders_template, "AWS::ApiGatewayV2::Stage").values()
    assert "DestinationArn" in stage["Properties"]["AccessLogSettings"]


def test_iam_auth_commands_and_cors(shipping_template: dict[str, Any]) -> None:
    # Built with iam_auth_commands=True: every route needs SigV4, user commands included.
    routes = resources(shipping_template, "AWS::ApiGatewayV2::Route")
    keys = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}
    assert "POST /rpc/shipped" in keys
    assert {k: p.get("AuthorizationType") for k, p in keys.items()} == dict.fromkeys(
        keys, "AWS_IAM"
    )
    (api,) = resources(shipping_template, "AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["CorsConfiguration"] == {
        "AllowOrigins": ["https://shop.example.com"],
        "AllowMethods": ["POST", "GET"],
        "AllowHeaders": ["content-type", "authorization"],
        "MaxAge": 600,
    }


def test_subscription_rule_targets_its_function(
    synth: Any, orders_template: dict[str, Any]
) -> None:
    rules = resources(orders_template, "AWS::Events::Rule")
    (rule,) = rules.values()
    props = rule["Properties"]
    assert props["EventPattern"] == n.subscription_event_pattern(["Order"])
    bus_id = next(iter(resources(orders_template, "AWS::Events::EventBus")))
    assert ref_id(props["EventBusName"]) == bus_id
    (target,) = props["Targets"]
    assert (
        ref_id(target["Arn"])
        == function(orders_template, synth.orders.subscription_functions["onOrder"])[0]
    )
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    assert "DeadLetterConfig" in target


def _all_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


ALLOWED_WILDCARD_RESOURCES = [
    re.compile(r"/payloads/\*$"),  # payload objects (content-hash keys)
    re.compile(r":schedule/[^/]+/\*$"),  # the service's schedule group
]


def _flatten(value: Any) -> str:
    """A resource ARN expression as one string (tokens as <id>)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            return "".join(_flatten(v) for v in value["Fn::Join"][1])
        ref = ref_id(value)
        if ref is not None:
            return f"<{ref}>"
        if "Fn::ImportValue" in value:
            return "<import>"
    return json.dumps(value)


@pytest.mark.parametrize("stack", ["orders", "shipping"])
def test_iam_has_no_wildcard_actions_or_resources(
    stack: str, orders_template: dict[str, Any], shipping_template: dict[str, Any]
) -> None:
    template = orders_template if stack == "orders" else shipping_template
    statements = _all_statements(template)
    assert statements
    for statement in statements:
        for action in actions_of([statement]):
            assert "*" not in action, statement
        resources_ = statement["Resource"]
        for resource in resources_ if isinstance(resources_, list) else [resources_]:
            text = _flatten(resource)
            assert text != "*", statement
            if "*" in text:
                assert any(p.search(text) for p in ALLOWED_WILDCARD_RESOURCES) or (
                    # the caller's execute-api grants: a REST path parameter
                    "execute-api" in text and "/$default/" in text
                ), text


def test_each_function_gets_only_what_its_handler_uses(
    synth: Any, orders_template: dict[str, Any]
) -> None:
    def actions(fn_construct: Any) -> set[str]:
        _, fn = function(orders_template, fn_construct)
        return actions_of(policy_statements(orders_template, ref_id(fn["Properties"]["Role"])))  # type: ignore[arg-type]

    orchestrator = actions(synth.orders.orchestrator)
    assert {
        "lambda:InvokeFunction",
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "iam:PassRole",
        "dynamodb:UpdateItem",
        "sqs:ReceiveMessage",
        "events:PutEvents",
    } <= orchestrator
    api = actions(synth.orders.api_function)
    assert "lambda:InvokeFunction" not in api
    assert not any(a.startswith("scheduler:") for a in api)
    assert "logs:FilterLogEvents" not in api
    assert "dynamodb:Query" not in api
    system = actions(synth.orders.system_function)
    assert {"logs:FilterLogEvents", "dynamodb:Query"} <= system
    task = actions(synth.orders.task_functions["chargeCreditCard"])
    assert "dynamodb:PutItem" in task  # the claim
    assert "lambda:InvokeFunction" not in task
    assert not any(a.startswith("scheduler:") for a in task)
    timer = actions(synth.orders.timer_function)
    # The timer finishes the claim of a timed-out task (chargeCreditCard has a timeout) and
    # re-arms early timers on its queue; no task has a heartbeat beyond the queue's 15
    # minutes, so it never makes a schedule, and fired timers carry no large payload.
    assert {"dynamodb:UpdateItem", "sqs:SendMessage"} <= timer
    assert not any(a.startswith("scheduler:") for a in timer)
    assert "iam:PassRole" not in timer
    assert "events:PutEvents" not in timer
    assert not any(a.startswith("s3:") for a in timer)
    # The system commands read histories, never write them.
    _, system_fn = function(orders_template, synth.orders.system_function)
    system_role = ref_id(system_fn["Properties"]["Role"])
    assert system_role is not None
    (history,) = [
        s for s in policy_statements(orders_template, system_role) if s["Sid"] == "History"
    ]
    assert history["Action"] == "dynamodb:Query"


def test_a_service_without_workflows_gets_no_orchestration_grants(
    synth: Any, shipping_template: dict[str, Any]
) -> None:
    """The shipping service defines a command, an event and a subscription, no workflow and
    no task: it has no orchestrator and no timer function (nothing would ever send them a
    message), nothing starts executions or claims tasks, and the scheduler's role may send
    nothing."""

    def actions(fn_construct: Any) -> set[str]:
        _, fn = function(shipping_template, fn_construct)
        return actions_of(policy_statements(shipping_template, ref_id(fn["Properties"]["Role"])))  # type: ignore[arg-type]

    shipping = synth.shipping
    assert shipping.orchestrator is None and shipping.timer_function is None
    handlers = {
        f["Properties"]["Handler"]
        for f in resources(shipping_template, "AWS::Lambda::Function").values()
    }
    assert not handlers & {n.HANDLERS["orchestrator"], n.HANDLERS["timer"]}, handlers
    assert not resources(shipping_template, "AWS::Lambda::EventSourceMapping")
    scheduler_id = synth.shipping_stack.get_logical_id(shipping.scheduler_role.node.default_child)
    assert policy_statements(shipping_template, scheduler_id) == []

    def sids(fn_construct: Any) -> set[str]:
        _, fn = function(shipping_template, fn_construct)
        role = ref_id(fn["Properties"]["Role"])
        assert role is not None
        return {s.get("Sid", "") for s in policy_statements(shipping_template, role)}

    orchestration = {"Executions", "History", "ExecutionQueue", "TaskClaims", "TimerQueue"}
    for fn in (shipping.api_function, *shipping.subscription_functions.values()):
        assert "events:PutEvents" in actions(fn)
        assert not sids(fn) & orchestration, sids(fn)
    system = actions(shipping.system_function)
    assert {"dynamodb:GetItem", "dynamodb:Query", "logs:FilterLogEvents"} <= system
    assert not system & {"dynamodb:PutItem", "dynamodb:UpdateItem", "sqs:SendMessage"}
    assert not sids(shipping.system_function) & (orchestration - {"Executions"})
    # The subscription reads a large event's payload from its own bucket (and, forwarded from
    # the order service, from that one's); the command reads nothing there.
    assert "s3:GetObject" in actions(shipping.subscription_functions["shipOrder"])
    assert "s3:GetObject" not in actions(shipping.api_function)


def test_the_orchestrator_invokes_exactly_the_task_functions(
    synth: Any, orders_template: dict[str, Any]
) -> None:
    # The orchestrator invokes exactly the task functions.
    _, orch = function(orders_template, synth.orders.orchestrator)
    (invoke,) = [
        s
        for s in policy_statements(orders_template, ref_id(orch["Properties"]["Role"]))  # type: ignore[arg-type]
        if "lambda:InvokeFunction" in actions_of([s])
    ]
    task_ids = {
        k
        for k, f in resources(orders_template, "AWS::Lambda::Function").items()
        if f["Properties"]["Handler"] == n.HANDLERS["task"]
    }
    assert {ref_id(r) for r in invoke["Resource"]} == task_ids


def test_grants_to_a_caller(synth: Any, orders_template: dict[str, Any]) -> None:
    role_id = synth.orders_stack.get_logical_id(synth.caller.node.default_child)
    statements = policy_statements(orders_template, role_id)
    by_action: dict[str, list[str]] = {}
    for s in statements:
        res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        for a in actions_of([s]):
            by_action.setdefault(a, []).extend(_flatten(r) for r in res)
    invoke = by_action["execute-api:Invoke"]
    assert any(r.endswith("/$default/POST/rpc/_system/startExecution") for r in invoke)
    assert any(r.endswith("/$default/POST/rpc/sendInvoice") for r in invoke)
    assert any(r.endswith("/$default/GET/orders/*") for r in invoke)
    assert not any("/rpc/_system/" in r and "startExecution" not in r for r in invoke)
    bus_id = next(iter(resources(orders_template, "AWS::Events::EventBus")))
    assert by_action["events:PutEvents"] == [f"<{bus_id}>"]


def test_outputs_and_discovery_record(synth: Any, orders_template: dict[str, Any]) -> None:
    outputs = orders_template["Outputs"]
    values = {k: _flatten(v["Value"]) for k, v in outputs.items()}
    api_id = next(iter(resources(orders_template, "AWS::ApiGatewayV2::Api")))
    bus_id = next(iter(resources(orders_template, "AWS::Events::EventBus")))
    assert any(v.startswith(f"https://<{api_id}>.execute-api.") for v in values.values())
    assert f"<{bus_id}>" in values.values()
    (param,) = resources(orders_template, "AWS::SSM::Parameter").values()
    assert param["Properties"]["Name"] == n.service_parameter("order-service")
    # The JSON value, with the tokens written as <id>.
    record = json.loads(_flatten(param["Properties"]["Value"]))
    assert record["version"] == n.SERVICE_RECORD_VERSION
    assert record["service"] == "order-service"
    assert record["apiUrl"].startswith(f"https://<{api_id}>.execute-api.us-east-1.")
    assert record["eventBusArn"] == f"<{bus_id}>"
    assert record["region"] == "us-east-1"
    assert set(record) >= {"eventBusName", "account", "logGroup", "stack"}
    assert param["Properties"]["Tier"] == "Intelligent-Tiering"  # advanced only past 4 KB
    # Each dead-letter queue (its URL: a Ref) and where `eventual dlq redrive` sends back.
    queues = resources(orders_template, "AWS::SQS::Queue")
    functions = resources(orders_template, "AWS::Lambda::Function")
    dead = {d["name"]: d for d in record["deadLetters"]}
    subscriptions = [d for d in record["deadLetters"] if d["kind"] == "subscription"]
    assert [d["kind"] for d in record["deadLetters"][:3]] == ["execution", "timer", "task"]
    assert subscriptions and len(record["deadLetters"]) == 3 + len(subscriptions)
    for d in record["deadLetters"]:
        queue_id = d["queueUrl"].strip("<>")
        assert queue_id in queues and "Dlq" in queue_id, d
    assert "RedrivePolicy" in queues[dead["executions"]["source"].strip("<>")]["Properties"]
    task_functions = {
        f["Properties"]["Environment"]["Variables"][n.ENV_TASK]: f_id
        for f_id, f in functions.items()
        if n.ENV_TASK in f["Properties"]["Environment"]["Variables"]
    }
    assert {t: f.strip("<>") for t, f in dead["tasks"]["source"].items()} == task_functions
    for d in subscriptions:
        assert d["source"].strip("<>") in functions, d
        assert f"Subscription{d['name'][0].upper()}" in d["queueUrl"], d


def test_unknown_names_fail_synthesis_with_the_defined_names(synth: Any) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from eventual.cdk import CommandProps, Service, TaskProps, UnknownNameError

    stack = cdk.Stack(cdk.App(), "Bad")
    with pytest.raises(UnknownNameError) as info:
        Service(
            stack,
            "Orders",
            entry="order_service",
            tasks={"chargeCard": TaskProps(memory_size=256)},
            commands={"sendInvoice": CommandProps(), "cancel": CommandProps()},
            code=lambda_.Code.from_inline("unused"),
        )
    message = str(info.value)
    assert "'chargeCard'" in message
    assert "chargeBack, chargeCreditCard, dispatchOrder" in message
    assert "'cancel'" in message and "getOrder, sendInvoice" in message
    assert "'sendInvoice'" not in message


def test_cfn_lint_reports_no_errors(synth: Any) -> None:
    files = [
        str(synth.outdir / synth.orders_stack.template_file),
        str(synth.outdir / synth.shipping_stack.template_file),
    ]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(proc.stdout or "[]")
    errors = [f for f in findings if f["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]
    assert proc.returncode in (0, 4, 8, 12), proc.stderr  # warnings/informational only


def test_cdk_nag_aws_solutions_has_no_unsuppressed_errors(synth: Any) -> None:
    for stack in (synth.orders_stack, synth.shipping_stack):
        artifact = synth.assembly.get_stack_by_name(stack.stack_name)
        nag = [
            m
            for m in artifact.messages
            if "AwsSolutions-" in str(m.entry.data) and m.level.name == "ERROR"
        ]
        assert not nag, "\n".join(f"{m.id}: {str(m.entry.data)[:300]}" for m in nag)
        # Every suppression the construct added carries a reason.
        template = synth.template(stack)
        suppressions = [
            rule
            for r in template["Resources"].values()
            for rule in r.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        ]
        assert suppressions
        assert all(len(s.get("reason", "")) >= 10 for s in suppressions)


def test_setup_mistakes_say_what_to_do(synth: Any) -> None:
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from eventual.cdk import BundlingError, Service, ServiceSpecError, build_bundle, load_spec

    with pytest.raises(ServiceSpecError, match="no_such_service_module") as info:
        load_spec("no_such_service_module")
    assert "installed" in str(info.value)
    with pytest.raises(BundlingError, match="cannot find the module 'no_such_service_module'"):
        build_bundle("no_such_service_module")
    stack = cdk.Stack(cdk.App(), "Reserved")
    with pytest.raises(ValueError, match="EVENTUAL_EXECUTIONS_TABLE are set by the construct"):
        Service(
            stack,
            "Orders",
            entry="order_service",
            environment={n.ENV_EXECUTIONS_TABLE: "mine"},
            code=lambda_.Code.from_inline("unused"),
        )
