"""Helpers shared by the rule families: object paths and identifier walks.

SQL texts are parsed through :mod:`veza_schema.sql.parse` (cached per distinct text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from veza_schema.model import Index, Meta, Schema, SourcePos, Table, View, split_name
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
    yield Named(split_name(table.name)[1], "table", tp, table.meta.pos, table.name)
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
        yield Named(split_name(enum.name)[1], "enum", f"enums.{enum.name}", enum.meta.pos)
    for ctype in schema.composite_types.values():
        yield Named(split_name(ctype.name)[1], "type", f"types.{ctype.name}", ctype.meta.pos)
        for attr in ctype.attributes:
            yield Named(
                attr.name, "type attribute", f"types.{ctype.name}.attributes.{attr.name}", ctype.meta.pos
            )
    for function in schema.functions.values():
        yield Named(split_name(function.name)[1], "function", f"functions.{function.name}", function.meta.pos)
    for view in schema.views.values():
        yield Named(split_name(view.name)[1], "view", f"views.{view.name}", view.meta.pos)
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
