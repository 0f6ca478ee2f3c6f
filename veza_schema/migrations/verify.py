"""What a migration file leaves behind, checked on the live database: ``resolve --applied`` trusts
nothing it is told.

Why: a no-transaction file that failed half-way (a concurrent index build interrupted) leaves
objects that look present but are not usable: an INVALID index, a constraint still NOT
VALID. Recording such a file as applied would hide them for good (``status`` up to date,
``diff`` silent). So the file's statements are read with PostgreSQL's own parser, the state
each object must end in is worked out (the last statement touching an object wins: a
temporary CHECK created then dropped must be absent), and the catalog is asked about each.
Statements whose effect cannot be read from their text (DO blocks, SELECT calls) are counted
as not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from veza_schema.sql.parse import SqlSyntaxError, ast, enums, script_statements

Kind = Literal["index", "constraint", "not null", "table", "column"]


@dataclass(frozen=True)
class Expectation:
    """One object's state once the file has run."""

    kind: Kind
    table: str | None
    name: str
    present: bool = True
    valid: bool = True  # an index usable (indisvalid), a constraint validated

    def describe(self) -> str:
        where = f" on {self.table}" if self.table else ""
        return f"{self.kind} {self.name}{where}"


@dataclass(frozen=True)
class FileEffects:
    expectations: tuple[Expectation, ...]
    unchecked: int  # statements whose effect cannot be read from their text


def _name(node: Any) -> str:
    parts = [item.sval for item in node if isinstance(item, ast.String)]
    return parts[-1] if parts else ""


def expected_effects(sql: str) -> FileEffects:
    """The end state of each object the file's statements create, alter or drop.

    Raises:
        SqlSyntaxError: the file does not parse.
    """
    found: dict[tuple[str, str | None, str], Expectation] = {}
    unchecked = 0

    def expect(item: Expectation) -> None:
        found[(item.kind, item.table, item.name)] = item

    object_type = enums.ObjectType
    for node in script_statements(sql):
        if isinstance(node, ast.IndexStmt) and node.idxname:
            expect(Expectation("index", node.relation.relname, node.idxname))
        elif isinstance(node, ast.CreateStmt) and node.relation is not None:
            expect(Expectation("table", None, node.relation.relname))
        elif isinstance(node, ast.DropStmt) and node.removeType in (object_type.OBJECT_INDEX, object_type.OBJECT_TABLE):
            kind: Kind = "index" if node.removeType == object_type.OBJECT_INDEX else "table"
            for obj in node.objects or ():
                name = _name(obj)
                for key in [k for k in found if k[0] == kind and k[2] == name]:
                    del found[key]
                expect(Expectation(kind, None, name, present=False))
        elif isinstance(node, ast.AlterTableStmt) and node.relation is not None:
            table = node.relation.relname
            for cmd in node.cmds or ():
                _alter(cmd, table, expect, found)
        elif isinstance(node, (ast.VariableSetStmt, ast.CommentStmt)):
            continue
        else:
            unchecked += 1
    return FileEffects(tuple(found.values()), unchecked)


def _alter(cmd: Any, table: str, expect: Any, found: dict[tuple[str, str | None, str], Expectation]) -> None:
    subtype = cmd.subtype
    if subtype == enums.AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint) and cmd.def_.conname:
        expect(Expectation("constraint", table, cmd.def_.conname, valid=not cmd.def_.skip_validation))
    elif subtype == enums.AlterTableType.AT_ValidateConstraint and cmd.name:
        expect(Expectation("constraint", table, cmd.name))
    elif subtype == enums.AlterTableType.AT_DropConstraint and cmd.name:
        expect(Expectation("constraint", table, cmd.name, present=False))
    elif subtype == enums.AlterTableType.AT_SetNotNull and cmd.name:
        expect(Expectation("not null", table, cmd.name))
    elif subtype == enums.AlterTableType.AT_DropNotNull and cmd.name:
        expect(Expectation("not null", table, cmd.name, present=False))
    elif subtype == enums.AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
        expect(Expectation("column", table, cmd.def_.colname))
    elif subtype == enums.AlterTableType.AT_DropColumn and cmd.name:
        expect(Expectation("column", table, cmd.name, present=False))


_INDEX = "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(quote_ident(%s))"
_TABLE = "SELECT to_regclass(quote_ident(%s)) IS NOT NULL"
_CONSTRAINT = ("SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass(quote_ident(%s)) "
               "AND conname = %s")
_COLUMN = ("SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass(quote_ident(%s)) AND attname = %s "
           "AND NOT attisdropped AND attnum > 0")


def _problem(conn: psycopg.Connection, item: Expectation) -> str | None:
    """What is wrong with ``item`` in the database, or None."""
    if item.kind == "index":
        row = conn.execute(_INDEX, (item.name,)).fetchone()
        if row is None:
            return None if not item.present else f"index {item.name} does not exist"
        if not item.present:
            return f"index {item.name} still exists"
        return None if row[0] else (f"index {item.name} is INVALID (its concurrent build did not finish): it "
                                    "exists but no query uses it and it is not applied")
    if item.kind == "table":
        row = conn.execute(_TABLE, (item.name,)).fetchone()
        exists = bool(row and row[0])
        if exists != item.present:
            return f"table {item.name} {'does not exist' if item.present else 'still exists'}"
        return None
    if item.kind == "constraint":
        row = conn.execute(_CONSTRAINT, (item.table, item.name)).fetchone()
        if row is None:
            return f"constraint {item.name} on {item.table} does not exist" if item.present else None
        if not item.present:
            return f"constraint {item.name} on {item.table} still exists"
        if item.valid and not row[0]:
            return (f"constraint {item.name} on {item.table} is NOT VALID (VALIDATE CONSTRAINT did not run or "
                    "failed)")
        return None
    row = conn.execute(_COLUMN, (item.table, item.name)).fetchone()
    if item.kind == "column":
        if (row is not None) != item.present:
            return f"column {item.table}.{item.name} {'does not exist' if item.present else 'still exists'}"
        return None
    if row is None:
        return f"column {item.table}.{item.name} does not exist"
    if bool(row[0]) != item.present:
        return f"column {item.table}.{item.name} {'allows NULL' if item.present else 'is still NOT NULL'}"
    return None


@dataclass(frozen=True)
class Verification:
    problems: tuple[str, ...]
    checked: int
    unchecked: int


def verify_applied(conn: psycopg.Connection, sql: str) -> Verification:
    """Whether the database holds what ``sql`` (a migration's up file) leaves behind."""
    try:
        effects = expected_effects(sql)
    except SqlSyntaxError as exc:
        return Verification((f"the file does not parse, so nothing could be checked ({exc})",), 0, 0)
    problems = tuple(p for item in effects.expectations if (p := _problem(conn, item)) is not None)
    return Verification(problems, len(effects.expectations), effects.unchecked)
