"""Counts of what a database holds, for the summary line after apply."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from veza_schema.managed import HISTORY_TABLE

# Tables and indexes of schema public, not counting partitions (managed) or our history table.
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
