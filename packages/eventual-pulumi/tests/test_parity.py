"""Parity: the Pulumi component declares the resources and permissions the CDK construct
synthesizes for the order-service example (apps/order-service/infra), and this test fails on
any difference but those listed in :data:`ACCEPTED`.

Both sides are reduced to one model: each resource by its *identity* (its path inside the
``Service``, letters and digits only: ``TaskChargeCreditCardRoleDefaultPolicy``), and each
reference to another resource of the service as ``<Identity>`` (its name, URL or id, what a
CloudFormation ``Ref`` gives) or ``<Identity.arn>``. The CDK template is synthesized once for
the module (``code=`` inline: the bundler has its own tests), which takes most of its time.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from eventual.pulumi.testing import ACCOUNT, REGION, Declared, Deployment, run_program

from .conftest import no_code, order_service_props

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ACCEPTED: dict[str, str] = {
    "integration identity": "the CDK nests an HTTP integration under the first route that "
    "uses it (HttpApi/DefaultRoute/ApiIntegration); the component names it after the API "
    "(HttpApi-ApiIntegration): both are HttpApi + the integration's id here",
    "rule permission identity": "the CDK's id of a rule's permission to invoke its target "
    "ends in a hash (AllowEventRuleSOrderService...B6A51B47), and so does the Sid of the "
    "dead-letter queue's statement letting the rule send to it; the component's are "
    "AllowEventRule and AllowEventRuleRuleOnOrder: both are AllowEventRule here",
    "physical names": "the CDK generates the names of the bus, the schedule group and the API "
    "from the stack (SOrderServiceBus5B176734, HttpApi); Pulumi auto-names them from the "
    "resource name with a random suffix: both are <Identity> here",
    "bucket settings": "the CDK sets encryption, public access block, ownership and lifecycle "
    "rules on the bucket; pulumi-aws has a resource for each (Payloads-Encryption, "
    "Payloads-PublicAccessBlock, Payloads-OwnershipControls, Payloads-Lifecycle), folded into "
    "the bucket here",
    "rule targets": "the CDK lists a rule's targets in the rule; pulumi-aws has an EventTarget "
    "resource (RuleOnOrder-Target0), folded into the rule here",
    "log format": "the component says logFormat Text, Lambda's default, which the CDK leaves out",
    "retention": "removal policies are resource options in Pulumi (retain_on_delete), which "
    "mocks do not see: DeletionPolicy is not compared",
    "discovery stack": "the discovery record's stack is the CloudFormation stack's name for "
    "the CDK and project/stack for Pulumi",
}
"""Every difference between the two that this test accepts, and why: naming conventions and
how each tool spells the same resource. Anything else fails it."""

TYPES = {
    "AWS::DynamoDB::Table": "aws:dynamodb/table:Table",
    "AWS::S3::Bucket": "aws:s3/bucket:Bucket",
    "AWS::S3::BucketPolicy": "aws:s3/bucketPolicy:BucketPolicy",
    "AWS::SQS::Queue": "aws:sqs/queue:Queue",
    "AWS::SQS::QueuePolicy": "aws:sqs/queuePolicy:QueuePolicy",
    "AWS::Events::EventBus": "aws:cloudwatch/eventBus:EventBus",
    "AWS::Events::Rule": "aws:cloudwatch/eventRule:EventRule",
    "AWS::Logs::LogGroup": "aws:cloudwatch/logGroup:LogGroup",
    "AWS::Scheduler::ScheduleGroup": "aws:scheduler/scheduleGroup:ScheduleGroup",
    "AWS::IAM::Role": "aws:iam/role:Role",
    "AWS::IAM::Policy": "aws:iam/rolePolicy:RolePolicy",
    "AWS::Lambda::Function": "aws:lambda/function:Function",
    "AWS::Lambda::EventInvokeConfig": (
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
    ),
    "AWS::Lambda::EventSourceMapping": "aws:lambda/eventSourceMapping:EventSourceMapping",
    "AWS::Lambda::Permission": "aws:lambda/permission:Permission",
    "AWS::ApiGatewayV2::Api": "aws:apigatewayv2/api:Api",
    "AWS::ApiGatewayV2::Integration": "aws:apigatewayv2/integration:Integration",
    "AWS::ApiGatewayV2::Route": "aws:apigatewayv2/route:Route",
    "AWS::ApiGatewayV2::Stage": "aws:apigatewayv2/stage:Stage",
    "AWS::SSM::Parameter": "aws:ssm/parameter:Parameter",
}
FOLDED = {
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:cloudwatch/eventTarget:EventTarget",
}


def _alnum(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)


# ------------------------------------------------------------------------- the CDK side


Model = dict[tuple[str, str], dict[str, Any]]


@pytest.fixture(scope="module")
def cdk_models() -> dict[str, Model]:
    """The CDK construct's order service (as apps/order-service/infra configures it) and the
    billing service (no workflow, no task: the narrowest grants), one synthesis."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    import aws_cdk as cdk
    from aws_cdk import aws_lambda as lambda_

    from eventual.cdk import Service

    app = cdk.App()
    env = cdk.Environment(account=ACCOUNT, region=REGION)
    orders_stack = cdk.Stack(app, "S", env=env)
    orders = Service(
        orders_stack, "OrderService", code=lambda_.Code.from_inline("x"), **order_service_props()
    )
    billing_stack = cdk.Stack(app, "B", env=env)
    billing = Service(
        billing_stack, "BillingService", entry="billing_service", code=lambda_.Code.from_inline("x")
    )
    assembly = app.synth()
    return {
        "orders": _cdk_model(cdk, orders, assembly.get_stack_by_name("S").template),
        "billing": _cdk_model(cdk, billing, assembly.get_stack_by_name("B").template),
    }


@pytest.fixture(scope="module")
def cdk_model(cdk_models: dict[str, Model]) -> Model:
    return cdk_models["orders"]


def _cdk_model(cdk: Any, service: Any, template: dict[str, Any]) -> Model:
    stack = cdk.Stack.of(service)
    identity: dict[str, str] = {}
    for c in service.node.find_all():
        if isinstance(c, cdk.CfnResource):
            path = [p for p in c.node.path.split("/")[2:] if p != "Resource"]
            if c.cfn_resource_type == "AWS::ApiGatewayV2::Integration":
                path = ["HttpApi", path[-1]]  # ACCEPTED["integration identity"]
            if path[-1].startswith("AllowEventRule"):
                path[-1] = "AllowEventRule"  # ACCEPTED["rule permission identity"]
            identity[stack.resolve(c.logical_id)] = _alnum("".join(path))
    resources = template["Resources"]
    names: dict[str, str] = {}  # ACCEPTED["physical names"]
    explicit: dict[str, str] = {}  # names the construct gives: a Ref to one is that name
    for lid, r in resources.items():
        properties = r.get("Properties", {})
        literal = properties.get("Name")
        if r["Type"] == "AWS::SSM::Parameter":
            explicit[lid] = literal
        elif isinstance(properties.get("FunctionName"), str):
            explicit[lid] = properties["FunctionName"]
        elif isinstance(literal, str) and lid in identity:
            names[literal] = f"<{identity[lid]}>"

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Ref"}:
                ref = value["Ref"]
                return (
                    {
                        "AWS::Partition": "aws",
                        "AWS::URLSuffix": "amazonaws.com",
                        "AWS::Region": REGION,
                        "AWS::AccountId": ACCOUNT,
                    }.get(ref)
                    or explicit.get(ref)
                    or f"<{identity[ref]}>"
                )
            if set(value) == {"Fn::GetAtt"}:
                lid, attr = value["Fn::GetAtt"]
                return f"<{identity[lid]}.{attr.lower()}>"
            if set(value) == {"Fn::Join"}:
                sep, parts = value["Fn::Join"]
                return sep.join(str(resolve(p)) for p in parts)
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, str):
            for literal, token in names.items():
                value = value.replace(literal, token)
        return value

    model: dict[tuple[str, str], dict[str, Any]] = {}
    for lid, r in resources.items():
        if lid not in identity:
            continue
        props_ = resolve(r.get("Properties", {}))
        model[(TYPES[r["Type"]], identity[lid])] = _from_cdk(r["Type"], props_)
    return model


def _statements(doc: Any) -> list[Any]:
    statements = doc["Statement"]
    out = []
    for s in statements:
        s = dict(s)
        if str(s.get("Sid", "")).startswith("AllowEventRule"):
            s["Sid"] = "AllowEventRule"  # ACCEPTED["rule permission identity"]
        for key in ("Action", "Resource"):
            if key in s:
                value = s[key] if isinstance(s[key], list) else [s[key]]
                s[key] = sorted(value)
        out.append(s)
    return sorted(out, key=lambda s: json.dumps(s, sort_keys=True))


def _from_cdk(type: str, p: dict[str, Any]) -> dict[str, Any]:
    if type == "AWS::DynamoDB::Table":
        return {
            "keys": sorted((k["KeyType"], k["AttributeName"]) for k in p["KeySchema"]),
            "attributes": sorted(
                (a["AttributeName"], a["AttributeType"]) for a in p["AttributeDefinitions"]
            ),
            "indexes": sorted(
                (
                    i["IndexName"],
                    sorted((k["KeyType"], k["AttributeName"]) for k in i["KeySchema"]),
                    i["Projection"]["ProjectionType"],
                    i["Projection"].get("NonKeyAttributes"),
                )
                for i in p.get("GlobalSecondaryIndexes", [])
            ),
            "ttl": p.get("TimeToLiveSpecification", {}).get("AttributeName"),
            "pitr": p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            "sse": p["SSESpecification"]["SSEEnabled"],
            "billing": p["BillingMode"],
        }
    if type == "AWS::S3::Bucket":
        return {
            "sse": p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
                "ServerSideEncryptionByDefault"
            ]["SSEAlgorithm"],
            "public_access_block": p["PublicAccessBlockConfiguration"],
            "ownership": p["OwnershipControls"]["Rules"][0]["ObjectOwnership"],
            "lifecycle": sorted(
                (
                    rule.get("Id"),
                    rule.get("Prefix"),
                    tuple((t["Key"], t["Value"]) for t in rule.get("TagFilters", [])),
                    rule.get("ExpirationInDays"),
                    (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
                )
                for rule in (p.get("LifecycleConfiguration") or {}).get("Rules", [])
            ),
        }
    if type in ("AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy"):
        target = p.get("Bucket") or p["Queues"][0]
        return {"of": target, "statements": _statements(p["PolicyDocument"])}
    if type == "AWS::SQS::Queue":
        redrive = p.get("RedrivePolicy")
        return {
            "fifo": bool(p.get("FifoQueue")),
            "content_based_deduplication": bool(p.get("ContentBasedDeduplication")),
            "deduplication_scope": p.get("DeduplicationScope"),
            "throughput": p.get("FifoThroughputLimit"),
            "visibility": p.get("VisibilityTimeout"),
            "retention": p.get("MessageRetentionPeriod"),
            "redrive": (redrive["deadLetterTargetArn"], redrive["maxReceiveCount"])
            if redrive
            else None,
            "sse": p.get("SqsManagedSseEnabled"),
        }
    if type == "AWS::Logs::LogGroup":
        return {"retention": p.get("RetentionInDays")}
    if type == "AWS::IAM::Role":
        return {
            "assume": _statements(p["AssumeRolePolicyDocument"]),
            "description": p.get("Description"),
        }
    if type == "AWS::IAM::Policy":
        return {"role": p["Roles"][0], "statements": _statements(p["PolicyDocument"])}
    if type == "AWS::Lambda::Function":
        return {
            "name": p.get("FunctionName"),
            "description": p.get("Description"),
            "handler": p["Handler"],
            "runtime": p["Runtime"],
            "architectures": p["Architectures"],
            "memory": p["MemorySize"],
            "timeout": p["Timeout"],
            "role": p["Role"],
            "environment": p["Environment"]["Variables"],
            "reserved": p.get("ReservedConcurrentExecutions"),
            "dlq": p.get("DeadLetterConfig", {}).get("TargetArn"),
            "log_group": p["LoggingConfig"]["LogGroup"],
        }
    if type == "AWS::Lambda::EventInvokeConfig":
        return {
            "function": p["FunctionName"],
            "retries": p.get("MaximumRetryAttempts"),
            "max_age": p.get("MaximumEventAgeInSeconds"),
            "qualifier": p["Qualifier"],
        }
    if type == "AWS::Lambda::EventSourceMapping":
        return {
            "source": p["EventSourceArn"],
            "function": p["FunctionName"],
            "batch": p["BatchSize"],
            "responses": p["FunctionResponseTypes"],
        }
    if type == "AWS::Lambda::Permission":
        return {
            "action": p["Action"],
            "function": p["FunctionName"],
            "principal": p["Principal"],
            "source": p["SourceArn"],
        }
    if type == "AWS::Events::Rule":
        return {
            "bus": p["EventBusName"],
            "description": p["Description"],
            "pattern": p["EventPattern"],
            "state": p["State"],
            "targets": [
                {
                    "arn": t["Arn"],
                    "dlq": t.get("DeadLetterConfig", {}).get("Arn"),
                    "retry": t.get("RetryPolicy"),
                }
                for t in p["Targets"]
            ],
        }
    if type == "AWS::ApiGatewayV2::Api":
        return {"protocol": p["ProtocolType"], "description": p["Description"]}
    if type == "AWS::ApiGatewayV2::Integration":
        return {
            "api": p["ApiId"],
            "type": p["IntegrationType"],
            "uri": p["IntegrationUri"],
            "payload": p["PayloadFormatVersion"],
        }
    if type == "AWS::ApiGatewayV2::Route":
        return {
            "api": p["ApiId"],
            "key": p["RouteKey"],
            "auth": p["AuthorizationType"],
            "target": p["Target"],
        }
    if type == "AWS::ApiGatewayV2::Stage":
        return {
            "api": p["ApiId"],
            "name": p["StageName"],
            "auto_deploy": p["AutoDeploy"],
            "log_destination": p["AccessLogSettings"]["DestinationArn"],
            "log_format": json.loads(p["AccessLogSettings"]["Format"]),
        }
    if type == "AWS::SSM::Parameter":
        record = json.loads(p["Value"])
        record.pop("stack")  # ACCEPTED["discovery stack"]
        return {
            "name": p["Name"],
            "type": p["Type"],
            "tier": p["Tier"],
            "description": p["Description"],
            "record": record,
        }
    return {}  # EventBus, ScheduleGroup: nothing but their (generated) names


# ------------------------------------------------------------------------- the Pulumi side


@pytest.fixture(scope="module")
def pulumi_models() -> dict[str, Model]:
    from eventual.pulumi import Service

    def program() -> None:
        Service("orders", code=no_code(), **order_service_props())
        Service("billing", entry="billing_service", code=no_code())

    deployed = run_program(program)
    return {
        "orders": _pulumi_model(deployed, "orders"),
        "billing": _pulumi_model(deployed, "billing"),
    }


@pytest.fixture(scope="module")
def pulumi_model(pulumi_models: dict[str, Model]) -> Model:
    return pulumi_models["orders"]


def _pulumi_model(deployed: Deployment, prefix: str) -> Model:
    own = [r for r in deployed.resources if r.name.startswith(f"{prefix}-")]
    ident = {r.name: _alnum(r.name.removeprefix(f"{prefix}-")) for r in own}
    tokens: dict[str, str] = {}
    for r in own:
        i = ident[r.name]
        tokens[r.state["arn"]] = f"<{i}.arn>"
        tokens[r.id] = f"<{i}>"
        if "name" not in r.inputs and "namePrefix" not in r.inputs:
            tokens[r.state["name"]] = f"<{i}>"  # generated: ACCEPTED["physical names"]
        elif "namePrefix" in r.inputs:
            tokens[r.state["name"]] = f"<{i}>"
        if r.type == "aws:sqs/queue:Queue":
            tokens[r.state["url"]] = f"<{i}>"
        if r.type == "aws:s3/bucket:Bucket":
            tokens[r.state["bucket"]] = f"<{i}>"
        if "executionArn" in r.state:
            tokens[r.state["executionArn"]] = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:<{i}>"
            tokens[r.state["apiEndpoint"]] = f"https://<{i}>.execute-api.{REGION}.amazonaws.com"
    if any(t.type == "aws:scheduler/scheduleGroup:ScheduleGroup" for t in own):
        group = next(t for t in own if t.type == "aws:scheduler/scheduleGroup:ScheduleGroup")
        schedules = group.state["arn"].replace(":schedule-group/", ":schedule/")
        tokens[schedules] = f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/<{ident[group.name]}>"
    ordered = sorted(tokens, key=len, reverse=True)

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, str):
            if value in tokens:
                return tokens[value]
            for t in ordered:
                if t in value:
                    value = value.replace(t, tokens[t])
        return value

    by_name = {r.name: r for r in own}
    model: dict[tuple[str, str], dict[str, Any]] = {}
    for r in own:
        if r.type in FOLDED or r.type == "eventual:aws:Service":
            continue
        model[(r.type, ident[r.name])] = _from_pulumi(r, resolve, by_name)
    return model


def _from_pulumi(r: Declared, resolve: Any, by_name: dict[str, Declared]) -> dict[str, Any]:
    p = resolve(r.inputs)
    t = r.type
    if t == "aws:dynamodb/table:Table":
        keys = [("HASH", p["hashKey"])] + ([("RANGE", p["rangeKey"])] if p.get("rangeKey") else [])
        return {
            "keys": sorted(keys),
            "attributes": sorted((a["name"], a["type"]) for a in p["attributes"]),
            "indexes": sorted(
                (
                    i["name"],
                    sorted((k["keyType"], k["attributeName"]) for k in i["keySchemas"]),
                    i["projectionType"],
                    i.get("nonKeyAttributes"),
                )
                for i in p.get("globalSecondaryIndexes", [])
            ),
            "ttl": (p.get("ttl") or {}).get("attributeName"),
            "pitr": p["pointInTimeRecovery"]["enabled"],
            "sse": p["serverSideEncryption"]["enabled"],
            "billing": p["billingMode"],
        }
    if t == "aws:s3/bucket:Bucket":  # ACCEPTED["bucket settings"]
        sse = by_name[f"{r.name}-Encryption"].inputs["rules"][0]
        block = by_name[f"{r.name}-PublicAccessBlock"].inputs
        ownership = by_name[f"{r.name}-OwnershipControls"].inputs["rule"]["objectOwnership"]
        lifecycle = by_name.get(f"{r.name}-Lifecycle")
        rules = lifecycle.inputs["rules"] if lifecycle is not None else []
        return {
            "sse": sse["applyServerSideEncryptionByDefault"]["sseAlgorithm"],
            "public_access_block": {
                "BlockPublicAcls": block["blockPublicAcls"],
                "BlockPublicPolicy": block["blockPublicPolicy"],
                "IgnorePublicAcls": block["ignorePublicAcls"],
                "RestrictPublicBuckets": block["restrictPublicBuckets"],
            },
            "ownership": ownership,
            "lifecycle": sorted(
                (
                    rule.get("id"),
                    (rule.get("filter") or {}).get("prefix"),
                    tuple(
                        (t["key"], t["value"])
                        for t in [((rule.get("filter") or {}).get("tag"))]
                        if t
                    ),
                    (rule.get("expiration") or {}).get("days"),
                    (rule.get("abortIncompleteMultipartUpload") or {}).get("daysAfterInitiation"),
                )
                for rule in rules
            ),
        }
    if t in ("aws:s3/bucketPolicy:BucketPolicy", "aws:sqs/queuePolicy:QueuePolicy"):
        return {
            "of": p.get("bucket") or p["queueUrl"],
            "statements": _statements(json.loads(p["policy"])),
        }
    if t == "aws:sqs/queue:Queue":
        redrive = json.loads(p["redrivePolicy"]) if p.get("redrivePolicy") else None
        return {
            "fifo": bool(p.get("fifoQueue")),
            "content_based_deduplication": bool(p.get("contentBasedDeduplication")),
            "deduplication_scope": p.get("deduplicationScope"),
            "throughput": p.get("fifoThroughputLimit"),
            "visibility": p.get("visibilityTimeoutSeconds"),
            "retention": p.get("messageRetentionSeconds"),
            "redrive": (resolve(redrive["deadLetterTargetArn"]), redrive["maxReceiveCount"])
            if redrive
            else None,
            "sse": p.get("sqsManagedSseEnabled"),
        }
    if t == "aws:cloudwatch/logGroup:LogGroup":
        return {"retention": p.get("retentionInDays")}
    if t == "aws:iam/role:Role":
        return {
            "assume": _statements(resolve(json.loads(p["assumeRolePolicy"]))),
            "description": p.get("description"),
        }
    if t == "aws:iam/rolePolicy:RolePolicy":
        return {"role": p["role"], "statements": _statements(resolve(json.loads(p["policy"])))}
    if t == "aws:lambda/function:Function":
        logging = dict(p["loggingConfig"])
        assert logging.pop("logFormat") == "Text"  # ACCEPTED["log format"]
        return {
            "name": p.get("name"),
            "description": p.get("description"),
            "handler": p["handler"],
            "runtime": p["runtime"],
            "architectures": p["architectures"],
            "memory": p["memorySize"],
            "timeout": p["timeout"],
            "role": p["role"],
            "environment": p["environment"]["variables"],
            "reserved": p.get("reservedConcurrentExecutions"),
            "dlq": (p.get("deadLetterConfig") or {}).get("targetArn"),
            "log_group": logging["logGroup"],
        }
    if t == "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig":
        return {
            "function": p["functionName"],
            "retries": p.get("maximumRetryAttempts"),
            "max_age": p.get("maximumEventAgeInSeconds"),
            "qualifier": p["qualifier"],
        }
    if t == "aws:lambda/eventSourceMapping:EventSourceMapping":
        return {
            "source": p["eventSourceArn"],
            "function": p["functionName"],
            "batch": p["batchSize"],
            "responses": p["functionResponseTypes"],
        }
    if t == "aws:lambda/permission:Permission":
        return {
            "action": p["action"],
            "function": p["function"],
            "principal": p["principal"],
            "source": p["sourceArn"],
        }
    if t == "aws:cloudwatch/eventRule:EventRule":  # ACCEPTED["rule targets"]
        targets = [
            resolve(x.inputs)
            for x in by_name.values()
            if x.type == "aws:cloudwatch/eventTarget:EventTarget"
            and x.name.startswith(f"{r.name}-Target")
        ]
        return {
            "bus": p["eventBusName"],
            "description": p["description"],
            "pattern": json.loads(p["eventPattern"]),
            "state": p["state"],
            "targets": [
                {
                    "arn": x["arn"],
                    "dlq": (x.get("deadLetterConfig") or {}).get("arn"),
                    "retry": {
                        {
                            "maximumRetryAttempts": "MaximumRetryAttempts",
                            "maximumEventAgeInSeconds": "MaximumEventAgeInSeconds",
                        }[k]: v
                        for k, v in x["retryPolicy"].items()
                    }
                    if x.get("retryPolicy")
                    else None,
                }
                for x in targets
            ],
        }
    if t == "aws:apigatewayv2/api:Api":
        return {"protocol": p["protocolType"], "description": p["description"]}
    if t == "aws:apigatewayv2/integration:Integration":
        return {
            "api": p["apiId"],
            "type": p["integrationType"],
            "uri": p["integrationUri"],
            "payload": p["payloadFormatVersion"],
        }
    if t == "aws:apigatewayv2/route:Route":
        return {
            "api": p["apiId"],
            "key": p["routeKey"],
            "auth": p["authorizationType"],
            "target": p["target"],
        }
    if t == "aws:apigatewayv2/stage:Stage":
        return {
            "api": p["apiId"],
            "name": p["name"],
            "auto_deploy": p["autoDeploy"],
            "log_destination": p["accessLogSettings"]["destinationArn"],
            "log_format": json.loads(p["accessLogSettings"]["format"]),
        }
    if t == "aws:ssm/parameter:Parameter":
        record = resolve(json.loads(r.inputs["value"]))
        record.pop("stack")  # ACCEPTED["discovery stack"]
        return {
            "name": p["name"],
            "type": p["type"],
            "tier": p["tier"],
            "description": p["description"],
            "record": record,
        }
    return {}


# ------------------------------------------------------------------------- the comparison


def _differences(
    cdk_model: dict[tuple[str, str], dict[str, Any]],
    pulumi_model: dict[tuple[str, str], dict[str, Any]],
) -> list[str]:
    out = [f"only in the CDK template: {k}" for k in sorted(set(cdk_model) - set(pulumi_model))]
    out += [f"only in the Pulumi program: {k}" for k in sorted(set(pulumi_model) - set(cdk_model))]
    for key in sorted(set(cdk_model) & set(pulumi_model)):
        a, b = cdk_model[key], pulumi_model[key]
        for field in sorted(set(a) | set(b)):
            if a.get(field) != b.get(field):
                theirs, ours = (json.dumps(m.get(field), sort_keys=True) for m in (a, b))
                out.append(f"{key[1]} ({key[0]}) {field}:\n  CDK:    {theirs}\n  Pulumi: {ours}")
    return out


def test_the_component_declares_what_the_construct_synthesizes(
    cdk_model: dict[tuple[str, str], dict[str, Any]],
    pulumi_model: dict[tuple[str, str], dict[str, Any]],
) -> None:
    differences = _differences(cdk_model, pulumi_model)
    assert not differences, (
        f"{len(differences)} differences that ACCEPTED does not list:\n" + "\n".join(differences)
    )


def test_a_service_without_workflows_or_tasks_is_granted_the_same(
    cdk_models: dict[str, Model], pulumi_models: dict[str, Model]
) -> None:
    differences = _differences(cdk_models["billing"], pulumi_models["billing"])
    assert not differences, (
        f"{len(differences)} differences that ACCEPTED does not list:\n" + "\n".join(differences)
    )
    # No workflow: neither tool declares an orchestrator or a timer function, nor their roles.
    for model in (cdk_models["billing"], pulumi_models["billing"]):
        names = {i for _, i in model}
        assert not {
            i
            for i in names
            if i.startswith(
                ("OrchestratorFunction", "OrchestratorRole", "TimerFunction", "TimerRole")
            )
        }, names
        assert "SystemFunction" in names


def test_the_comparison_sees_every_kind_of_resource(
    cdk_model: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """A guard on the test itself: every resource type of the template is compared, with
    its IAM statements."""
    assert {t for t, _ in cdk_model} == set(TYPES.values())
    policies = [m for (t, _), m in cdk_model.items() if t == "aws:iam/rolePolicy:RolePolicy"]
    assert len(policies) == 10
    assert all(m["statements"] for m in policies)


def test_a_changed_grant_is_a_difference(
    cdk_model: dict[tuple[str, str], dict[str, Any]],
    pulumi_model: dict[tuple[str, str], dict[str, Any]],
) -> None:
    key = ("aws:iam/rolePolicy:RolePolicy", "OrchestratorRoleDefaultPolicy")
    widened = dict(pulumi_model[key])
    widened["statements"] = [*widened["statements"], {"Action": ["dynamodb:*"]}]
    assert _differences(cdk_model, {**pulumi_model, key: widened})
