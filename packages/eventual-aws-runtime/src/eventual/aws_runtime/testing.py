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

Needs ``moto`` (a test dependency; this module is not imported by the runtime).
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from . import clients
from . import names as n
from .handlers import _common

ACCOUNT = "123456789012"
REGION = "us-east-1"


class HarnessError(AssertionError):
    """The harness could not bring the service to rest (a message keeps failing...)."""


@dataclass
class _Invocation:
    function: str
    payload: dict[str, Any]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


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


@dataclass
class LambdaFunction:
    """One Lambda function as a player runs it: its handler kind (``orchestrator``,
    ``task``...), its name and ARN, and, when deployed, the environment and role it has.

    ``environment`` is ``None`` for :class:`AwsHarness`'s functions, which run in the
    process's environment as the harness set it (with ``extra_env`` on top)."""

    name: str
    kind: str
    arn: str = ""
    environment: dict[str, str] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    role: str = ""
    dead_letter: str = ""
    container: Any = None


_CONTAINER_STATE: list[tuple[str, str, Any]] = [
    ("eventual.aws_runtime.handlers._common", "_service", lambda: None),
    ("eventual.aws_runtime.handlers._common", "_names", lambda: None),
    ("eventual.aws_runtime.handlers._common", "_runtimes", dict),
    ("eventual.aws_runtime.handlers._common", "_runner", lambda: None),
    ("eventual.aws_runtime.handlers._http", "_handlers", dict),
]
"""The module state a handler keeps for its container's life (``handlers._common``: the
service, the names, the warm runtimes, the event loop; ``handlers._http``: the HTTP handlers).
A :class:`Container` swaps it in and out, so each deployed function is its own container."""


class Container:
    """The handlers' per-container state of one function: swapped in around each of its
    invocations, so functions keep their warm runtimes apart as separate containers do."""

    def __init__(self) -> None:
        import importlib

        self._state: dict[tuple[str, str], Any] = {}
        for module, attr, fresh in _CONTAINER_STATE:
            if not hasattr(importlib.import_module(module), attr):
                raise HarnessError(
                    f"{module}.{attr} is gone: the handlers keep their per-container state "
                    "elsewhere now; update eventual.aws_runtime.testing._CONTAINER_STATE"
                )
            self._state[(module, attr)] = fresh()

    @contextmanager
    def active(self) -> Iterator[None]:
        import importlib

        saved: dict[tuple[str, str], Any] = {}
        for (module, attr), value in self._state.items():
            mod = importlib.import_module(module)
            saved[(module, attr)] = getattr(mod, attr)
            setattr(mod, attr, value)
        try:
            yield
        finally:
            for (module, attr), value in saved.items():
                mod = importlib.import_module(module)
                self._state[(module, attr)] = getattr(mod, attr)
                setattr(mod, attr, value)

    def close(self) -> None:
        runner = self._state.get(("eventual.aws_runtime.handlers._common", "_runner"))
        if runner is not None:
            runner.close()
        for key, value in self._state.items():
            if isinstance(value, dict):
                value.clear()
            elif key[1] != "_runtimes":
                self._state[key] = None


class LambdaPlayer:
    """What Lambda, SQS event source mappings, EventBridge Scheduler and asynchronous invokes
    do with a service's functions, played in-process with the real handlers. Subclasses say
    where the functions, queues and schedules are (:class:`AwsHarness`: resources it created;
    ``testing_stack.StackHarness``: a stack deployed to a moto server) and how one function is
    called (:meth:`call`)."""

    clock: Any
    region = REGION
    account = ACCOUNT

    def __init__(
        self, *, duplicate_deliveries: bool = False, retry_after: int | None = None
    ) -> None:
        self.duplicate_deliveries = duplicate_deliveries
        self.retry_after = retry_after
        self.failed_deliveries = 0
        self.invocations: list[_Invocation] = []
        self.lost_invocations: list[_Invocation] = []
        self._seen: set[str] = set()
        self._receive_counts: Counter[str] = Counter()

    # ------------------------------------------------------------ what subclasses provide

    def admin_client(self, service: str) -> Any:
        """A client that is not the runtime's (not counted, never faulted)."""
        raise NotImplementedError

    def call(self, fn: LambdaFunction, event: Any, context: Any) -> Any:
        """Run ``fn``'s handler on ``event`` as Lambda would (its environment, its container)."""
        raise NotImplementedError

    def queue_mappings(self) -> list[tuple[str, LambdaFunction, int]]:
        """(queue URL, function, batch size) of each SQS event source mapping."""
        raise NotImplementedError

    def invoke_target(self, function: str) -> LambdaFunction | None:
        """The function a ``lambda:Invoke`` of ``function`` (name or ARN) runs."""
        raise NotImplementedError

    def schedule_groups(self) -> list[str]:
        raise NotImplementedError

    def poller(self, fn: LambdaFunction, queue_url: str) -> Any:
        """A context for the event source mapping's own SQS calls on ``fn``'s behalf."""
        return nullcontext()

    def retries(self, fn: LambdaFunction) -> int:
        """How often Lambda retries a failed asynchronous invocation of ``fn``."""
        return 2

    def on_lost(self, inv: _Invocation) -> None:
        """An asynchronous invocation failed past Lambda's retries."""
        self.lost_invocations.append(inv)

    def fire_schedule_target(self, schedule: dict[str, Any]) -> None:
        """What EventBridge Scheduler does when a schedule is due: send its input to the
        target queue (the only target kind the runtime creates)."""
        target = schedule["Target"]
        arn = target["Arn"]
        sqs = self.admin_client("sqs")
        name = arn.rsplit(":", 1)[-1]
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=target["Input"])

    # ------------------------------------------------------------ SQS event source mappings

    def _sqs_records(self, url: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        arn = f"arn:aws:sqs:{self.region}:{self.account}:{url.rsplit('/', 1)[-1]}"
        return [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": self.region,
            }
            for m in messages
        ]

    def _settle(self, url: str, messages: list[dict[str, Any]], failed: set[str]) -> None:
        sqs = self.admin_client("sqs")
        for m in messages:
            mid = m["MessageId"]
            if mid in failed:
                self.failed_deliveries += 1
                self._receive_counts[mid] += 1
                if self._receive_counts[mid] > 25:
                    raise HarnessError(f"message {mid} keeps failing: {m['Body'][:300]}")
                if self.retry_after is not None:
                    sqs.change_message_visibility(
                        QueueUrl=url,
                        ReceiptHandle=m["ReceiptHandle"],
                        VisibilityTimeout=self.retry_after,
                    )
                # else it stays in flight until the queue's visibility timeout expires
            elif self.duplicate_deliveries and mid not in self._seen:
                self._seen.add(mid)
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    def _receive(self, url: str, batch_size: int = 10) -> list[dict[str, Any]]:
        return (
            self.admin_client("sqs")
            .receive_message(
                QueueUrl=url, MaxNumberOfMessages=min(10, batch_size), AttributeNames=["All"]
            )
            .get("Messages", [])
        )

    def _deliver_queue(self, url: str, fn: LambdaFunction, batch_size: int = 10) -> int:
        with self.poller(fn, url):
            messages = self._receive(url, batch_size)
        if not messages:
            return 0
        try:
            response = self.call(
                fn, {"Records": self._sqs_records(url, messages)}, self._context(fn)
            )
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception:
            failed = {m["MessageId"] for m in messages}
        with self.poller(fn, url):
            self._settle(url, messages, failed)
        return len(messages)

    # ------------------------------------------------------------ asynchronous invokes

    def _deliver_invocations(self) -> int:
        pending, self.invocations = self.invocations, []
        for inv in pending:
            fn = self.invoke_target(inv.function)
            if fn is None:
                raise HarnessError(f"lambda:Invoke of {inv.function!r}: no such function")
            for _ in range(1 + self.retries(fn)):  # the first try and Lambda's retries
                try:
                    self.call(fn, inv.payload, self._context(fn, inv.request_id))
                    break
                except Exception:
                    self.failed_deliveries += 1
            else:
                self.on_lost(inv)
        return len(pending)

    # ------------------------------------------------------------ EventBridge Scheduler

    def _schedules(self) -> list[tuple[datetime, str, dict[str, Any]]]:
        scheduler = self.admin_client("scheduler")
        out = []
        for group in self.schedule_groups():
            for s in scheduler.list_schedules(GroupName=group).get("Schedules", []):
                full = scheduler.get_schedule(Name=s["Name"], GroupName=group)
                found = re.fullmatch(r"at\((.+)\)", full["ScheduleExpression"])
                if found is None:
                    continue
                due = datetime.fromisoformat(found.group(1)).replace(tzinfo=UTC)
                out.append((due, group, full))
        return out

    def _fire_schedules(self) -> int:
        fired = 0
        for due, group, schedule in self._schedules():
            if due > self.clock.now():
                continue
            self.fire_schedule_target(schedule)
            if schedule.get("ActionAfterCompletion") == "DELETE":
                self.admin_client("scheduler").delete_schedule(
                    Name=schedule["Name"], GroupName=group
                )
            fired += 1
        return fired

    def _context(self, fn: LambdaFunction, request_id: str | None = None) -> Any:
        return SimpleNamespace(
            aws_request_id=request_id or str(uuid.uuid4()),
            function_name=fn.name,
            invoked_function_arn=fn.arn,
            get_remaining_time_in_millis=lambda: 60_000,
        )

    def deliver(self) -> int:
        """One round of every delivery; returns how many things were delivered."""
        done = self._fire_schedules()
        done += self._deliver_invocations()
        for url, fn, batch in self.queue_mappings():
            done += self._deliver_queue(url, fn, batch)
        return done

    def run_until_idle(self, *, max_rounds: int = 5000) -> None:
        """Deliver until nothing is deliverable at the current time."""
        for _ in range(max_rounds):
            if not self.deliver():
                return
        raise HarnessError(f"still busy after {max_rounds} delivery rounds")

    # ------------------------------------------------------------ HTTP through API Gateway

    def http_event(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: str = "",
        binary: bool = False,
        route_key: str = "$default",
        path_parameters: dict[str, str] | None = None,
        api_id: str = "harness",
        authorizer: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An API Gateway HTTP API event (payload format 2.0)."""
        raw: bytes | None = None
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        domain = f"{api_id}.execute-api.{self.region}.amazonaws.com"
        if api_id == "harness":
            domain = "api.example.test"
        h = {"content-type": "application/json", "host": domain}
        h.update({k.lower(): v for k, v in (headers or {}).items()})
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": h,
            "requestContext": {
                "accountId": self.account,
                "apiId": api_id,
                "domainName": domain,
                "domainPrefix": domain.split(".", 1)[0],
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "eventual-harness",
                },
                "requestId": str(uuid.uuid4()),
                "routeKey": route_key,
                "stage": "$default",
                "time": self.clock.now().strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(self.clock.now().timestamp() * 1000),
            },
            "isBase64Encoded": binary,
        }
        if path_parameters:
            event["pathParameters"] = path_parameters
        if authorizer is not None:
            event["requestContext"]["authorizer"] = authorizer
        if raw is not None:
            event["body"] = base64.b64encode(raw).decode() if binary else raw.decode()
        return event


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
        self.invocations.append(_Invocation(function, payload))
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
