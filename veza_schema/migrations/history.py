"""The history table, exactly SQLx's ``_sqlx_migrations``, so Rust services share it.

A row with ``success = false`` marks a migration that started outside a transaction and
did not finish (SQLx calls it dirty); nothing runs until a human resolves it.

It lives in schema ``public`` (where the model's unqualified names live), and every statement
here names it so: a role whose ``search_path`` puts another schema first must not read or
write a look-alike table there. Before it is read or written, its layout and this role's rights
on it are checked (:func:`check_history`), so a table altered by hand, or a role that may not
write it, is named with what to do instead of failing halfway with the server's words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from veza_schema.errors import DatabaseStateError
from veza_schema.managed import HISTORY_TABLE
from veza_schema.sql.text import ident

QUALIFIED = f"public.{HISTORY_TABLE}"

CREATE_HISTORY = """
CREATE TABLE IF NOT EXISTS public._sqlx_migrations (
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
FROM public._sqlx_migrations ORDER BY version
"""
_INSERT = """
INSERT INTO public._sqlx_migrations (version, description, success, checksum, execution_time)
VALUES (%s, %s, %s, %s, %s)
"""
_MARK_DONE = "UPDATE public._sqlx_migrations SET success = true, execution_time = %s WHERE version = %s"
_DELETE = "DELETE FROM public._sqlx_migrations WHERE version = %s"
_DELETE_ALL = "DELETE FROM public._sqlx_migrations"
_MARK_FAILED = "UPDATE public._sqlx_migrations SET success = false WHERE version = %s"
_MARK_RESOLVED = "UPDATE public._sqlx_migrations SET success = true, checksum = %s WHERE version = %s"

# SQLx's layout, as format_type prints each column; every column NOT NULL (read_history relies on it).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("version", "bigint"), ("description", "text"), ("installed_on", "timestamp with time zone"),
    ("success", "boolean"), ("checksum", "bytea"), ("execution_time", "bigint"))
WRITE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# One query: whether the table exists, its owner, its columns, and what this role may do with it.
_LAYOUT = """
SELECT c.oid IS NOT NULL, pg_catalog.pg_get_userbyid(c.relowner), current_user::text,
       pg_catalog.has_schema_privilege('public', 'CREATE'),
       ARRAY(SELECT p FROM pg_catalog.unnest(%(privileges)s::text[]) AS p
             WHERE c.oid IS NOT NULL AND pg_catalog.has_table_privilege(c.oid, p)),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum),
       ARRAY(SELECT a.attnotnull FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)
FROM (SELECT pg_catalog.to_regclass(%(table)s) AS oid) AS r
LEFT JOIN pg_catalog.pg_class c ON c.oid = r.oid
"""


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    description: str
    installed_on: datetime
    success: bool
    checksum: bytes
    execution_time_ns: int


def check_history(conn: psycopg.Connection, *, write: bool) -> bool:
    """Whether the history table exists; raises when it cannot be read (or, with ``write``, written) as is.

    Raises:
        DatabaseStateError: a column of SQLx's layout missing, of another type or allowing NULL
            (the table was altered by hand), or this role lacking a right it needs (naming the
            owner and the GRANT to run).
    """
    row = conn.execute(_LAYOUT, {"privileges": list(WRITE_PRIVILEGES), "table": QUALIFIED}).fetchone()
    assert row is not None
    present, owner, user, can_create, granted, names, types, not_null = row
    role, owner = str(ident(user)), str(ident(owner or ""))  # as a GRANT names them
    if not present:
        if write and not can_create:
            raise DatabaseStateError(
                f"role {role} may not create the history table {QUALIFIED} (no CREATE on schema public). Run "
                "as the role that owns the schema (the migrations' role), or GRANT CREATE ON SCHEMA public TO "
                f"{role}. Nothing was run.")
        return False
    problems = _layout_problems(dict(zip(names, zip(types, not_null, strict=True), strict=True)))
    if problems:
        raise DatabaseStateError(
            f"the history table {QUALIFIED} is not as SQLx creates it (altered by hand?): {'; '.join(problems)}. "
            "Nothing was run. Put it back (the statements in parentheses), or move it aside (ALTER TABLE "
            f"{QUALIFIED} RENAME TO ...) and record the database's version again with `veza-schema baseline`.")
    needed = WRITE_PRIVILEGES if write else ("SELECT",)
    missing = [p for p in needed if p not in granted]
    if missing:
        raise DatabaseStateError(
            f"role {role} lacks {', '.join(missing)} on the history table {QUALIFIED} (owned by {owner}). Run "
            f"as {owner}, or GRANT {', '.join(missing)} ON {QUALIFIED} TO {role}. Nothing was run.")
    return True


def _layout_problems(columns: dict[str, tuple[str, bool]]) -> list[str]:
    expected = dict(COLUMNS)
    problems = []
    for name, type_ in COLUMNS:
        if name not in columns:
            renamed = [other for other, (other_type, _) in columns.items()
                       if other not in expected and other_type == type_]
            problems.append(f"column {name} is missing" + (
                f" (renamed? ALTER TABLE {QUALIFIED} RENAME COLUMN {ident(renamed[0])} TO {name})" if renamed
                else " (dropped: its values are lost)"))
        elif columns[name][0] != type_:
            problems.append(f"column {name} is {columns[name][0]}, not {type_} "
                            f"(ALTER TABLE {QUALIFIED} ALTER COLUMN {name} TYPE {type_})")
        elif not columns[name][1]:
            problems.append(f"column {name} allows NULL (ALTER TABLE {QUALIFIED} ALTER COLUMN {name} SET NOT NULL, "
                            "once no row holds a NULL there)")
    return problems


def ensure_history(conn: psycopg.Connection) -> None:
    """Create the history table unless it is there, after checking this role may read and write it."""
    if not check_history(conn, write=True):
        conn.execute(CREATE_HISTORY)


def read_history(conn: psycopg.Connection) -> list[AppliedMigration]:
    """The rows, once the table is checked (none when there is no table yet)."""
    if not check_history(conn, write=False):
        return []
    return read_checked(conn)


def read_checked(conn: psycopg.Connection) -> list[AppliedMigration]:
    """The rows of a table this session already checked (:func:`ensure_history`): no second catalog query."""
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
