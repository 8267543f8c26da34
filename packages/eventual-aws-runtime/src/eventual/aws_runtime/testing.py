"""A test harness that plays AWS (through moto) and Lambda's event delivery.

``AwsHarness(entry)`` starts ``moto.mock_aws()``, creates the service's resources exactly as
:mod:`eventual.aws_runtime.names` describes them, points the runtime at them, and then plays
Lambda: it pulls the execution queue and the timer queue and calls the real handlers with
Lambda's SQS event shape (FIFO groups are respected: moto does not hand out a group with a
message in flight), turns the orchestrator's asynchronous ``lambda:Invoke`` calls into task
handler calls (retried twice on error, like Lambda), routes EventBridge rules (one per
subscription, its target a tap queue standing in for the function) to the subscription
handler, and fires the EventBridge Scheduler schedules that are due (moto stores them but never
runs them). Time is virtual: :meth:`advance` moves the runtime's clock and moto's SQS clock
(``DelaySeconds`` and visibility timeouts), and fires what falls due in order.

Faults: ``fault_rate`` fails that share of AWS requests with throttling or 5xx answers, half
before moto sees the request and half after it was applied (so retries repeat writes), through
a ``before-send`` hook on the runtime's boto3 session; ``duplicate_deliveries`` delivers every
SQS message twice. Every request the runtime makes is counted in :attr:`requests`.

Lambda's part (:class:`LambdaPlayer`, :class:`LambdaFunction`, :class:`Container`) lives in
:mod:`eventual.aws_runtime.testing_lambda` and is importable from here too.

Needs ``moto`` (a test dependency; this module is not imported by the runtime).
"""

from __future__ import annotations

import json
import os
import random
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from . import clients
from . import names as n
from .handlers import _common
from .testing_lambda import (
    ACCOUNT,
    REGION,
    Container,
    HarnessError,
    Invocation,
    LambdaFunction,
    LambdaPlayer,
)


class _Clock:
    """The virtual clock of the runtime and of moto's SQS.

    Moto's SQS sees milliseconds since the harness started, plus a nanosecond per reading
    (moto makes a message visible only when its clock is strictly past the visibility time,
    so "visible again now", a timeout of 0, needs time to move a little in frozen time)."""

    def __init__(self, start: datetime) -> None:
        self.origin = start
        self._now = start
        self._ticks = 0

    def now(self) -> datetime:
        return self._now

    def set(self, t: datetime) -> None:
        if t > self._now:
            self._now = t

    def moto_now(self) -> float:
        return (self._now - self.origin).total_seconds() * 1000 + self._ticks * 1e-6

    def moto_millis(self) -> float:
        self._ticks += 1
        return self.moto_now()

    def from_moto(self, millis: float) -> datetime:
        return self.origin + timedelta(milliseconds=round(millis))


class AwsHarness(LambdaPlayer):
    """``with AwsHarness("my_service") as aws: aws.start(...); aws.run_until_idle()``."""

    def __init__(
        self,
        entry: str,
        *,
        service_name: str | None = None,
        start: datetime | None = None,
        fault_rate: float = 0.0,
        duplicate_deliveries: bool = False,
        seed: int = 0,
        retry_after: int | None = None,
    ) -> None:
        self.entry = entry
        self._service_name = service_name
        start = start or datetime.now(UTC).replace(microsecond=0)
        self.clock = _Clock(start)
        super().__init__(duplicate_deliveries=duplicate_deliveries, retry_after=retry_after)
        self.fault_rate = fault_rate
        self.random = random.Random(seed)
        self.requests: Counter[tuple[str, str]] = Counter()
        self.faults: Counter[str] = Counter()
        self.faults_enabled = True
        self._saved_env: dict[str, str | None] = {}
        self._patches: list[tuple[Any, str, Any]] = []
        self._tap_queues: dict[str, str] = {}
        self._functions: dict[str, LambdaFunction] = {}

    # ------------------------------------------------------------ set-up

    def __enter__(self) -> AwsHarness:
        import boto3
        from moto import mock_aws

        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            self._setenv(key, value)
        self._mock = mock_aws()
        self._mock.start()
        self._patch_time()
        self._admin_session = boto3.Session(region_name=REGION)
        self._admin_clients: dict[str, Any] = {}
        self.admin = SimpleNamespace(client=self.admin_client)
        from eventual.core.service import load_service

        service = load_service(self.entry, name=self._service_name)
        self.service = service
        self.names = self._create_resources(n.ServiceNames.for_service(service.name))
        for key, value in self.names.environment().items():
            self._setenv(key, value)
        self._setenv(n.ENV_SERVICE_ENTRY, self.entry)
        self._setenv(n.ENV_SERVICE_NAME, service.name)
        self.session = boto3.Session(region_name=REGION)
        self.session.events.register_first("before-send", self._before_send)
        clients.configure(self.session)
        _common.configure(clock=self.clock)
        return self

    def admin_client(self, service: str) -> Any:
        """The harness's own clients (not counted, never faulted)."""
        found = self._admin_clients.get(service)
        if found is None:
            found = self._admin_session.client(service)
            self._admin_clients[service] = found
        return found

    def __exit__(self, *exc: object) -> None:
        _common.configure()
        clients.configure(None)
        for obj, attr, old in reversed(self._patches):
            setattr(obj, attr, old)
        self._patches.clear()
        self._mock.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def _setenv(self, key: str, value: str) -> None:
        self._saved_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def _patch(self, obj: Any, attr: str, value: Any) -> None:
        self._patches.append((obj, attr, getattr(obj, attr)))
        setattr(obj, attr, value)

    def _patch_time(self) -> None:
        import botocore.endpoint
        import moto.sqs.models as sqs_models

        clock = self.clock
        self._patch(sqs_models, "unix_time", lambda *a: clock.moto_millis() / 1000)
        self._patch(sqs_models, "unix_time_millis", lambda *a: clock.moto_millis())
        # botocore sleeps between retries; under a virtual clock nobody waits.
        self._patch(botocore.endpoint, "time", SimpleNamespace(sleep=lambda s: None))

    def _create_resources(self, names: n.ServiceNames) -> n.ServiceNames:
        ddb = self.admin.client("dynamodb")
        for table in n.dynamodb_tables(names):
            ddb.create_table(**table)
        ddb.update_time_to_live(
            TableName=names.claims_table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": n.CLAIMS_TTL},
        )
        self.admin.client("s3").create_bucket(Bucket=names.payload_bucket)
        sqs = self.admin.client("sqs")
        queue_url = sqs.create_queue(
            QueueName=names.execution_queue, Attributes=n.execution_queue_attributes()
        )["QueueUrl"]
        timer_url = sqs.create_queue(
            QueueName=names.timer_queue, Attributes=n.timer_queue_attributes()
        )["QueueUrl"]
        timer_arn = sqs.get_queue_attributes(QueueUrl=timer_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events = self.admin.client("events")
        events.create_event_bus(Name=names.event_bus)
        for sub in self.service.subscriptions.values():
            tap = sqs.create_queue(QueueName=f"harness-tap-{uuid.uuid4().hex[:12]}")["QueueUrl"]
            tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            rule = names.subscription_rule(sub.name)
            events.put_rule(
                Name=rule,
                EventBusName=names.event_bus,
                EventPattern=json.dumps({"detail-type": list(sub.event_names)}),
            )
            events.put_targets(
                Rule=rule, EventBusName=names.event_bus, Targets=[{"Id": "fn", "Arn": tap_arn}]
            )
            self._tap_queues[sub.name] = tap
        self.admin.client("scheduler").create_schedule_group(Name=names.schedule_group)
        self.admin.client("logs").create_log_group(logGroupName=names.log_group)
        from dataclasses import replace

        return replace(
            names,
            execution_queue_url=queue_url,
            timer_queue_url=timer_url,
            timer_queue_arn=timer_arn,
            scheduler_role_arn=f"arn:aws:iam::{ACCOUNT}:role/{names.service_name}-scheduler",
        )

    # ------------------------------------------------------------ the runtime's requests

    def _before_send(self, request: Any, event_name: str = "", **kwargs: Any) -> Any:
        from moto.core.models import botocore_stubber

        _, service, operation = event_name.split(".", 2)
        self.requests[(service, operation)] += 1
        fault = None
        if self.faults_enabled and self.fault_rate and self.random.random() < self.fault_rate:
            fault = self.random.choice(["before", "after"])
        if fault == "before":
            self.faults["before"] += 1
            return self._error(request, service)
        if service == "lambda" and operation == "Invoke":
            response = self._capture_invoke(request)
        elif fault == "after":
            # Apply the request, then lose the answer: botocore retries a request that in
            # fact succeeded.
            botocore_stubber(event_name, request)
            request.reset_stream()
            response = None
        else:
            return None  # moto's own before-send handler answers
        if fault == "after":
            self.faults["after"] += 1
            return self._error(request, service)
        return response

    def _error(self, request: Any, service: str) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        if service != "s3" and self.random.random() < 0.5:
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
            headers = {
                "x-amzn-errortype": "ThrottlingException",
                "content-type": "application/x-amz-json-1.0",
            }
            return AWSResponse(request.url, 400, headers, MockRawResponse(body))
        status = self.random.choice([500, 503])
        return AWSResponse(request.url, status, {}, MockRawResponse(b""))

    def _capture_invoke(self, request: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        found = re.search(r"/functions/([^/]+)/invocations", request.url)
        function = unquote(found.group(1)) if found else ""
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        payload = json.loads(body or b"{}")
        self.invocations.append(Invocation(function, payload))
        return AWSResponse(
            request.url, 202, {"x-amzn-requestid": str(uuid.uuid4())}, MockRawResponse(b"")
        )

    @contextmanager
    def no_faults(self) -> Iterator[None]:
        previous, self.faults_enabled = self.faults_enabled, False
        try:
            yield
        finally:
            self.faults_enabled = previous

    def reset_counts(self) -> None:
        self.requests.clear()

    # ------------------------------------------------------------ Lambda's deliveries

    def _handler(self, kind: str) -> Any:
        import importlib

        return importlib.import_module(f"eventual.aws_runtime.handlers.{kind}").handler

    def _function(self, kind: str, name: str, **extra_env: str) -> LambdaFunction:
        key = f"{kind}:{extra_env}"
        found = self._functions.get(key)
        if found is None:
            found = LambdaFunction(name=name, kind=kind, extra_env=dict(extra_env))
            found.arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
            self._functions[key] = found
        return found

    def call(self, fn: LambdaFunction, event: Any, context: Any) -> Any:
        """The handler of ``fn``'s kind, in the environment the harness set (plus the
        function's own variables: ``EVENTUAL_SUBSCRIPTION``), sharing one container."""
        previous = {k: os.environ.get(k) for k in fn.extra_env}
        os.environ.update(fn.extra_env)
        try:
            return self._handler(fn.kind)(event, context)
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def queue_mappings(self) -> list[tuple[str, LambdaFunction, int]]:
        names = self.names
        return [
            (
                names.execution_queue_url,
                self._function("orchestrator", names.orchestrator_function()),
                n.ORCHESTRATOR_BATCH_SIZE,
            ),
            (names.timer_queue_url, self._function("timer", names.timer_function()), 10),
        ]

    def invoke_target(self, function: str) -> LambdaFunction | None:
        return self._function("task", function.rsplit(":", 1)[-1])

    def schedule_groups(self) -> list[str]:
        return [self.names.schedule_group]

    def _deliver_subscriptions(self) -> int:
        done = 0
        for sub, url in self._tap_queues.items():
            fn = self._function(
                "subscription", self.names.subscription_function(sub), **{n.ENV_SUBSCRIPTION: sub}
            )
            messages = self._receive(url)
            failed: set[str] = set()
            for m in messages:
                try:
                    self.call(fn, json.loads(m["Body"]), self._context(fn))
                except Exception:
                    failed.add(m["MessageId"])
            self._settle(url, messages, failed)
            done += len(messages)
        return done

    def deliver(self) -> int:
        """One round of every delivery; returns how many things were delivered."""
        done = super().deliver()
        done += self._deliver_subscriptions()
        return done

    def run_until_idle(self, *, max_rounds: int = 5000) -> None:
        """Deliver until nothing is deliverable at the current (virtual) time. A message whose
        handler failed comes back when its visibility timeout expires (``retry_after`` seconds
        when given, else the queue's own timeout): :meth:`advance` past it."""
        super().run_until_idle(max_rounds=max_rounds)

    def next_due(self) -> datetime | None:
        """When the next schedule, delayed message or message in flight falls due."""
        from moto.sqs.models import sqs_backends

        candidates = [due for due, _, _ in self._schedules()]
        queues = sqs_backends[ACCOUNT][REGION].queues
        now_ms = self.clock.moto_now()
        urls = [self.names.execution_queue_url, self.names.timer_queue_url]
        for url in [*urls, *self._tap_queues.values()]:
            for m in queues[url.rsplit("/", 1)[-1]]._messages:
                for t in (m.delayed_until, m.visible_at):
                    if t and t > now_ms:
                        candidates.append(self.clock.from_moto(t))
        return min(candidates) if candidates else None

    def advance_to(self, target: datetime) -> None:
        """Move time to ``target``, delivering everything that falls due on the way, in order."""
        self.run_until_idle()
        for _ in range(100_000):
            due = self.next_due()
            if due is None or due > target:
                break
            self.clock.set(due)
            self.run_until_idle()
        else:
            raise HarnessError(f"time does not reach {target}: timers keep falling due")
        self.clock.set(target)
        self.run_until_idle()

    def advance(self, seconds: float) -> None:
        self.advance_to(self.clock.now() + timedelta(seconds=seconds))

    # ------------------------------------------------------------ HTTP through API Gateway

    def http(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Call the command function; returns the API Gateway response."""
        if path.startswith("/rpc/_system/"):
            fn = self._function("system", self.names.system_function())
        else:
            fn = self._function("command", self.names.command_function())
        return self.call(fn, self.http_event(method, path, **kwargs), self._context(fn))

    def system(self, name: str, body: Any = None) -> Any:
        """A system command (faults suspended): its JSON result, or :class:`HarnessError`."""
        with self.no_faults():
            response = self.http("POST", f"/rpc/_system/{name}", body=body)
        data = json.loads(response["body"]) if response.get("body") else None
        if response["statusCode"] >= 300:
            raise HarnessError(f"{name} answered {response['statusCode']}: {data}")
        return data

    def start(self, workflow: str, input: Any = None, *, name: str | None = None) -> str:
        body: dict[str, Any] = {"workflow": workflow, "input": input}
        if name is not None:
            body["executionName"] = name
        return self.system("startExecution", body)["executionId"]

    def execution(self, execution_id: str) -> dict[str, Any]:
        return self.system("getExecution", execution_id)

    def history(self, execution_id: str) -> list[dict[str, Any]]:
        return self.system("getExecutionHistory", {"executionId": execution_id})["events"]

    def signal(self, execution_id: str, signal: str, payload: Any = None) -> None:
        self.system(
            "sendSignal", {"executionId": execution_id, "signalId": signal, "payload": payload}
        )


__all__ = [
    "ACCOUNT",
    "REGION",
    "AwsHarness",
    "Container",
    "HarnessError",
    "Invocation",
    "LambdaFunction",
    "LambdaPlayer",
]
