"""Deploy a synthesized CDK app to a moto server and run its functions from what it holds.

- :class:`MotoServer`: a ``moto.server`` subprocess on a free 127.0.0.1 port, stopped by its
  PID.
- :func:`deploy` uploads a stack's file assets (the Lambda zips of the cloud assembly) to the
  bootstrap bucket on the server, applies :func:`moto_template_fixes` (each a moto
  limitation, named), creates the stack through CloudFormation and waits for
  ``CREATE_COMPLETE``: a :class:`DeployedStack` with its physical ids and exports.
- :class:`StackHarness` plays Lambda for every function the deployed stacks hold, configured
  only from them: each function's handler, environment, role and dead-letter queue
  (``GetFunctionConfiguration``), its SQS event source mappings
  (``ListEventSourceMappings``), the buses' rules and targets (``ListRules``,
  ``ListTargetsByRule``; the rule's pattern evaluated on each ``PutEvents`` entry, since moto
  cannot invoke a Lambda target), the HTTP API's routes and integrations, and the schedule
  groups. Each invocation runs with exactly its function's variables in ``os.environ``
  (plus what the Lambda runtime sets: region, credentials, and ``AWS_ENDPOINT_URL`` pointing
  at the server) and in its own :class:`~eventual.aws_runtime.testing.Container`. Every AWS
  call is recorded per role (:mod:`eventual.aws_runtime.testing_iam`).

Test support only; needs moto's server extra (``moto[server,cloudformation]``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import clients
from . import names as n
from .handlers import _common
from .testing import ACCOUNT, REGION, Container, HarnessError, LambdaFunction, LambdaPlayer
from .testing import _Invocation as Invocation
from .testing_iam import CallRecorder, Policy, TemplateResolver, queue_arn, role_policies

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
BOOTSTRAP_VERSION_PARAMETER = "/cdk-bootstrap/hnb659fds/version"


# ---------------------------------------------------------------- the server


class MotoServer:
    """``with MotoServer() as server: server.client("s3")...`` — a ``moto.server`` process on
    a free loopback port, stopped (by its PID) on exit."""

    def __init__(self, *, log: Path | None = None, start_timeout: float = 60.0) -> None:
        self.log = log
        self.start_timeout = start_timeout
        self.port = 0
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._log_file = open(self.log, "wb") if self.log else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION},
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                raise HarnessError(f"moto server exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise HarnessError(
                        f"moto server did not answer on {self.url} within {self.start_timeout}s"
                    ) from None
                time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log_file not in (None, subprocess.DEVNULL):
            self._log_file.close()
        self._log_file = None

    def session(self) -> Any:
        import boto3

        return boto3.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=REGION,
        )

    def client(self, service: str, session: Any = None) -> Any:
        return (session or self.session()).client(service, endpoint_url=self.url)


# ---------------------------------------------------------------- the deployment


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
    import io

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


# ---------------------------------------------------------------- the clock


class OffsetClock:
    """The real clock plus an offset that :meth:`advance` moves forward: the moto server's SQS
    runs on real time (short delays are waited for), while a long timer (an EventBridge
    Scheduler schedule) falls due when the offset passes it."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


# ---------------------------------------------------------------- the stack's functions


@dataclass
class Rule:
    bus: str  # name
    name: str
    pattern: dict[str, Any]
    targets: list[dict[str, Any]]


@dataclass
class Route:
    api_id: str
    method: str  # "POST", or "ANY"/"$default"
    path: str
    function: LambdaFunction
    authorization: str
    route_key: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route_key == "$default":
            return {}
        if self.method not in (method, "ANY"):
            return None
        params: dict[str, str] = {}
        want = self.path.strip("/").split("/")
        got = path.strip("/").split("/")
        for i, part in enumerate(want):
            if part.startswith("{") and part.endswith("+}"):
                params[part[1:-2]] = "/".join(got[i:])
                return params if len(got) > i else None
            if i >= len(got):
                return None
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = unquote(got[i])
            elif part != got[i]:
                return None
        return params if len(want) == len(got) else None


_HANDLER_KINDS = {module: kind for kind, module in n.HANDLERS.items()}


class StackHarness(LambdaPlayer):
    """Plays Lambda, the event source mappings, EventBridge's rules and Scheduler for the
    functions of ``stacks`` deployed on ``server``, read back from the server only."""

    def __init__(self, server: MotoServer, stacks: list[DeployedStack]) -> None:
        super().__init__()
        self.server = server
        self.stacks = stacks
        self.clock = OffsetClock()
        self.recorder = CallRecorder(REGION, ACCOUNT)
        # The harness's own calls, recorded only while an AWS service acts with a role.
        self.platform = CallRecorder(REGION, ACCOUNT)
        self.functions: dict[str, LambdaFunction] = {}  # by ARN
        self.mappings: list[tuple[str, LambdaFunction, int, bool]] = []
        self.rules: list[Rule] = []
        self.routes: list[Route] = []
        self.groups: list[str] = []
        self.published: list[tuple[str, dict[str, Any]]] = []  # (principal, PutEvents entry)
        self.event_deliveries: list[tuple[str, str, dict[str, Any]]] = []  # (rule, target, event)
        self._admin_session = server.session()
        self._admin: dict[str, Any] = {}
        self._saved_env: dict[str, str] | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="eventual-lambda-tmp-")

    # ------------------------------------------------------------ set-up

    def __enter__(self) -> StackHarness:
        import boto3

        self.platform.attach(self._admin_session)
        self.session = boto3.Session()
        self.recorder.attach(self.session)
        self.session.events.register_first("before-send", self._before_send)
        self.session.events.register(
            "before-parameter-build.eventbridge.PutEvents", self._capture_put_events
        )
        clients.configure(self.session)
        _common.configure(clock=self.clock)
        self._read_functions()
        self._read_mappings()
        self._read_rules()
        self._read_routes()
        self.groups = [
            g["Name"]
            for g in self.admin_client("scheduler").list_schedule_groups()["ScheduleGroups"]
            if g["Name"] != "default"
        ]
        return self

    def __exit__(self, *exc: object) -> None:
        for fn in self.functions.values():
            if fn.container is not None:
                fn.container.close()
        _common.configure()
        clients.configure(None)
        self._tmp.cleanup()

    def admin_client(self, service: str) -> Any:
        found = self._admin.get(service)
        if found is None:
            found = self.server.client(service, self._admin_session)
            self._admin[service] = found
        return found

    def _read_functions(self) -> None:
        lam = self.admin_client("lambda")
        for page in lam.get_paginator("list_functions").paginate():
            for f in page["Functions"]:
                cfg = lam.get_function_configuration(FunctionName=f["FunctionName"])
                kind = _HANDLER_KINDS.get(cfg["Handler"], "")
                self.functions[cfg["FunctionArn"]] = LambdaFunction(
                    name=cfg["FunctionName"],
                    kind=kind,
                    arn=cfg["FunctionArn"],
                    environment=dict(cfg.get("Environment", {}).get("Variables", {})),
                    role=cfg["Role"],
                    dead_letter=cfg.get("DeadLetterConfig", {}).get("TargetArn", ""),
                    container=Container(),
                    extra_env={"_HANDLER": cfg["Handler"]},
                )

    def function(self, name_or_arn: str) -> LambdaFunction:
        for fn in self.functions.values():
            if name_or_arn in (fn.name, fn.arn):
                return fn
        raise HarnessError(f"no deployed function {name_or_arn!r}")

    def _queue_url(self, arn: str) -> str:
        name = arn.rsplit(":", 1)[-1]
        return self.admin_client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    def _read_mappings(self) -> None:
        lam = self.admin_client("lambda")
        for m in lam.list_event_source_mappings()["EventSourceMappings"]:
            if not m["EventSourceArn"].startswith("arn:aws:sqs:"):
                continue
            fn = self.functions[m["FunctionArn"]]
            url = self._queue_url(m["EventSourceArn"])
            partial = "ReportBatchItemFailures" in m.get("FunctionResponseTypes", [])
            self.mappings.append((url, fn, int(m.get("BatchSize", 10)), partial))
            # A new mapping reads its queue's attributes with the function's role.
            with self.poller(fn, url):
                self.admin_client("sqs").get_queue_attributes(
                    QueueUrl=url, AttributeNames=["VisibilityTimeout"]
                )

    def _read_rules(self) -> None:
        ev = self.admin_client("events")
        for bus in ev.list_event_buses()["EventBuses"]:
            for rule in ev.list_rules(EventBusName=bus["Name"])["Rules"]:
                targets = ev.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus["Name"])
                self.rules.append(
                    Rule(
                        bus=bus["Name"],
                        name=rule["Name"],
                        pattern=json.loads(rule.get("EventPattern") or "{}"),
                        targets=targets["Targets"],
                    )
                )

    def _read_routes(self) -> None:
        api = self.admin_client("apigatewayv2")
        for a in api.get_apis()["Items"]:
            integrations = {
                i["IntegrationId"]: i for i in api.get_integrations(ApiId=a["ApiId"])["Items"]
            }
            for r in api.get_routes(ApiId=a["ApiId"])["Items"]:
                target = r.get("Target", "")
                integration = integrations[target.split("/", 1)[1]]
                uri = integration["IntegrationUri"]
                found = re.search(r"(arn:aws:lambda:[^/]+?:function:[^/:]+)", uri)
                if found is None:
                    raise HarnessError(f"route {r['RouteKey']}: integration {uri} is no function")
                method, _, path = r["RouteKey"].partition(" ")
                self.routes.append(
                    Route(
                        api_id=a["ApiId"],
                        method=method,
                        path=path,
                        function=self.functions[found.group(1)],
                        authorization=r.get("AuthorizationType", "NONE"),
                        route_key=r["RouteKey"],
                    )
                )
        for stack in self.stacks:
            self._template_routes(stack)
        # The most specific route wins; $default last.
        self.routes.sort(key=lambda r: (r.route_key == "$default", "{" in r.path, -len(r.path)))

    def _template_routes(self, stack: DeployedStack) -> None:
        """moto's CloudFormation creates no ``AWS::ApiGatewayV2`` resources: the routes and
        their integrations are read from the deployed template (the function each integration
        targets is resolved against the stack's physical ids)."""
        resources = stack.template["Resources"]
        resolver = stack.resolver()
        for logical, r in resources.items():
            if r["Type"] != "AWS::ApiGatewayV2::Route" or logical in stack.physical:
                continue
            props = r["Properties"]
            integration_id = _first_ref(props.get("Target"))
            if integration_id is None:
                raise HarnessError(f"route {logical} has no integration target")
            uri = resolver.resolve(resources[integration_id]["Properties"]["IntegrationUri"])
            method, _, path = props["RouteKey"].partition(" ")
            self.routes.append(
                Route(
                    api_id=str(_first_ref(props["ApiId"])),
                    method=method,
                    path=path,
                    function=self.function(uri),
                    authorization=props.get("AuthorizationType", "NONE"),
                    route_key=props["RouteKey"],
                )
            )

    def retries(self, fn: LambdaFunction) -> int:
        """Lambda's retries of an asynchronous invocation: the function's
        ``AWS::Lambda::EventInvokeConfig`` (read from the template: moto skips it), else 2."""
        for stack in self.stacks:
            resolver = stack.resolver()
            for r in stack.template["Resources"].values():
                if r["Type"] != "AWS::Lambda::EventInvokeConfig":
                    continue
                props = r["Properties"]
                if resolver.resolve(props["FunctionName"]) in (fn.name, fn.arn):
                    return int(props.get("MaximumRetryAttempts", 2))
        return 2

    # ------------------------------------------------------------ the player's hooks

    def queue_mappings(self) -> list[tuple[str, LambdaFunction, int]]:
        return [(url, fn, batch) for url, fn, batch, _ in self.mappings]

    def invoke_target(self, function: str) -> LambdaFunction | None:
        try:
            return self.function(function)
        except HarnessError:
            return None

    def schedule_groups(self) -> list[str]:
        return self.groups

    @contextmanager
    def poller(self, fn: LambdaFunction, queue_url: str) -> Iterator[None]:
        """The event source mapping polls, deletes and returns messages with the function's
        role."""
        previous, self.platform.principal = self.platform.principal, fn.role
        try:
            yield
        finally:
            self.platform.principal = previous

    def fire_schedule_target(self, schedule: dict[str, Any]) -> None:
        """Scheduler sends the schedule's input to the target queue (by its ARN) with the
        target's role."""
        target = schedule["Target"]
        url = self._queue_url(target["Arn"])
        previous, self.platform.principal = self.platform.principal, target["RoleArn"]
        try:
            self.admin_client("sqs").send_message(QueueUrl=url, MessageBody=target["Input"])
        finally:
            self.platform.principal = previous

    def on_lost(self, inv: Invocation) -> None:
        """Past its retries an asynchronous invocation goes to the function's dead-letter
        queue (sent with the function's role)."""
        super().on_lost(inv)
        fn = self.invoke_target(inv.function)
        if fn is not None and fn.dead_letter:
            previous, self.platform.principal = self.platform.principal, fn.role
            try:
                self.admin_client("sqs").send_message(
                    QueueUrl=self._queue_url(fn.dead_letter), MessageBody=json.dumps(inv.payload)
                )
            finally:
                self.platform.principal = previous

    def environment(self, fn: LambdaFunction) -> dict[str, str]:
        """What the function's process sees: its variables, and the Lambda runtime's."""
        assert fn.environment is not None
        tmp = Path(self._tmp.name) / fn.name
        tmp.mkdir(exist_ok=True)
        env = {
            **CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": "/var/task",
            "TZ": ":UTC",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # Not Lambda's: where the in-process "Lambda" finds AWS, and no user config.
            "AWS_ENDPOINT_URL": self.server.url,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            **fn.extra_env,
        }
        for key, value in fn.environment.items():
            # Each Lambda container has its own /tmp: a variable pointing into /tmp points
            # into this function's own directory.
            if value == "/tmp" or value.startswith("/tmp/"):
                value = str(tmp) + value[len("/tmp") :]
            env[key] = value
        return env

    def call(self, fn: LambdaFunction, event: Any, context: Any) -> Any:
        module, _, attr = fn.extra_env["_HANDLER"].rpartition(".")
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.environment(fn))
        try:
            with fn.container.active(), self.recorder.acting_as(fn.role):
                return getattr(importlib.import_module(module), attr)(event, context)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    # ------------------------------------------------------------ what the runtime sends

    def _before_send(self, request: Any, event_name: str = "", **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        if event_name.startswith("before-send.eventbridge.PutEvents"):
            # moto's PutEvents fails (NotImplementedError, a 500) on a rule with a Lambda
            # target: EventBridge's answer is given here and the rules are evaluated by
            # _route_events (the entries were captured before the request was built).
            body = request.body
            if hasattr(body, "read"):
                body = body.read()
            entries = json.loads(body or b"{}").get("Entries", [])
            answer = {
                "FailedEntryCount": 0,
                "Entries": [{"EventId": str(uuid.uuid4())} for _ in entries],
            }
            return AWSResponse(
                request.url,
                200,
                {"content-type": "application/x-amz-json-1.1"},
                MockRawResponse(json.dumps(answer).encode()),
            )
        if not event_name.startswith("before-send.lambda.Invoke"):
            return None
        # moto would run the function in Docker: keep the asynchronous invoke instead.
        found = re.search(r"/functions/([^/]+)/invocations", request.url)
        function = unquote(found.group(1)) if found else ""
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        self.invocations.append(Invocation(function, json.loads(body or b"{}")))
        return AWSResponse(
            request.url, 202, {"x-amzn-requestid": str(uuid.uuid4())}, MockRawResponse(b"")
        )

    def _capture_put_events(self, params: Any = None, **kwargs: Any) -> None:
        for entry in (params or {}).get("Entries", []):
            self.published.append((self.recorder.principal or "", dict(entry)))

    def _route_events(self) -> int:
        """EventBridge: each published entry is matched against the rules of its bus; a
        Lambda target is an asynchronous invoke, a bus target puts the event on that bus
        (with the target's role)."""
        pending, self.published = self.published, []
        for _, entry in pending:
            bus = (entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "account": ACCOUNT,
                "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": REGION,
                "resources": entry.get("Resources", []),
                "detail": json.loads(entry.get("Detail") or "{}"),
            }
            self._put_on_bus(bus, event, depth=0)
        return len(pending)

    def _put_on_bus(self, bus: str, event: dict[str, Any], depth: int) -> None:
        from moto.events.models import EventPattern

        if depth > 5:
            raise HarnessError(f"event {event['detail-type']} loops between buses")
        for rule in self.rules:
            if rule.bus != bus or not EventPattern.load(json.dumps(rule.pattern)).matches_event(
                event  # type: ignore[arg-type]
            ):
                continue
            for target in rule.targets:
                arn = target["Arn"]
                self.event_deliveries.append((rule.name, arn, event))
                if ":function:" in arn:
                    self.invocations.append(Invocation(arn, dict(event)))
                elif ":event-bus/" in arn:
                    entry = {
                        "Source": event["source"],
                        "DetailType": event["detail-type"],
                        "Detail": json.dumps(event["detail"]),
                        "EventBusName": arn,
                    }
                    self.platform.record(
                        target.get("RoleArn", ""), "events", "PutEvents", {"Entries": [entry]}
                    )
                    self._put_on_bus(arn.rsplit("/", 1)[-1], event, depth + 1)
                else:
                    raise HarnessError(f"rule {rule.name}: target {arn} is not played here")

    def deliver(self) -> int:
        done = self._route_events()
        done += super().deliver()
        done += self._route_events()
        return done

    def _deliver_queue(self, url: str, fn: LambdaFunction, batch_size: int = 10) -> int:
        partial = next((p for u, f, _, p in self.mappings if u == url and f is fn), True)
        if partial:
            return super()._deliver_queue(url, fn, batch_size)
        raise HarnessError(f"{fn.name}: its mapping of {url} has no ReportBatchItemFailures")

    # ------------------------------------------------------------ waiting

    def queue_counts(self) -> dict[str, dict[str, int]]:
        """Messages visible, in flight and delayed in each mapped queue."""
        sqs = self.admin_client("sqs")
        out = {}
        for url, _, _, _ in self.mappings:
            a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            out[url.rsplit("/", 1)[-1]] = {
                k.removeprefix("ApproximateNumberOfMessages") or "Visible": int(v)
                for k, v in a.items()
                if k.startswith("ApproximateNumberOfMessages")
            }
        return out

    def _in_queues(self) -> int:
        sqs = self.admin_client("sqs")
        total = 0
        for url, _, _, _ in self.mappings:
            a = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            total += sum(int(v) for v in a.values())
        return total

    def settle(self, *, timeout: float = 60.0, until: Callable[[], bool] | None = None) -> None:
        """Deliver until nothing is left in the mapped queues (delayed messages are waited
        for in real time) and no schedule is due, or until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.deliver():
                continue
            if until is not None and until():
                return
            if until is None and not self._in_queues() and not self.invocations:
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"not settled after {timeout}s: in the queues {self.queue_counts()}"
                )
            time.sleep(0.2)

    def advance(self, seconds: float) -> None:
        """Move the runtime's clock forward (long timers, i.e. schedules, fall due)."""
        self.clock.advance(seconds)

    # ------------------------------------------------------------ HTTP through the API

    def http(
        self, method: str, path: str, *, iam_principal: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Sends an API Gateway (HTTP API, payload 2.0) request to the function the deployed
        API routes it to. A route with IAM auth needs ``iam_principal`` (the caller's ARN)."""
        bare = path.split("?", 1)[0]
        for route in self.routes:
            params = route.match(method, bare)
            if params is None:
                continue
            authorizer = None
            if route.authorization == "AWS_IAM":
                if iam_principal is None:
                    return {"statusCode": 403, "body": '{"message":"Forbidden"}'}
                authorizer = {"iam": {"userArn": iam_principal, "accountId": ACCOUNT}}
            event = self.http_event(
                method,
                bare,
                route_key=route.route_key,
                path_parameters=params or None,
                api_id=route.api_id,
                authorizer=authorizer,
                **kwargs,
            )
            fn = route.function
            return self.call(fn, event, self._context(fn))
        return {"statusCode": 404, "body": '{"message":"Not Found"}'}

    def function_for(self, method: str, path: str) -> LambdaFunction | None:
        for route in self.routes:
            if route.match(method, path) is not None:
                return route.function
        return None

    # ------------------------------------------------------------ permissions

    def role_policies(self) -> dict[str, Policy]:
        """Each role of the deployed stacks (by ARN) with its template's statements."""
        out: dict[str, Policy] = {}
        for stack in self.stacks:
            resolver = stack.resolver()
            for logical, pid in stack.of_type("AWS::IAM::Role").items():
                arn = pid if pid.startswith("arn:") else f"arn:aws:iam::{ACCOUNT}:role/{pid}"
                out[arn] = role_policies(stack.original, logical, resolver)
        return out

    def role_labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for stack in self.stacks:
            for logical, pid in stack.of_type("AWS::IAM::Role").items():
                arn = pid if pid.startswith("arn:") else f"arn:aws:iam::{ACCOUNT}:role/{pid}"
                labels[arn] = f"{stack.name}/{logical}"
        for fn in self.functions.values():
            if fn.role in labels:
                labels[fn.role] = f"{labels[fn.role]} ({fn.name})"
        return labels

    def all_calls(self) -> list[Any]:
        return [*self.recorder.calls, *self.platform.calls]


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


def _first_ref(value: Any) -> str | None:
    """The first ``{"Ref": id}`` inside a CloudFormation expression."""
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            return value["Ref"]
        for v in value.values():
            found = _first_ref(v)
            if found is not None:
                return found
    if isinstance(value, list):
        for v in value:
            found = _first_ref(v)
            if found is not None:
                return found
    return None


__all__ = [
    "DeployedStack",
    "MotoServer",
    "OffsetClock",
    "StackHarness",
    "deploy",
    "moto_template_fixes",
    "queue_arn",
    "upload_assets",
]
