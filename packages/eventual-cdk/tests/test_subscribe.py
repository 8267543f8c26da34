"""``service.subscribe``: an event the order service emits (through the runtime's own
EventBridge adapter) is forwarded by the synthesized rule to the shipping service's bus, where
the shipping subscription's synthesized rule matches it and delivers it to its target. The
rules, their patterns and targets are taken from the templates and replayed in moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eventual.aws_runtime import names as n


def _rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::Rule"}


def _only(template: dict[str, Any], kind: str) -> str:
    (found,) = [k for k, r in template["Resources"].items() if r["Type"] == kind]
    return found


def _import_target(template: dict[str, Any], other: dict[str, Any], value: Any) -> str | None:
    """The logical id (in ``other``) a Fn::ImportValue of ``template`` refers to."""
    if not (isinstance(value, dict) and "Fn::ImportValue" in value):
        return None
    export = value["Fn::ImportValue"]
    for output in other.get("Outputs", {}).values():
        if output.get("Export", {}).get("Name") == export:
            v = output["Value"]
            return v.get("Ref") or v.get("Fn::GetAtt", [None])[0]
    return None


def test_forward_rule_and_subscription_rule_in_the_templates(
    orders_template: dict[str, Any], shipping_template: dict[str, Any]
) -> None:
    orders_bus = _only(orders_template, "AWS::Events::EventBus")
    shipping_bus = _only(shipping_template, "AWS::Events::EventBus")
    forward = [
        r
        for r in _rules(shipping_template).values()
        if _import_target(shipping_template, orders_template, r["Properties"]["EventBusName"])
        == orders_bus
    ]
    assert len(forward) == 1, "one rule on the order service's bus"
    props = forward[0]["Properties"]
    assert props["EventPattern"] == n.forward_event_pattern("order-service", ["Order"])
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [shipping_bus, "Arn"]}


def test_a_forwarded_event_reaches_the_subscription_target(
    orders_template: dict[str, Any], shipping_template: dict[str, Any]
) -> None:
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    from eventual.aws_runtime import clients
    from eventual.aws_runtime.adapters import EventBridgeBus, PayloadStore
    from eventual.core.history import EmittedEvent

    orders_bus_id = _only(orders_template, "AWS::Events::EventBus")
    shipping_bus_id = _only(shipping_template, "AWS::Events::EventBus")
    orders_bus_name = orders_template["Resources"][orders_bus_id]["Properties"]["Name"]
    shipping_bus_name = shipping_template["Resources"][shipping_bus_id]["Properties"]["Name"]
    sub_fn = next(
        k
        for k, r in shipping_template["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Environment"]["Variables"].get(n.ENV_SUBSCRIPTION) == "shipOrder"
    )

    with moto.mock_aws():
        session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        ev = session.client("events")
        sqs = session.client("sqs")
        bus_arn = {
            orders_bus_id: ev.create_event_bus(Name=orders_bus_name)["EventBusArn"],
            shipping_bus_id: ev.create_event_bus(Name=shipping_bus_name)["EventBusArn"],
        }
        # The subscription function is played by a queue: what reaches it, reached the function.
        tap_url = sqs.create_queue(QueueName="ship-order-fn")["QueueUrl"]
        tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        resource_arn = {**bus_arn, sub_fn: tap_arn}

        for template, other in (
            (shipping_template, orders_template),
            (orders_template, shipping_template),
        ):
            for rule_id, rule in _rules(template).items():
                props = rule["Properties"]
                bus_value = props["EventBusName"]
                bus_id = bus_value.get("Ref") or _import_target(template, other, bus_value)
                if bus_id not in bus_arn:
                    continue
                bus_name = orders_bus_name if bus_id == orders_bus_id else shipping_bus_name
                targets = []
                for i, target in enumerate(props["Targets"]):
                    arn_value = target["Arn"]
                    ref = arn_value.get("Fn::GetAtt", [None])[0] or _import_target(
                        template, other, arn_value
                    )
                    if ref in resource_arn:
                        targets.append({"Id": str(i), "Arn": resource_arn[ref]})
                if not targets:
                    continue
                ev.put_rule(
                    Name=rule_id,
                    EventBusName=bus_name,
                    EventPattern=json.dumps(props["EventPattern"]),
                )
                ev.put_targets(Rule=rule_id, EventBusName=bus_name, Targets=targets)

        # The order service emits an Order event exactly as its runtime does.
        clients.configure(session)
        try:
            names = n.ServiceNames.for_service("order-service", event_bus=orders_bus_name)
            bus = EventBridgeBus(names, PayloadStore(names))
            import asyncio

            asyncio.run(
                bus.publish(
                    [EmittedEvent(name="Order", payload={"order_id": "o1", "tracking": "t1"})]
                )
            )
        finally:
            clients.configure(None)

        messages = sqs.receive_message(QueueUrl=tap_url, MaxNumberOfMessages=10).get("Messages", [])
        assert len(messages) == 1, "the forwarded event reached the shipping subscription"
        delivered = json.loads(messages[0]["Body"])
        assert delivered["detail-type"] == "Order"
        assert delivered["source"] == n.event_source("order-service")
        assert delivered["detail"] == {"order_id": "o1", "tracking": "t1"}


def test_subscribe_refuses_events_nobody_listens_to(synth: Any) -> None:
    from eventual.cdk import UnknownNameError

    with pytest.raises(UnknownNameError, match="defines no event 'Shipped'; its events are: Order"):
        synth.shipping.subscribe(
            synth.shipping_stack, "Bad1", service=synth.orders, events=["Shipped"]
        )
    with pytest.raises(ValueError, match="at least one event"):
        synth.shipping.subscribe(synth.shipping_stack, "Bad2", service=synth.orders, events=[])


def test_the_subscription_may_read_payloads_that_spilled_to_the_producers_bucket(
    orders_template: dict[str, Any], shipping_template: dict[str, Any]
) -> None:
    orders_bucket = _only(orders_template, "AWS::S3::Bucket")
    sub_fn = next(
        r
        for r in shipping_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Environment"]["Variables"].get(n.ENV_SUBSCRIPTION) == "shipOrder"
    )
    role = sub_fn["Properties"]["Role"]["Fn::GetAtt"][0]
    reads = [
        statement
        for policy in shipping_template["Resources"].values()
        if policy["Type"] == "AWS::IAM::Policy"
        and any(r.get("Ref") == role for r in policy["Properties"]["Roles"])
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "s3:GetObject" in statement["Action"]
    ]
    # One grant is on the shipping service's own bucket, the other on the order service's
    # (imported from its stack), limited to the payload keys.
    buckets = {json.dumps(s["Resource"]) for s in reads}
    assert any(n.PAYLOAD_KEY_PREFIX in b for b in buckets)
    imported = [
        s
        for s in reads
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        if "Fn::ImportValue" in json.dumps(r)
        and _import_target(shipping_template, orders_template, _first_import(r)) == orders_bucket
    ]
    assert imported, reads


def _first_import(value: Any) -> Any:
    """The first ``{"Fn::ImportValue": ...}`` inside a CloudFormation expression."""
    if isinstance(value, dict):
        if "Fn::ImportValue" in value:
            return value
        for v in value.values():
            found = _first_import(v)
            if found is not None:
                return found
    if isinstance(value, list):
        for v in value:
            found = _first_import(v)
            if found is not None:
                return found
    return None
