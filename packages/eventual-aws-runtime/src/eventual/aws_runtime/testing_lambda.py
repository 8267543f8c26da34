"""Lambda's deliveries, played in-process with the real handlers: the part of the harnesses
that does what Lambda does with a service's functions.

- :class:`LambdaFunction`: one function as a player runs it (kind, name, ARN, environment,
  role, dead-letter queue, container).
- :class:`Container`: one function's container, its handlers' per-container state
  (``handlers._common.swap_container``) swapped in around each invocation, and its
  :class:`RuntimeLogs` (the Python Lambda runtime's logging: root logger, handler, stream).
- :class:`LambdaPlayer`: SQS event source mappings (batches, partial batch responses,
  visibility), asynchronous invokes (Lambda's retries, then lost), EventBridge Scheduler's due
  schedules, and API Gateway HTTP API events (payload 2.0). Subclasses say where the
  functions, queues and schedules are and how one function is called:
  :class:`eventual.aws_runtime.testing.AwsHarness` (resources it created in ``mock_aws``) and
  :class:`eventual.aws_runtime.testing_stack.StackHarness` (a stack deployed to a moto server).

Test support only (imports nothing of moto itself).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from .handlers import _common

ACCOUNT = "123456789012"
REGION = "us-east-1"


class HarnessError(AssertionError):
    """The harness could not bring the service to rest (a message keeps failing...)."""


@dataclass
class Invocation:
    """One asynchronous ``lambda:Invoke`` waiting to be delivered."""

    function: str
    payload: dict[str, Any]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


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
    container: Container | None = None
    log_group: str = ""
    """Where Lambda writes the function's logs (its ``LoggingConfig``, else
    ``/aws/lambda/{name}``)."""


class _LinesWriter(io.TextIOBase):
    """A text stream whose complete lines are appended to ``lines`` (what Lambda does with a
    function's standard output)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *done, self._partial = (self._partial + text).split("\n")
        self.lines.extend(done)
        return len(text)

    def flush_partial(self) -> None:
        if self._partial:
            self.lines.append(self._partial)
            self._partial = ""


class _LambdaHandler(logging.Handler):
    """The Python Lambda runtime's handler on the root logger: each record a line in the
    function's log, in the runtime's text format."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.request_id = ""
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
        formatter.converter = time.gmtime
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        record.aws_request_id = self.request_id
        try:
            self.lines.append(self.format(record))
        except Exception:  # pragma: no cover - as logging.Handler does
            self.handleError(record)


class RuntimeLogs:
    """One container's logging as the Python Lambda runtime sets it up: the root logger at
    WARNING (the runtime sets a level only when the function's log level is configured, which
    the construct does not do) with one handler writing the runtime's text lines, and standard
    output. :meth:`active` puts them in place around one invocation (the test process's own
    root handlers stay too, at their own levels, so pytest still shows the records) and
    collects the invocation's lines between Lambda's ``START`` and ``END``/``REPORT``; what a
    handler changes (the root logger's level, its handler's level and filters) stays with the
    container, and the test process's handlers get theirs back."""

    def __init__(self) -> None:
        self.level = logging.WARNING
        self.handler = _LambdaHandler()
        now = datetime.now(UTC)
        self.stream = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.stream_created = False

    @contextmanager
    def active(self, request_id: str) -> Iterator[list[str]]:
        root = logging.getLogger()
        outside_level = root.level
        outside = list(root.handlers)
        outside_levels = {h: (h.level, list(h.filters)) for h in outside}
        lines = [f"START RequestId: {request_id} Version: $LATEST"]
        self.handler.lines, self.handler.request_id = lines, request_id
        root.handlers[:] = [self.handler, *outside]
        root.setLevel(self.level)
        stdout = _LinesWriter(lines)
        started = time.monotonic()
        try:
            with contextlib.redirect_stdout(stdout):
                yield lines
        finally:
            stdout.flush_partial()
            self.level = root.level
            root.handlers[:] = outside
            root.setLevel(outside_level)
            for handler, (level, filters) in outside_levels.items():
                handler.setLevel(level)
                handler.filters[:] = filters
            millis = (time.monotonic() - started) * 1000
            lines.append(f"END RequestId: {request_id}")
            lines.append(f"REPORT RequestId: {request_id}\tDuration: {millis:.2f} ms")


class Container:
    """One function's container: the handlers' per-container state (the service, the names,
    the warm runtimes, the event loop: ``handlers._common.ContainerState``) swapped in around
    each of its invocations by ``handlers._common.swap_container``, so functions keep their
    warm runtimes apart as separate containers do. (The caches the handlers register with
    ``_common.on_configure``, the HTTP handlers, are rebuilt from it on each swap.)"""

    def __init__(self) -> None:
        self._state: _common.ContainerState | None = None
        self.logs = RuntimeLogs()

    @contextmanager
    def active(self) -> Iterator[None]:
        outside = _common.swap_container(self._state)
        try:
            yield
        finally:
            self._state = _common.swap_container(outside)

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
        self._state = None


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
        self.invocations: list[Invocation] = []
        self.lost_invocations: list[Invocation] = []
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

    def on_lost(self, inv: Invocation) -> None:
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


__all__ = [
    "ACCOUNT",
    "REGION",
    "Container",
    "HarnessError",
    "Invocation",
    "LambdaFunction",
    "LambdaPlayer",
    "RuntimeLogs",
]
