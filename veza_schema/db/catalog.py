"""Facts read from a server's catalog: what a database holds, and what its functions are."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from veza_schema.managed import HISTORY_TABLE
from veza_schema.sql.volatility import FunctionFacts, Volatility

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


_FUNCTION_VOLATILITY = """
SELECT p.proname,
       min(CASE p.provolatile WHEN 'v' THEN 2 WHEN 's' THEN 1 ELSE 0 END),
       max(CASE p.provolatile WHEN 'v' THEN 2 WHEN 's' THEN 1 ELSE 0 END)
FROM pg_proc p
WHERE p.pronamespace = ANY (%(namespaces)s::regnamespace[]) AND p.prokind IN ('f', 'w', 'a')
GROUP BY p.proname
"""
_LEVELS: tuple[Volatility, ...] = ("immutable", "stable", "volatile")


def function_facts(conn: psycopg.Connection, namespaces: tuple[str, ...] = ("pg_catalog",)) -> FunctionFacts:
    """Volatility of every function of ``namespaces`` as this server's catalog has it (least, most overload)."""
    rows = conn.execute(_FUNCTION_VOLATILITY, {"namespaces": list(namespaces)}).fetchall()
    version = conn.info.server_version // 10000
    return FunctionFacts({str(name): (_LEVELS[least], _LEVELS[most]) for name, least, most in rows},
                         source=f"pg_catalog of PostgreSQL {version}")
