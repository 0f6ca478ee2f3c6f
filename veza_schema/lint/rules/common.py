"""Helpers shared by the rule families: object paths, identifier walks, cached SQL parsing.

SQL texts are parsed once per distinct text (an LRU cache), so a rule that looks at every
CHECK of 10,000 tables parses ``deleted_at IS NULL`` once, not 10,000 times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from veza_schema.model import Index, Meta, Schema, SourcePos, Table, View
from veza_schema.types import base_type

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


def table_path(table: str) -> str:
    return f"tables.{table}"


def column_path(table: str, column: str) -> str:
    return f"tables.{table}.columns.{column}"


def index_path(index: Index, on_view: bool = False) -> str:
    return f"{'views' if on_view else 'tables'}.{index.table}.indexes.{index.name}"


def is_jsonb(type_text: str) -> bool:
    return type_text == "jsonb"


def type_base(type_text: str) -> str:
    return base_type(type_text)


@dataclass(frozen=True, slots=True)
class Named:
    """One identifier of the schema, with what it names, where, and the path waivers use."""

    name: str
    kind: str
    path: str
    pos: SourcePos | None
    table: str | None = None


def table_identifiers(table: Table) -> Iterator[Named]:
    """The table, its columns, indexes and constraints: the identifiers seed rule 7 lists."""
    tp = table_path(table.name)
    yield Named(table.name, "table", tp, table.meta.pos, table.name)
    for column in table.columns:
        yield Named(column.name, "column", column_path(table.name, column.name), column.meta.pos, table.name)
    if table.primary_key:
        yield Named(
            table.primary_key.name, "primary key", f"{tp}.primary_key", table.primary_key.meta.pos, table.name
        )
    for uq in table.uniques.values():
        yield Named(uq.name, "unique constraint", f"{tp}.unique.{uq.name}", uq.meta.pos, table.name)
    for ck in table.checks.values():
        yield Named(ck.name, "check constraint", f"{tp}.checks.{ck.name}", ck.meta.pos, table.name)
    for fk in table.foreign_keys.values():
        yield Named(fk.name, "foreign key", f"{tp}.foreign_keys.{fk.name}", fk.meta.pos, table.name)
    for index in table.indexes.values():
        yield Named(index.name, "index", index_path(index), index.meta.pos, table.name)


def other_identifiers(schema: Schema) -> Iterator[Named]:
    """Identifiers outside tables: types, functions, views (and their indexes), triggers."""
    for enum in schema.enums.values():
        yield Named(enum.name, "enum", f"enums.{enum.name}", enum.meta.pos)
    for ctype in schema.composite_types.values():
        yield Named(ctype.name, "type", f"types.{ctype.name}", ctype.meta.pos)
        for attr in ctype.attributes:
            yield Named(
                attr.name, "type attribute", f"types.{ctype.name}.attributes.{attr.name}", ctype.meta.pos
            )
    for function in schema.functions.values():
        yield Named(function.name, "function", f"functions.{function.name}", function.meta.pos)
    for view in schema.views.values():
        yield Named(view.name, "view", f"views.{view.name}", view.meta.pos)
        for index in view.indexes.values():
            yield Named(index.name, "index", index_path(index, on_view=True), index.meta.pos, view.name)
    for table in schema.tables.values():
        for trigger in table.triggers.values():
            yield Named(
                trigger.name,
                "trigger",
                f"tables.{table.name}.triggers.{trigger.name}",
                trigger.meta.pos,
                table.name,
            )


T = TypeVar("T")


def per_schema(function: Callable[[Schema], T]) -> Callable[[Schema], T]:
    """Compute ``function(schema)`` once for the schema being linted (several rules share it).

    Only the latest schema is remembered, so a long-lived process does not keep old models alive.
    """
    cache: dict[int, tuple[Schema, T]] = {}

    def cached(schema: Schema) -> T:
        hit = cache.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
        value = function(schema)
        cache.clear()
        cache[id(schema)] = (schema, value)
        return value

    cached.__doc__ = function.__doc__
    return cached


@per_schema
def all_identifiers(schema: Schema) -> list[Named]:
    """Every identifier of the schema (IMM007, PG001 and PG002 walk them)."""
    found = [named for table in schema.tables.values() for named in table_identifiers(table)]
    found += other_identifiers(schema)
    return found


def view_indexes(schema: Schema) -> Iterator[tuple[View, Index]]:
    for view in schema.views.values():
        for index in view.indexes.values():
            yield view, index


def pos_of(meta: Meta, key: str | None = None) -> SourcePos | None:
    return meta.at(key) if key else meta.pos


# -- SQL texts ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ParsedSql:
    """What rules need from one SQL expression text; ``error`` is set when it does not parse."""

    error: str | None
    columns: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()


# sqlglot normalizes some PostgreSQL functions into typed nodes; map them back to PG names.
_SQLGLOT_FUNCTIONS: dict[str, str] = {
    "CurrentTimestamp": "now",
    "CurrentDate": "current_date",
    "CurrentTime": "current_time",
    "Localtimestamp": "localtimestamp",
    "Localtime": "localtime",
    "Rand": "random",
    "Uuid": "gen_random_uuid",
}


@lru_cache(maxsize=65536)
def parse_sql(text: str) -> ParsedSql:
    """Parse one expression as PostgreSQL (sqlglot); columns referenced and functions called.

    An aliased result (``a b`` read as ``a AS b``) is no expression PostgreSQL accepts here, so
    it counts as a parse error too.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(text, read="postgres")
    except SqlglotError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return ParsedSql(error=message[:200])
    if tree is None or isinstance(tree, exp.Alias) or not isinstance(tree, exp.Expression):
        return ParsedSql(error="not a single SQL expression")
    columns = frozenset(
        c.name.lower() if not c.this.args.get("quoted") else c.name
        for c in tree.find_all(exp.Column)
        if c.name
    )
    functions: set[str] = set()
    for node in tree.find_all(exp.Func):
        if isinstance(node, exp.Anonymous):
            functions.add(str(node.name).lower())
        else:
            mapped = _SQLGLOT_FUNCTIONS.get(type(node).__name__)
            if mapped:
                functions.add(mapped)
            else:
                functions.add(node.sql_name().lower())
    return ParsedSql(error=None, columns=columns, functions=frozenset(functions))


@lru_cache(maxsize=4096)
def parse_tree(text: str) -> Any:
    """The sqlglot tree of an expression, or None when it does not parse (shared; do not mutate)."""
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        return sqlglot.parse_one(text, read="postgres")
    except SqlglotError:
        return None


@dataclass(frozen=True, slots=True)
class ViewFilters:
    """Columns a view query filters on (WHERE), resolved to their tables where possible."""

    error: str | None
    # (table or None when unqualified and unresolved, column)
    refs: frozenset[tuple[str | None, str]] = frozenset()
    tables: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
def view_filters(query: str) -> ViewFilters:
    """Parse a view query and collect the column references inside its WHERE clauses."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(query, read="postgres")
    except SqlglotError as error:
        return ViewFilters(error=str(error).splitlines()[0][:200] if str(error) else "parse error")
    if tree is None:
        return ViewFilters(error="empty query")
    aliases: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        if table.name:
            aliases[table.alias_or_name.lower()] = table.name.lower()
            aliases.setdefault(table.name.lower(), table.name.lower())
    refs: set[tuple[str | None, str]] = set()
    for where in tree.find_all(exp.Where):
        for column in where.find_all(exp.Column):
            qualifier = column.table.lower() if column.table else None
            refs.add((aliases.get(qualifier, qualifier) if qualifier else None, column.name.lower()))
    return ViewFilters(error=None, refs=frozenset(refs), tables=frozenset(aliases.values()))
