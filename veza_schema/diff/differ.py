"""Model vs model -> changes: pure set arithmetic keyed by name, no SQL, no I/O.

One job: comparing two models; its length is one comparison per kind of object the model holds.

Why textual comparison is enough here: ``generate`` compares two models that both come
from YAML (the snapshot is the YAML of the last migration), so an expression only changes
when its text does; whitespace is normalized so reformatting a query writes nothing.

Renames are never guessed: only ``renamed_from`` in the desired YAML makes a rename. A
declared rename is applied to the current model first (names, column lists, references,
expressions), so what follows compares like with like; a constraint or index whose name
embeds the renamed name and is otherwise unchanged is renamed along with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TypeVar

from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddEnumValue,
    AddExclusion,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnCollation,
    AlterColumnDefault,
    AlterColumnGenerated,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnStatistics,
    AlterColumnType,
    AlterCompositeType,
    AlterDefaultPrivileges,
    AlterExtension,
    AlterGrants,
    AlterRole,
    AlterRowSecurity,
    AlterSequence,
    AlterTablePersistence,
    Change,
    ChangePartitioning,
    ColumnUse,
    CommentKind,
    CommentTarget,
    CreateCompositeType,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreateNamespace,
    CreatePartitionHelper,
    CreatePolicy,
    CreateRole,
    CreateSequence,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropCompositeType,
    DropEnum,
    DropExclusion,
    DropExtension,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropNamespace,
    DropPartitionHelper,
    DropPolicy,
    DropPrimaryKey,
    DropRole,
    DropSequence,
    DropTable,
    DropTrigger,
    DropUnique,
    DropView,
    GrantTarget,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameFunction,
    RenameIndex,
    RenameTable,
    ReorderColumns,
    ReplaceFunction,
    ReplaceView,
    SetComment,
    SetSequenceOwner,
    describe,
    extends,
)
from veza_schema.model import (
    CheckConstraint,
    Column,
    ExclusionConstraint,
    ForeignKey,
    Function,
    Index,
    Meta,
    Policy,
    PrimaryKey,
    Schema,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)
from veza_schema.sql.parse import view_output_columns
from veza_schema.sql.render import index_key, order_tables
from veza_schema.sql.text import ident, needs_quotes

T = TypeVar("T")


def normalize_sql(text: str | None) -> str | None:
    """Whitespace-insensitive form of a SQL expression taken from YAML."""
    return None if text is None else " ".join(text.split())


# -- canonical forms (expressions normalized) for equality --------------------------------
def _canon_column(c: Column) -> Column:
    return replace(c, default=normalize_sql(c.default), generated=normalize_sql(c.generated))


def _canon_check(c: CheckConstraint) -> CheckConstraint:
    return replace(c, expression=normalize_sql(c.expression) or "")


def _canon_index(i: Index) -> Index:
    elements = tuple(replace(e, expression=normalize_sql(e.expression) or "") for e in i.elements)
    return replace(i, elements=elements, where=normalize_sql(i.where))


def _canon_trigger(t: Trigger) -> Trigger:
    return replace(t, when=normalize_sql(t.when))


def _canon_function(f: Function) -> Function:
    return replace(f, body=normalize_sql(f.body) or "", comment=None, grants={})


def _canon_view(v: View) -> View:
    return replace(v, query=normalize_sql(v.query) or "", comment=None, indexes={}, triggers={}, grants={})


def _canon_policy(p: Policy) -> Policy:
    return replace(p, using=normalize_sql(p.using), with_check=normalize_sql(p.with_check))


def _canon_exclusion(e: ExclusionConstraint) -> ExclusionConstraint:
    return replace(e, elements=tuple(normalize_sql(x) or "" for x in e.elements), where=normalize_sql(e.where))


# -- renames ---------------------------------------------------------------------------------
def _word(old: str) -> re.Pattern[str]:
    """``old`` as an expression can name it: quoted, and bare too when a bare word means the same name
    (``Rank`` bare is the column ``rank``)."""
    quoted = re.escape('"' + old.replace('"', '""') + '"')
    if needs_quotes(old):
        return re.compile(r'(?<![\w$.])' + quoted)
    return re.compile(r'(?<![\w$.])' + quoted + r'|(?<![\w$."])' + re.escape(old) + r'(?![\w$"])')


def _sub(text: str | None, old: str, new: str) -> str | None:
    """Rename a column in an expression, writing the new name as SQL needs it (quoted when it must be)."""
    return None if text is None else _word(old).sub(lambda _: ident(new), text)


def _rename_columns_in_table(table: Table, old: str, new: str) -> Table:
    def cols(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new if n == old else n for n in names)

    columns = tuple(replace(c, name=new) if c.name == old else c for c in table.columns)
    columns = tuple(replace(c, default=_sub(c.default, old, new), generated=_sub(c.generated, old, new))
                    for c in columns)
    pk = replace(table.primary_key, columns=cols(table.primary_key.columns)) if table.primary_key else None
    indexes = {
        n: replace(i, elements=tuple(replace(e, expression=(new if e.expression == old else e.expression)
                                             if e.is_column else _sub(e.expression, old, new) or "")
                                     for e in i.elements),
                   include=cols(i.include), where=_sub(i.where, old, new))
        for n, i in table.indexes.items()
    }
    return replace(
        table, columns=columns, primary_key=pk,
        uniques={n: replace(u, columns=cols(u.columns)) for n, u in table.uniques.items()},
        checks={n: replace(c, expression=_sub(c.expression, old, new) or "") for n, c in table.checks.items()},
        foreign_keys={n: replace(f, columns=cols(f.columns)) for n, f in table.foreign_keys.items()},
        indexes=indexes,
        triggers={n: replace(t, when=_sub(t.when, old, new)) for n, t in table.triggers.items()},
        partition=replace(table.partition, columns=cols(table.partition.columns)) if table.partition else None,
    )


def _rename_table(schema: Schema, old: str, new: str) -> Schema:
    tables: dict[str, Table] = {}
    for name, table in schema.tables.items():
        fks = {n: replace(f, ref_table=new) if f.ref_table == old else f for n, f in table.foreign_keys.items()}
        table = replace(table, foreign_keys=fks)
        if name == old:
            table = replace(table, name=new,
                            indexes={n: replace(i, table=new) for n, i in table.indexes.items()},
                            triggers={n: replace(t, table=new) for n, t in table.triggers.items()})
            name = new
        tables[name] = table
    return replace(schema, tables=tables)


def _rename_column(schema: Schema, table_name: str, old: str, new: str) -> Schema:
    tables: dict[str, Table] = {}
    for name, table in schema.tables.items():
        if name == table_name:
            table = _rename_columns_in_table(table, old, new)
        fks = {n: replace(f, ref_columns=tuple(new if c == old else c for c in f.ref_columns))
               if f.ref_table == table_name else f for n, f in table.foreign_keys.items()}
        tables[name] = replace(table, foreign_keys=fks)
    return replace(schema, tables=tables)


Rename = RenameTable | RenameColumn | RenameFunction


def declared_renames(current: Schema, desired: Schema) -> list[Rename]:
    """Renames declared with ``renamed_from`` whose old name exists and new name does not."""
    renames: list[Rename] = []
    for name in sorted(desired.functions):
        function = desired.functions[name]
        old_function = current.functions.get(function.meta.renamed_from or "")
        if old_function is not None and old_function.name not in desired.functions \
                and name not in current.functions and old_function.arguments == function.arguments:
            renames.append(RenameFunction(old_function.name, name, function.arguments, meta=function.meta))
    for name in sorted(desired.tables):
        table = desired.tables[name]
        old_table = table.meta.renamed_from
        source = name
        if old_table and old_table in current.tables and old_table not in desired.tables \
                and name not in current.tables:
            renames.append(RenameTable(old_table, name, meta=table.meta))
            source = old_table
        before = current.tables.get(source)
        if before is None:
            continue
        for column in table.columns:
            old = column.meta.renamed_from
            if old and before.column(old) is not None and table.column(old) is None \
                    and before.column(column.name) is None:
                renames.append(RenameColumn(name, old, column.name, meta=column.meta))
    return renames


def _rename_function(schema: Schema, old: str, new: str) -> Schema:
    """The function renamed; triggers follow it (PostgreSQL keeps them bound to the function itself)."""
    functions = {new if n == old else n: replace(f, name=new) if n == old else f for n, f in schema.functions.items()}
    tables = {n: replace(t, triggers={k: replace(g, function=new) if g.function == old else g
                                      for k, g in t.triggers.items()})
              for n, t in schema.tables.items()}
    return replace(schema, functions=functions, tables=tables)


def apply_renames(schema: Schema, renames: Iterable[Rename]) -> Schema:
    """``schema`` as it is after the renames (pure)."""
    for rename in renames:
        if isinstance(rename, RenameFunction):
            schema = _rename_function(schema, rename.old, rename.new)
        elif isinstance(rename, RenameTable):
            schema = _rename_table(schema, rename.old, rename.new)
        else:
            schema = _rename_column(schema, rename.table, rename.old, rename.new)
    return schema


# -- the diff ----------------------------------------------------------------------------------
def diff_schemas(current: Schema, desired: Schema) -> list[Change]:
    """Every change that turns ``current`` into ``desired``, sorted by kind then name.

    Use :func:`veza_schema.diff.order.order_changes` for the order to run them in.

    Example:
        >>> from veza_schema.model import Column, Table
        >>> t = Table("t", (Column("id", "uuid"),))
        >>> diff_schemas(Schema(), Schema(tables={"t": t}))
        [CreateTable(table=Table(name='t', ...))]
    """
    renames = declared_renames(current, desired)
    renamed = apply_renames(current, renames)
    changes: list[Change] = list(renames)
    changes += _roles(renamed, desired)
    changes += _namespaces(renamed, desired)
    changes += _default_privileges(renamed, desired)
    changes += _sequences(renamed, desired)
    changes += _extensions(renamed, desired)
    changes += _enums(current, renamed, desired)
    changes += _composites(renamed, desired)
    changes += _functions(renamed, desired)
    changes += _tables(renamed, desired)
    changes += _views(renamed, desired)
    changes = _recreate_dependent_views(changes, renamed, desired)
    changes = _derived_renames(changes, renames)
    changes = _declared_index_renames(changes)
    return sorted(changes, key=sort_key)


def sort_key(change: Change) -> tuple[str, str]:
    """Kind, then the describing text: a total, deterministic order."""
    return type(change).__name__, describe(change)


def _keyed(current: Mapping[str, T], desired: Mapping[str, T]) -> tuple[list[str], list[str], list[str]]:
    """(added, dropped, common) names, each sorted."""
    return (sorted(set(desired) - set(current)), sorted(set(current) - set(desired)),
            sorted(set(current) & set(desired)))


def _extensions(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.extensions, desired.extensions)
    changes: list[Change] = [CreateExtension(desired.extensions[n], meta=desired.extensions[n].meta)
                             for n in added]
    changes += [DropExtension(current.extensions[n]) for n in dropped]
    for name in common:
        before, after = current.extensions[name], desired.extensions[name]
        if before != after:
            changes.append(AlterExtension(before, after, meta=after.meta))
    return changes


def _roles(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.roles, desired.roles)
    changes: list[Change] = [CreateRole(desired.roles[n], meta=desired.roles[n].meta) for n in added]
    changes += [DropRole(current.roles[n]) for n in dropped]
    changes += [AlterRole(current.roles[n], desired.roles[n], meta=desired.roles[n].meta) for n in common
                if current.roles[n] != desired.roles[n]]
    return changes


def _grants(kind: str, name: str, before: Mapping[str, tuple[str, ...]], after: Mapping[str, tuple[str, ...]],
            meta: Meta, arguments: str | None = None) -> list[Change]:
    if dict(before) == dict(after):
        return []
    return [AlterGrants(GrantTarget(kind, name, arguments), dict(before), dict(after),  # type: ignore[arg-type]
                        meta=meta)]


def _namespaces(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.namespaces, desired.namespaces)
    changes: list[Change] = [CreateNamespace(desired.namespaces[n], meta=desired.namespaces[n].meta) for n in added]
    changes += [DropNamespace(current.namespaces[n]) for n in dropped]
    for name in common:
        before, after = current.namespaces[name], desired.namespaces[name]
        changes += _comment(CommentTarget("schema", name), before.comment, after.comment, after.meta)
        changes += _grants("schema", name, before.grants, after.grants, after.meta)
    return changes


def _default_privileges(current: Schema, desired: Schema) -> list[Change]:
    changes: list[Change] = []
    for key in sorted(set(current.default_privileges) | set(desired.default_privileges)):
        before, after = current.default_privileges.get(key), desired.default_privileges.get(key)
        if before is not None and after is not None and dict(before.grants) == dict(after.grants):
            continue
        entry = after or before
        assert entry is not None
        changes.append(AlterDefaultPrivileges(entry.for_role, entry.schema, entry.on,
                                              dict(before.grants) if before else None,
                                              dict(after.grants) if after else None,
                                              meta=after.meta if after else entry.meta))
    return changes


def _sequences(current: Schema, desired: Schema) -> list[Change]:
    """A sequence's owning column is its own change: attached after the column exists, released before a drop."""
    added, dropped, common = _keyed(current.sequences, desired.sequences)
    changes: list[Change] = []
    for name in added:
        sequence = desired.sequences[name]
        changes.append(CreateSequence(sequence, meta=sequence.meta))
        if sequence.owned_by:
            changes.append(SetSequenceOwner(name, None, sequence.owned_by, meta=sequence.meta))
    for name in dropped:
        sequence = current.sequences[name]
        changes.append(DropSequence(sequence))
        if sequence.owned_by:
            changes.append(SetSequenceOwner(name, sequence.owned_by, None))
    for name in common:
        before, after = current.sequences[name], desired.sequences[name]
        options = ("type", "start", "increment", "min_value", "max_value", "cache", "cycle")
        if any(getattr(before, o) != getattr(after, o) for o in options):
            changes.append(AlterSequence(before, after, meta=after.meta))
        if before.owned_by != after.owned_by:
            changes.append(SetSequenceOwner(name, before.owned_by, after.owned_by, meta=after.meta))
        changes += _comment(CommentTarget("sequence", name), before.comment, after.comment, after.meta)
        changes += _grants("sequence", name, before.grants, after.grants, after.meta)
    return changes


def _enum_usages(schema: Schema, enum: str) -> tuple[ColumnUse, ...]:
    return tuple(sorted(ColumnUse(t.name, c.name, c.type, c.default) for t in schema.tables.values()
                        for c in t.columns if c.type in (enum, enum + "[]")))


def _enums(original: Schema, current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.enums, desired.enums)
    changes: list[Change] = [CreateEnum(desired.enums[n], meta=desired.enums[n].meta) for n in added]
    changes += [DropEnum(current.enums[n]) for n in dropped]
    for name in common:
        before, after = current.enums[name], desired.enums[name]
        if before.values != after.values:
            if extends(after.values, before.values):
                # Undoing runs before the renames are undone: the original names apply.
                changes.append(AddEnumValue(before, after, _enum_usages(original, name), meta=after.meta))
            else:
                changes.append(RecreateEnum(before, after, _enum_usages(desired, name), meta=after.meta))
        changes += _comment(CommentTarget("type", name), before.comment, after.comment, after.meta)
    return changes


def _comment(target: CommentTarget, before: str | None, after: str | None, meta: Meta) -> list[Change]:
    return [] if before == after else [SetComment(target, before, after, meta=meta)]


def _composites(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.composite_types, desired.composite_types)
    changes: list[Change] = [CreateCompositeType(desired.composite_types[n], meta=desired.composite_types[n].meta)
                             for n in added]
    changes += [DropCompositeType(current.composite_types[n]) for n in dropped]
    for name in common:
        before, after = current.composite_types[name], desired.composite_types[name]
        if before.attributes != after.attributes:
            changes.append(AlterCompositeType(before, after, meta=after.meta))
        changes += _comment(CommentTarget("type", name), before.comment, after.comment, after.meta)
    return changes


def _functions(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.functions, desired.functions)
    changes: list[Change] = [CreateFunction(desired.functions[n], meta=desired.functions[n].meta) for n in added]
    changes += [DropFunction(current.functions[n]) for n in dropped]
    for name in common:
        before, after = current.functions[name], desired.functions[name]
        if _canon_function(before) != _canon_function(after):
            if (before.arguments, before.returns) == (after.arguments, after.returns):
                changes.append(ReplaceFunction(before, after, meta=after.meta))
            else:
                changes += [DropFunction(before, meta=after.meta), CreateFunction(after, meta=after.meta)]
        changes += _comment(CommentTarget("function", after.name, arguments=after.arguments), before.comment,
                            after.comment, after.meta)
        if (before.arguments, before.returns) == (after.arguments, after.returns):
            # A recreated function (new signature) carries its grants; a replaced one keeps the old ones.
            changes += _grants("function", after.name, before.grants, after.grants, after.meta, after.arguments)
    had = any(t.partition for t in current.tables.values())
    needs = any(t.partition for t in desired.tables.values())
    if needs and not had:
        changes.append(CreatePartitionHelper())
    elif had and not needs:
        changes.append(DropPartitionHelper())
    return changes


def _tables(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.tables, desired.tables)
    changes: list[Change] = []
    new_order = order_tables({n: desired.tables[n] for n in added})
    new_deferred = {fk.name for fk in new_order.deferred_fks}
    for name in added:
        table = desired.tables[name]
        inline = {n: fk for n, fk in table.foreign_keys.items() if n not in new_deferred}
        changes.append(CreateTable(replace(table, foreign_keys=inline), meta=table.meta))
        changes += [AddForeignKey(name, fk, meta=fk.meta) for n, fk in sorted(table.foreign_keys.items())
                    if n in new_deferred]
        changes += [CreateTrigger(t, meta=t.meta) for _, t in sorted(table.triggers.items())]
        changes += [CreatePolicy(p, meta=p.meta) for _, p in sorted(table.policies.items())]
    old_order = order_tables({n: current.tables[n] for n in dropped})
    old_deferred = {fk.name for fk in old_order.deferred_fks}
    for name in dropped:
        table = current.tables[name]
        inline = {n: fk for n, fk in table.foreign_keys.items() if n not in old_deferred}
        changes.append(DropTable(replace(table, foreign_keys=inline)))
        changes += [DropForeignKey(name, fk) for n, fk in sorted(table.foreign_keys.items()) if n in old_deferred]
        changes += [DropTrigger(t) for _, t in sorted(table.triggers.items())]
        changes += [DropPolicy(p) for _, p in sorted(table.policies.items())]
    for name in common:
        changes += _table(current.tables[name], desired.tables[name])
    return changes


def _table(before: Table, after: Table) -> list[Change]:
    name = after.name
    changes: list[Change] = []
    old_columns = {c.name: c for c in before.columns}
    new_columns = {c.name: c for c in after.columns}
    for position, column in enumerate(after.columns):
        if column.name not in old_columns:
            changes.append(AddColumn(name, column, meta=column.meta, position=position))
    # PostgreSQL keeps the columns that stay in their order and appends the new ones.
    reached = tuple(c.name for c in before.columns if c.name in new_columns) \
        + tuple(c.name for c in after.columns if c.name not in old_columns)
    if reached != after.column_names:
        changes.append(ReorderColumns(name, reached, after.column_names, meta=after.meta))
    for column in before.columns:
        if column.name not in new_columns:
            changes.append(DropColumn(name, column, meta=after.meta))
    for column_name in sorted(set(old_columns) & set(new_columns)):
        changes += _column(name, old_columns[column_name], new_columns[column_name])
    changes += _pk(name, before.primary_key, after.primary_key, after.meta)
    changes += _named(before.uniques, after.uniques, lambda u: u,
                      lambda u: AddUnique(name, u, meta=u.meta), lambda u: DropUnique(name, u, meta=after.meta))
    changes += _named(before.checks, after.checks, _canon_check,
                      lambda c: AddCheck(name, c, meta=c.meta), lambda c: DropCheck(name, c, meta=after.meta))
    changes += _named(before.foreign_keys, after.foreign_keys, lambda f: f,
                      lambda f: AddForeignKey(name, f, meta=f.meta),
                      lambda f: DropForeignKey(name, f, meta=after.meta))
    changes += _named(before.indexes, after.indexes, _canon_index,
                      lambda i: CreateIndex(i, meta=i.meta), lambda i: DropIndex(i, meta=after.meta))
    changes += _named(before.triggers, after.triggers, _canon_trigger,
                      lambda t: CreateTrigger(t, meta=t.meta), lambda t: DropTrigger(t, meta=after.meta))
    changes += _named(before.exclusions, after.exclusions, _canon_exclusion,
                      lambda e: AddExclusion(name, e, meta=e.meta), lambda e: DropExclusion(name, e, meta=after.meta))
    changes += _named(before.policies, after.policies, _canon_policy,
                      lambda p: CreatePolicy(p, meta=p.meta), lambda p: DropPolicy(p, meta=after.meta))
    if before.partition != after.partition or _premake(before) != _premake(after):
        changes.append(ChangePartitioning(name, before.partition, after.partition, meta=after.meta))
    if before.unlogged != after.unlogged:
        changes.append(AlterTablePersistence(name, before.unlogged, after.unlogged, meta=after.meta))
    rls_before = (before.row_security, before.force_row_security)
    rls_after = (after.row_security, after.force_row_security)
    if rls_before != rls_after:
        changes.append(AlterRowSecurity(name, rls_before, rls_after, meta=after.meta))
    changes += _comment(CommentTarget("table", name), before.comment, after.comment, after.meta)
    changes += _grants("table", name, before.grants, after.grants, after.meta)
    return changes


def _column(table: str, before: Column, after: Column) -> list[Change]:
    meta = after.meta
    changes: list[Change] = []
    if before.type != after.type:
        changes.append(AlterColumnType(table, before, after, meta=meta))
    if normalize_sql(before.default) != normalize_sql(after.default):
        changes.append(AlterColumnDefault(table, before, after, meta=meta))
    if before.nullable != after.nullable:
        changes.append(AlterColumnNullability(table, before, after, meta=meta))
    if before.identity != after.identity:
        changes.append(AlterColumnIdentity(table, before, after, meta=meta))
    if normalize_sql(before.generated) != normalize_sql(after.generated):
        changes.append(AlterColumnGenerated(table, before, after, meta=meta))
    if before.collation != after.collation:
        changes.append(AlterColumnCollation(table, before, after, meta=meta))
    if before.statistics != after.statistics:
        changes.append(AlterColumnStatistics(table, before, after, meta=meta))
    changes += _comment(CommentTarget("column", table, column=after.name), before.comment, after.comment, meta)
    return changes


def _pk(table: str, before: PrimaryKey | None, after: PrimaryKey | None, meta: Meta) -> list[Change]:
    if before == after:
        return []
    changes: list[Change] = []
    if before is not None:
        changes.append(DropPrimaryKey(table, before, meta=meta))
    if after is not None:
        changes.append(AddPrimaryKey(table, after, meta=after.meta))
    return changes


def _premake(table: Table) -> int | None:
    """premake is not compared as a catalog fact, but a change of it is still a change to plan and review."""
    return table.partition.premake if table.partition else None


def _named(before: Mapping[str, T], after: Mapping[str, T], canon: Callable[[T], T],
           add: Callable[[T], Change], drop: Callable[[T], Change]) -> list[Change]:
    """Set arithmetic on named objects; a modified one is a drop plus an add."""
    added, dropped, common = _keyed(before, after)
    changes = [add(after[n]) for n in added] + [drop(before[n]) for n in dropped]
    for name in common:
        if canon(before[name]) != canon(after[name]):
            changes += [drop(before[name]), add(after[name])]
    return changes


def _views(current: Schema, desired: Schema) -> list[Change]:
    added, dropped, common = _keyed(current.views, desired.views)
    changes: list[Change] = [CreateView(desired.views[n], meta=desired.views[n].meta) for n in added]
    changes += [DropView(current.views[n]) for n in dropped]
    for name in common:
        before, after = current.views[name], desired.views[name]
        if _canon_view(before) != _canon_view(after):
            if before.materialized or after.materialized:
                changes += [DropView(before, meta=after.meta), CreateView(after, meta=after.meta)]
                continue  # the new view carries its comment and indexes
            changes.append(ReplaceView(before, after, meta=after.meta))
        changes += _view_indexes(before, after)
        changes += _view_triggers(before, after)
        kind: CommentKind = "materialized view" if after.materialized else "view"
        changes += _comment(CommentTarget(kind, name), before.comment, after.comment, after.meta)
        changes += _grants("view", name, before.grants, after.grants, after.meta)
    return changes


def _view_triggers(before: View, after: View) -> list[Change]:
    return _named(before.triggers, after.triggers, _canon_trigger,
                  lambda t: CreateTrigger(t, meta=t.meta), lambda t: DropTrigger(t, meta=after.meta))


def _view_indexes(before: View, after: View) -> list[Change]:
    return _named(before.indexes, after.indexes, _canon_index,
                  lambda i: CreateIndex(i, meta=i.meta), lambda i: DropIndex(i, meta=after.meta))


def view_replaceable(before: View, after: View) -> bool:
    """Whether CREATE OR REPLACE VIEW takes ``before`` to ``after`` *and back*: the same output columns.

    PostgreSQL replaces a view only when the new query keeps every column (adding some at the end
    is allowed one way, but the rollback would drop them, which it refuses). Introspected views
    know their columns and types; YAML ones are named from the query (PostgreSQL's own naming);
    an unknown list (``*``) or a materialized view means drop and create.
    """
    if before.materialized or after.materialized:
        return False
    if before.columns and after.columns:
        return after.columns == before.columns
    old, new = view_output_columns(before.query), view_output_columns(after.query)
    return old is not None and new == old


def _recreate_dependent_views(changes: list[Change], current: Schema, desired: Schema) -> list[Change]:
    """PostgreSQL refuses to drop or retype a column a view reads: such views are dropped and recreated.

    A view reads a column when its current query names it (or selects ``*``) and it reads the
    table (the desired ``depends_on``; the snapshot does not keep it). Views reading such views
    are recreated too.
    """
    touched = {(c.table, c.column.name if isinstance(c, DropColumn) else c.before.name) for c in changes
               if isinstance(c, (DropColumn, AlterColumnType))}
    # CREATE OR REPLACE VIEW cannot rename, retype or drop columns (nor undo an added one): recreate.
    rebuilt = {c.after.name for c in changes if isinstance(c, ReplaceView) and not view_replaceable(c.before, c.after)}
    if not touched and not rebuilt:
        return changes
    common = set(current.views) & set(desired.views)

    def reads(name: str, table: str, column: str) -> bool:
        query = current.views[name].query
        depends = desired.views[name].depends_on or tuple(t for t in current.tables if _word(t).search(query))
        return table in depends and ("*" in query or _word(column).search(query) is not None)

    affected = {name for name in common if any(reads(name, table, column) for table, column in touched)}
    affected |= rebuilt
    grew = bool(affected)
    while grew:
        grew = False
        for name in sorted(common - affected):
            if set(desired.views[name].depends_on) & affected:
                affected.add(name)
                grew = True
    if not affected:
        return changes

    def about_affected(change: Change) -> bool:
        if isinstance(change, ReplaceView):
            return change.after.name in affected
        if isinstance(change, (CreateView, DropView)):
            return change.view.name in affected
        if isinstance(change, (CreateIndex, DropIndex)):
            return change.index.table in affected
        if isinstance(change, (CreateTrigger, DropTrigger)):
            return change.trigger.table in affected
        if isinstance(change, AlterGrants):
            return change.target.kind == "view" and change.target.name in affected
        if isinstance(change, SetComment):
            return change.target.kind in ("view", "materialized view") and change.target.name in affected
        return False

    kept = [c for c in changes if not about_affected(c)]
    for name in sorted(affected):
        before, after = current.views[name], desired.views[name]
        kept += [DropView(before, meta=after.meta), CreateView(after, meta=after.meta)]
    return kept


# -- constraints and indexes following a declared rename --------------------------------------
def _derived_renames(changes: list[Change], renames: list[Rename]) -> list[Change]:
    """A drop + add pair differing only by a name that embeds a renamed name becomes a rename."""
    tokens = [(r.old, r.new, r.new if isinstance(r, RenameTable) else r.table) for r in renames
              if isinstance(r, RenameTable | RenameColumn)]
    if not tokens:
        return changes

    def follows(old_name: str, new_name: str, table: str) -> bool:
        return any(t == table and old in old_name and old_name.replace(old, new) == new_name
                   for old, new, t in tokens)

    result = list(changes)
    drops = [c for c in changes if isinstance(c, (DropIndex, DropUnique, DropCheck, DropForeignKey,
                                                  DropPrimaryKey))]
    for drop in drops:
        for add in list(result):
            pair = _renamed_pair(drop, add, follows)
            if pair is not None:
                result.remove(drop)
                result.remove(add)
                result.append(pair)
                break
    return result


def _declared_index_renames(changes: list[Change]) -> list[Change]:
    """An index declared ``renamed_from`` its old name, otherwise identical: ALTER INDEX ... RENAME, not a rebuild."""
    drops = {c.index.name: c for c in changes if isinstance(c, DropIndex)}
    result = list(changes)
    for add in changes:
        if not isinstance(add, CreateIndex) or add.index.meta.renamed_from is None:
            continue
        drop = drops.get(add.index.meta.renamed_from)
        if drop is not None and drop.index.table == add.index.table \
                and _canon_index(replace(drop.index, name=add.index.name)) == _canon_index(add.index):
            result.remove(drop)
            result.remove(add)
            result.append(RenameIndex(drop.index.name, add.index.name, meta=add.meta))
    return result


def _renamed_pair(drop: Change, add: Change, follows: Callable[[str, str, str], bool]) -> Change | None:
    old: Index | UniqueConstraint | CheckConstraint | ForeignKey | PrimaryKey
    new: Index | UniqueConstraint | CheckConstraint | ForeignKey | PrimaryKey
    if isinstance(drop, DropIndex) and isinstance(add, CreateIndex):
        old, new, table = drop.index, add.index, add.index.table
        if follows(old.name, new.name, table) and _canon_index(replace(old, name=new.name)) == _canon_index(new):
            return RenameIndex(index_key(old), index_key(new), meta=add.meta)
        return None
    pairs: tuple[tuple[type, type, str], ...] = (
        (DropUnique, AddUnique, "unique"), (DropCheck, AddCheck, "check"),
        (DropForeignKey, AddForeignKey, "foreign_key"), (DropPrimaryKey, AddPrimaryKey, "primary_key"))
    for drop_kind, add_kind, attr in pairs:
        if isinstance(drop, drop_kind) and isinstance(add, add_kind):
            table = getattr(add, "table")  # noqa: B009 - every constraint change has one
            if getattr(drop, "table") != table:  # noqa: B009
                return None
            old, new = getattr(drop, attr), getattr(add, attr)
            same = replace(old, name=new.name)
            if isinstance(old, CheckConstraint) and isinstance(same, CheckConstraint) \
                    and isinstance(new, CheckConstraint):
                equal = _canon_check(same) == _canon_check(new)
            else:
                equal = same == new
            if equal and follows(old.name, new.name, table):
                return RenameConstraint(table, old.name, new.name, meta=add.meta)
    return None

