"""``eventual dlq list|redrive``: the messages a deployed service gave up on.

Every queue and asynchronous invocation of a deployed service ends in a dead-letter queue after
its retries: the execution queue's and the timer queue's after ``maxReceiveCount`` receives
(the orchestrator and timer handlers fail the execution on that last attempt, with the reason
``DeadLettered``), the tasks' shared one and each subscription's own after Lambda's retries of
an asynchronous invocation. The discovery record (``deadLetters``, see ``deployed.py``) names
each queue and where its messages came from. ``list`` reads them without removing them
(received, then made visible again at once); ``redrive`` sends each one back where it came from
(the execution or timer queue, or an asynchronous invocation of the task's or subscription's
function), then deletes it from the dead-letter queue: at least once, as every delivery is, and
the runtime drops the events an execution has already seen.

The commands call SQS and Lambda with the caller's AWS credentials (botocore, through
``eventual-client[aws]``); the dev server has no dead-letter queues.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from .common import (
    JsonOption,
    RegionOption,
    ServiceOption,
    command_target,
    emit_json,
    friendly,
    out,
    out_line,
)
from .errors import CliError

app = typer.Typer(
    name="dlq",
    help=(
        "The messages a deployed service gave up on, in its dead-letter queues: list them, "
        "and redrive them once the cause is fixed (AWS only: pass --service)."
    ),
    no_args_is_help=True,
)

QueueOption = Annotated[
    list[str] | None,
    typer.Option(
        "--queue",
        "-q",
        help="Only this dead-letter queue: executions, timers, tasks or a subscription's name "
        "(repeatable; default: all of them).",
        show_default=False,
    ),
]
LIST_VISIBILITY_SECONDS = 30
"""How long ``list`` hides the messages it reads before making them visible again."""


@dataclass(frozen=True)
class DeadLetterQueue:
    """One entry of the discovery record's ``deadLetters``."""

    kind: str  # execution | timer | task | subscription
    name: str
    queue_url: str
    source: Any  # a queue URL, a function name, or {task name: function name}


@dataclass
class DeadLetter:
    queue: DeadLetterQueue
    message: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.message["MessageId"])

    @property
    def body(self) -> str:
        return str(self.message.get("Body", ""))

    def parsed(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def execution(self) -> str:
        body = self.parsed()
        if not isinstance(body, dict):
            return ""
        for found in (body.get("executionId"), _at(body, "timer", "executionId")):
            if isinstance(found, str):
                return found
        found = _at(body, "task", "executionId")
        return found if isinstance(found, str) else ""

    def what(self) -> str:
        """A short description: the event's type, the task's name, the event's name."""
        body = self.parsed()
        if not isinstance(body, dict):
            return f"{len(self.body)} bytes, not JSON"
        if self.queue.kind == "execution":
            kind = _at(body, "event", "type")
            return f"event {kind}" if isinstance(kind, str) else "event"
        if self.queue.kind == "timer":
            return "timer " + str(_at(body, "timer", "id") or "")
        if self.queue.kind == "task":
            task = _at(body, "task", "name")
            attempt = _at(body, "task", "attempt")
            return f"task {task} attempt {attempt}"
        detail_type = body.get("detail-type")
        return f"event {detail_type}" if detail_type else "event"

    def error(self) -> str:
        """Why Lambda gave up on an asynchronous invocation (its message attributes)."""
        attrs = self.message.get("MessageAttributes") or {}
        message = (attrs.get("ErrorMessage") or {}).get("StringValue") or ""
        code = (attrs.get("ErrorCode") or {}).get("StringValue") or ""
        return f"{code}: {message}" if code and message else message or code

    def sent(self) -> str:
        ms = (self.message.get("Attributes") or {}).get("SentTimestamp")
        if not ms:
            return ""
        return datetime.fromtimestamp(int(ms) / 1000, UTC).isoformat(timespec="seconds")

    def to_json(self) -> dict[str, Any]:
        attributes = self.message.get("Attributes") or {}
        return {
            "queue": self.queue.name,
            "kind": self.queue.kind,
            "messageId": self.id,
            "sent": self.sent(),
            "receiveCount": int(attributes.get("ApproximateReceiveCount") or 0),
            "executionId": self.execution(),
            "what": self.what(),
            "error": self.error(),
            "body": self.body,
        }


def _at(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


class DeadLetters:
    """The dead-letter queues of one deployed service, and the clients to read and redrive
    them."""

    def __init__(self, service: str, region: str | None) -> None:
        from . import deployed

        record = deployed.read_service_record(service, region)
        entries = record.raw.get("deadLetters")
        if not isinstance(entries, list):
            raise CliError(
                f"the discovery record of {record.service!r} lists no dead-letter queues: "
                "redeploy its stack with this version of eventual-cdk"
            )
        self.service = record.service
        self.queues = [
            DeadLetterQueue(
                kind=str(e.get("kind")),
                name=str(e.get("name")),
                queue_url=str(e.get("queueUrl")),
                source=e.get("source"),
            )
            for e in entries
            if isinstance(e, dict)
        ]
        session = deployed._botocore_session()
        self.sqs = session.create_client("sqs", region_name=record.region)
        self._session = session
        self._region = record.region
        self._lambda: Any = None

    def select(self, names: list[str] | None) -> list[DeadLetterQueue]:
        if not names:
            return self.queues
        known = {q.name: q for q in self.queues}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise CliError(
                f"{self.service} has no dead-letter queue {', '.join(map(repr, unknown))}: "
                f"its queues are {', '.join(known)}"
            )
        return [known[name] for name in names]

    def count(self, queue: DeadLetterQueue) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=queue.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages") or 0)

    def receive(self, queue: DeadLetterQueue, limit: int) -> Iterator[DeadLetter]:
        """Up to ``limit`` messages of ``queue``, each hidden while it is handled."""
        seen: set[str] = set()
        while len(seen) < limit:
            messages = self.sqs.receive_message(
                QueueUrl=queue.queue_url,
                MaxNumberOfMessages=min(10, limit - len(seen)),
                VisibilityTimeout=LIST_VISIBILITY_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                return
            for message in fresh:
                seen.add(message["MessageId"])
                yield DeadLetter(queue, message)

    def release(self, letters: list[DeadLetter]) -> None:
        """Make messages read by :meth:`receive` visible again."""
        for i in range(0, len(letters), 10):
            batch = letters[i : i + 10]
            self.sqs.change_message_visibility_batch(
                QueueUrl=batch[0].queue.queue_url,
                Entries=[
                    {
                        "Id": str(n),
                        "ReceiptHandle": letter.message["ReceiptHandle"],
                        "VisibilityTimeout": 0,
                    }
                    for n, letter in enumerate(batch)
                ],
            )

    def redrive(self, letter: DeadLetter) -> str:
        """Send ``letter`` back where it came from, then delete it; say where it went."""
        queue, message = letter.queue, letter.message
        if queue.kind in ("execution", "timer"):
            send: dict[str, Any] = {"QueueUrl": str(queue.source), "MessageBody": letter.body}
            if message.get("MessageAttributes"):
                send["MessageAttributes"] = _sendable(message["MessageAttributes"])
            group = (message.get("Attributes") or {}).get("MessageGroupId")
            if group:  # the FIFO execution queue: the same group, a new deduplication id
                send["MessageGroupId"] = group
                send["MessageDeduplicationId"] = f"redrive-{letter.id}"
            self.sqs.send_message(**send)
            where = f"queue {str(queue.source).rsplit('/', 1)[-1]}"
        else:
            function = self._function_of(letter)
            if self._lambda is None:
                self._lambda = self._session.create_client("lambda", region_name=self._region)
            self._lambda.invoke(
                FunctionName=function, InvocationType="Event", Payload=letter.body.encode()
            )
            where = f"function {function}"
        self.sqs.delete_message(QueueUrl=queue.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return where

    def _function_of(self, letter: DeadLetter) -> str:
        source = letter.queue.source
        if letter.queue.kind == "subscription":
            return str(source)
        task = _at(letter.parsed(), "task", "name")
        if not isinstance(source, dict) or not isinstance(task, str) or task not in source:
            raise CliError(
                f"message {letter.id} in {letter.queue.name} names no task of this service "
                f"({task!r}); it is left in the dead-letter queue"
            )
        return str(source[task])


def _sendable(attributes: dict[str, Any]) -> dict[str, Any]:
    """Message attributes as ``SendMessage`` takes them (without the list forms SQS adds)."""
    out_attrs: dict[str, Any] = {}
    for name, value in attributes.items():
        kept = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        out_attrs[name] = kept
    return out_attrs


@contextmanager
def _aws_errors(service: str) -> Iterator[None]:
    """An AWS error as one sentence naming the service, not a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CliError(
            f"AWS refused a request for the dead letters of {service}: "
            f"{error.get('Code', '')}: {error.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise CliError(f"cannot reach AWS for the dead letters of {service}: {exc}") from None


def _open(ctx: typer.Context, service: str | None, region: str | None) -> DeadLetters:
    # Where every command goes (its options, the global ones, $EVENTUAL_SERVICE).
    target = command_target(ctx, None, service, region)
    if not target.service:
        raise CliError(
            "dead-letter queues exist on AWS only: pass --service NAME (the dev server "
            "has none; see `eventual executions --status FAILED`)"
        )
    return DeadLetters(target.service, target.region)


MaxOption = Annotated[
    int,
    typer.Option("--max", min=1, help="Read at most this many messages per queue."),
]


@app.command("list")
@friendly
def list_command(
    ctx: typer.Context,
    queue: QueueOption = None,
    max_messages: MaxOption = 100,
    json_out: JsonOption = False,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """List the messages in a deployed service's dead-letter queues, without removing them.

    Each with its queue, when it was first sent, its execution, what it carries and why it
    failed."""
    dlq = _open(ctx, service, region)
    letters: list[DeadLetter] = []
    counts: dict[str, int] = {}
    with _aws_errors(dlq.service):
        for q in dlq.select(queue):
            read = list(dlq.receive(q, max_messages))
            dlq.release(read)
            counts[q.name] = max(dlq.count(q), len(read))
            letters.extend(read)
    if json_out:
        emit_json({"queues": counts, "messages": [letter.to_json() for letter in letters]})
        return
    from rich.table import Table

    summary = ", ".join(f"{name} {count}" for name, count in counts.items())
    out_line(f"Dead letters of {dlq.service}: {summary}")
    if not letters:
        out_line("No messages: nothing was given up on.")
        return
    table = Table(show_edge=False)
    for column in ("Queue", "Message", "Sent", "Execution", "What", "Error"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            letter.queue.name,
            letter.id,
            letter.sent(),
            letter.execution(),
            letter.what(),
            letter.error()[:120],
        )
    out.print(table)


@app.command()
@friendly
def redrive(
    ctx: typer.Context,
    queue: QueueOption = None,
    message: Annotated[
        list[str] | None,
        typer.Option(
            "--message",
            "-m",
            help="Only the message with this id (repeatable; default: every message).",
            show_default=False,
        ),
    ] = None,
    max_messages: MaxOption = 1000,
    json_out: JsonOption = False,
    service: ServiceOption = None,
    region: RegionOption = None,
) -> None:
    """Send dead-lettered messages back where they came from, once their cause is fixed.

    Events and timers go back to their queue, tasks and subscriptions to their function; each
    is deleted from its dead-letter queue only after it was sent. An execution failed as
    DeadLettered stays failed: its redriven events are dropped, as for any finished one."""
    dlq = _open(ctx, service, region)
    wanted = set(message or [])
    done: list[dict[str, str]] = []
    problems: list[str] = []
    with _aws_errors(dlq.service):
        for q in dlq.select(queue):
            skipped: list[DeadLetter] = []
            for letter in dlq.receive(q, max_messages):
                if wanted and letter.id not in wanted:
                    skipped.append(letter)
                    continue
                try:
                    where = dlq.redrive(letter)
                except CliError as exc:
                    problems.append(str(exc))
                    skipped.append(letter)
                    continue
                done.append({"queue": q.name, "messageId": letter.id, "to": where})
                if not json_out:
                    out_line(f"redrove {letter.id} from {q.name} to {where}")
            dlq.release(skipped)
    missing = sorted(wanted - {d["messageId"] for d in done})
    if missing:
        problems.append(f"no such message in the dead-letter queues: {', '.join(missing)}")
    if json_out:
        emit_json({"redriven": done, "problems": problems})
    else:
        out_line(f"{len(done)} message(s) redriven")
    if problems:
        raise CliError("; ".join(problems))
