"""The history table, exactly SQLx's ``_sqlx_migrations``, so Rust services share it.

A row with ``success = false`` marks a migration that started outside a transaction and
did not finish (SQLx calls it dirty); nothing runs until a human resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from veza_schema.managed import HISTORY_TABLE

CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)
"""

_SELECT = """
SELECT version, description, installed_on, success, checksum, execution_time
FROM _sqlx_migrations ORDER BY version
"""
_INSERT = """
INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
VALUES (%s, %s, %s, %s, %s)
"""
_MARK_DONE = "UPDATE _sqlx_migrations SET success = true, execution_time = %s WHERE version = %s"
_DELETE = "DELETE FROM _sqlx_migrations WHERE version = %s"
_DELETE_ALL = "DELETE FROM _sqlx_migrations"
_MARK_FAILED = "UPDATE _sqlx_migrations SET success = false WHERE version = %s"
_MARK_RESOLVED = "UPDATE _sqlx_migrations SET success = true, checksum = %s WHERE version = %s"
_EXISTS = "SELECT to_regclass('_sqlx_migrations') IS NOT NULL"


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    description: str
    installed_on: datetime
    success: bool
    checksum: bytes
    execution_time_ns: int


def history_exists(conn: psycopg.Connection) -> bool:
    row = conn.execute(_EXISTS).fetchone()
    return bool(row and row[0])


def ensure_history(conn: psycopg.Connection) -> None:
    conn.execute(CREATE_HISTORY)


def read_history(conn: psycopg.Connection) -> list[AppliedMigration]:
    if not history_exists(conn):
        return []
    return [AppliedMigration(int(v), d, i, bool(s), bytes(c), int(e))
            for v, d, i, s, c, e in conn.execute(_SELECT).fetchall()]


def record(conn: psycopg.Connection, version: int, description: str, checksum: bytes, success: bool,
           execution_time_ns: int) -> None:
    conn.execute(_INSERT, (version, description, success, checksum, execution_time_ns))


def mark_done(conn: psycopg.Connection, version: int, execution_time_ns: int) -> None:
    conn.execute(_MARK_DONE, (execution_time_ns, version))


def forget(conn: psycopg.Connection, version: int) -> None:
    conn.execute(_DELETE, (version,))


def mark_failed(conn: psycopg.Connection, version: int) -> None:
    """Before a non-transactional down file runs: a crash must leave a visible marker."""
    conn.execute(_MARK_FAILED, (version,))


def mark_resolved(conn: psycopg.Connection, version: int, checksum: bytes) -> None:
    conn.execute(_MARK_RESOLVED, (checksum, version))


def forget_all(conn: psycopg.Connection) -> None:
    conn.execute(_DELETE_ALL)


# Tables and indexes of schema public, not counting partitions (managed) or the history table:
# what ``apply`` reports it left behind, read on its own session.
_COUNTS = """
SELECT
  (SELECT count(*) FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname <> %(history)s),
  (SELECT count(*) FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
    WHERE t.relnamespace = 'public'::regnamespace AND NOT t.relispartition AND t.relname <> %(history)s)
"""


@dataclass(frozen=True)
class ObjectCounts:
    tables: int
    indexes: int

    def __str__(self) -> str:
        return f"{self.tables} tables, {self.indexes} indexes in schema public"


def count_objects(conn: psycopg.Connection) -> ObjectCounts:
    row = conn.execute(_COUNTS, {"history": HISTORY_TABLE}).fetchone()
    assert row is not None
    return ObjectCounts(int(row[0]), int(row[1]))
