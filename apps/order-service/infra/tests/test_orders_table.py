"""The stack's orders table: created as the construct's own tables are, named (by
``ORDER_SERVICE_TABLE``) to and granted on only the functions that run code using the store,
each with only the action it makes; and the stack passes cdk-nag's AwsSolutions checks.

One synthesis (``python app.py -c nag=1``, as ``cdk synth -c nag=1`` runs it) for the module."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1]
TABLE_ENV = "ORDER_SERVICE_TABLE"

# The functions (by construct path under the Service) that run store code: the three tasks,
# the subscription and sendInvoice (its own function) write; getOrder (served by the shared
# API function) reads. The orchestrator, the timer and the system function never do.
WRITERS = {
    "TaskChargeCreditCard",
    "TaskDispatchOrder",
    "TaskChargeBack",
    "SubscriptionOnOrder",
    "CommandSendInvoice",
}
READERS = {"Api"}
OTHERS = {"Orchestrator", "Timer", "System"}


@dataclass
class Synth:
    out: Path
    resources: dict[str, Any]
    table_id: str
    functions: dict[str, dict[str, Any]]
    """Function name (``TaskChargeBack``...) to its resource properties."""


def _metadata(out: Path) -> dict[str, list[dict[str, Any]]]:
    """The cloud assembly's metadata (construct path to entries), inline or in its own file."""
    manifest = json.loads((out / "manifest.json").read_text())
    found: dict[str, list[dict[str, Any]]] = {}
    for artifact in manifest["artifacts"].values():
        for path, entries in (artifact.get("metadata") or {}).items():
            found.setdefault(path, []).extend(entries)
        if artifact.get("additionalMetadataFile"):
            extra = json.loads((out / artifact["additionalMetadataFile"]).read_text())
            for path, entries in extra.items():
                found.setdefault(path, []).extend(entries)
    return found


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    out = tmp_path_factory.mktemp("cdk.out")
    env = {
        **os.environ,
        "CDK_OUTDIR": str(out),
        "CDK_CONTEXT_JSON": json.dumps({"nag": "1"}),
        "CDK_DEFAULT_ACCOUNT": "123456789012",
        "CDK_DEFAULT_REGION": "eu-west-1",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    proc = subprocess.run(
        [sys.executable, "app.py"], cwd=INFRA, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    resources = json.loads((out / "OrderService.template.json").read_text())["Resources"]
    path_of = {
        entry["data"]: path
        for path, entries in _metadata(out).items()
        for entry in entries
        if entry["type"] == "aws:cdk:logicalId"
    }
    tables = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::DynamoDB::Table" and path_of[k] == "/OrderService/Orders/Resource"
    ]
    assert len(tables) == 1, "no orders table (OrderService/Orders) in the stack"
    functions = {}
    for k, r in resources.items():
        if r["Type"] == "AWS::Lambda::Function":
            path = path_of[k].split("/")
            assert path[1:3] == ["OrderService", "OrderService"], path
            assert path[4:] == ["Function", "Resource"], path
            functions[path[3]] = r["Properties"]
    return Synth(out, resources, tables[0], functions)


def test_the_table_is_keyed_by_id_on_demand_with_point_in_time_recovery(synth: Synth) -> None:
    table = synth.resources[synth.table_id]
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    # The stack's removal policy (an example: DESTROY).
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Delete"


def test_only_the_functions_using_the_store_are_told_the_table(synth: Synth) -> None:
    assert set(synth.functions) == WRITERS | READERS | OTHERS
    told = {
        name for name, fn in synth.functions.items() if TABLE_ENV in fn["Environment"]["Variables"]
    }
    assert told == WRITERS | READERS
    for name in told:
        assert synth.functions[name]["Environment"]["Variables"][TABLE_ENV] == {
            "Ref": synth.table_id
        }
    assert not any(
        "ORDER_SERVICE_DB" in f["Environment"]["Variables"] for f in synth.functions.values()
    )


def _refers_to(value: Any, logical_id: str) -> bool:
    return f'"{logical_id}"' in json.dumps(value)


def test_only_their_roles_are_granted_only_the_actions_they_make(synth: Synth) -> None:
    role_of = {fn["Role"]["Fn::GetAtt"][0]: name for name, fn in synth.functions.items()}
    granted: dict[str, set[str]] = {}
    for resource in synth.resources.values():
        if resource["Type"] not in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::IAM::Role",
        ):
            continue
        props = resource["Properties"]
        documents = [props.get("PolicyDocument")] + [
            p["PolicyDocument"] for p in props.get("Policies", [])
        ]
        statements = [s for d in documents if d for s in d["Statement"]]
        on_table = [s for s in statements if _refers_to(s.get("Resource"), synth.table_id)]
        if not on_table:
            continue
        assert resource["Type"] == "AWS::IAM::Policy", "the table is granted outside a role policy"
        roles = [r["Ref"] for r in props["Roles"]]
        assert len(roles) == 1 and roles[0] in role_of, roles
        for s in on_table:
            assert s["Effect"] == "Allow"
            assert s["Resource"] == [{"Fn::GetAtt": [synth.table_id, "Arn"]}]
            actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            granted.setdefault(role_of[roles[0]], set()).update(actions)
    assert granted == {
        **{name: {"dynamodb:UpdateItem"} for name in WRITERS},
        **{name: {"dynamodb:GetItem"} for name in READERS},
    }


def test_cdk_nag_aws_solutions_finds_nothing_unsuppressed(synth: Synth) -> None:
    findings = [
        f"{path}: {str(entry['data'])[:300]}"
        for path, entries in _metadata(synth.out).items()
        for entry in entries
        if entry["type"] in ("aws:cdk:error", "aws:cdk:warning")
    ]
    assert not findings, "\n".join(findings)
    with (synth.out / "AwsSolutions--OrderService-NagReport.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["Compliance"] for r in rows} <= {"Compliant", "Suppressed"}
    table_rows = [r for r in rows if r["Resource ID"] == "OrderService/Orders/Resource"]
    assert table_rows and all(r["Compliance"] == "Compliant" for r in table_rows)
