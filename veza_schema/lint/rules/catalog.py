"""PostgreSQL pitfalls told by the catalog's facts: types, operator classes, casts, volatility.

These rules read :class:`veza_schema.sql.facts.CatalogFacts` from the lint context: the
verification server's ``pg_catalog`` when lint runs with one, else the built-in table. They
report only what the facts show PostgreSQL refuses (or rewrites); an answer the facts cannot
give ("cannot tell") is silence, never a guess. Without ``--offline`` the server's own
verdict (PG1xx) covers the same ground for the DDL; these rules say it without a server,
at the precise YAML key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import LintContext, Rule, rule
from veza_schema.lint.rules.common import column_path, index_path, table_path
from veza_schema.lint.rules.predicates import ANSWER_SOURCES, Literal, comparisons, literal_of
from veza_schema.model import Column, Index, Schema, SourcePos, Table
from veza_schema.sql.facts import CatalogFacts
from veza_schema.sql.parse import SqlSyntaxError, ast, expression_node
from veza_schema.sql.parse_cache import on_disk
from veza_schema.sql.volatility import non_immutable_calls, volatile_calls
from veza_schema.types import base_type, is_array

_INTEGER_LIMITS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}
_INTEGER = re.compile(r"^[+-]?(?:\d[\d_]*|0[xX][\da-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+)$")
_FLOATS = ("numeric", "real", "double precision")
_SPECIAL_FLOATS = frozenset({"nan", "infinity", "+infinity", "-infinity", "inf", "+inf", "-inf"})
_BOOLEANS = frozenset({"t", "tr", "tru", "true", "f", "fa", "fal", "fals", "false", "y", "ye", "yes", "n", "no",
                       "on", "of", "off", "1", "0"})
_UUID = re.compile(r"^\{?[0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7}\}?$")


def valid_input(text: str, type_text: str, schema: Schema) -> bool | None:
    """Whether PostgreSQL reads ``text`` (an untyped string literal) as a value of the type; None: cannot tell."""
    if is_array(type_text):
        return None
    base = base_type(type_text)
    value = text.strip()
    if base in _INTEGER_LIMITS:
        if not _INTEGER.match(value):
            return False
        if not value.lstrip("+-").isdigit():
            return True  # hexadecimal, octal, binary, underscores: PostgreSQL 16+ reads them
        return -_INTEGER_LIMITS[base] <= int(value) < _INTEGER_LIMITS[base]
    if base in _FLOATS:
        if value.lower() in _SPECIAL_FLOATS:
            return True
        try:
            Decimal(value.replace("_", ""))
        except InvalidOperation:
            return False
        return True
    if base == "boolean":
        return value.lower() in _BOOLEANS
    if base == "uuid":
        return bool(_UUID.match(value))
    enum = schema.enums.get(base)
    if enum is not None:
        return text in enum.values
    return None


def _literal_problem(literal: Literal, column: Column, schema: Schema, facts: CatalogFacts,
                     context: str) -> str | None:
    """Why PostgreSQL refuses ``literal`` where a value of the column's type is needed, else None.

    ``context`` is ``assignment`` (a default) or ``comparison`` (a CHECK or index predicate).
    """
    target = column.type
    if facts.type_category(target, schema) is None:
        return None
    if literal.type is None:
        valid = valid_input(str(literal.value), target, schema)
        return f"'{literal.value}' is not a value of type {target}" if valid is False else None
    if facts.type_category(literal.type, schema) is None:
        return None
    if context == "assignment":
        how = facts.cast_context(literal.type, target, schema)
        if how in ("i", "a"):
            return None
        return f"a {literal.type} is not assignable to {target} (no implicit or assignment cast)"
    if facts.comparable(target, literal.type, schema) is False:
        return f"{target} cannot be compared with {literal.type} (no such operator)"
    return None


def _encode_literal(found: Literal | None) -> tuple[str, str | bool, str | None] | None:
    if found is None:
        return None
    if isinstance(found.value, Decimal):
        return "d", str(found.value), found.type
    return "b" if isinstance(found.value, bool) else "s", found.value, found.type


def _decode_literal(stored: Any) -> Literal | None:
    if stored is None:
        return None
    kind, value, type_ = stored
    try:
        return Literal(Decimal(value) if kind == "d" else value, type_)
    except InvalidOperation:  # a damaged entry: the cache answers afresh
        raise ValueError(stored) from None


@lru_cache(maxsize=65536)
# A warm run parses no default; the answer is this file's and literal_of's (predicates.py).
@on_disk("default_literal", _encode_literal, _decode_literal, sources=(Path(__file__), *ANSWER_SOURCES))
def _default_literal(text: str) -> Literal | None:
    """The default when it is one constant (optionally cast), else None."""
    try:
        node = expression_node(text)
    except SqlSyntaxError:
        return None
    if isinstance(node, ast.A_Const | ast.TypeCast):
        return literal_of(node)
    return None


@rule(
    "PG012",
    "unknown-type",
    "error",
    "pitfalls",
    summary="A column or type attribute of a type that neither PostgreSQL, the schema nor a declared extension "
    "defines.",
    why="The migration fails on the server (`type \"x\" does not exist`); usually a typo (`timestampz`) or an "
    "extension's type (citext, vector) whose extension the schema does not declare.",
    fix="Fix the type name, declare the type (enums:, types:), or add the extension to `extensions:`.",
    context=True,
)
def check_unknown_type(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_unknown_type
    facts = context.facts
    for table in schema.tables.values():
        for column in table.columns:
            if facts.type_exists(column.type, schema) is False:
                yield this.finding(f"{table.name}.{column.name} has unknown type {column.type}",
                                   column.meta.at("type"), column_path(table.name, column.name))
    for ctype in schema.composite_types.values():
        for attribute in ctype.attributes:
            if facts.type_exists(attribute.type, schema) is False:
                yield this.finding(f"type {ctype.name}.{attribute.name} has unknown type {attribute.type}",
                                   ctype.meta.at("attributes"), f"types.{ctype.name}")


@rule(
    "PG013",
    "no-operator-class",
    "error",
    "pitfalls",
    summary="An index key whose column type has no default operator class for the index method (GIN on a plain "
    "uuid or integer), or an operator class the method lacks.",
    why="PostgreSQL refuses the CREATE INDEX (`data type uuid has no default operator class for access method "
    "\"gin\"`); GIN and GiST index arrays, jsonb, full text and ranges, not scalars, unless an extension "
    "(btree_gin, btree_gist, pg_trgm) adds operator classes.",
    fix="Use btree for scalars, give the operator class (`opclass: gin_trgm_ops`) and declare its extension, "
    "or add `btree_gin`/`btree_gist` to `extensions:` when mixing scalars into a GIN/GiST index is intended.",
    context=True,
)
def check_operator_class(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_operator_class
    facts = context.facts
    for table in schema.tables.values():
        for index in table.indexes.values():
            for element in index.elements:
                column = table.column(element.expression) if element.is_column else None
                if column is None:
                    continue
                if element.opclass:
                    if facts.has_opclass(index.method, element.opclass, schema) is False:
                        yield this.finding(
                            f"index {index.name}: access method {index.method} has no operator class "
                            f"{element.opclass}", index.meta.pos, index_path(index))
                elif facts.has_default_opclass(index.method, column.type, schema) is False:
                    yield this.finding(
                        f"index {index.name}: {table.name}.{column.name} ({column.type}) has no default operator "
                        f"class for access method {index.method}", index.meta.pos, index_path(index))


@rule(
    "PG014",
    "default-type-mismatch",
    "error",
    "pitfalls",
    summary="A constant DEFAULT that is not a value of the column's type: `'abc'` or `true` for an integer, "
    "`'5'::text` for an integer, `1` for a boolean, a malformed uuid.",
    why="PostgreSQL refuses the DDL at apply time (`invalid input syntax for type integer`, `column is of type "
    "integer but default expression is of type text`).",
    fix="Write a value of the column's type; quote strings only for text-like and enum types.",
    context=True,
)
def check_default_type(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_default_type
    for table in schema.tables.values():
        for column in table.columns:
            if column.default is None:
                continue
            literal = _default_literal(column.default)
            problem = None if literal is None else _literal_problem(literal, column, schema, context.facts,
                                                                    "assignment")
            if problem:
                yield this.finding(f"default {column.default} of {table.name}.{column.name}: {problem}",
                                   column.meta.at("default"), column_path(table.name, column.name))


def _predicates(table: Table) -> Iterator[tuple[str, Any]]:
    """The table's CHECK and index WHERE texts, with their owner (located by :func:`_predicate_located`)."""
    for check in table.checks.values():
        yield check.expression, check
    for index in table.indexes.values():
        if index.where:
            yield index.where, index


def _predicate_located(table: Table, owner: Any) -> tuple[str, SourcePos | None, str]:
    if isinstance(owner, Index):
        return f"index {owner.name}", owner.meta.at("where"), index_path(owner)
    return f"check {owner.name}", owner.meta.at("expression"), f"{table_path(table.name)}.checks.{owner.name}"


@rule(
    "PG015",
    "comparison-type-mismatch",
    "error",
    "pitfalls",
    summary="A CHECK or index predicate comparing a column with a constant of another type: `count = "
    "'x'::text`, `count > 'ten'`, `title = 5`.",
    why="PostgreSQL refuses the DDL (`operator does not exist: integer = text`, `invalid input syntax for type "
    "integer`): there is no comparison between those types, or the string is not a value of the column's type.",
    fix="Compare with a constant of the column's type (an unquoted number, a quoted value of the enum), or cast.",
    context=True,
)
def check_comparison_types(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_comparison_types
    problems: dict[tuple[str, str | None, str | None], str | None] = {}
    for table in schema.tables.values():
        for text, owner in _predicates(table):
            for atom in comparisons(text):
                column = table.column(atom.column)
                if column is None:
                    continue
                for literal in atom.values:
                    # The verdict depends on the column's type and the constant's, or an untyped string's text:
                    # 10,000 tables compare the same columns with the same constants.
                    key = (column.type, literal.type, str(literal.value) if literal.type is None else None)
                    if key not in problems:
                        problems[key] = _literal_problem(literal, column, schema, context.facts, "comparison")
                    problem = problems[key]
                    if problem:
                        what, pos, path = _predicate_located(table, owner)
                        yield this.finding(f"{what} on {table.name}: {atom.column} {atom.op} ...: {problem}", pos,
                                           path)
                        break


@rule(
    "PG016",
    "check-not-immutable",
    "warning",
    "pitfalls",
    summary="A CHECK calling a function that is not IMMUTABLE (now(), current_date, random(), current_user...).",
    why="PostgreSQL evaluates a CHECK only when a row is written, assuming the answer never changes: "
    "`CHECK (expires_at > now())` holds at insert and is false a day later, so a dump does not restore "
    "(pg_dump reloads the rows against it) and an unrelated UPDATE of the row suddenly fails.",
    fix="Check what holds forever (`expires_at > created_at`), or enforce the time rule in the application or "
    "a trigger.",
    context=True,
)
def check_not_immutable(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_not_immutable
    for table in schema.tables.values():
        for check in table.checks.values():
            calls = non_immutable_calls(check.expression, schema, context.facts.functions)
            if calls and not calls[0].startswith("("):
                yield this.finding(
                    f"check {check.name} on {table.name} calls {', '.join(f'{c}()' for c in calls)}, not IMMUTABLE",
                    check.meta.at("expression"), f"{table_path(table.name)}.checks.{check.name}")


def rewrite_reason(column: Column, schema: Schema, facts: CatalogFacts) -> str | None:
    """Why adding ``column`` to a table with rows rewrites it, else None.

    The same verdict as the planner's (:func:`veza_schema.diff.plan.is_volatile`) and the change
    policy's (POL104): an identity, a stored generated expression, or a default that may call
    a VOLATILE function (:mod:`veza_schema.sql.volatility`, unknown functions included).
    """
    if column.identity:
        return "an identity fills every existing row"
    if column.generated:
        return "a stored generated expression fills every existing row"
    volatile = volatile_calls(column.default, schema, facts.functions)
    if volatile:
        return f"the default calls volatile {', '.join(f'{name}()' for name in volatile)}"
    return None


@rule(
    "PG017",
    "rewriting-column-on-existing-table",
    "warning",
    "pitfalls",
    summary="A column new since the last migration, on a table the migrations already create, whose default is "
    "volatile (or an identity, or generated): adding it rewrites the table.",
    why="ADD COLUMN with a volatile default rewrites every row under ACCESS EXCLUSIVE; `generate` refuses to "
    "plan it (and `check` requires an RFC) unless forced. Lint says it on the YAML line, before generate.",
    fix="Add the column nullable without the default, set the default, backfill in batches, then make it NOT "
    "NULL (expand/contract); or accept the rewrite with --allow-forbidden and an RFC.",
    context=True,
)
def check_rewriting_column(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_rewriting_column
    previous = context.previous_columns
    if previous is None:
        return
    for table in schema.tables.values():
        before = previous.get(table.name)
        if before is None:
            before = previous.get(table.meta.renamed_from or "")
        if before is None:
            continue
        for column in table.columns:
            if column.name in before or (column.meta.renamed_from or "") in before:
                continue
            reason = rewrite_reason(column, schema, context.facts)
            if reason:
                yield this.finding(
                    f"{table.name}.{column.name} is new on an existing table and {reason}: adding it rewrites "
                    f"{table.name}", column.meta.at("default") if column.default else column.meta.pos,
                    column_path(table.name, column.name))


RULES: tuple[Rule, ...] = (
    check_unknown_type,
    check_operator_class,
    check_default_type,
    check_comparison_types,
    check_not_immutable,
    check_rewriting_column,
)
