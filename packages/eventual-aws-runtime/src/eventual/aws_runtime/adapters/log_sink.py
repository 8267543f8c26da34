"""The LogSink port on CloudWatch Logs: the service's log group, one stream per execution, one
request per step that logged.

Workflow code logs with :mod:`logging` like any Python code, and the engine keeps the records
its code makes (``log.info(...)`` included). A record below its logger's effective level is
never made, though, and the Python Lambda runtime leaves the root logger at WARNING (it sets a
level only when the function's log level is configured): on Lambda a workflow's ``log.info``
never reached the sink. :func:`let_workflows_log_info` lowers the root logger to INFO and
filters, on the root's handlers, the records made only because of that, so the function's own
log output is what it was; the sink does it on Lambda when it is made (once per container,
before any workflow runs)."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventual.core.engine.executor import LogEntry

from .. import names as n
from ..clients import client, error_code


def log_stream(execution_id: str) -> str:
    return execution_id.replace(":", "_").replace("*", "_")[:512]


WORKFLOW_LOG_LEVEL = logging.INFO
"""The lowest level of a workflow's log records that reach the sink on Lambda (the level the
dev server's root logger has)."""


class _MadeForWorkflows(logging.Filter):
    """Drops the records a handler would not have seen had the root logger stayed at
    ``root_level``: those below their logger's level as it was (its own, or its nearest
    ancestor's, else ``root_level``)."""

    def __init__(self, root_level: int) -> None:
        super().__init__()
        self.root_level = root_level

    def filter(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        root = logging.getLogger()
        while logger is not None and logger is not root:
            if logger.level:
                return record.levelno >= logger.level
            logger = logger.parent
        return record.levelno >= self.root_level


def let_workflows_log_info() -> None:
    """Let records down to :data:`WORKFLOW_LOG_LEVEL` be made, for the engine to keep: the root
    logger goes down to that level, and each of its handlers gets a filter that drops what it
    would not have seen before (a logger's level decides what is made at all, so only the
    root's level can let a workflow's INFO record be made). Nothing if the root logger is that
    low already. Handlers added later, and those of other loggers, see the INFO records of
    loggers that have no level of their own."""
    root = logging.getLogger()
    before = root.getEffectiveLevel()
    if before <= WORKFLOW_LOG_LEVEL:
        return
    for handler in root.handlers:
        handler.addFilter(_MadeForWorkflows(before))
    root.setLevel(WORKFLOW_LOG_LEVEL)


class CloudWatchLogSink:
    """Workflow logs in the service's log group, a stream per execution (where the Lambda
    functions' own logs also are, so one console shows both)."""

    def __init__(self, names: n.ServiceNames) -> None:
        self.names = names
        self._streams: set[str] = set()
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            let_workflows_log_info()

    async def append(self, execution_id: str, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        stream = log_stream(execution_id)
        # Each line carries an id (this write's, and its place in it): a PutLogEvents whose
        # answer was lost is retried by botocore and stored twice; read() keeps one copy.
        write = uuid.uuid4().hex[:16]
        events = [
            {
                "timestamp": int(e.timestamp.timestamp() * 1000),
                "message": json.dumps(
                    {
                        "executionId": execution_id,
                        "level": e.level,
                        "logger": e.logger,
                        "message": e.message,
                        "line": f"{write}:{i}",
                    }
                ),
            }
            for i, e in enumerate(entries)
        ]
        events.sort(key=lambda e: e["timestamp"])
        logs = client("logs")
        for attempt in range(2):
            try:
                logs.put_log_events(
                    logGroupName=self.names.log_group, logStreamName=stream, logEvents=events
                )
                self._streams.add(stream)
                return
            except Exception as exc:
                if error_code(exc) != "ResourceNotFoundException" or attempt:
                    raise
                try:
                    logs.create_log_stream(logGroupName=self.names.log_group, logStreamName=stream)
                except Exception as create_exc:
                    if error_code(create_exc) != "ResourceAlreadyExistsException":
                        raise

    async def read(
        self, execution_id: str | None = None, *, workflow: str | None = None
    ) -> list[tuple[str, LogEntry]]:
        kwargs: dict[str, Any] = {"logGroupName": self.names.log_group}
        if execution_id is not None:
            kwargs["logStreamNames"] = [log_stream(execution_id)]
        elif workflow is not None:
            kwargs["logStreamNamePrefix"] = log_stream(workflow + "/")
        out: list[tuple[str, LogEntry]] = []
        lines: set[str] = set()
        logs = client("logs")
        while True:
            try:
                response = logs.filter_log_events(**kwargs)
            except Exception as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return out
                raise
            for e in response.get("events", []):
                try:
                    data = json.loads(e["message"])
                except ValueError:
                    continue
                line = data.get("line")
                if line is not None:
                    if line in lines:
                        continue  # a retried write's second copy
                    lines.add(line)
                out.append(
                    (
                        data.get("executionId", ""),
                        LogEntry(
                            timestamp=datetime.fromtimestamp(e["timestamp"] / 1000, UTC),
                            level=data.get("level", "INFO"),
                            logger=data.get("logger", ""),
                            message=data.get("message", ""),
                        ),
                    )
                )
            token = response.get("nextToken")
            if not token:
                break
            kwargs["nextToken"] = token
        out.sort(key=lambda t: t[1].timestamp)
        return out
