"""The LogSink port on CloudWatch Logs: the service's log group, one stream per execution, one
request per step that logged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventual.core.engine.executor import LogEntry

from .. import names as n
from ..clients import client, error_code


def log_stream(execution_id: str) -> str:
    return execution_id.replace(":", "_").replace("*", "_")[:512]


class CloudWatchLogSink:
    """Workflow logs in the service's log group, a stream per execution (where the Lambda
    functions' own logs also are, so one console shows both)."""

    def __init__(self, names: n.ServiceNames) -> None:
        self.names = names
        self._streams: set[str] = set()

    async def append(self, execution_id: str, entries: Sequence[LogEntry]) -> None:
        if not entries:
            return
        stream = log_stream(execution_id)
        events = [
            {
                "timestamp": int(e.timestamp.timestamp() * 1000),
                "message": json.dumps(
                    {
                        "executionId": execution_id,
                        "level": e.level,
                        "logger": e.logger,
                        "message": e.message,
                    }
                ),
            }
            for e in entries
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
