"""``cdk deploy`` of a synthesized cloud assembly into a moto server.

- :func:`upload_assets` publishes a stack's file assets (the Lambda zips) to the bootstrap
  bucket on the server, as ``cdk deploy`` does.
- :func:`moto_template_fixes` rewrites, in a copy of the template, what moto's CloudFormation
  cannot take though real CloudFormation does (each rewrite names the moto limitation).
- :func:`deploy` does both, creates the stack through CloudFormation, waits for
  ``CREATE_COMPLETE`` and returns a :class:`DeployedStack`: its physical ids, its exports, and
  the resources moto reported created without creating them.

Test support only; needs moto's server extra (``moto[server,cloudformation]``).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .testing_iam import TemplateResolver
from .testing_lambda import ACCOUNT, REGION, HarnessError
from .testing_moto import MotoServer

BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


def moto_template_fixes(
    template: dict[str, Any], stack_name: str, exports: dict[str, str] | None = None
) -> list[str]:
    """Rewrites ``template`` in place where moto's CloudFormation cannot take what real
    CloudFormation does; returns one line per rewrite. Each is equivalent to what AWS resolves
    at deploy time, so the deployed resources are the same."""
    done: list[str] = []
    resources = template["Resources"]
    bus_names = {
        logical: r["Properties"]["Name"]
        for logical, r in resources.items()
        if r["Type"] == "AWS::Events::EventBus" and isinstance(r["Properties"].get("Name"), str)
    }
    for logical, r in resources.items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::SQS::Queue" and props.get("FifoQueue") and "QueueName" not in props:
            # moto: a FIFO queue without QueueName is refused ("Queue name must end in .fifo");
            # CloudFormation generates one ending in .fifo, like this.
            props["QueueName"] = f"{stack_name}-{logical}"[:75] + ".fifo"
            done.append(f"{logical}: QueueName {props['QueueName']} (FIFO queue, no name)")
        if r["Type"] == "AWS::Events::Rule":
            bus = props.get("EventBusName")
            if isinstance(bus, dict) and isinstance(bus.get("Fn::ImportValue"), str):
                # moto: an AWS::Events::Rule whose EventBusName is not a literal fails with a
                # 500 (here another stack's bus, as Service.subscribe makes); the export's
                # value is the bus's name.
                props["EventBusName"] = (exports or {})[bus["Fn::ImportValue"]]
                done.append(
                    f"{logical}: EventBusName {bus['Fn::ImportValue']} -> {props['EventBusName']}"
                )
    # moto: a {"Ref": bus} resolves to the bus object, not its name: as a rule's EventBusName
    # it fails with a 500, in a function's environment it breaks GetFunctionConfiguration, in
    # an output it exports the object's repr. The Ref of a bus is its name: written literally.
    for logical, r in [*resources.items(), *template.get("Outputs", {}).items()]:
        for where in _replace_refs(r, bus_names):
            done.append(f"{logical}: {where}")
    return done


@dataclass
class DeployedStack:
    name: str
    template: dict[str, Any]  # as deployed (after the moto fixes)
    original: dict[str, Any]  # as synthesized
    fixes: list[str]
    physical: dict[str, tuple[str, str]]  # logical id -> (type, physical id)
    exports: dict[str, str]
    not_created: dict[str, str] = field(default_factory=dict)
    """Resources moto's CloudFormation skipped (logical id -> type): check them in the
    template; a schedule group gets a stand-in of its name."""
    stack_id: str = ""
    seconds: float = 0.0

    def resolver(self, region: str = REGION, account: str = ACCOUNT) -> TemplateResolver:
        return TemplateResolver(
            self.physical,
            region=region,
            account=account,
            stack_name=self.name,
            exports=self.exports,
            stack_id=self.stack_id,
        )

    def of_type(self, kind: str) -> dict[str, str]:
        return {k: pid for k, (t, pid) in self.physical.items() if t == kind}


_NOT_RESOURCES = {"AWS::CDK::Metadata"}


def _zip_dir(path: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(path).as_posix())
    return buf.getvalue()


def upload_assets(server: MotoServer, outdir: Path, stack_name: str) -> int:
    """Publishes the stack's file assets (what ``cdk deploy`` uploads) to the server's S3."""
    manifest = outdir / f"{stack_name}.assets.json"
    if not manifest.exists():
        return 0
    s3 = server.client("s3")
    assets = json.loads(manifest.read_text())
    count = 0
    for asset in assets.get("files", {}).values():
        source = outdir / asset["source"]["path"]
        data = _zip_dir(source) if source.is_dir() else source.read_bytes()
        for dest in asset["destinations"].values():
            bucket = dest["bucketName"].replace("${AWS::AccountId}", ACCOUNT)
            bucket = bucket.replace("${AWS::Region}", REGION)
            if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
                s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key=dest["objectKey"], Body=data)
            count += 1
    return count


def deploy(
    server: MotoServer, outdir: Path, stack_name: str, *, timeout: float = 120.0
) -> DeployedStack:
    """``cdk deploy`` of one stack of the cloud assembly in ``outdir`` to the moto server."""
    started = time.monotonic()
    original = json.loads((outdir / f"{stack_name}.template.json").read_text())
    template = json.loads(json.dumps(original))
    cf = server.client("cloudformation")
    exports = {e["Name"]: e["Value"] for e in cf.list_exports().get("Exports", [])}
    fixes = moto_template_fixes(template, stack_name, exports)
    upload_assets(server, outdir, stack_name)
    ssm = server.client("ssm")
    # What `cdk bootstrap` leaves: the template's BootstrapVersion parameter reads it.
    ssm.put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value="30", Type="String", Overwrite=True)
    cf = server.client("cloudformation")
    created = cf.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + timeout
    while True:
        stack = cf.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise HarnessError(f"stack {stack_name} still {status} after {timeout}s")
        time.sleep(0.2)
    if status != "CREATE_COMPLETE":
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in cf.describe_stack_events(StackName=stack_name)["StackEvents"]
            if e["ResourceStatus"].endswith("FAILED")
        ]
        raise HarnessError(f"stack {stack_name} is {status}: {'; '.join(failed) or '?'}")
    listed = cf.describe_stack_resources(StackName=stack_name)["StackResources"]
    # moto's CloudFormation reports resource types it does not model as CREATE_COMPLETE
    # without creating anything (and without ids in DescribeStackResources).
    physical = {
        r["LogicalResourceId"]: (r["ResourceType"], r["PhysicalResourceId"])
        for r in listed
        if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }
    for r in listed:
        logical = r.get("LogicalResourceId")
        name = template["Resources"].get(logical or "", {}).get("Properties", {}).get("Name")
        if logical and logical not in physical and isinstance(name, str):
            # moto leaves some created resources without a physical id (an event bus): the
            # name the template gives it is its id.
            physical[logical] = (r["ResourceType"], name)
    not_created = {
        logical: r["Type"]
        for logical, r in template["Resources"].items()
        if logical not in physical and r["Type"] not in _NOT_RESOURCES
    }
    for logical, kind in not_created.items():
        props = template["Resources"][logical].get("Properties", {})
        if kind == "AWS::Scheduler::ScheduleGroup" and isinstance(props.get("Name"), str):
            # A stand-in, so the runtime can create its schedules in it: the group the
            # template names (the functions' EVENTUAL_SCHEDULE_GROUP is that literal name).
            server.client("scheduler").create_schedule_group(Name=props["Name"])
            physical[logical] = (kind, props["Name"])
    exports = {e["Name"]: e["Value"] for e in cf.list_exports().get("Exports", [])}
    return DeployedStack(
        name=stack_name,
        template=template,
        original=original,
        fixes=fixes,
        physical=physical,
        not_created=not_created,
        exports=exports,
        stack_id=created["StackId"],
        seconds=time.monotonic() - started,
    )


def _replace_refs(value: Any, literal: dict[str, str], path: str = "") -> list[str]:
    """Replaces each ``{"Ref": id}`` with ``literal[id]`` inside ``value``; returns where."""
    done: list[str] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, v in list(items):
        here = f"{path}.{key}" if path else str(key)
        if isinstance(v, dict) and len(v) == 1 and v.get("Ref") in literal:
            value[key] = literal[v["Ref"]]
            done.append(f"{here} Ref {v['Ref']} -> {value[key]}")
        elif isinstance(v, (dict, list)):
            done += _replace_refs(v, literal, here)
    return done


__all__ = [
    "BOOTSTRAP_VERSION_PARAMETER",
    "DeployedStack",
    "deploy",
    "moto_template_fixes",
    "upload_assets",
]
