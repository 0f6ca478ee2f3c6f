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

from veza_schema.errors import DatabaseStateError
from veza_schema.migrations.files import PlannedStep
from veza_schema.sql.parse import ast, enums
from veza_schema.sql.parse_cache import on_disk
from veza_schema.sql.split import SOURCE as SPLIT_SOURCE
from veza_schema.sql.split import parse_script

# pglast (its enums and printer), the type-change classifier and the volatility catalog are imported where a
# destructive statement needs them: a plan without one (the initial migration) never loads them.

COUNT_CAP = 1_000_000
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
    """Every statement of ``steps`` that would destroy existing data, counted on ``conn``.

    Each file is parsed once (:func:`veza_schema.sql.split.parse_script`, PostgreSQL's grammar),
    the parse ``apply``'s other pre-run check reads too; only a statement whose node type can
    destroy data gets its parse tree built, and which statements can is kept in the disk cache.
    """
    losses: list[DataLoss] = []
    for step in steps:
        path = step.migration.up_path if step.direction == "up" else step.migration.down_path
        script = parse_script(step.sql)
        candidates = _may_destroy_data(step.sql)
        if not all(0 <= index < len(script.statements) for index in candidates):  # a damaged cache entry
            candidates = _destructive_statements(step.sql)
        for index in candidates:
            statement = script.statements[index]
            first = statement.text.strip().splitlines()[0][:120]
            for what, rows, noun, detail in _destroyed(conn, script.tree(index)):
                if rows is None or rows > 0:
                    losses.append(DataLoss(Path(path) if path else Path("?"), statement.line, first, what, rows,
                                           noun, detail))
    return losses


def _destructive_statements(sql: str) -> tuple[int, ...]:
    """The statements of a file that can destroy data, whatever the database holds (see :func:`_can_destroy`)."""
    script = parse_script(sql)
    return tuple(index for index in range(len(script.statements))
                 if (script.node_types is None or script.node_types[index] in _DESTRUCTIVE)
                 and _can_destroy(script.tree(index)))  # a file that does not parse whole: each statement alone


def _stored_indexes(stored: Any) -> tuple[int, ...]:
    if not isinstance(stored, tuple) or not all(type(index) is int for index in stored):
        raise ValueError("not statement indexes")
    return stored


# Kept by the file's bytes (and this module's and the splitter's source): a warm ``apply`` builds no parse
# tree for a file that destroys nothing (an ALTER TABLE adding a constraint needs its tree to say so).
_SOURCES = (Path(__file__), SPLIT_SOURCE)
_may_destroy_data = on_disk("destructive_statements", lambda found: found, _stored_indexes,
                            sources=_SOURCES)(_destructive_statements)


# -- what one statement destroys ------------------------------------------------------------------
_DESTRUCTIVE = frozenset({"DropStmt", "TruncateStmt", "DeleteStmt", "AlterTableStmt"})  # parse node types


@dataclass(frozen=True, slots=True)
class _Name:
    schema: str | None
    name: str

    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name) if self.schema else sql.Identifier(self.name)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def _range_name(relation: Any) -> _Name:
    """A table as the parser resolved its name (unquoted names already folded to lower case)."""
    return _Name(relation.schemaname or None, relation.relname)


def _can_destroy(tree: Any) -> bool:
    """Whether the statement can destroy data: exactly the statements :func:`_destroyed` looks at in the database."""
    if isinstance(tree, ast.DropStmt):
        return bool(tree.removeType == enums.ObjectType.OBJECT_TABLE)
    if isinstance(tree, (ast.TruncateStmt, ast.DeleteStmt)):
        return True
    if isinstance(tree, ast.AlterTableStmt) and tree.objtype == enums.ObjectType.OBJECT_TABLE:
        return any(command.subtype == enums.AlterTableType.AT_DropColumn
                   or (command.subtype == enums.AlterTableType.AT_AlterColumnType and command.def_ is not None)
                   for command in tree.cmds or ())
    return False


def _destroyed(conn: psycopg.Connection, tree: Any) -> Iterator[_Found]:
    """(what, rows holding data, detail) for each thing the statement would destroy."""
    from pglast.stream import RawStream

    if isinstance(tree, ast.DropStmt) and tree.removeType == enums.ObjectType.OBJECT_TABLE:
        for parts in tree.objects or ():
            names = [part.sval for part in parts]
            yield from _table_rows(conn, _Name(names[-2] if len(names) > 1 else None, names[-1]), "drops table")
    elif isinstance(tree, ast.TruncateStmt):
        for relation in tree.relations or ():
            yield from _table_rows(conn, _range_name(relation), "empties table")
    elif isinstance(tree, ast.DeleteStmt):
        yield from _deleted_rows(conn, tree)
    elif isinstance(tree, ast.AlterTableStmt) and tree.objtype == enums.ObjectType.OBJECT_TABLE:
        table = _range_name(tree.relation)
        for command in tree.cmds or ():
            if command.subtype == enums.AlterTableType.AT_DropColumn:
                yield from _column_values(conn, table, command.name)
            elif command.subtype == enums.AlterTableType.AT_AlterColumnType and command.def_ is not None:
                yield from _type_change(conn, table, command.name, RawStream()(command.def_.typeName))


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
    from veza_schema.diff.typechange import classify_type_change
    from veza_schema.types import TypeSyntaxError, normalize_type

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
    from pglast.stream import RawStream

    from veza_schema.sql.volatility import volatile_calls

    table = _range_name(tree.relation)
    if _regclass(conn, table) is None:
        return
    if tree.usingClause or tree.withClause:
        yield f"deletes rows of table {table}", None, "row(s)", "a DELETE ... USING or WITH is not counted"
        return
    query = sql.SQL("SELECT 1 FROM {}").format(table.ident())
    volatile = volatile_calls(RawStream()(tree.whereClause)) if tree.whereClause is not None else []
    if volatile:  # counting would run them, before anyone agreed to run this file
        yield (f"deletes rows of table {table}", None, "row(s)",
               f"not counted: its condition calls volatile function(s) {', '.join(volatile)}")
        return
    if tree.whereClause is not None:
        # The statement's own condition, as PostgreSQL's grammar read it, counted inside a rolled-back
        # transaction: it runs with the rights the DELETE itself would have.
        query = sql.SQL("{} WHERE {}").format(query, sql.SQL(RawStream()(tree.whereClause)))  # type: ignore[arg-type]
    try:
        with conn.transaction(force_rollback=True):
            rows: int | None = _count(conn, query)
    except psycopg.Error as exc:
        yield f"deletes rows of table {table}", None, "row(s)", f"counting failed: {str(exc).strip().splitlines()[0]}"
        return
    yield f"deletes rows of table {table}", rows, "row(s) would be deleted", ""
