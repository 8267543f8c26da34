"""The tables of the SQLite runtime's database file, and the schema version it records
(``PRAGMA user_version``); :meth:`Database.open` applies them, after adding to the tables of
an older file the columns in :data:`_ADDED_COLUMNS` that they lack."""

SCHEMA_VERSION = 3

# (table, column) -> its definition, for the columns added to a table after schema 1. A file
# of an older schema gets them on open (``_SCHEMA`` creates only what is missing).
_ADDED_COLUMNS = {
    # Schema 3: the service build each execution started on (listed and filtered by); the
    # records of older files have none.
    ("executions", "build"): "TEXT",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    status TEXT NOT NULL,
    start_ts REAL NOT NULL,
    history_length INTEGER NOT NULL DEFAULT 0, -- not kept: the history table counts
    record TEXT NOT NULL,
    build TEXT -- the service build the execution started on (schema 3)
);
CREATE INDEX IF NOT EXISTS executions_by_start ON executions (start_ts DESC, id DESC);
-- Counts per status (the dashboard's countExecutions) from the index alone.
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, workflow, build);
CREATE TABLE IF NOT EXISTS history (
    execution_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (execution_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_by_execution ON queue (execution_id, id);
-- Schema 1 kept a row per dispatched task attempt; the history is that record now (its
-- pending attempts are found there on start), so a file of schema 1 loses the table.
DROP TABLE IF EXISTS tasks;
CREATE TABLE IF NOT EXISTS claims (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    run_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    last_heartbeat TEXT,
    details TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    timed_out INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, seq, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timer_id TEXT NOT NULL UNIQUE,
    execution_id TEXT NOT NULL,
    due REAL NOT NULL,
    request TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS timers_by_due ON timers (due, id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    workflow TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    level TEXT NOT NULL,
    logger TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_execution ON logs (execution_id, id);
"""
