"""The AWS adapters of eventual-core's runtime ports, a module per port:

- :mod:`.execution_store`: ExecutionStore on the DynamoDB executions and history tables (S3 for
  large JSON); one ``TransactWriteItems`` per orchestration step.
- :mod:`.task_claims`: TaskClaimStore on the DynamoDB task-claims table; one conditional
  ``PutItem`` per attempt.
- :mod:`.execution_queue`: ExecutionQueue on SQS FIFO, message group = execution;
  ``SendMessage``/``SendMessageBatch``.
- :mod:`.timer_scheduler`: TimerScheduler, SQS ``DelaySeconds`` up to 15 minutes, EventBridge
  Scheduler ``at()`` schedules beyond.
- :mod:`.event_bus`: EventBus, EventBridge ``PutEvents``, 10 entries a request, failed entries
  retried.
- :mod:`.task_dispatcher`: TaskDispatcher, Lambda ``Invoke`` with ``InvocationType=Event``, one
  per task attempt.
- :mod:`.log_sink`: LogSink on CloudWatch Logs, one stream per execution; one request per step
  that logged.
- :mod:`.payload_store`: the S3 payload bucket the others spill large JSON to.
- :mod:`.ports`: all of them together (:func:`build_ports`).

Every write is idempotent, because a request that failed in transit may have succeeded and
botocore retries it: history steps carry a token and are recognised when re-committed, claims
carry their owner, queue messages a deduplication id, schedules a name derived from the timer.

Importing this package loads eventual-core's history models, not boto3 (clients are made on
first use, :mod:`eventual.aws_runtime.clients`); the handlers import it on their first
invocation only.
"""

from ._batching import BATCH_BYTES, _batches
from .event_bus import EventBridgeBus, decode_detail, encode_detail
from .execution_queue import (
    SqsExecutionQueue,
    decode_queue_event,
    deduplication_id,
    encode_queue_event,
    message_group,
    spilled_key,
)
from .execution_store import DynamoExecutionStore
from .log_sink import CloudWatchLogSink, log_stream
from .payload_store import PayloadStore
from .ports import AwsPorts, build_ports
from .task_claims import DynamoClaimStore, claim_owner
from .task_dispatcher import LambdaTaskDispatcher, decode_task, encode_task
from .timer_scheduler import AwsTimerScheduler, decode_timer, encode_timer

__all__ = [
    "BATCH_BYTES",
    "AwsPorts",
    "AwsTimerScheduler",
    "CloudWatchLogSink",
    "DynamoClaimStore",
    "DynamoExecutionStore",
    "EventBridgeBus",
    "LambdaTaskDispatcher",
    "PayloadStore",
    "SqsExecutionQueue",
    "_batches",
    "build_ports",
    "claim_owner",
    "decode_detail",
    "decode_queue_event",
    "decode_task",
    "decode_timer",
    "deduplication_id",
    "encode_detail",
    "encode_queue_event",
    "encode_task",
    "encode_timer",
    "log_stream",
    "message_group",
    "spilled_key",
]
