"""Integrity rules: the model must describe a database PostgreSQL would accept and keep sane.

The loader already rejects references to missing tables and columns in YAML; these rules
also hold for models from other sources (introspection, history) and add what the loader
does not check: key types, shared namespaces, duplicate and redundant indexes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import Rule, rule
from veza_schema.lint.rules.common import column_path, index_path, table_path, type_base
from veza_schema.model import Index, IndexElement, Schema, SourcePos, Table
from veza_schema.types import is_array


@rule(
    "INT001",
    "fk-target-exists",
    "error",
    "integrity",
    summary="A foreign key's target table and columns exist, and its column counts match.",
    why="PostgreSQL refuses the CREATE TABLE, so the migration fails halfway through a deploy.",
    fix="Point `references` at an existing table(column), or declare the missing table.",
)
def check_fk_target(schema: Schema) -> Iterator[Finding]:
    this = check_fk_target
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            path = f"{table_path(table.name)}.foreign_keys.{fk.name}"
            target = schema.tables.get(fk.ref_table)
            if target is None:
                yield this.finding(
                    f"foreign key {fk.name} references missing table {fk.ref_table}", fk.meta.pos, path
                )
                continue
            missing = [c for c in fk.ref_columns if target.column(c) is None]
            if missing:
                yield this.finding(
                    f"foreign key {fk.name} references missing column(s) "
                    f"{', '.join(f'{fk.ref_table}.{c}' for c in missing)}",
                    fk.meta.pos,
                    path,
                )
            if len(fk.columns) != len(fk.ref_columns):
                yield this.finding(
                    f"foreign key {fk.name} has {len(fk.columns)} column(s) for "
                    f"{len(fk.ref_columns)} referenced column(s)",
                    fk.meta.pos,
                    path,
                )


def unique_keys(table: Table) -> list[frozenset[str]]:
    """Column sets PostgreSQL accepts as FK targets: PK, UNIQUE, non-partial plain unique indexes."""
    keys = [frozenset(table.primary_key.columns)] if table.primary_key else []
    keys += [frozenset(uq.columns) for uq in table.uniques.values()]
    keys += [
        frozenset(e.expression for e in ix.elements)
        for ix in table.indexes.values()
        if ix.unique and ix.where is None and all(e.is_column for e in ix.elements)
    ]
    return keys


@rule(
    "INT002",
    "fk-target-unique",
    "error",
    "integrity",
    summary="A foreign key references exactly the columns of a PRIMARY KEY or UNIQUE constraint.",
    why="PostgreSQL rejects the FK ('there is no unique constraint matching given keys'); the seed's "
    "partitioned messages table hit this.",
    fix="Reference the target's primary key, or add a UNIQUE constraint on the referenced columns.",
)
def check_fk_unique(schema: Schema) -> Iterator[Finding]:
    this = check_fk_unique
    keys: dict[str, list[frozenset[str]]] = {}
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            target = schema.tables.get(fk.ref_table)
            if target is None:
                continue
            if target.name not in keys:
                keys[target.name] = unique_keys(target)
            if frozenset(fk.ref_columns) not in keys[target.name]:
                yield this.finding(
                    f"foreign key {fk.name} references "
                    f"{fk.ref_table}({', '.join(fk.ref_columns)}), "
                    "which is neither its primary key nor UNIQUE",
                    fk.meta.pos,
                    f"{table_path(table.name)}.foreign_keys.{fk.name}",
                )


@rule(
    "INT003",
    "fk-type-match",
    "error",
    "integrity",
    summary="Each foreign key column has the same type as the column it references.",
    why="PostgreSQL refuses incompatible types, and compatible-but-different ones (integer -> bigint) make "
    "every join cast and keep the FK from using the index.",
    fix="Give the referencing column the referenced column's type.",
)
def check_fk_types(schema: Schema) -> Iterator[Finding]:
    this = check_fk_types
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            target = schema.tables.get(fk.ref_table)
            if target is None:
                continue
            for local, remote in zip(fk.columns, fk.ref_columns, strict=False):
                lcol, rcol = table.column(local), target.column(remote)
                if lcol and rcol and type_base(lcol.type) != type_base(rcol.type):
                    yield this.finding(
                        f"{table.name}.{local} is {lcol.type} but references "
                        f"{fk.ref_table}.{remote} "
                        f"({rcol.type})",
                        lcol.meta.at("type"),
                        column_path(table.name, local),
                        fix=f"Declare {table.name}.{local} as {rcol.type}.",
                    )


@rule(
    "INT004",
    "unknown-column",
    "error",
    "integrity",
    summary="Every column named by an index, key, constraint, INCLUDE list or partition key exists.",
    why="PostgreSQL refuses the DDL; catching it in lint points at the YAML line instead of a failed deploy.",
    fix="Fix the column name, or add the column to the table.",
)
def check_unknown_columns(schema: Schema) -> Iterator[Finding]:
    this = check_unknown_columns
    for table in schema.tables.values():
        names = {column.name for column in table.columns}
        for kind, obj, columns in _column_lists(table):
            for column in columns:
                if column not in names:
                    what, pos, path = _column_list_located(table, kind, obj)
                    yield this.finding(f"{what} of {table.name} names unknown column '{column}'", pos, path)


def _column_lists(table: Table) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    """(kind, object, columns) of every list of column names of the table INT004 checks."""
    if table.primary_key:
        yield "primary key", table.primary_key, table.primary_key.columns
    for uq in table.uniques.values():
        yield "unique constraint", uq, uq.columns
    for fk in table.foreign_keys.values():
        yield "foreign key", fk, fk.columns
    for index in table.indexes.values():
        yield "index", index, tuple(e.expression for e in index.elements if e.is_column) + index.include
    if table.partition:
        yield "partition key", table, table.partition.columns


def _column_list_located(table: Table, kind: str, obj: Any) -> tuple[str, SourcePos | None, str]:
    """(what, position, path) of a column list of :func:`_column_lists`, made for a finding only."""
    tp = table_path(table.name)
    if kind == "primary key":
        return kind, obj.meta.pos, f"{tp}.primary_key"
    if kind == "unique constraint":
        return f"{kind} {obj.name}", obj.meta.pos, f"{tp}.unique.{obj.name}"
    if kind == "foreign key":
        return f"{kind} {obj.name}", obj.meta.pos, f"{tp}.foreign_keys.{obj.name}"
    if kind == "index":
        return f"{kind} {obj.name}", obj.meta.pos, index_path(obj)
    return kind, table.meta.at("partition_by"), tp


@rule(
    "INT005",
    "unique-names",
    "error",
    "integrity",
    summary="Relation, type and constraint names are unique across the schema.",
    why="Tables, views, indexes and the indexes behind PRIMARY KEY/UNIQUE share one namespace per schema, "
    "and every table is also a type; a clash fails the migration. CHECK and FK names are kept unique "
    "too, "
    "so an error message names one constraint.",
    fix="Rename one of the two objects (the conventions build names from the table, which avoids clashes).",
)
def check_unique_names(schema: Schema) -> Iterator[Finding]:
    this = check_unique_names
    if _all_distinct(schema):
        return
    relations: dict[str, tuple[str, str, Any]] = {}
    constraints: dict[str, tuple[str, str, Any]] = {}
    for is_relation, name, kind, owner, obj in _named_objects(schema):
        namespace = relations if is_relation else constraints
        first = namespace.get(name)
        if first is None:
            namespace[name] = (kind, owner, obj)
            continue
        what, path = _described(kind, owner, obj)
        first_what = _described(*first)[0]
        first_pos = first[2].meta.pos
        where = f" at {first_pos}" if first_pos else ""
        yield this.finding(f"name '{name}' of {what} is already used by {first_what}{where}", obj.meta.pos, path)


def _all_distinct(schema: Schema) -> bool:
    """No name twice in either namespace: the usual answer, found without walking objects one by one."""
    tables = schema.tables.values()
    relations = [table.name for table in tables]
    relations += [table.primary_key.name for table in tables if table.primary_key]
    relations += [item.name for table in tables for part in (table.uniques, table.indexes) for item in part.values()]
    relations += [view.name for view in schema.views.values()]
    relations += [ix.name for view in schema.views.values() for ix in view.indexes.values()]
    relations += [enum.name for enum in schema.enums.values()]
    relations += [ctype.name for ctype in schema.composite_types.values()]
    constraints = [item.name for table in tables for part in (table.checks, table.foreign_keys)
                   for item in part.values()]
    return len(set(relations)) == len(relations) and len(set(constraints)) == len(constraints)


def _named_objects(schema: Schema) -> Iterator[tuple[bool, str, str, str, Any]]:
    """(relation namespace?, name, kind, owner, object) of every name INT005 compares, in schema order.

    Descriptions and paths are made by :func:`_described`, only for a clash.
    """
    for table in schema.tables.values():
        owner = table.name
        yield True, owner, "table", owner, table
        if table.primary_key:
            yield True, table.primary_key.name, "primary key", owner, table.primary_key
        for uq in table.uniques.values():
            yield True, uq.name, "unique", owner, uq
        for ix in table.indexes.values():
            yield True, ix.name, "index", owner, ix
        for ck in table.checks.values():
            yield False, ck.name, "check", owner, ck
        for fk in table.foreign_keys.values():
            yield False, fk.name, "foreign key", owner, fk
    for view in schema.views.values():
        yield True, view.name, "view", view.name, view
        for ix in view.indexes.values():
            yield True, ix.name, "view index", view.name, ix
    for enum in schema.enums.values():
        yield True, enum.name, "enum", enum.name, enum
    for ctype in schema.composite_types.values():
        yield True, ctype.name, "type", ctype.name, ctype


def _described(kind: str, owner: str, obj: Any) -> tuple[str, str]:
    """What INT005 calls a named object, and its path."""
    tp = table_path(owner)
    if kind == "table":
        return f"table {owner}", tp
    if kind == "primary key":
        return f"primary key of {owner}", f"{tp}.primary_key"
    if kind == "unique":
        return f"unique constraint of {owner}", f"{tp}.unique.{obj.name}"
    if kind == "index":
        return f"index on {owner}", index_path(obj)
    if kind == "check":
        return f"check of {owner}", f"{tp}.checks.{obj.name}"
    if kind == "foreign key":
        return f"foreign key of {owner}", f"{tp}.foreign_keys.{obj.name}"
    if kind == "view":
        return f"view {owner}", f"views.{owner}"
    if kind == "view index":
        return f"index on {owner}", index_path(obj, on_view=True)
    if kind == "enum":
        return f"enum {owner}", f"enums.{owner}"
    return f"type {owner}", f"types.{owner}"


def _normalized(elements: tuple[IndexElement, ...]) -> tuple[tuple[str, str | None, bool], ...]:
    """Index keys compared as a btree sees them: a fully reversed index is the same index."""
    flip = bool(elements) and elements[0].descending
    return tuple((" ".join(e.expression.lower().split()), e.opclass, e.descending != flip) for e in elements)


def _where(index: Index) -> str:
    return " ".join((index.where or "").lower().split())


@rule(
    "INT006",
    "duplicate-index",
    "error",
    "integrity",
    summary="Two indexes of one table with the same keys, method, predicate and INCLUDE list.",
    why="A duplicate index doubles write cost and disk for nothing; it is usually a copy-paste or a rename "
    "that kept the old index.",
    fix="Delete one of the two indexes.",
)
def check_duplicate_indexes(schema: Schema) -> Iterator[Finding]:
    this = check_duplicate_indexes
    for owner, indexes, on_view in _index_sets(schema):
        seen: dict[tuple[object, ...], Index] = {}
        for index in sorted(indexes, key=lambda ix: ix.name):
            key = (
                _normalized(index.elements),
                index.method,
                _where(index),
                tuple(sorted(index.include)),
                index.unique,
            )
            if key in seen:
                yield this.finding(
                    f"index {index.name} on {owner} duplicates {seen[key].name}",
                    index.meta.pos,
                    index_path(index, on_view),
                )
            else:
                seen[key] = index


def _index_sets(schema: Schema) -> Iterator[tuple[str, list[Index], bool]]:
    for table in schema.tables.values():
        if table.indexes:
            yield table.name, list(table.indexes.values()), False
    for view in schema.views.values():
        if view.indexes:
            yield view.name, list(view.indexes.values()), True


@rule(
    "INT007",
    "redundant-index",
    "warning",
    "integrity",
    summary="A btree index that is a prefix of another btree index, or a copy of a PK/UNIQUE constraint's "
    "index.",
    why="PostgreSQL already builds an index for each PRIMARY KEY and UNIQUE constraint, and a btree on "
    "(a, b) "
    "serves lookups on (a); the extra index only costs writes, WAL and cache (the seed had 28 of "
    "these).",
    fix="Delete the redundant index (keep it only if it is UNIQUE on fewer columns, which lint does not "
    "flag).",
)
def check_redundant_indexes(schema: Schema) -> Iterator[Finding]:
    this = check_redundant_indexes
    for table in schema.tables.values():
        btrees = [ix for ix in table.indexes.values() if ix.method == "btree"]
        if not btrees:
            continue
        constraints: list[tuple[str, str, tuple[str, ...]]] = []
        if table.primary_key:
            constraints.append(("primary key", table.primary_key.name, table.primary_key.columns))
        constraints += [("unique constraint", uq.name, uq.columns) for uq in table.uniques.values()]
        shapes = {index.name: (_normalized(index.elements), _where(index)) for index in btrees}
        for index in sorted(btrees, key=lambda ix: ix.name) if len(btrees) > 1 else btrees:
            reason = _redundancy(index, btrees, constraints, shapes)
            if reason:
                yield this.finding(
                    f"index {index.name} on {table.name} is redundant: {reason}",
                    index.meta.pos,
                    index_path(index),
                )


def _redundancy(
    index: Index, btrees: list[Index], constraints: list[tuple[str, str, tuple[str, ...]]],
    shapes: dict[str, tuple[tuple[tuple[str, str | None, bool], ...], str]],
) -> str | None:
    """Why ``index`` is redundant, or None; ``shapes`` holds each btree's normalized keys and predicate."""
    keys, where = shapes[index.name]
    plain = all(e.is_column and e.opclass is None for e in index.elements) and not index.include
    if index.where is None and plain:
        columns = tuple(e.expression for e in index.elements)
        ascending = all(not e.descending and e.nulls is None for e in index.elements)
        for kind, name, constraint_columns in constraints:
            if index.unique and ascending and constraint_columns == columns:
                continue  # a unique copy of the constraint's own index: INT014 reports it (as an error)
            same = frozenset(columns) == frozenset(constraint_columns)
            if same or (not index.unique and constraint_columns[: len(columns)] == columns):
                return f"{'same columns as' if same else 'a prefix of'} {kind} {name}"
    if index.unique:
        return None  # a unique index enforces something; never call it redundant
    for other in btrees:
        if other is index:
            continue
        other_keys, other_where = shapes[other.name]
        if other_where != where or other_keys[: len(keys)] != keys:
            continue
        covered = {e.expression for e in other.elements} | set(other.include)
        if not set(index.include) <= covered:
            continue
        if len(other_keys) > len(keys):
            return f"a prefix of {other.name}"
        if other.unique:
            return f"same keys as unique index {other.name}"
        if set(index.include) < set(other.include):
            return f"same keys as {other.name}, which INCLUDEs more"
        # identical indexes are INT006's
    return None


_ENUM_LITERAL = re.compile(r"^\s*'((?:[^']|'')*)'\s*(?:::\s*[A-Za-z_][A-Za-z0-9_.\"]*\s*)?$")


@rule(
    "INT008",
    "enum-default-value",
    "error",
    "integrity",
    summary="An enum column's default is one of the enum's values.",
    why="PostgreSQL only checks a default when a row uses it: the migration succeeds and the first INSERT "
    "that relies on the default fails ('invalid input value for enum').",
    fix="Use one of the enum's values as the default (spelled exactly, quoted: \"'user'\").",
)
def check_enum_default(schema: Schema) -> Iterator[Finding]:
    this = check_enum_default
    if not schema.enums:
        return
    for table in schema.tables.values():
        for column in table.columns:
            if column.default is None or is_array(column.type):
                continue
            enum = schema.enums.get(type_base(column.type))
            match = _ENUM_LITERAL.match(column.default) if enum else None
            if enum and match and match.group(1).replace("''", "'") not in enum.values:
                yield this.finding(
                    f"{table.name}.{column.name} defaults to {column.default}, which is not a value "
                    f"of enum {enum.name} ({', '.join(enum.values)})",
                    column.meta.at("default"),
                    column_path(table.name, column.name),
                )


RULES: tuple[Rule, ...] = (
    check_fk_target,
    check_fk_unique,
    check_fk_types,
    check_unknown_columns,
    check_unique_names,
    check_duplicate_indexes,
    check_redundant_indexes,
    check_enum_default,
)
