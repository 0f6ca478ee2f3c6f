"""What a senior DBA checks that PostgreSQL accepts without a word: constraints that cannot do their job.

Each rule here describes DDL the server applies, then misbehaves on at run time or never
enforces anything: a referential action that can only fail, a CHECK that rejects every row
or none, an index no query can use, the same constraint twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import Rule, rule
from veza_schema.lint.rules.common import column_path, index_path, table_path
from veza_schema.lint.rules.predicates import both_true, can_be_false, can_be_true
from veza_schema.model import Column, ForeignKey, Schema, Table


def _fk_path(table: Table, fk: ForeignKey) -> str:
    return f"{table_path(table.name)}.foreign_keys.{fk.name}"


def _actions(fk: ForeignKey, action: str) -> list[str]:
    return [f"ON {when.upper()} {action.upper()}" for when, value in (("delete", fk.on_delete),
                                                                     ("update", fk.on_update)) if value == action]


@rule(
    "INT009",
    "set-null-on-not-null-column",
    "error",
    "integrity",
    summary="A foreign key ON DELETE (or ON UPDATE) SET NULL whose column is NOT NULL.",
    why="PostgreSQL accepts the constraint, then every delete of a referenced row fails (`null value in column "
    "violates not-null constraint`): the parent can never be deleted while children exist, which is RESTRICT "
    "with a misleading name and a later error.",
    fix="Make the column nullable (`nullable: true`) if orphans are meant to stay, or choose `on_delete: "
    "cascade` or `restrict`.",
)
def check_set_null_not_null(schema: Schema) -> Iterator[Finding]:
    this = check_set_null_not_null
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            actions = _actions(fk, "set null")
            if not actions:
                continue
            for name in fk.columns:
                column = table.column(name)
                if column is not None and not column.nullable:
                    yield this.finding(
                        f"foreign key {fk.name} is {' and '.join(actions)} but {table.name}.{name} is NOT NULL: "
                        f"deleting a referenced {fk.ref_table} row always fails",
                        fk.meta.at("on_delete") if fk.on_delete == "set null" else fk.meta.pos,
                        _fk_path(table, fk), related=(column_path(table.name, name),))


@rule(
    "INT010",
    "set-default-without-default",
    "error",
    "integrity",
    summary="A foreign key ON DELETE (or ON UPDATE) SET DEFAULT whose column has no default.",
    why="SET DEFAULT writes the column's default, which is NULL when none is declared: on a NOT NULL column "
    "every delete of a referenced row fails, on a nullable one the action is a SET NULL in disguise.",
    fix="Declare the default the action should write (`default: ...`, a key that exists in the referenced "
    "table), or say `on_delete: set null`.",
)
def check_set_default_without_default(schema: Schema) -> Iterator[Finding]:
    this = check_set_default_without_default
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            actions = _actions(fk, "set default")
            if not actions:
                continue
            for name in fk.columns:
                column = table.column(name)
                if column is None or column.default is not None or column.identity or column.generated:
                    continue
                effect = "always fails (the column is NOT NULL)" if not column.nullable else "writes NULL"
                yield this.finding(
                    f"foreign key {fk.name} is {' and '.join(actions)} but {table.name}.{name} has no default: "
                    f"deleting a referenced {fk.ref_table} row {effect}",
                    fk.meta.at("on_delete") if fk.on_delete == "set default" else fk.meta.pos,
                    _fk_path(table, fk), related=(column_path(table.name, name),))


def _not_null(table: Table) -> frozenset[str]:
    names = {column.name for column in table.columns if not column.nullable}
    if table.primary_key:
        names |= set(table.primary_key.columns)
    return _one_of_each(frozenset(names))


@lru_cache(maxsize=4096)
def _one_of_each(names: frozenset[str]) -> frozenset[str]:
    """The first equal set seen: the predicates' answers are cached with it, and 10,000 tables with the
    same NOT NULL columns then share one set instead of holding 10,000 copies (~13 MB)."""
    return names


@rule(
    "INT011",
    "check-never-true",
    "error",
    "integrity",
    summary="A CHECK that no value can satisfy (`a > 10 AND a < 5`, `a BETWEEN 10 AND 5`, `s = 'x' AND s = "
    "'y'`, `a IS NULL` on a NOT NULL column).",
    why="PostgreSQL accepts it, and then refuses every INSERT (or every row with a value in that column): "
    "usually a reversed bound or AND written for OR.",
    fix="Fix the condition (swap the bounds, use OR, or IN for a list of values).",
)
def check_never_true(schema: Schema) -> Iterator[Finding]:
    this = check_never_true
    for table in schema.tables.values():
        not_null = _not_null(table)
        for check in table.checks.values():
            if can_be_true(check.expression, not_null) is False:
                yield this.finding(
                    f"check {check.name} on {table.name} can never be true: ({check.expression}) rejects every row "
                    "(rows pass only where a column it compares is NULL)",
                    check.meta.at("expression"), f"{table_path(table.name)}.checks.{check.name}")


@rule(
    "INT012",
    "check-always-true",
    "warning",
    "integrity",
    summary="A CHECK that no row can fail (`a IS NULL OR a IS NOT NULL`, `a >= 0 OR a < 0`, `a IS NOT NULL` "
    "on a NOT NULL column).",
    why="It enforces nothing while readers believe it does, and it costs an evaluation per written row; "
    "usually OR written for AND, or a bound typed the wrong way round.",
    fix="Write the rule the data must follow, or delete the CHECK.",
)
def check_always_true(schema: Schema) -> Iterator[Finding]:
    this = check_always_true
    for table in schema.tables.values():
        not_null = _not_null(table)
        for check in table.checks.values():
            if can_be_false(check.expression, not_null) is False:
                yield this.finding(
                    f"check {check.name} on {table.name} can never fail: ({check.expression}) accepts every row",
                    check.meta.at("expression"), f"{table_path(table.name)}.checks.{check.name}")


def collation(column: Column) -> str | None:
    """The column's collation when the model carries one (None: the type's default)."""
    value = getattr(column, "collation", None)
    return str(value) if value else None


@rule(
    "INT013",
    "fk-collation-mismatch",
    "error",
    "integrity",
    summary="A foreign key column whose collation differs from the referenced column's.",
    why="Equality then depends on which side's collation the comparison takes: a nondeterministic collation "
    "on one side lets `'A'` reference `'a'`, and the FK lookup cannot use the referenced key's index "
    "(every delete of a parent scans the child).",
    fix="Give both columns the same collation (or none).",
)
def check_fk_collation(schema: Schema) -> Iterator[Finding]:
    this = check_fk_collation
    for table in schema.tables.values():
        for fk in table.foreign_keys.values():
            target = schema.tables.get(fk.ref_table)
            if target is None:
                continue
            for local, remote in zip(fk.columns, fk.ref_columns, strict=False):
                mine, theirs = table.column(local), target.column(remote)
                if mine is None or theirs is None or collation(mine) == collation(theirs):
                    continue
                yield this.finding(
                    f"foreign key {fk.name}: {table.name}.{local} has collation {collation(mine) or 'default'}, "
                    f"{fk.ref_table}.{remote} {collation(theirs) or 'default'}",
                    fk.meta.pos, _fk_path(table, fk), related=(column_path(table.name, local),))


@rule(
    "INT014",
    "unique-index-duplicates-constraint",
    "error",
    "integrity",
    summary="A unique index on exactly the columns (same order) of a PRIMARY KEY or UNIQUE constraint.",
    why="The constraint already built that very index: the copy doubles the write cost and disk of the key "
    "and enforces nothing more.",
    fix="Delete the index (keep the constraint: foreign keys can reference it).",
)
def check_unique_index_duplicates_constraint(schema: Schema) -> Iterator[Finding]:
    this = check_unique_index_duplicates_constraint
    for table in schema.tables.values():
        keys: dict[tuple[str, ...], str] = {}
        if table.primary_key:
            keys[table.primary_key.columns] = f"primary key {table.primary_key.name}"
        for unique in table.uniques.values():
            keys.setdefault(unique.columns, f"unique constraint {unique.name}")
        for index in sorted(table.indexes.values(), key=lambda ix: ix.name):
            if not index.unique or index.method != "btree" or index.where or index.include:
                continue
            if not all(e.is_column and e.opclass is None and not e.descending and e.nulls is None
                       for e in index.elements):
                continue
            same = keys.get(index.column_names)
            if same is not None:
                yield this.finding(f"unique index {index.name} on {table.name} duplicates {same}", index.meta.pos,
                                   index_path(index))


def is_constraint_copy(table: Table, columns: tuple[str, ...]) -> bool:
    """Whether ``columns`` are exactly a PK's or UNIQUE constraint's (INT014 reports such a unique index)."""
    return (table.primary_key is not None and table.primary_key.columns == columns) or \
        any(unique.columns == columns for unique in table.uniques.values())


@rule(
    "INT015",
    "partial-index-never-matches",
    "error",
    "integrity",
    summary="A partial index whose WHERE no row can satisfy: it contradicts itself or a CHECK of the table.",
    why="The index stays empty forever (`WHERE price < 0` under `CHECK (price >= 0)`): a query that matches "
    "its predicate returns nothing, so either the predicate or the CHECK is wrong.",
    fix="Fix the predicate (or the CHECK it contradicts).",
)
def check_partial_index_never_matches(schema: Schema) -> Iterator[Finding]:
    this = check_partial_index_never_matches
    for table in schema.tables.values():
        not_null = _not_null(table)
        for index in sorted(table.indexes.values(), key=lambda ix: ix.name):
            if not index.where:
                continue
            if can_be_true(index.where, not_null) is False:
                yield this.finding(f"index {index.name} on {table.name} can never hold a row: WHERE {index.where}",
                                   index.meta.at("where"), index_path(index))
                continue
            for check in sorted(table.checks.values(), key=lambda c: c.name):
                if both_true(index.where, check.expression, not_null) is False:
                    yield this.finding(
                        f"index {index.name} on {table.name} can never hold a row: WHERE {index.where} contradicts "
                        f"check {check.name} ({check.expression})",
                        index.meta.at("where"), index_path(index))
                    break


@rule(
    "INT016",
    "duplicate-foreign-key",
    "warning",
    "integrity",
    summary="Two foreign keys of one table on the same columns to the same referenced columns.",
    why="Every insert, update and parent delete checks the reference twice, and the two constraints can "
    "disagree on ON DELETE: which action wins depends on trigger order.",
    fix="Delete one of the two foreign keys.",
)
def check_duplicate_foreign_keys(schema: Schema) -> Iterator[Finding]:
    this = check_duplicate_foreign_keys
    for table in schema.tables.values():
        seen: dict[tuple[object, ...], str] = {}
        for fk in sorted(table.foreign_keys.values(), key=lambda f: f.name):
            key = (fk.columns, fk.ref_table, fk.ref_columns)
            if key in seen:
                yield this.finding(f"foreign key {fk.name} on {table.name} duplicates {seen[key]}", fk.meta.pos,
                                   _fk_path(table, fk))
            else:
                seen[key] = fk.name


RULES: tuple[Rule, ...] = (
    check_set_null_not_null,
    check_set_default_without_default,
    check_never_true,
    check_always_true,
    check_fk_collation,
    check_unique_index_duplicates_constraint,
    check_partial_index_never_matches,
    check_duplicate_foreign_keys,
)
