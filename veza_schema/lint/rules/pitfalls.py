"""PostgreSQL pitfalls: DDL that PostgreSQL accepts but misbehaves, or refuses only at deploy time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Literal

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import LintContext, Rule, rule
from veza_schema.lint.rules.common import (
    MAX_IDENTIFIER_BYTES,
    RESERVED,
    TOO_LONG,
    column_path,
    index_path,
    suspect_identifiers,
    suspicion,
    table_path,
    type_base,
)
from veza_schema.model import Schema, SourcePos, Table
from veza_schema.sql.facts import SERIAL_TYPES, CatalogFacts
from veza_schema.sql.parse import parse_sql
from veza_schema.sql.volatility import non_immutable_calls

# Spellings PostgreSQL's grammar (not pg_type) takes as types: int, decimal, serial...
_TYPE_SPELLINGS: frozenset[str] = frozenset({"int", "dec", "decimal", "float", "double"}) | frozenset(SERIAL_TYPES)


def builtin_type_names(facts: CatalogFacts) -> frozenset[str]:
    """pg_catalog's type names, in both spellings (int4 and integer), and the grammar's aliases."""
    return frozenset(facts.types) | _TYPE_SPELLINGS


@rule(
    "PG001",
    "identifier-too-long",
    "error",
    "pitfalls",
    summary=f"Identifiers (and enum labels) longer than {MAX_IDENTIFIER_BYTES} bytes.",
    why="PostgreSQL silently truncates longer names to 63 bytes: two long index names can collide, and the "
    "name in the database no longer matches the YAML, so every diff reports drift.",
    fix="Shorten the name (abbreviate the column part of an index or constraint name).",
)
def check_identifier_length(schema: Schema) -> Iterator[Finding]:
    this = check_identifier_length
    for named in suspect_identifiers(schema):
        if not suspicion(named.name) & TOO_LONG:
            continue
        size = len(named.name.encode("utf-8"))
        yield this.finding(f"{named.kind} name '{named.name}' is {size} bytes; PostgreSQL truncates it to "
                           f"{MAX_IDENTIFIER_BYTES}", named.pos, named.path)
    for enum in schema.enums.values():
        for value in enum.values:
            if len(value.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
                yield this.finding(
                    f"value '{value}' of enum {enum.name} is longer than "
                    f"{MAX_IDENTIFIER_BYTES} "
                    "bytes (PostgreSQL refuses it)",
                    enum.meta.pos,
                    f"enums.{enum.name}",
                )


@rule(
    "PG002",
    "reserved-keyword",
    "error",
    "pitfalls",
    summary="Identifiers that are reserved SQL keywords in PostgreSQL (user, order, group, end, ...).",
    why="A reserved word must be double-quoted in every statement; hand-written queries and ORMs forget, "
    "and "
    "`SELECT user FROM t` silently returns the current role instead of the column.",
    fix="Rename the object (order -> sort_order, user -> user_id or account, end -> ends_at).",
)
def check_reserved_keywords(schema: Schema) -> Iterator[Finding]:
    this = check_reserved_keywords
    for named in suspect_identifiers(schema):
        if not suspicion(named.name) & RESERVED:
            continue
        yield this.finding(f"{named.kind} name '{named.name}' is a reserved keyword in PostgreSQL", named.pos,
                           named.path)


@rule(
    "PG003",
    "builtin-type-name",
    "error",
    "pitfalls",
    summary="An enum, composite type, table or view named like a built-in type (money, point, ...).",
    why="pg_catalog is searched first: `CREATE TYPE money` succeeds, but every column declared `money` "
    "still "
    "gets the built-in type (the seed's money and point types hit this).",
    fix="Give the type a distinct name (money_amount, geo_point).",
    context=True,
)
def check_builtin_type_names(schema: Schema, context: LintContext) -> Iterator[Finding]:
    this = check_builtin_type_names
    builtin = builtin_type_names(context.facts)
    objects: list[tuple[str, str, SourcePos | None, str]] = []
    objects += [("enum", e.name, e.meta.pos, f"enums.{e.name}") for e in schema.enums.values()]
    objects += [("type", t.name, t.meta.pos, f"types.{t.name}") for t in schema.composite_types.values()]
    objects += [("table", t.name, t.meta.pos, table_path(t.name)) for t in schema.tables.values()]
    objects += [("view", v.name, v.meta.pos, f"views.{v.name}") for v in schema.views.values()]
    for kind, name, pos, path in objects:
        if name.lower() in builtin:
            yield this.finding(f"{kind} '{name}' has the name of a built-in PostgreSQL type", pos, path)


@rule(
    "PG004",
    "partitioned-unique-without-key",
    "error",
    "pitfalls",
    summary="A PRIMARY KEY, UNIQUE constraint or unique index on a partitioned table lacks the partition "
    "key.",
    why="PostgreSQL can only enforce uniqueness per partition, so it refuses the constraint ('unique "
    "constraint "
    "on partitioned table must include all partitioning columns').",
    fix="Add the partition columns to the key (primary_key: [id, created_at]).",
)
def check_partitioned_unique(schema: Schema) -> Iterator[Finding]:
    this = check_partitioned_unique
    for table in schema.tables.values():
        if table.partition is None:
            continue
        needed = set(table.partition.columns)
        tp = table_path(table.name)
        keys: list[tuple[str, set[str], SourcePos | None, str]] = []
        if table.primary_key:
            keys.append(
                (
                    "primary key",
                    set(table.primary_key.columns),
                    table.primary_key.meta.pos,
                    f"{tp}.primary_key",
                )
            )
        keys += [
            (f"unique constraint {uq.name}", set(uq.columns), uq.meta.pos, f"{tp}.unique.{uq.name}")
            for uq in table.uniques.values()
        ]
        keys += [
            (
                f"unique index {ix.name}",
                {e.expression for e in ix.elements if e.is_column},
                ix.meta.pos,
                index_path(ix),
            )
            for ix in table.indexes.values()
            if ix.unique
        ]
        for what, columns, pos, path in keys:
            missing = sorted(needed - columns)
            if missing:
                yield this.finding(
                    f"{what} of partitioned table {table.name} lacks partition column(s) "
                    f"{', '.join(missing)}",
                    pos,
                    path,
                )


@rule(
    "PG005",
    "fk-to-partitioned-table",
    "warning",
    "pitfalls",
    summary="A foreign key referencing a partitioned table.",
    why="The referenced key must include the partition columns, so every referencing table has to carry "
    "them "
    "too, and detaching or dropping an old partition must scan the referencing tables under lock: "
    "partition retention stops being cheap.",
    fix="Reference a non-partitioned table, or drop the FK and enforce the link in the application "
    "(waive PG005 with the reason if the cost is accepted).",
)
def check_fk_to_partitioned(schema: Schema) -> Iterator[Finding]:
    this = check_fk_to_partitioned
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            target = schema.tables.get(fk.ref_table)
            if target is not None and target.partition is not None:
                yield this.finding(
                    f"foreign key {fk.name} references partitioned table {target.name}",
                    fk.meta.pos,
                    f"{table_path(table.name)}.foreign_keys.{fk.name}",
                    related=tuple(column_path(table.name, c) for c in fk.columns),
                )


_REFRESH = re.compile(
    r"refresh\s+materialized\s+view\s+concurrently\s+(?:\"?public\"?\.)?\"?([A-Za-z_][\w$]*)", re.IGNORECASE
)



@rule(
    "PG006",
    "concurrent-refresh-needs-unique-index",
    "error",
    "pitfalls",
    summary="A materialized view refreshed CONCURRENTLY (by a function of the schema) has a unique, "
    "non-partial index on plain columns.",
    why="REFRESH MATERIALIZED VIEW CONCURRENTLY fails without one; the seed's two views could never be "
    "refreshed by their own refresh function.",
    fix="Add `indexes: {idx_{view}_{column}_unique: {columns: [{column}], unique: true}}` to the view.",
)
def check_concurrent_refresh(schema: Schema) -> Iterator[Finding]:
    this = check_concurrent_refresh
    refreshed: dict[str, str] = {}
    for function in schema.functions.values():
        for name in _REFRESH.findall(function.body):
            refreshed.setdefault(name.lower(), function.name)
    for name, function_name in sorted(refreshed.items()):
        view = schema.views.get(name)
        if view is None or not view.materialized:
            continue
        if not view.refreshable_concurrently:
            yield this.finding(
                f"materialized view {name} is refreshed CONCURRENTLY by {function_name}() "
                "but has no "
                "unique index without WHERE on plain columns",
                view.meta.pos,
                f"views.{name}",
            )


# Which SQL text of its owner it is: _located turns it into the finding's words, position and path.
SqlTextKind = Literal["default", "generated", "check", "expression", "where", "when", "view expression",
                      "view where"]
# What _sql_texts yields: (kind, text, table name, object, table or None); see _located.
SqlText = tuple[SqlTextKind, str, str, Any, Table | None]


def _sql_texts(schema: Schema, *, immutable_only: bool = False) -> Iterator[SqlText]:
    """Every SQL expression of the model a rule parses, as (kind, text, owner, object, table); with
    ``immutable_only``, those PostgreSQL requires IMMUTABLE (generated columns, index expressions and
    predicates).

    ``table`` is None where the text's columns are not the owner's (a trigger's WHEN, a view's
    index). The label, position and path are made by :func:`_located`, only for a finding.
    """
    for table in schema.tables.values():
        name = table.name
        for column in table.columns:
            if column.default is not None and not immutable_only:
                yield "default", column.default, name, column, table
            if column.generated is not None:
                yield "generated", column.generated, name, column, table
        if not immutable_only:
            for check in table.checks.values():
                yield "check", check.expression, name, check, table
        for index in table.indexes.values():
            for element in index.elements:
                if not element.is_column:
                    yield "expression", element.expression, name, index, table
            if index.where:
                yield "where", index.where, name, index, table
        for trigger in table.triggers.values() if not immutable_only else ():
            if trigger.when:
                yield "when", trigger.when, name, trigger, None
    for view in schema.views.values():
        for index in view.indexes.values():
            for element in index.elements:
                if not element.is_column:
                    yield "view expression", element.expression, view.name, index, None
            if index.where:
                yield "view where", index.where, view.name, index, None


def _located(kind: SqlTextKind, owner: str, obj: Any) -> tuple[str, SourcePos | None, str]:
    """(what, position, path) of one SQL text of :func:`_sql_texts`."""
    if kind == "default":
        return f"default of {owner}.{obj.name}", obj.meta.at("default"), column_path(owner, obj.name)
    if kind == "generated":
        return f"generated expression of {owner}.{obj.name}", obj.meta.at("generated"), column_path(owner, obj.name)
    if kind == "check":
        return f"check {obj.name}", obj.meta.at("expression"), f"{table_path(owner)}.checks.{obj.name}"
    if kind == "when":
        return f"WHEN of trigger {obj.name}", obj.meta.at("when"), f"{table_path(owner)}.triggers.{obj.name}"
    on_view = kind.startswith("view ")
    if kind.endswith("expression"):
        return f"expression of index {obj.name}", obj.meta.at("expressions"), index_path(obj, on_view)
    return f"predicate of index {obj.name}", obj.meta.at("where"), index_path(obj, on_view)


@rule(
    "PG007",
    "unparsable-sql",
    "error",
    "pitfalls",
    summary="A CHECK, DEFAULT, generated, index-expression, index WHERE or trigger WHEN text that does not "
    "parse as PostgreSQL.",
    why="The YAML keeps these as text; a typo surfaces only when the migration runs. Parsing them in lint "
    "(PostgreSQL's own grammar, through pglast) points at the line before anything is applied.",
    fix="Fix the SQL text (strings need their quotes: default: \"'user'\"); it must be one expression.",
)
def check_unparsable_sql(schema: Schema) -> Iterator[Finding]:
    this = check_unparsable_sql
    for kind, text, owner, obj, _ in _sql_texts(schema):
        error = parse_sql(text).error
        if error:
            what, pos, path = _located(kind, owner, obj)
            yield this.finding(f"{what} does not parse as PostgreSQL: {text!r} ({error})", pos, path)


@rule(
    "PG008",
    "sql-unknown-column",
    "error",
    "pitfalls",
    summary="A CHECK, generated, index-expression or index WHERE text names a column the table lacks; "
    "a DEFAULT names any column.",
    why="PostgreSQL refuses the DDL at deploy time ('column does not exist'; 'cannot use column reference in "
    "DEFAULT expression'); a renamed column leaves such texts behind.",
    fix="Fix the column name in the expression (or quote a string literal that was meant as a value).",
)
def check_sql_columns(schema: Schema) -> Iterator[Finding]:
    this = check_sql_columns
    known_of: Table | None = None  # _sql_texts yields a table's texts together: its names are built once
    known: frozenset[str] = frozenset()
    for kind, text, owner, obj, table in _sql_texts(schema):
        if table is None:
            continue
        parsed = parse_sql(text)
        columns = parsed.columns
        if parsed.error or not columns:
            continue
        if kind == "default":
            what, pos, path = _located(kind, owner, obj)
            yield this.finding(
                f"{what} references column(s) {', '.join(sorted(columns))}; a DEFAULT cannot "
                "(was a string meant? quote it)",
                pos,
                path,
            )
            continue
        if table is not known_of:
            known_of, known = table, frozenset({column.name for column in table.columns})
        if columns <= known:
            continue
        what, pos, path = _located(kind, owner, obj)
        yield this.finding(
            f"{what} references unknown column(s) {', '.join(sorted(columns - known))} of {table.name}", pos, path
        )


@rule(
    "PG009",
    "non-immutable-function",
    "error",
    "pitfalls",
    summary="Volatile or stable functions (now(), random(), gen_random_uuid(), nextval(), ...) in index "
    "expressions, index predicates or generated columns.",
    why="PostgreSQL requires IMMUTABLE functions there and refuses the DDL; wrapping one in a function "
    "falsely "
    "marked IMMUTABLE makes the index or column silently wrong (a partial index on now() never moves).",
    fix="Compute the value at write time (a column with a default, or a trigger) and index that column.",
)
def check_immutable_functions(schema: Schema) -> Iterator[Finding]:
    this = check_immutable_functions
    own = {name.lower(): f.volatility for name, f in schema.functions.items() if f.volatility != "immutable"}
    calls: dict[str, list[str]] = {}  # by text: 10,000 tables index the same few expressions
    for kind, text, owner, obj, _table in _sql_texts(schema, immutable_only=True):
        bad = calls.get(text)
        if bad is None:
            bad = calls[text] = [] if parse_sql(text).error else non_immutable_calls(text, schema)
        if bad:
            what, pos, path = _located(kind, owner, obj)
            detail = ", ".join(f"{f}() ({own[f]})" if f in own else f"{f}()" for f in bad)
            yield this.finding(f"{what} calls non-IMMUTABLE {detail}", pos, path)


@rule(
    "PG010",
    "char-type",
    "warning",
    "pitfalls",
    summary="`char(n)` (blank-padded character) columns and attributes.",
    why="char(n) pads with spaces, compares ignoring them and is no faster than text in PostgreSQL; padding "
    "leaks into application strings and joins with varchar columns.",
    fix="Use `text` or `varchar(n)` (with a CHECK on the length if it must be exact); waive it for fixed "
    "codes "
    "such as ISO 4217 currencies if you keep it.",
)
def check_char_type(schema: Schema) -> Iterator[Finding]:
    this = check_char_type
    for table in schema.tables.values():
        for column in table.columns:
            if type_base(column.type) == "character":
                yield this.finding(
                    f"{table.name}.{column.name} is {column.type}",
                    column.meta.at("type"),
                    column_path(table.name, column.name),
                )
    for ctype in schema.composite_types.values():
        for attr in ctype.attributes:
            if type_base(attr.type) == "character":
                yield this.finding(
                    f"type {ctype.name}.{attr.name} is {attr.type}",
                    ctype.meta.at("attributes"),
                    f"types.{ctype.name}",
                )


@rule(
    "PG011",
    "varchar-without-length",
    "warning",
    "pitfalls",
    summary="`varchar` without a length.",
    why="The seed uses VARCHAR(n) for bounded strings and TEXT for unbounded ones (section 3.1); a bare "
    "varchar is a text that looks bounded, so nobody knows which was meant.",
    fix="Write `varchar(n)` with the intended limit, or `text`.",
)
def check_varchar_length(schema: Schema) -> Iterator[Finding]:
    this = check_varchar_length
    for table in schema.tables.values():
        for column in table.columns:
            if column.type.startswith("character varying") and not column.type.startswith(
                "character varying("
            ):
                yield this.finding(
                    f"{table.name}.{column.name} is varchar without a length",
                    column.meta.at("type"),
                    column_path(table.name, column.name),
                )
    for ctype in schema.composite_types.values():
        for attr in ctype.attributes:
            if attr.type.startswith("character varying") and not attr.type.startswith("character varying("):
                yield this.finding(
                    f"type {ctype.name}.{attr.name} is varchar without a length",
                    ctype.meta.at("attributes"),
                    f"types.{ctype.name}",
                )


RULES: tuple[Rule, ...] = (
    check_identifier_length,
    check_reserved_keywords,
    check_builtin_type_names,
    check_partitioned_unique,
    check_fk_to_partitioned,
    check_concurrent_refresh,
    check_unparsable_sql,
    check_sql_columns,
    check_immutable_functions,
    check_char_type,
    check_varchar_length,
)
