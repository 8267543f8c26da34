"""The durable local runtime of ``eventual dev``: SQLite adapters for every port, and a driver
that runs the orchestrator, the task workers, event delivery and timers in one asyncio process.

Everything lives in one database file (default ``.eventual/dev.db``) in WAL mode. Writes are
serialised by an asyncio lock. Inside :meth:`Database.transaction` (what ``Ports.unit_of_work``
opens) every adapter write joins one atomic unit, and units that end in the same turn of the
event loop share one ``COMMIT`` (group commit; each waits for it before returning). An
orchestration step therefore commits its history events (whose ``TaskScheduled`` events are
the durable record of the task attempts it dispatches), the execution record, timers, signals to
other executions, published events, its logs and the deletion of the queue rows it consumed
atomically.

Statements run on the event loop by default: with ``synchronous=NORMAL`` in WAL mode a commit
appends to the WAL without waiting for the disk, so each takes a fraction of a millisecond,
less than handing it to a thread costs. With ``synchronous=FULL`` (an fsync per commit) they run
on one dedicated thread that owns the connections. See "The SQLite runtime" in the package
README for the tables, the pragmas and the crash analysis.
"""

from .claims import SqliteClaimStore
from .database import Database, DatabaseError, DatabaseLocked
from .driver import DEFAULT_DB_PATH, SqliteRuntime
from .event_bus import SqliteEventBus
from .execution_queue import QueuedEvent, SqliteExecutionQueue
from .executions import SqliteExecutionStore
from .logs import SqliteLogSink
from .ports import SqlitePorts, open_ports
from .recovery import _outstanding_attempts as _outstanding_attempts
from .schema import SCHEMA_VERSION
from .tasks import SqliteTaskDispatcher
from .timers import SqliteTimerScheduler

__all__ = [
    "DEFAULT_DB_PATH",
    "SCHEMA_VERSION",
    "Database",
    "DatabaseError",
    "DatabaseLocked",
    "QueuedEvent",
    "SqliteClaimStore",
    "SqliteEventBus",
    "SqliteExecutionQueue",
    "SqliteExecutionStore",
    "SqliteLogSink",
    "SqlitePorts",
    "SqliteRuntime",
    "SqliteTaskDispatcher",
    "SqliteTimerScheduler",
    "open_ports",
]
