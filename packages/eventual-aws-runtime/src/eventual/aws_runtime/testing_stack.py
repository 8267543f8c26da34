"""Deploy a synthesized CDK app to a moto server and run its functions from what it holds.

- :class:`MotoServer` (:mod:`.testing_moto`): a ``moto.server`` subprocess on a free
  127.0.0.1 port, stopped by its PID.
- :func:`deploy` (:mod:`.testing_deploy`) uploads a stack's file assets (the Lambda zips of the
  cloud assembly) to the bootstrap bucket on the server, applies :func:`moto_template_fixes`
  (each a moto limitation, named), creates the stack through CloudFormation and waits for
  ``CREATE_COMPLETE``: a :class:`DeployedStack` with its physical ids and exports.
- :class:`StackHarness` plays Lambda for every function the deployed stacks hold, configured
  only from them: each function's handler, environment, role and dead-letter queue
  (``GetFunctionConfiguration``), its SQS event source mappings
  (``ListEventSourceMappings``), the buses' rules and targets (``ListRules``,
  ``ListTargetsByRule``; the rule's pattern evaluated on each ``PutEvents`` entry, since moto
  cannot invoke a Lambda target), the HTTP API's routes and integrations, and the schedule
  groups. Each invocation runs with exactly its function's variables in ``os.environ``
  (plus what the Lambda runtime sets: region, credentials, and ``AWS_ENDPOINT_URL`` pointing
  at the server) and in its own :class:`~eventual.aws_runtime.testing_lambda.Container`. Every AWS
  call is recorded per role (:mod:`eventual.aws_runtime.testing_iam`).

Test support only; needs moto's server extra (``moto[server,cloudformation]``).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from . import clients
from . import names as n
from .handlers import _common
from .testing_calls import CallRecorder, queue_arn
from .testing_deploy import DeployedStack, deploy, moto_template_fixes, upload_assets
from .testing_iam import Policy, role_policies
from .testing_lambda import (
    ACCOUNT,
    REGION,
    Container,
    HarnessError,
    Invocation,
    LambdaFunction,
    LambdaPlayer,
)
from .testing_moto import CREDENTIALS, MotoServer
from .testing_routes import Route, read_routes

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
        self.routes = read_routes(self.admin_client("apigatewayv2"), self.stacks, self.function)

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
            assert fn.container is not None
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


__all__ = [
    "DeployedStack",
    "MotoServer",
    "OffsetClock",
    "Route",
    "Rule",
    "StackHarness",
    "deploy",
    "moto_template_fixes",
    "queue_arn",
    "upload_assets",
]
