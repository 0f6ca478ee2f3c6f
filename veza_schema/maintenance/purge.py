"""Purging the high-volume plain tables: rows whose time column is older than the table's
declared ``purge.after`` are deleted in bounded batches, one transaction each, under
``lock_timeout`` with the runner's retries.

A purge is a real deletion: triggers and ON DELETE actions fire (a notification's deliveries
go with it). The batch picks rows by ``ctid`` from the time-column range, so an index leading
with that column (btree, or BRIN for an append-only log) keeps each batch cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from veza_schema.db.errors import database_error
from veza_schema.db.retry import LockRetry, retry_on_lock_timeout
from veza_schema.errors import DatabaseError
from veza_schema.managed import retention_cutoff
from veza_schema.model import Schema, Table

PUBLIC = "public"
_CUTOFF = sql.Placeholder("cutoff")


def purged_tables(schema: Schema, names: list[str] | None = None) -> list[Table]:
    tables = [t for _, t in sorted(schema.tables.items()) if t.purge is not None]
    return [t for t in tables if t.name in set(names)] if names else tables


def cutoff(table: Table, as_of: datetime) -> datetime:
    assert table.purge is not None
    return retention_cutoff(as_of, table.purge.after.count, table.purge.after.unit)


def batch_statement(table: Table, limit: int, *, cutoff_sql: sql.Composable = _CUTOFF) -> sql.Composed:
    """One bounded batch; ``cutoff_sql`` is a parameter here and ``now() - interval`` in pg_cron's job."""
    assert table.purge is not None
    return sql.SQL("DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {column} < {cutoff} "
                   "LIMIT {limit}))").format(table=sql.Identifier(PUBLIC, table.name),
                                              column=sql.Identifier(table.purge.column), cutoff=cutoff_sql,
                                              limit=sql.Literal(limit))


def job_statement(table: Table, limit: int) -> sql.Composed:
    """What a pg_cron job runs: one batch, relative to the time it runs."""
    assert table.purge is not None
    return batch_statement(table, limit, cutoff_sql=sql.SQL("now() - {}::interval").format(
        sql.Literal(str(table.purge.after))))


@dataclass(frozen=True)
class PurgeResult:
    table: Table
    cutoff: datetime
    rows: int
    batches: int
    error: DatabaseError | None = None


def count_expired(conn: psycopg.Connection, table: Table, as_of: datetime) -> int:
    assert table.purge is not None
    row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} < %(cutoff)s").format(
        sql.Identifier(PUBLIC, table.name), sql.Identifier(table.purge.column)),
        {"cutoff": cutoff(table, as_of)}).fetchone()
    return int(row[0]) if row else 0


def purge_table(conn: psycopg.Connection, table: Table, as_of: datetime, *, batch_size: int, retry: LockRetry,
                progress: Callable[[str], None] = lambda message: None) -> PurgeResult:
    """Delete the expired rows, batch after batch, until a batch comes back short."""
    moment = cutoff(table, as_of)
    statement = batch_statement(table, batch_size)
    total = batches = 0

    def batch() -> int:
        with conn.transaction():
            return conn.execute(statement, {"cutoff": moment}).rowcount

    def retrying(attempt: int, delay: float, exc: BaseException) -> None:
        progress(f"{table.name}: lock not granted; retry {attempt} in {delay:.1f}s")

    try:
        while True:
            deleted = retry_on_lock_timeout(batch, retry, retrying)
            batches += 1
            total += deleted
            if deleted < batch_size:
                return PurgeResult(table, moment, total, batches)
    except psycopg.Error as exc:
        return PurgeResult(table, moment, total, batches, database_error(f"purging {table.name} failed", exc))
