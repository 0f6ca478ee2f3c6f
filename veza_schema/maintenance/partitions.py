"""Keeping time-range partitions ahead of time: which are missing, and creating them.

The model says which tables are range-partitioned by time and how far ahead (``premake``);
names and bounds come from :mod:`veza_schema.managed`, the same as the migrations use.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from veza_schema.db.errors import database_error
from veza_schema.errors import DatabaseError
from veza_schema.managed import PARTITION_FUNCTION, PlannedPartition, planned_partitions
from veza_schema.model import Schema, Table


def partitioned_tables(schema: Schema) -> list[Table]:
    """Range-partitioned tables with an interval, by name."""
    return [t for _, t in sorted(schema.tables.items())
            if t.partition is not None and t.partition.strategy == "range" and t.partition.interval]


def missing_partitions(conn: psycopg.Connection, table: Table, premake: int) -> list[PlannedPartition]:
    """The planned partitions of ``table`` (current period, ``premake`` ahead) the database lacks."""
    assert table.partition is not None and table.partition.interval is not None
    row = conn.execute("SELECT now(), to_regclass(quote_ident(%s)) IS NOT NULL", (table.name,)).fetchone()
    assert row is not None
    if not row[1]:
        raise DatabaseError(f"table {table.name} does not exist in the database: apply the migrations first")
    missing = []
    for planned in planned_partitions(table.name, table.partition.interval, premake, row[0]):
        exists = conn.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL", (planned.name,)).fetchone()
        if exists is not None and not exists[0]:
            missing.append(planned)
    return missing


def ensure_partitions(conn: psycopg.Connection, table: Table, premake: int) -> int:
    """Create the missing partitions through the managed function; returns how many were created."""
    assert table.partition is not None
    query = sql.SQL("SELECT {}(%s, %s, %s)").format(sql.Identifier(PARTITION_FUNCTION))
    try:
        row = conn.execute(query, (table.name, table.partition.interval, premake)).fetchone()
    except psycopg.errors.UndefinedFunction as exc:
        raise DatabaseError(f"function {PARTITION_FUNCTION}() does not exist: apply the migrations first "
                            "(veza-schema apply)", exc.sqlstate) from exc
    except psycopg.Error as exc:
        raise database_error(f"creating partitions of {table.name} failed", exc) from exc
    assert row is not None
    return int(row[0])
