"""Helpers shared by the rule families: object paths and identifier walks.

SQL texts are parsed through :mod:`veza_schema.sql.parse` (cached per distinct text).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from veza_schema.model import Index, Meta, Schema, SourcePos, View, split_name
from veza_schema.sql.text import RESERVED_KEYWORDS
from veza_schema.types import base_type

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1

# What a name may be guilty of (IMM007, PG001, PG002): flags of :func:`suspicion`.
NOT_SNAKE_CASE, TOO_LONG, RESERVED = 1, 2, 4


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


def identifiers(schema: Schema, flagged: Callable[[str], object]) -> Iterator[Named]:
    """The identifiers whose name ``flagged`` says True, in schema order: tables with their columns,
    keys, constraints and indexes (the identifiers seed rule 7 lists), then :func:`other_identifiers`.

    Why a test first: at 10,000 tables a schema holds ~150,000 identifiers and a rule flags a handful,
    so a path and a position are made only for those.
    """
    columns: dict[str, object] = {}  # column names repeat on every table: each is tested once
    for table in schema.tables.values():
        owner = table.name
        short = split_name(owner)[1]
        if flagged(short):
            yield Named(short, "table", table_path(owner), table.meta.pos, owner)
        for column in table.columns:
            verdict = columns.get(column.name)
            if verdict is None:
                verdict = columns[column.name] = flagged(column.name)
            if verdict:
                yield Named(column.name, "column", column_path(owner, column.name), column.meta.pos, owner)
        pk = table.primary_key
        if pk and flagged(pk.name):
            yield Named(pk.name, "primary key", f"{table_path(owner)}.primary_key", pk.meta.pos, owner)
        for uq in table.uniques.values():
            if flagged(uq.name):
                yield Named(uq.name, "unique constraint", f"{table_path(owner)}.unique.{uq.name}", uq.meta.pos, owner)
        for ck in table.checks.values():
            if flagged(ck.name):
                yield Named(ck.name, "check constraint", f"{table_path(owner)}.checks.{ck.name}", ck.meta.pos, owner)
        for fk in table.foreign_keys.values():
            if flagged(fk.name):
                yield Named(fk.name, "foreign key", f"{table_path(owner)}.foreign_keys.{fk.name}", fk.meta.pos,
                            owner)
        for index in table.indexes.values():
            if flagged(index.name):
                yield Named(index.name, "index", index_path(index), index.meta.pos, owner)
    yield from other_identifiers(schema, flagged)


def other_identifiers(schema: Schema, flagged: Callable[[str], object] | None = None) -> Iterator[Named]:
    """Identifiers outside tables: types, functions, views (and their indexes), triggers (those
    ``flagged`` says True of, when given)."""
    def test(name: str) -> object:
        return flagged is None or flagged(name)

    for enum in schema.enums.values():
        if test(short := split_name(enum.name)[1]):
            yield Named(short, "enum", f"enums.{enum.name}", enum.meta.pos)
    for ctype in schema.composite_types.values():
        if test(short := split_name(ctype.name)[1]):
            yield Named(short, "type", f"types.{ctype.name}", ctype.meta.pos)
        for attr in ctype.attributes:
            if test(attr.name):
                yield Named(attr.name, "type attribute", f"types.{ctype.name}.attributes.{attr.name}", ctype.meta.pos)
    for function in schema.functions.values():
        if test(short := split_name(function.name)[1]):
            yield Named(short, "function", f"functions.{function.name}", function.meta.pos)
    for view in schema.views.values():
        if test(short := split_name(view.name)[1]):
            yield Named(short, "view", f"views.{view.name}", view.meta.pos)
        for index in view.indexes.values():
            if test(index.name):
                yield Named(index.name, "index", index_path(index, on_view=True), index.meta.pos, view.name)
    for table in schema.tables.values():
        for trigger in table.triggers.values():
            if test(trigger.name):
                yield Named(trigger.name, "trigger", f"tables.{table.name}.triggers.{trigger.name}", trigger.meta.pos,
                            table.name)


def suspicion(name: str) -> int:
    """What IMM007, PG001 and PG002 hold against a name: NOT_SNAKE_CASE, TOO_LONG, RESERVED flags (0: nothing)."""
    flags = 0 if SNAKE_CASE.match(name) else NOT_SNAKE_CASE
    # A character is 4 bytes at most: a short name is not encoded.
    if len(name) * 4 > MAX_IDENTIFIER_BYTES and len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        flags |= TOO_LONG
    if name.lower() in RESERVED_KEYWORDS:
        flags |= RESERVED
    return flags


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


def view_indexes(schema: Schema) -> Iterator[tuple[View, Index]]:
    for view in schema.views.values():
        for index in view.indexes.values():
            yield view, index


def pos_of(meta: Meta, key: str | None = None) -> SourcePos | None:
    return meta.at(key) if key else meta.pos


@per_schema
def suspect_identifiers(schema: Schema) -> list[Named]:
    """The identifiers :func:`suspicion` flags, found in one walk for the three rules that read them
    (a 10,000-table schema has ~150,000 identifiers and usually none of these)."""
    return list(identifiers(schema, suspicion))
