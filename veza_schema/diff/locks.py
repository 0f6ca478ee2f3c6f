"""How many lock-table slots a change holds until its transaction commits: an upper bound.

Why: PostgreSQL keeps every lock a transaction takes until it ends, in one shared lock table
of ``max_locks_per_transaction * (max_connections + max_prepared_transactions)`` slots.
Creating or dropping a table locks the table, its TOAST table and index, each index, and
(on drop) its types, constraints and foreign-key triggers; a transaction creating a
thousand tables needs more slots than a small server has and fails with "out of shared
memory" half-way. The planner (:mod:`veza_schema.diff.plan`) cuts transactional files by
these counts; the figures were measured with ``pg_locks`` on PostgreSQL 15 and 18 and
``tests/test_lock_budget.py`` checks that they bound what a file really takes.
"""

from __future__ import annotations

import re

from veza_schema.diff.changes import (
    AddEnumValue,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnIdentity,
    AlterColumnType,
    Change,
    ChangePartitioning,
    CreateExtension,
    CreateIndex,
    CreateTable,
    CreateView,
    DropExtension,
    DropForeignKey,
    DropIndex,
    DropTable,
    DropView,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameIndex,
    RenameTable,
    ReplaceView,
)
from veza_schema.model import Index, Schema, Table, View

# Lock-table slots one transactional file may take. 500 fits a small server's whole lock
# table (max_locks_per_transaction = 64 with 10 connections: 640 slots) with room to spare
# for the application's own sessions; `generate --max-locks-per-file` changes it.
DEFAULT_MAX_LOCKS = 500
# An extension locks each of its member objects (pgcrypto: 40 on PostgreSQL 15); assumed for any.
EXTENSION_SLOTS = 64


def table_lock_slots(table: Table, schema: Schema) -> int:
    """Slots a transaction holds to create or drop ``table``: an upper bound, measured on PostgreSQL.

    The table, its TOAST table and TOAST index; each index (primary key and unique ones
    included); its row and array types, constraints (NOT NULL ones too, since PostgreSQL
    18), column defaults, triggers and
    foreign-key triggers (dropping locks each of them); identity sequences; each referenced
    table and its key; and each partition
    the migration makes (the current period, ``premake`` ahead, the default), which repeats
    the table's own footprint.
    """
    keys = (table.primary_key is not None) + len(table.uniques)
    indexes = len(table.indexes) + keys
    constraints = keys + len(table.checks) + len(table.foreign_keys)
    referenced = {fk.ref_table for fk in table.foreign_keys.values()} - {table.name}
    own = 3 + 2 + indexes + constraints + 4 * len(table.foreign_keys) + 2 * len(referenced) + len(table.triggers)
    own += sum(1 for c in table.columns if c.identity or (c.default or "").startswith("nextval("))  # sequences
    own += sum(1 for c in table.columns if c.default is not None or c.generated is not None)  # pg_attrdef rows
    own += sum(1 for c in table.columns if not c.nullable)  # PostgreSQL 18 keeps NOT NULL in pg_constraint
    if table.partition is not None:
        own *= 1 + table.partition.premake + 1 + table.partition.default_partition
    return own


def lock_slots(change: Change, current: Schema, desired: Schema) -> int:
    """Lock-table slots ``change`` holds in a transaction, an upper bound (see :func:`table_lock_slots`)."""

    def table(name: str) -> int:
        found = desired.tables.get(name) or current.tables.get(name)
        return table_lock_slots(found, desired) if found is not None else 3

    match change:
        case CreateTable(table=t) | DropTable(table=t):
            return table_lock_slots(t, desired)
        case AlterColumnType(table=name) | ChangePartitioning(table=name) | AlterColumnIdentity(table=name):
            return table(name)  # a rewrite takes the table with every index and partition
        case AddPrimaryKey(table=name) | AddUnique(table=name) | CreateIndex(index=Index(table=name)) \
                | DropIndex(index=Index(table=name)) if _partitioned(name, current, desired):
            return table(name)  # built on every partition under the parent's lock
        case AddForeignKey(table=name, foreign_key=fk) | DropForeignKey(table=name, foreign_key=fk):
            return table(name) + table(fk.ref_table) if _partitioned(name, current, desired) else 12
        case RecreateEnum(usages=usages) | AddEnumValue(usages=usages):
            return 2 + sum(table(name) for name in {use.table for use in usages})
        case CreateView(view=view) | DropView(view=view):
            return _view_slots(view, desired, current)
        case ReplaceView(before=before, after=after):
            return max(_view_slots(before, desired, current), _view_slots(after, desired, current))
        case RenameTable() | RenameColumn() | RenameConstraint() | RenameIndex():
            return 6
        case CreateExtension() | DropExtension():
            return EXTENSION_SLOTS
    return 5  # a column, a constraint, a comment, a type, a function, a trigger: the table and a few objects


def _partitioned(table: str, current: Schema, desired: Schema) -> bool:
    for schema in (desired, current):
        if table in schema.tables:
            return schema.tables[table].partition is not None
    return False


def _view_slots(view: View, desired: Schema, current: Schema) -> int:
    """The view, its rule and indexes, and every relation its query reads (named in it)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_$]*", view.query.lower()))
    reads = sum(1 for name in {*desired.tables, *desired.views, *current.tables, *current.views} if name in words)
    return 3 + len(view.indexes) + reads
