"""The ``apply``/``rollback`` guard: find the statements of a plan that would destroy data, and count it.

Why parse the SQL rather than trust the header: hand-written migrations and down files
(a rollback drops whatever the migration created, rows included) say nothing about data,
and only the live database knows whether a table or column actually holds any. A
statement destroys data when it drops a table or column that holds rows/values, truncates
or deletes rows, or changes a column type in a way that can truncate or round values
(:mod:`veza_schema.diff.typechange`). Empty tables and all-NULL columns are not data
loss; neither is dropping a materialized view (its rows are derived and come back with
REFRESH) or a stored generated column (recomputed from the other columns).

Counting happens under the migration lock, before the first step runs, so what is counted
is what the plan would destroy; objects created by the plan itself do not exist yet and are
skipped. Counts stop at :data:`COUNT_CAP` rows, so a huge table costs a bounded scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from veza_schema.diff.typechange import classify_type_change
from veza_schema.errors import DatabaseStateError
from veza_schema.migrations.files import PlannedStep
from veza_schema.sql.split import split_statements
from veza_schema.types import TypeSyntaxError, normalize_type

COUNT_CAP = 1_000_000
_CANDIDATE = re.compile(r"^\s*(drop\s+table|alter\s+table|truncate|delete\s+from)\b", re.IGNORECASE)
_ALTER_DESTRUCTIVE = re.compile(r"\bdrop\b|\btype\b", re.IGNORECASE)
_ALTER_TABLE = re.compile(r"^\s*alter\s+table\b", re.IGNORECASE)
# (what it does, rows with data or None if uncounted, what the rows are, detail)
_Found = tuple[str, int | None, str, str]
_LIMITED_TEXT = re.compile(r"^(character varying|character)\((\d+)\)$")


@dataclass(frozen=True, slots=True)
class DataLoss:
    """One statement that would destroy data, and how much."""

    path: Path
    line: int
    statement: str  # the statement's first line
    what: str  # "drops table accounts", "drops column accounts.bio", ...
    rows: int | None  # rows holding data; None when they could not be counted
    noun: str = "row(s)"  # what ``rows`` counts: "row(s)", "row(s) hold data in it"
    detail: str = ""

    def __str__(self) -> str:
        if self.rows is None:
            count = "an unknown number of rows"
        else:
            count = (f"more than {COUNT_CAP:,}" if self.rows > COUNT_CAP else f"{self.rows:,}") + f" {self.noun}"
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.path}:{self.line}: {self.statement} -> {self.what}: {count}{detail}"


class DataLossRefused(DatabaseStateError):
    """The plan would destroy data and ``--allow-data-loss`` was not given (exit 3)."""

    def __init__(self, losses: Sequence[DataLoss]) -> None:
        self.losses = tuple(losses)
        lines = [f"refusing to run: {len(self.losses)} statement(s) would destroy data; nothing was run:"]
        lines += [f"  {loss}" for loss in self.losses]
        lines.append("Back the data up (or migrate it elsewhere) first; pass --allow-data-loss to run it anyway.")
        super().__init__("\n".join(lines))


def refuse_data_loss(conn: psycopg.Connection, steps: Sequence[PlannedStep]) -> None:
    """Raise :class:`DataLossRefused` when any planned step would destroy data.

    Raises:
        DataLossRefused: with every offending statement and its row count.
    """
    losses = find_data_loss(conn, steps)
    if losses:
        raise DataLossRefused(losses)


def find_data_loss(conn: psycopg.Connection, steps: Sequence[PlannedStep]) -> list[DataLoss]:
    """Every statement of ``steps`` that would destroy existing data, counted on ``conn``."""
    losses: list[DataLoss] = []
    for step in steps:
        path = step.migration.up_path if step.direction == "up" else step.migration.down_path
        for statement in split_statements(step.sql):
            if not _CANDIDATE.match(statement.text):
                continue
            first = statement.text.strip().splitlines()[0][:120]
            for what, rows, noun, detail in _destroyed(conn, statement.text):
                if rows is None or rows > 0:
                    losses.append(DataLoss(Path(path) if path else Path("?"), statement.line, first, what, rows,
                                           noun, detail))
    return losses


# -- what one statement destroys ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Name:
    schema: str | None
    name: str

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name) if self.schema else sql.Identifier(self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def _ident_text(node: Any) -> str:
    """PostgreSQL folds unquoted identifiers to lower case."""
    text = str(node.this) if hasattr(node, "this") else str(node)
    return text if getattr(node, "quoted", False) else text.lower()


def _table_name(table: Any) -> _Name:
    db = table.args.get("db")
    return _Name(_ident_text(db) if db is not None else None, _ident_text(table.this))


def _destroyed(conn: psycopg.Connection, text: str) -> Iterator[_Found]:
    """(what, rows holding data, detail) for each thing the statement would destroy."""
    if _ALTER_TABLE.match(text) and not _ALTER_DESTRUCTIVE.search(text):
        return  # ADD CONSTRAINT, ADD COLUMN...: nothing to parse (an initial migration has hundreds)
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    if re.match(r"\s*alter\b", text, re.IGNORECASE) and not _ALTER_DESTRUCTIVE.search(text):
        return  # ADD, VALIDATE, RENAME...: nothing destroyed, and nothing for sqlglot to parse
    try:
        tree = sqlglot.parse_one(text, read="postgres")
    except SqlglotError:
        yield from _fallback(conn, text)
        return
    if isinstance(tree, exp.Drop) and str(tree.args.get("kind") or "").upper() == "TABLE":
        for table in tree.args.get("tables") or [tree.this]:
            if isinstance(table, exp.Table):
                yield from _table_rows(conn, _table_name(table), "drops table")
    elif isinstance(tree, exp.TruncateTable):
        for table in tree.expressions:
            yield from _table_rows(conn, _table_name(table), "empties table")
    elif isinstance(tree, exp.Delete) and isinstance(tree.this, exp.Table):
        yield from _deleted_rows(conn, tree)
    elif isinstance(tree, exp.Alter) and str(tree.args.get("kind") or "").upper() == "TABLE":
        if not _ALTER_DESTRUCTIVE.search(text):
            return
        table = _table_name(tree.this)
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.Drop) and str(action.args.get("kind") or "COLUMN").upper() == "COLUMN":
                for column in action.args.get("tables") or [action.this]:
                    yield from _column_values(conn, table, _ident_text(column.this))
            elif isinstance(action, exp.AlterColumn) and action.args.get("dtype") is not None:
                yield from _type_change(conn, table, _ident_text(action.this),
                                        action.args["dtype"].sql(dialect="postgres"))
    elif isinstance(tree, exp.Command):
        yield from _fallback(conn, text)


_DROP_TABLE = re.compile(r"^\s*drop\s+table\s+(?:if\s+exists\s+)?(?P<names>[^;]+?)\s*(?:cascade|restrict)?\s*;?\s*$",
                         re.IGNORECASE | re.DOTALL)
_DROP_COLUMN = re.compile(r"^\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(?P<table>\"[^\"]+\"|[\w.]+)\s+"
                          r"drop\s+(?:column\s+)?(?:if\s+exists\s+)?(?P<column>\"[^\"]+\"|\w+)", re.IGNORECASE)


def _plain(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier.lower()


def _fallback(conn: psycopg.Connection, text: str) -> Iterator[_Found]:
    """The two common destructive forms, for statements sqlglot cannot parse."""
    match = _DROP_TABLE.match(text)
    if match:
        for raw in match.group("names").split(","):
            parts = [_plain(p.strip()) for p in raw.strip().split(".")]
            yield from _table_rows(conn, _Name(parts[0] if len(parts) > 1 else None, parts[-1]), "drops table")
        return
    match = _DROP_COLUMN.match(text)
    if match:
        parts = [_plain(p) for p in match.group("table").split(".")]
        yield from _column_values(conn, _Name(parts[0] if len(parts) > 1 else None, parts[-1]),
                                  _plain(match.group("column")))


def _regclass(conn: psycopg.Connection, table: _Name) -> tuple[int, str] | None:
    """(oid, relkind) of an existing table, or None (created later in the plan, or already gone)."""
    row = conn.execute("SELECT c.oid::int8, c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(%s)",
                       (table.ident().as_string(conn),)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _count(conn: psycopg.Connection, query: sql.Composable) -> int:
    wrapped = sql.SQL("SELECT count(*) FROM ({} LIMIT {}) AS counted").format(query, sql.Literal(COUNT_CAP + 1))
    row = conn.execute(wrapped).fetchone()
    return int(row[0]) if row else 0


def _table_rows(conn: psycopg.Connection, table: _Name, label: str) -> Iterator[_Found]:
    found = _regclass(conn, table)
    if found is None or found[1] not in ("r", "p"):
        return  # absent, a view, a materialized view (derived rows), a foreign table (data elsewhere)
    rows = _count(conn, sql.SQL("SELECT 1 FROM {}").format(table.ident()))
    yield f"{label} {table}", rows, "row(s)", ""


def _column_values(conn: psycopg.Connection, table: _Name, column: str) -> Iterator[_Found]:
    found = _regclass(conn, table)
    if found is None or found[1] not in ("r", "p"):
        return
    info = _column_info(conn, found[0], column)
    if info is None or info[1] == "s":  # absent, or a stored generated column (recomputed)
        return
    rows = _count(conn, sql.SQL("SELECT 1 FROM {} WHERE {} IS NOT NULL").format(table.ident(),
                                                                             sql.Identifier(column)))
    yield f"drops column {table}.{column}", rows, "row(s) hold data in it", ""


def _column_info(conn: psycopg.Connection, oid: int, column: str) -> tuple[str, str, str] | None:
    """(format_type, attgenerated, typtype) of a live column."""
    row = conn.execute(
        "SELECT format_type(a.atttypid, a.atttypmod), a.attgenerated::text, t.typtype::text "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = %s::oid AND a.attname = %s AND a.attnum > 0 AND NOT a.attisdropped",
        (oid, column)).fetchone()
    return (str(row[0]), str(row[1]), str(row[2])) if row else None


def _type_change(conn: psycopg.Connection, table: _Name, column: str,
                 new_type_text: str) -> Iterator[_Found]:
    found = _regclass(conn, table)
    if found is None:
        return
    info = _column_info(conn, found[0], column)
    if info is None:
        return
    current, _, typtype = info
    if typtype == "e":  # enum conversions go through text: exact, or the cast fails (nothing lost)
        return
    try:
        new_type = normalize_type(new_type_text)
    except TypeSyntaxError:
        new_type = new_type_text.lower()
    verdict = classify_type_change(current, new_type)
    if verdict.kind in ("same", "widening"):
        return
    limit = _LIMITED_TEXT.match(new_type)
    if limit and current.split("(")[0] in ("character varying", "text", "character"):
        rows = _count(conn, sql.SQL("SELECT 1 FROM {} WHERE length({}) > {}").format(
            table.ident(), sql.Identifier(column), sql.Literal(int(limit.group(2)))))
        yield (f"changes the type of column {table}.{column}", rows,
               f"value(s) longer than {limit.group(2)} characters would be truncated", verdict.note)
        return
    rows = _count(conn, sql.SQL("SELECT 1 FROM {} WHERE {} IS NOT NULL").format(table.ident(),
                                                                             sql.Identifier(column)))
    yield f"changes the type of column {table}.{column}", rows, "row(s) hold values that may change", verdict.note


def _deleted_rows(conn: psycopg.Connection, tree: Any) -> Iterator[_Found]:
    """Rows a DELETE would remove, counted with its own WHERE (unknown when that cannot run yet)."""
    table = _table_name(tree.this)
    if _regclass(conn, table) is None:
        return
    where = tree.args.get("where")
    if tree.args.get("using"):
        yield f"deletes rows of table {table}", None, "row(s)", "a DELETE ... USING is not counted"
        return
    query = sql.SQL("SELECT 1 FROM {}").format(table.ident())
    if where is not None:
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(where.this.sql(dialect="postgres")))  # type: ignore[arg-type]
    try:
        with conn.transaction():
            rows: int | None = _count(conn, query)
    except psycopg.Error as exc:
        yield f"deletes rows of table {table}", None, "row(s)", f"counting failed: {str(exc).strip().splitlines()[0]}"
        return
    yield f"deletes rows of table {table}", rows, "row(s) would be deleted", ""
