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
  at the server) and in its own :class:`~eventual.aws_runtime.testing_lambda.Container`, with
  the Python Lambda runtime's logging; what it logs and prints goes to the function's log
  group, written as Lambda writes it (with the function's role). Every AWS call is recorded
  per role (:mod:`eventual.aws_runtime.testing_iam`): the runtime's, the user code's (through
  boto3's default session), and the ones AWS services make with a role (``Call.by``), which
  :meth:`StackHarness.service_actions` explains from the templates.
- The runtime's clock and the server's SQS clock move together (:meth:`StackHarness.advance`);
  :meth:`StackHarness.crash_before` makes a function's invocation die before one of its calls,
  as a Lambda sandbox that times out or runs out of memory does.

Test support only; needs moto's server extra (``moto[server,cloudformation]``).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import tempfile
import time
import traceback
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
from .testing_iam import Policy, ServiceAction, role_policies, service_actions
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


class LambdaCrash(Exception):
    """The harness killed an invocation (:meth:`StackHarness.crash_before`): Lambda reports
    the invocation failed, whatever the handler was doing, and discards the container."""


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
        self.platform = CallRecorder(REGION, ACCOUNT, by="aws")
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
        self._saved_default_session: Any = None
        self._crashes: list[_Crash] = []
        self._containers: dict[str, list[Container]] = {}  # by function name, beyond the first
        self._crashed: list[_Crash] | None = None  # the running invocation's crash, if any

    # ------------------------------------------------------------ set-up

    def __enter__(self) -> StackHarness:
        import boto3

        self.platform.attach(self._admin_session)
        self.session = boto3.Session()
        # User code makes its own clients (boto3.client(...)): boto3's default session, which
        # is this one's twin while the harness runs.
        self._saved_default_session = boto3.DEFAULT_SESSION
        boto3.setup_default_session()
        for session in (self.session, boto3.DEFAULT_SESSION):
            self.recorder.attach(session)
            session.events.register_first("before-send", self._before_send)
            session.events.register(
                "before-parameter-build.eventbridge.PutEvents", self._capture_put_events
            )
            session.events.register("before-call", self._before_call)
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
        import boto3

        for fn in self.functions.values():
            if fn.container is not None:
                fn.container.close()
        for containers in self._containers.values():
            for container in containers:
                container.close()
        _common.configure()
        clients.configure(None)
        boto3.DEFAULT_SESSION = self._saved_default_session
        self._tmp.cleanup()

    def admin_client(self, service: str) -> Any:
        found = self._admin.get(service)
        if found is None:
            found = self.server.client(service, self._admin_session)
            self._admin[service] = found
        return found

    def _read_functions(self) -> None:
        lam = self.admin_client("lambda")
        kept = self._template_settings()
        for page in lam.get_paginator("list_functions").paginate():
            for f in page["Functions"]:
                cfg = lam.get_function_configuration(FunctionName=f["FunctionName"])
                kind = _HANDLER_KINDS.get(cfg["Handler"], "")
                name = cfg["FunctionName"]
                log_group, dead_letter, log_level = kept.get(name, ("", "", ""))
                container = Container()
                if log_level:
                    container.logs.level = logging.getLevelName(log_level)
                self.functions[cfg["FunctionArn"]] = LambdaFunction(
                    name=name,
                    kind=kind,
                    arn=cfg["FunctionArn"],
                    environment=dict(cfg.get("Environment", {}).get("Variables", {})),
                    role=cfg["Role"],
                    dead_letter=cfg.get("DeadLetterConfig", {}).get("TargetArn") or dead_letter,
                    container=container,
                    extra_env={"_HANDLER": cfg["Handler"]},
                    log_group=(
                        cfg.get("LoggingConfig", {}).get("LogGroup")
                        or log_group
                        or f"/aws/lambda/{name}"
                    ),
                )

    def _template_settings(self) -> dict[str, tuple[str, str, str]]:
        """Each function's log group and, with the JSON log format, its application log level
        (``LoggingConfig``), and its dead-letter queue ARN (``DeadLetterConfig``), by
        function name, from the templates: moto's Lambda keeps none of these settings."""
        out: dict[str, tuple[str, str, str]] = {}
        for stack in self.stacks:
            resolver = stack.resolver()
            for logical, r in stack.template["Resources"].items():
                if r["Type"] != "AWS::Lambda::Function":
                    continue
                props = r.get("Properties", {})
                logging_config = props.get("LoggingConfig", {})
                group = logging_config.get("LogGroup")
                dlq = props.get("DeadLetterConfig", {}).get("TargetArn")
                # The runtime sets the root logger's level only with the JSON format.
                level = ""
                if logging_config.get("LogFormat") == "JSON":
                    named = str(logging_config.get("ApplicationLogLevel", "INFO"))
                    level = {"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(named, named)
                out[resolver.ref(logical)] = (
                    str(resolver.resolve(group)) if group else "",
                    str(resolver.resolve(dlq)) if dlq else "",
                    level,
                )
        return out

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
            url = self._queue_url(fn.dead_letter)  # Lambda sends by the ARN
            previous, self.platform.principal = self.platform.principal, fn.role
            try:
                self.admin_client("sqs").send_message(
                    QueueUrl=url, MessageBody=json.dumps(inv.payload)
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
        container = fn.container
        assert container is not None
        request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.environment(fn))
        lines: list[str] = []
        crashed: list[_Crash] = []
        try:
            with (
                container.active(),
                container.logs.active(request_id) as lines,
                self._watching(fn, crashed),
                self.recorder.acting_as(fn.role),
            ):
                try:
                    result = getattr(importlib.import_module(module), attr)(event, context)
                except LambdaCrash:
                    result = None
                except Exception as exc:
                    # The runtime reports the error in the function's log, then fails the
                    # invocation.
                    trace = "".join(traceback.format_exception(exc)).rstrip()
                    lines.append(f"[ERROR] {type(exc).__name__}: {exc}\n{trace}")
                    raise
            if crashed:
                # The sandbox died: what the handler did after the crash never happened on
                # AWS, and the container is gone (the next invocation starts cold).
                lines.insert(-2, f"RequestId: {request_id} Error: Runtime exited ({crashed[0]})")
                container.close()
                fn.container = Container()
                containers = self._containers.get(fn.name, [])
                if container in containers:
                    containers[containers.index(container)] = fn.container
                raise LambdaCrash(f"{fn.name}: {crashed[0]}")
            return result
        finally:
            os.environ.clear()
            os.environ.update(saved)
            self._write_logs(fn, container, lines)

    def _write_logs(self, fn: LambdaFunction, container: Container, lines: list[str]) -> None:
        """What Lambda does with an invocation's output: its lines in the container's stream
        of the function's log group, written with the function's role."""
        if not lines:
            return
        logs = self.admin_client("logs")
        previous, self.platform.principal = self.platform.principal, fn.role
        try:
            if not container.logs.stream_created:
                logs.create_log_stream(
                    logGroupName=fn.log_group, logStreamName=container.logs.stream
                )
                container.logs.stream_created = True
            now = int(time.time() * 1000)
            logs.put_log_events(
                logGroupName=fn.log_group,
                logStreamName=container.logs.stream,
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )
        finally:
            self.platform.principal = previous

    def function_logs(self, fn: LambdaFunction | str, contains: str = "") -> list[str]:
        """The messages in ``fn``'s log group (those that contain ``contains``), read from the
        server."""
        found = fn if isinstance(fn, LambdaFunction) else self.function(fn)
        logs = self.admin_client("logs")
        out: list[str] = []
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=found.log_group):
            out.extend(e["message"] for e in page.get("events", []) if contains in e["message"])
        return out

    # ------------------------------------------------------------ execution environments

    def use_container(self, fn: LambdaFunction | str, index: int) -> None:
        """Run ``fn``'s next invocations in its execution environment number ``index`` (0 is
        the one it starts with; another starts cold on first use), as Lambda does when it
        runs a function in several at once: each keeps its own warm state."""
        found = fn if isinstance(fn, LambdaFunction) else self.function(fn)
        containers = self._containers.setdefault(found.name, [])
        if not containers:
            assert found.container is not None
            containers.append(found.container)
        while len(containers) <= index:
            containers.append(Container())
        found.container = containers[index]

    # ------------------------------------------------------------ faults

    def crash_before(self, fn: LambdaFunction | str, operation: str, *, times: int = 1) -> None:
        """The next ``times`` invocations of ``fn`` that are about to make ``operation``
        (``"dynamodb.TransactWriteItems"``) die right there: the request is not sent, the
        invocation fails as a whole (a queue batch returns to the queue, an asynchronous
        invocation is retried) and the container is discarded."""
        found = fn if isinstance(fn, LambdaFunction) else self.function(fn)
        service, _, name = operation.partition(".")
        self._crashes.append(_Crash(found.role, service, name, times))

    @contextmanager
    def _watching(self, fn: LambdaFunction, crashed: list[_Crash]) -> Iterator[None]:
        previous, self._crashed = self._crashed, crashed
        try:
            yield
        finally:
            self._crashed = previous

    def _before_call(self, model: Any = None, **kwargs: Any) -> None:
        if model is None or self.recorder.principal is None:
            return
        if self._crashed:
            # The sandbox is dead: nothing after the crash reaches AWS.
            raise LambdaCrash(str(self._crashed[0]))
        if not self._crashes:
            return
        service = model.service_model.signing_name or model.service_model.endpoint_prefix
        for crash in self._crashes:
            if (
                crash.times > 0
                and crash.role == self.recorder.principal
                and crash.service == service
                and crash.operation == model.name
            ):
                crash.times -= 1
                if crash.times == 0:
                    self._crashes.remove(crash)
                if self._crashed is not None:
                    self._crashed.append(crash)
                raise LambdaCrash(str(crash))

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

    def put_events(self, entries: list[dict[str, Any]]) -> None:
        """``PutEvents`` by a producer outside the stacks (``EventBusName``: a bus's name or
        ARN): EventBridge matches the entries against the rules of their bus on the next
        delivery."""
        for entry in entries:
            self.published.append(("", dict(entry)))

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
        """Move the runtime's clock and the server's SQS clock forward: long timers (the
        schedules) fall due, delayed messages and messages past their visibility timeout
        become visible."""
        self.clock.advance(seconds)
        self.server.shift_clock(seconds)

    # ------------------------------------------------------------ HTTP through the API

    def http(
        self,
        method: str,
        path: str,
        *,
        iam_principal: str | None = None,
        service: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Sends an API Gateway (HTTP API, payload 2.0) request to the function the deployed
        API routes it to (with ``service``, the API of that service: its name, as in
        ``EVENTUAL_SERVICE_NAME``). A route with IAM auth needs ``iam_principal`` (the
        caller's ARN)."""
        bare = path.split("?", 1)[0]
        for route in self.routes:
            if (
                service is not None
                and (route.function.environment or {}).get(n.ENV_SERVICE_NAME) != service
            ):
                continue
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

    def service_actions(self) -> list[ServiceAction]:
        """What AWS services may do with the deployed roles, from the templates
        (:func:`~eventual.aws_runtime.testing_iam.service_actions`)."""
        out: list[ServiceAction] = []
        for stack in self.stacks:
            out.extend(service_actions(stack.original, stack.resolver()))
        return out


@dataclass
class _Crash:
    role: str
    service: str
    operation: str
    times: int

    def __str__(self) -> str:
        return f"crashed before {self.service}.{self.operation}"


__all__ = [
    "DeployedStack",
    "LambdaCrash",
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
