"""Ordered changes -> a plan: SQL steps with their undo, sorted into migration files.

One job: the online-safe SQL of each change; its length is one branch per change kind.

Why a plan is data: each step records the change that caused it, the file it belongs to,
its SQL and the SQL that undoes it, so the header, the up file and the down file all come
from one list, and a test can check them without a database.

Why several files: PostgreSQL forbids some statements in a transaction (CREATE/DROP INDEX
CONCURRENTLY) and will not let a transaction use an enum value it added. One change set
therefore becomes up to four files with consecutive versions, in this running order:

1. ``drop_indexes`` (``-- no-transaction``): DROP INDEX CONCURRENTLY IF EXISTS on tables that stay;
2. ``enum_values`` (transactional): ALTER TYPE ... ADD VALUE IF NOT EXISTS;
3. the main file (transactional): everything else, FK/CHECK added NOT VALID on existing tables;
4. ``concurrent`` (``-- no-transaction``): CREATE INDEX CONCURRENTLY, UNIQUE/PRIMARY KEY USING
   INDEX, VALIDATE CONSTRAINT, SET NOT NULL through a validated CHECK.

A transactional file also fits the server's lock table: every relation a transaction
creates, alters or drops holds a lock-table slot until it commits (with its TOAST table,
indexes, constraints and triggers), and the table has ``max_locks_per_transaction *
(max_connections + max_prepared_transactions)`` slots for the whole server. So a file is
cut into parts of at most ``max_locks`` slots (:data:`DEFAULT_MAX_LOCKS`), in running order,
which is dependency order: each part only needs what earlier parts committed. The parts are
still one change: ``rollback`` undoes them together.

Rolling back runs the down files newest first, which is exactly the reverse of the up
order, and each down file lists the undo of its up file's steps in reverse. Every
statement of a no-transaction file is idempotent, so after a failure ``resolve
--rolled-back`` followed by ``apply`` re-runs the file safely.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

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
    rfc,
)
from veza_schema.diff.locks import DEFAULT_MAX_LOCKS, lock_slots
from veza_schema.diff.typechange import rewrites_rows
from veza_schema.errors import UsageError
from veza_schema.model import (
    Column,
    CompositeType,
    DefaultPrivilege,
    EnumType,
    Function,
    Grants,
    Index,
    IndexElement,
    Namespace,
    PartitionSpec,
    PrimaryKey,
    Role,
    Schema,
    SequenceObject,
    Table,
    UniqueConstraint,
    View,
    default_grants,
)
from veza_schema.sql import render
from veza_schema.sql.parse import parse_sql
from veza_schema.sql.render import Section
from veza_schema.sql.routes import sql_arguments, sql_collation, sql_type
from veza_schema.sql.text import Sql, compose, ident, join, qname
from veza_schema.sql.volatility import volatile_calls

FileKind = Literal["drop_indexes", "enum_values", "main", "concurrent"]
FILE_ORDER: tuple[FileKind, ...] = ("drop_indexes", "enum_values", "main", "concurrent")
TRANSACTIONAL: dict[FileKind, bool] = {"drop_indexes": False, "enum_values": True, "main": True,
                                       "concurrent": False}
MAX_IDENTIFIER = 63



class UnsafeChangeError(UsageError):
    """A change with no online-safe form: refused unless explicitly allowed."""

    def __init__(self, change: Change, reason: str) -> None:
        self.change = change
        self.reason = reason
        super().__init__(f"{describe(change)}: {reason}")


@dataclass(frozen=True)
class Step:
    """Statements for one change in one file, with the statements that undo them.

    ``down`` is in running order (it undoes ``up`` back to front); a file's down runs its
    steps' ``down`` in reverse step order.
    """

    file: FileKind
    up: tuple[Sql, ...]
    down: tuple[Sql, ...]
    change: Change
    note: str = ""
    last: bool = False  # runs after the file's other steps (a foreign key waiting for its key)
    locks: int = 0  # lock-table slots the step holds until its transaction commits (transactional files)


@dataclass(frozen=True)
class PlannedFile:
    kind: FileKind
    steps: tuple[Step, ...]
    part: int = 1  # a file cut to fit the lock table: part `part` of `parts` of its kind
    parts: int = 1

    @property
    def transactional(self) -> bool:
        return TRANSACTIONAL[self.kind]

    @property
    def locks(self) -> int:
        """Lock-table slots the file's transaction holds at most (0 for a no-transaction file)."""
        return sum(step.locks for step in self.steps) if self.transactional else 0

    @property
    def changes(self) -> list[Change]:
        seen: list[Change] = []
        for step in self.steps:
            if not any(step.change is c for c in seen):
                seen.append(step.change)
        return seen

    @property
    def rfcs(self) -> list[str]:
        return sorted({ref for change in self.changes if (ref := rfc(change))})

    def header(self) -> list[str]:
        lines = []
        for change in self.changes:
            notes = sorted({s.note for s in self.steps if s.change is change and s.note})
            lines.append(describe(change) + "".join(f" [{n}]" for n in notes))
        return lines

    def up_sections(self) -> list[Section]:
        return [Section(_title(steps), tuple(s for step in steps for s in step.up))
                for steps in _grouped(self.steps)]

    def down_sections(self) -> list[Section]:
        sections = []
        for steps in reversed(_grouped(self.steps)):
            statements = tuple(s for step in reversed(steps) for s in step.down)
            if statements:
                sections.append(Section("undo " + _title(steps), statements))
        return sections


def _title(steps: Sequence[Step]) -> str:
    notes = sorted({s.note for s in steps if s.note})
    return describe(steps[0].change) + "".join(f" [{n}]" for n in notes)


def _grouped(steps: Sequence[Step]) -> list[list[Step]]:
    groups: list[list[Step]] = []
    for step in steps:
        if groups and groups[-1][0].change is step.change:
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


@dataclass(frozen=True)
class Plan:
    """Non-empty files in running order."""

    files: tuple[PlannedFile, ...]

    @property
    def steps(self) -> list[Step]:
        return [step for f in self.files for step in f.steps]


@dataclass
class _Context:
    current: Schema
    desired: Schema
    allow_forbidden: bool
    created: set[str] = field(default_factory=set)
    # (table, columns) of UNIQUE / PRIMARY KEY constraints attached late (in the concurrent file):
    # a foreign key referencing them must wait for them there.
    late_keys: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)

    def partitioned(self, table: str) -> bool:
        for schema in (self.desired, self.current):
            if table in schema.tables:
                return schema.tables[table].partition is not None
        return False


def build_plan(changes: Sequence[Change], current: Schema, desired: Schema, *,
               allow_forbidden: bool = False, max_locks: int | None = DEFAULT_MAX_LOCKS) -> Plan:
    """Steps for ``changes`` (already ordered by :func:`order_changes`), grouped into files.

    A transactional file whose steps would hold more than ``max_locks`` lock-table slots is
    cut into consecutive parts (``None``: never cut); a single step above the bound gets a
    part of its own.

    Raises:
        UnsafeChangeError: a change that would rewrite or lock a populated table for long
            (a volatile default, an identity or generated column added to an existing table,
            an enum losing values) unless ``allow_forbidden``; a change with no in-place form
            at all (a new generated expression, a new partition key) always.
    """
    ctx = _Context(current, desired, allow_forbidden)
    ctx.created = {c.table.name for c in changes if isinstance(c, CreateTable)}
    ctx.created |= {c.view.name for c in changes if isinstance(c, CreateView)}
    ctx.late_keys = {(c.table, key.columns) for c in changes if isinstance(c, (AddUnique, AddPrimaryKey))
                     for key in [c.unique if isinstance(c, AddUnique) else c.primary_key]
                     if c.table not in ctx.created and not ctx.partitioned(c.table)}
    steps = [replace(step, locks=lock_slots(step.change, current, desired))
             if TRANSACTIONAL[step.file] and (step.up or step.down) else step  # no SQL, no lock
             for change in changes for step in _steps(change, ctx)]
    files: list[PlannedFile] = []
    for kind in FILE_ORDER:
        kind_steps = tuple(sorted((s for s in steps if s.file == kind), key=lambda s: s.last))
        if not kind_steps:
            continue
        parts = _cut(kind_steps, max_locks) if TRANSACTIONAL[kind] and max_locks else [kind_steps]
        files += [PlannedFile(kind, part, number, len(parts)) for number, part in enumerate(parts, 1)]
    return Plan(tuple(files))


# -- the lock budget -----------------------------------------------------------------------
def _cut(steps: tuple[Step, ...], max_locks: int) -> list[tuple[Step, ...]]:
    """Consecutive runs of steps holding at most ``max_locks`` slots each (running order kept)."""
    parts: list[list[Step]] = [[]]
    used = 0
    for step in steps:
        if parts[-1] and used + step.locks > max_locks:
            parts.append([])
            used = 0
        parts[-1].append(step)
        used += step.locks
    return [tuple(part) for part in parts]


# -- statement helpers ----------------------------------------------------------------------
def _create_index_online(index: Index) -> tuple[Sql, ...]:
    """Clean an INVALID leftover, build concurrently, refuse to finish over an INVALID index."""
    key = render.index_key(index)
    return (render.drop_invalid_index(key), render.create_index(index, True, if_not_exists=True),
            render.assert_index_valid(key))


def _drop_index_online(key: str) -> tuple[Sql, ...]:
    return (render.drop_index(key, concurrently=True, if_exists=True),)


def _unique_index(name: str, table: str, columns: tuple[str, ...]) -> Index:
    return Index(name, table, tuple(IndexElement(c) for c in columns), unique=True)


def _comment(target: CommentTarget, text: str | None) -> Sql:
    arguments = (target.arguments or "") if target.kind == "function" else None
    return render.object_comment(target.kind, target.name, text, column=target.column, arguments=arguments)


def _table_comments(table: Table) -> tuple[Sql, ...]:
    return tuple(render.table_comments(table))


def _column_comment(table: str, column: Column) -> tuple[Sql, ...]:
    if column.comment is None:
        return ()
    return (_comment(CommentTarget("column", table, column=column.name), column.comment),)


def _type_comment(obj: EnumType | CompositeType) -> tuple[Sql, ...]:
    return () if obj.comment is None else (_comment(CommentTarget("type", obj.name), obj.comment),)


def _function_sql(fn: Function) -> tuple[Sql, ...]:
    comment = () if fn.comment is None else (
        _comment(CommentTarget("function", fn.name, arguments=fn.arguments), fn.comment),)
    return (render.create_function(fn), *comment, *render.function_grants(fn))


def _view_sql(view: View) -> tuple[Sql, ...]:
    """A view with its indexes, INSTEAD OF triggers, comment and grants: all go when it is dropped."""
    statements = [render.create_view(view)]
    statements += [render.create_index(view.indexes[n]) for n in sorted(view.indexes)]
    statements += [render.create_trigger(view.triggers[n]) for n in sorted(view.triggers)]
    if view.comment is not None:
        kind: CommentKind = "materialized view" if view.materialized else "view"
        statements.append(_comment(CommentTarget(kind, view.name), view.comment))
    statements += render.table_grants(view.name, view.grants)
    return tuple(statements)


def _table_sql(table: Table) -> tuple[Sql, ...]:
    """A table with its partitions, indexes, settings, comments and grants (policies are changes of their own)."""
    statements = [render.create_table(table)]
    if table.partition:
        statements += render.create_partitions(table)
    statements += render.table_extras(table)
    statements += [render.create_index(table.indexes[n]) for n in sorted(table.indexes)]
    return (*statements, *_table_comments(table), *render.table_grants(table.name, table.grants))


def _sequence_sql(sequence: SequenceObject) -> tuple[Sql, ...]:
    comment = () if sequence.comment is None else (
        _comment(CommentTarget("sequence", sequence.name), sequence.comment),)
    return (render.create_sequence(sequence), *comment, *render.sequence_grants(sequence))


def _namespace_sql(namespace: Namespace) -> tuple[Sql, ...]:
    comment = () if namespace.comment is None else (
        _comment(CommentTarget("schema", namespace.name), namespace.comment),)
    return (render.create_namespace(namespace), *comment, *render.namespace_grants(namespace))


def _alter_role(before: Role, after: Role) -> tuple[Sql, ...]:
    """ALTER ROLE to ``after``'s attributes, its memberships and comment."""
    statements = [render.alter_role_attributes(after)]
    statements += [render.role_membership(after.name, other, True)
                   for other in after.member_of if other not in before.member_of]
    statements += [render.role_membership(after.name, other, False)
                   for other in before.member_of if other not in after.member_of]
    if before.comment != after.comment:
        statements.append(render.comment("ROLE", ident(after.name), after.comment))
    return tuple(statements)


def _grant_target_sql(target: GrantTarget) -> tuple[str, Sql]:
    """(object word, object SQL) of a grant target."""
    if target.kind == "function":
        return "FUNCTION", compose("{}({})", qname(target.name),
                                   sql_arguments(target.arguments or "", f"arguments of function {target.name}"))
    if target.kind == "schema":
        return "SCHEMA", ident(target.name)
    if target.kind == "sequence":
        return "SEQUENCE", qname(target.name)
    return "TABLE", qname(target.name)


def _grants_sql(target: GrantTarget, before: Grants, after: Grants) -> tuple[Sql, ...]:
    word, name = _grant_target_sql(target)
    return tuple(render.grant_statements(word, name, before, after))


def _default_privileges_sql(for_role: str, schema: str | None, on: str, before: Grants | None,
                            after: Grants | None) -> tuple[Sql, ...]:
    """ALTER DEFAULT PRIVILEGES from ``before`` to ``after`` (None: PostgreSQL's default)."""
    kind = on.removesuffix("s")
    default = dict(default_grants(kind)) if schema is None else {}
    entry = DefaultPrivilege(for_role, on, schema, default if after is None else after)  # type: ignore[arg-type]
    return tuple(render.default_privilege_statements(entry, default if before is None else before))


def _alter_sequence(sequence: SequenceObject) -> Sql:
    """ALTER SEQUENCE to ``sequence``'s options (START WITH sets the start, not the current value)."""
    parts = [compose("AS {}", sql_type(sequence.type, f"type of sequence {sequence.name}")),
             compose("INCREMENT BY {}", int(sequence.increment)),
             Sql("NO MINVALUE") if sequence.min_value is None else compose("MINVALUE {}", int(sequence.min_value)),
             Sql("NO MAXVALUE") if sequence.max_value is None else compose("MAXVALUE {}", int(sequence.max_value)),
             compose("START WITH {}", int(sequence.start)), compose("CACHE {}", int(sequence.cache)),
             Sql("CYCLE" if sequence.cycle else "NO CYCLE")]
    return Sql(compose("ALTER SEQUENCE {} {};", qname(sequence.name), join(parts, " ")) + "\n")


def _sequence_owner(name: str, owner: str | None) -> Sql:
    if owner is None:
        return Sql(compose("ALTER SEQUENCE {} OWNED BY NONE;", qname(name)) + "\n")
    table, _, column = owner.rpartition(".")
    return Sql(compose("ALTER SEQUENCE {} OWNED BY {}.{};", qname(name), qname(table), ident(column)) + "\n")


def _extension_moves(before: Any, after: Any) -> tuple[Sql, ...]:
    statements = []
    if before.version != after.version:
        statements.append(render.alter_extension_version(after, after.version))
    if before.schema != after.schema:
        statements.append(Sql(compose("ALTER EXTENSION {} SET SCHEMA {};", ident(after.name),
                                      ident(after.schema or "public")) + "\n"))
    return tuple(statements)


def _collation_sql(table: str, column: Column) -> Sql:
    what = f"column {table}.{column.name}"
    collation = sql_collation(column.collation, f"collation of {what}") if column.collation else Sql('"default"')
    return Sql(compose("ALTER TABLE {} ALTER COLUMN {} TYPE {} COLLATE {};", qname(table), ident(column.name),
                       sql_type(column.type, f"type of {what}"), collation) + "\n")


def _enum_rebuild(enum: EnumType, usages: Sequence[ColumnUse]) -> tuple[Sql, ...]:
    """PostgreSQL cannot drop or reorder enum values: rename, create anew, convert, drop the old."""
    old = (enum.name[: MAX_IDENTIFIER - len("__veza_old")] + "__veza_old")
    statements = [render.rename_type(enum.name, old), render.create_enum(enum), *_type_comment(enum)]
    for use in usages:
        if use.default is not None:
            statements.append(render.alter_column_default(use.table, use.column, None))
        statements.append(render.alter_column_type(use.table, use.column, use.type,
                                                   via="text[]" if use.type.endswith("[]") else "text"))
        if use.default is not None:
            statements.append(render.alter_column_default(use.table, use.column, use.default))
    statements.append(render.drop_type(old))
    return tuple(statements)


def _enum_additions(change: AddEnumValue) -> tuple[Sql, ...]:
    """One ADD VALUE per new value, placed after its predecessor in the desired order."""
    statements = []
    wanted = change.after.values
    for i, value in enumerate(wanted):
        if value in change.before.values:
            continue
        if i > 0:
            statements.append(render.add_enum_value(change.after.name, value, after=wanted[i - 1]))
        else:
            first = change.before.values[0] if change.before.values else None
            statements.append(render.add_enum_value(change.after.name, value, before=first))
    return tuple(statements)


def is_volatile(expression: str | None, desired: Schema) -> bool:
    """Whether a default may call a VOLATILE function (:mod:`veza_schema.sql.volatility`: unknown ones may)."""
    return bool(volatile_calls(expression, desired))


def not_null_check_name(table: str, column: str) -> str:
    """Name of the temporary CHECK (col IS NOT NULL) used to SET NOT NULL without a long lock."""
    suffix = "_not_null"
    base = f"chk_{table}_{column}"
    return base[: MAX_IDENTIFIER - len(suffix)] + suffix


# -- one change -> its steps ---------------------------------------------------------------------
def _steps(change: Change, ctx: _Context) -> list[Step]:
    """One branch per change kind; every step states its undo next to it."""

    def main(up: Sequence[Sql], down: Sequence[Sql], note: str = "") -> Step:
        return Step("main", tuple(up), tuple(down), change, note)

    def refuse(reason: str) -> None:
        if not ctx.allow_forbidden:
            raise UnsafeChangeError(change, reason + " (pass --allow-forbidden to write it anyway)")

    match change:
        case CreateRole(role=role):
            return [main(render.create_role(role), [], "kept by rollback: roles are cluster-wide")]
        case DropRole(role=role):
            return [main([], render.create_role(role), "not dropped: roles are cluster-wide; drop it by hand once "
                                                       "no database uses it")]
        case AlterRole(before=before, after=after):
            return [main(_alter_role(before, after), _alter_role(after, before))]
        case CreateNamespace(namespace=namespace):
            return [main(_namespace_sql(namespace), [render.drop_namespace(namespace)])]
        case DropNamespace(namespace=namespace):
            return [main([render.drop_namespace(namespace)], _namespace_sql(namespace))]
        case AlterGrants(target=target, before=before, after=after):
            return [main(_grants_sql(target, before, after), _grants_sql(target, after, before))]
        case AlterDefaultPrivileges(for_role=for_role, schema=schema, on=on, before=before, after=after):
            return [main(_default_privileges_sql(for_role, schema, on, before, after),
                         _default_privileges_sql(for_role, schema, on, after, before),
                         "applies to objects created later")]
        case CreateExtension(extension=ext):
            return [main([render.create_extension(ext)], [render.drop_extension(ext)])]
        case DropExtension(extension=ext):
            return [main([render.drop_extension(ext)], [render.create_extension(ext)])]
        case AlterExtension(before=before, after=after):
            return [main(_extension_moves(before, after), _extension_moves(after, before),
                         "the undo needs the extension's downgrade script" if before.version != after.version
                         else "")]
        case CreateSequence(sequence=sequence):
            return [main(_sequence_sql(sequence), [render.drop_sequence(sequence)])]
        case DropSequence(sequence=sequence):
            return [main([render.drop_sequence(sequence)], _sequence_sql(sequence))]
        case AlterSequence(before=before, after=after):
            return [main([_alter_sequence(after)], [_alter_sequence(before)])]
        case SetSequenceOwner(sequence=name, before=before, after=after):
            return [main([_sequence_owner(name, after)], [_sequence_owner(name, before)])]
        case AlterColumnCollation(table=table, before=before, after=after):
            return [main([_collation_sql(table, after)], [_collation_sql(table, before)],
                         "rebuilds the indexes on the column")]
        case AlterColumnStatistics(table=table, before=before, after=after):
            return [main([render.column_statistics(table, after.name, after.statistics)],
                         [render.column_statistics(table, before.name, before.statistics)])]
        case AlterTablePersistence(table=table, before=before, after=after):
            refuse("SET LOGGED / SET UNLOGGED rewrites the whole table under an ACCESS EXCLUSIVE lock")
            return [main([render.set_persistence(table, after)], [render.set_persistence(table, before)],
                         "rewrites the table")]
        case AlterRowSecurity(table=table, before=before, after=after):
            return [main(render.row_security(table, *after), render.row_security(table, *before))]
        case CreatePolicy(policy=policy):
            return [main([render.create_policy(policy)], [render.drop_policy(policy)])]
        case DropPolicy(policy=policy):
            return [main([render.drop_policy(policy)], [render.create_policy(policy)])]
        case AddExclusion(table=table, exclusion=ex):
            if table not in ctx.created:
                refuse("an exclusion constraint builds its index under an ACCESS EXCLUSIVE lock (there is no "
                       "concurrent form): add it in a maintenance window")
            return [main([render.add_constraint(table, render.exclusion_clause(ex))],
                         [render.drop_constraint(table, ex.name)])]
        case DropExclusion(table=table, exclusion=ex):
            return [main([render.drop_constraint(table, ex.name)],
                         [render.add_constraint(table, render.exclusion_clause(ex))])]
        case CreateEnum(enum=enum):
            return [main([render.create_enum(enum), *_type_comment(enum)], [render.drop_type(enum.name)])]
        case DropEnum(enum=enum):
            return [main([render.drop_type(enum.name)], [render.create_enum(enum), *_type_comment(enum)])]
        case AddEnumValue():
            return [Step("enum_values", _enum_additions(change), _enum_rebuild(change.before, change.usages),
                         change, "undo rebuilds the type")]
        case RecreateEnum():
            refuse("removing or reordering enum values rebuilds the type and rewrites every table using it")
            return [main(_enum_rebuild(change.after, change.usages), _enum_rebuild(change.before, change.usages),
                         "rewrites the tables using the type")]
        case CreateCompositeType(ctype=ctype):
            return [main([render.create_composite_type(ctype), *_type_comment(ctype)],
                         [render.drop_type(ctype.name)])]
        case DropCompositeType(ctype=ctype):
            return [main([render.drop_type(ctype.name)],
                         [render.create_composite_type(ctype), *_type_comment(ctype)])]
        case AlterCompositeType(before=before, after=after):
            return [main([render.drop_type(before.name), render.create_composite_type(after), *_type_comment(after)],
                         [render.drop_type(after.name), render.create_composite_type(before),
                          *_type_comment(before)], "drop + create")]
        case CreateFunction(function=fn):
            return [main(_function_sql(fn), [render.drop_function(fn)])]
        case DropFunction(function=fn):
            return [main([render.drop_function(fn)], _function_sql(fn))]
        case ReplaceFunction(before=before, after=after):
            return [main([render.create_function(after)], [render.create_function(before)])]
        case CreatePartitionHelper():
            return [main([render.partition_function()], [render.drop_partition_function()])]
        case DropPartitionHelper():
            return [main([render.drop_partition_function()], [render.partition_function()])]
        case CreateTable(table=table):
            late = [fk for _, fk in sorted(table.foreign_keys.items())
                    if (fk.ref_table, fk.ref_columns) in ctx.late_keys]
            inline = {n: fk for n, fk in table.foreign_keys.items() if fk not in late}
            steps = [main(_table_sql(replace(table, foreign_keys=inline)), [render.drop_table(table)])]
            for fk in late:  # the key it references is attached in the concurrent file
                clause = render.foreign_key_clause(fk)
                steps.append(Step("concurrent",
                                  (render.add_constraint_if_missing(table.name, fk.name, clause),),
                                  (render.drop_constraint(table.name, fk.name, if_exists=True),), change,
                                  "foreign key after the key it references", last=True))
            return steps
        case DropTable(table=table):
            return [main([render.drop_table(table), *render.drop_partitions(table)], _table_sql(table))]
        case RenameFunction(old=old, new=new, arguments=arguments):
            return [main([render.rename_function(old, new, arguments)], [render.rename_function(new, old, arguments)])]
        case RenameTable(old=old, new=new):
            return [main([render.rename_table(old, new)], [render.rename_table(new, old)])]
        case RenameColumn(table=table, old=old, new=new):
            return [main([render.rename_column(table, old, new)], [render.rename_column(table, new, old)])]
        case RenameConstraint(table=table, old=old, new=new):
            return [main([render.rename_constraint(table, old, new)], [render.rename_constraint(table, new, old)])]
        case RenameIndex(old=old, new=new):
            return [main([render.rename_index(old, new)], [render.rename_index(new, old)])]  # keys
        case AddColumn(table=table, column=column):
            return [_add_column(change, table, column, ctx, refuse)]
        case DropColumn(table=table, column=column):
            statistics = [render.column_statistics(table, column.name, column.statistics)] \
                if column.statistics is not None else []
            return [main([render.drop_column(table, column.name)],
                         [render.add_column(table, column), *_column_comment(table, column), *statistics])]
        case AlterColumnType(table=table, before=before, after=after):
            if rewrites_rows(before.type, after.type):
                refuse(f"{before.type} -> {after.type} rewrites or re-checks every row under an ACCESS EXCLUSIVE "
                       "lock; expand/contract instead: add a column of the new type, backfill it in batches, "
                       "switch readers, then drop the old column")
            elif rechecked := _rechecked_by_type_change(ctx, table, before.name):
                refuse(f"PostgreSQL re-checks {', '.join(rechecked)} with a full scan under the ACCESS EXCLUSIVE "
                       f"lock of the type change; drop {'them' if len(rechecked) > 1 else 'it'} in an earlier "
                       "migration and add back after (CHECK NOT VALID then VALIDATE, indexes CONCURRENTLY)")
            return [main([render.alter_column_type(table, after.name, after.type)],
                         [render.alter_column_type(table, before.name, before.type)],
                         "rewrites the table unless the types are binary coercible")]
        case AlterColumnDefault(table=table, before=before, after=after):
            return [main([render.alter_column_default(table, after.name, after.default)],
                         [render.alter_column_default(table, before.name, before.default)])]
        case AlterColumnNullability(table=table, before=before, after=after):
            return _nullability(change, table, after, ctx)
        case AlterColumnIdentity(table=table, before=before, after=after):
            return [_identity(change, table, before, after, ctx)]
        case ReorderColumns(table=table, before=reached, after=declared):
            moved = [c for c, d in zip(reached, declared, strict=False) if c != d]
            raise UnsafeChangeError(change, f"PostgreSQL appends new columns and cannot reorder them in place: list "
                                            f"{', '.join(moved[:3])} in the order the database has them "
                                            f"({', '.join(reached)}) in the YAML of {table}, or recreate the table")
        case AlterColumnGenerated():
            raise UnsafeChangeError(change, "a generated expression cannot be changed in place; add a new "
                                            "column, backfill it, switch readers, then drop the old one")
        case ChangePartitioning(table=table, before=before, after=after):
            return [_partitioning(change, table, before, after, main)]
        case AddPrimaryKey(table=table, primary_key=pk):
            return _add_keyed(change, table, pk, "PRIMARY KEY", ctx)
        case DropPrimaryKey(table=table, primary_key=pk):
            return [main([render.drop_constraint(table, pk.name)],
                         [render.add_constraint(table, render.primary_key_clause(pk))])]
        case AddUnique(table=table, unique=uq):
            return _add_keyed(change, table, uq, "UNIQUE", ctx)
        case DropUnique(table=table, unique=uq):
            return [main([render.drop_constraint(table, uq.name)],
                         [render.add_constraint(table, render.unique_clause(uq))])]
        case AddCheck(table=table, check=ck):
            if table in ctx.created:
                return [main([render.add_constraint(table, render.check_clause(ck))],
                             [render.drop_constraint(table, ck.name)])]
            return [main([render.add_constraint(table, render.check_clause(ck, not_valid=True))],
                         [render.drop_constraint(table, ck.name)], "NOT VALID"),
                    Step("concurrent", (render.validate_constraint(table, ck.name),), (), change, "VALIDATE")]
        case DropCheck(table=table, check=ck):
            return [main([render.drop_constraint(table, ck.name)],
                         [render.add_constraint(table, render.check_clause(ck))])]
        case AddForeignKey(table=table, foreign_key=fk):
            if table in ctx.created:
                return [main([render.add_constraint(table, render.foreign_key_clause(fk))],
                             [render.drop_constraint(table, fk.name)])]
            if (fk.ref_table, fk.ref_columns) in ctx.late_keys:
                clause = render.foreign_key_clause(fk, not_valid=True)
                return [Step("concurrent",
                             (render.add_constraint_if_missing(table, fk.name, clause),
                              render.validate_constraint(table, fk.name)),
                             (render.drop_constraint(table, fk.name, if_exists=True),), change,
                             "NOT VALID, VALIDATE: after the key it references")]
            return [main([render.add_constraint(table, render.foreign_key_clause(fk, not_valid=True))],
                         [render.drop_constraint(table, fk.name)], "NOT VALID"),
                    Step("concurrent", (render.validate_constraint(table, fk.name),), (), change, "VALIDATE")]
        case DropForeignKey(table=table, foreign_key=fk):
            return [main([render.drop_constraint(table, fk.name)],
                         [render.add_constraint(table, render.foreign_key_clause(fk))])]
        case CreateIndex(index=index):
            if index.table in ctx.created or ctx.partitioned(index.table):
                note = "" if index.table in ctx.created else "partitioned: no CONCURRENTLY, takes a SHARE lock"
                return [main([render.create_index(index)], [render.drop_index(render.index_key(index))], note)]
            return [Step("concurrent", _create_index_online(index), _drop_index_online(render.index_key(index)),
                         change)]
        case DropIndex(index=index):
            if ctx.partitioned(index.table):
                return [main([render.drop_index(render.index_key(index))], [render.create_index(index)],
                             "partitioned: no CONCURRENTLY")]
            return [Step("drop_indexes", _drop_index_online(render.index_key(index)), _create_index_online(index),
                         change)]
        case CreateTrigger(trigger=trigger):
            return [main([render.create_trigger(trigger)], [render.drop_trigger(trigger)])]
        case DropTrigger(trigger=trigger):
            return [main([render.drop_trigger(trigger)], [render.create_trigger(trigger)])]
        case CreateView(view=view):
            return [main(_view_sql(view), [render.drop_view(view)])]
        case DropView(view=view):
            return [main([render.drop_view(view)], _view_sql(view))]
        case ReplaceView(before=before, after=after):
            return [main([render.create_view(after, or_replace=True)], [render.create_view(before, or_replace=True)])]
        case SetComment(target=target, before=before, after=after):
            return [main([_comment(target, after)], [_comment(target, before)])]
    raise TypeError(f"no plan for change {change!r}")


def _rechecked_by_type_change(ctx: _Context, table: str, column: str) -> list[str]:
    """What ALTER COLUMN TYPE re-validates or rebuilds even when the type change itself is catalog-only:
    the CHECK constraints reading the column, the indexes whose expressions or predicate read it, and on a
    partitioned table every index on it (PostgreSQL cannot reuse partitioned indexes); those kept in both
    models, which exist while the type changes."""
    before, after = ctx.current.tables.get(table), ctx.desired.tables.get(table)
    if before is None or after is None:
        return []
    found = [f"CHECK {name}" for name, check in sorted(before.checks.items())
             if name in after.checks and column in parse_sql(check.expression).columns]
    for name, index in sorted(before.indexes.items()):
        texts = [e.expression for e in index.elements if not e.is_column] + ([index.where] if index.where else [])
        read = any(column in parse_sql(text).columns for text in texts)
        if before.partition is not None:
            read = read or column in index.column_names or column in index.include or \
                any(e.is_column and e.expression == column for e in index.elements)
        if name in after.indexes and read:
            found.append(f"index {name}")
    return found


def _add_column(change: Change, table: str, column: Column, ctx: _Context,
                refuse: Callable[[str], None]) -> Step:
    """One statement; PG11+ stores a non-volatile default in the catalog without a rewrite."""
    if column.identity or column.generated:
        refuse("adding an identity or generated column to an existing table rewrites it under an ACCESS "
               "EXCLUSIVE lock; add a plain nullable column and backfill it in batches instead")
    elif is_volatile(column.default, ctx.desired):
        refuse(f"the default {column.default} is volatile: ADD COLUMN would rewrite the whole table under an "
               "ACCESS EXCLUSIVE lock. Expand/contract instead: add the column without a default (nullable), "
               "then set the default, backfill existing rows in batches, and make it NOT NULL")
    note = ""
    if not column.nullable and column.default is None and not (column.identity or column.generated):
        note = "NOT NULL without a default: fails if the table has rows"
    up = (render.add_column(table, column), *_column_comment(table, column),
          *([render.column_statistics(table, column.name, column.statistics)] if column.statistics is not None else []))
    return Step("main", up, (render.drop_column(table, column.name),), change, note)


def _identity(change: Change, table: str, before: Column, after: Column, ctx: _Context) -> Step:
    """Identity added, dropped or switched; an added one continues after the column's largest value.

    A column that becomes NOT NULL in the same change gets it last in the concurrent file, after
    the online SET NOT NULL (PostgreSQL refuses identity on a nullable column), idempotently.
    """
    undo = (render.alter_column_identity(table, after.name, after.identity, before.identity),)
    if before.identity is not None or after.identity is None:
        return Step("main", (render.alter_column_identity(table, after.name, before.identity, after.identity),),
                    undo, change)
    later = before.nullable and not after.nullable and table not in ctx.created
    add = render.add_identity(table, after.name, after.identity, idempotent=later)
    if later:
        return Step("concurrent", (add,), undo, change, "after SET NOT NULL", last=True)
    return Step("main", (add,), undo, change)


def _nullability(change: Change, table: str, after: Column, ctx: _Context) -> list[Step]:
    """DROP NOT NULL is catalog-only; SET NOT NULL goes through a CHECK validated without a long lock."""
    column = after.name
    if after.nullable or table in ctx.created:
        return [Step("main", (render.alter_column_nullability(table, column, after.nullable),),
                     (render.alter_column_nullability(table, column, not after.nullable),), change)]
    check = not_null_check_name(table, column)
    clause = render.not_null_check_clause(check, column)
    return [
        Step("main", (render.add_constraint(table, clause),),
             (render.drop_constraint(table, check, if_exists=True),), change, "CHECK NOT VALID"),
        Step("concurrent",
             (render.validate_constraint_if_exists(table, check), render.alter_column_nullability(table, column, False),
              render.drop_constraint(table, check, if_exists=True)),
             (render.add_constraint_if_missing(table, check, clause),
              render.alter_column_nullability(table, column, True)),
             change, "VALIDATE, SET NOT NULL"),
    ]


def _add_keyed(change: Change, table: str, key: PrimaryKey | UniqueConstraint, kind: str,
               ctx: _Context) -> list[Step]:
    """UNIQUE / PRIMARY KEY on an existing table: build the index concurrently, then attach it."""
    clause = render.primary_key_clause(key) if isinstance(key, PrimaryKey) else render.unique_clause(key)
    if table in ctx.created or ctx.partitioned(table):
        note = "" if table in ctx.created else "partitioned: no CONCURRENTLY, builds the index under lock"
        return [Step("main", (render.add_constraint(table, clause),), (render.drop_constraint(table, key.name),),
                     change, note)]
    index = _unique_index(key.name, table, key.columns)
    using = render.add_constraint_using_index(table, key.name, kind)
    if key.deferrable or (isinstance(key, UniqueConstraint) and key.nulls_not_distinct):
        # USING INDEX cannot say DEFERRABLE or NULLS NOT DISTINCT: the constraint builds its own index.
        return [Step("main", (render.add_constraint(table, clause),), (render.drop_constraint(table, key.name),),
                     change, "builds the index under lock (a DEFERRABLE or NULLS NOT DISTINCT key)")]
    return [Step("concurrent",
                 (*_create_index_online(index), using),
                 (render.drop_constraint(table, key.name, if_exists=True),
                  *_drop_index_online(render.index_key(index))),
                 change, "index built CONCURRENTLY")]


def copy_and_swap(table: str, after: PartitionSpec | None) -> str:
    """The procedure for a partitioning change PostgreSQL cannot make in place, spelled out for ``table``."""
    bare = table.rpartition(".")[2]
    target = (f"PARTITION BY {after.strategy.upper()} ({', '.join(after.columns)})" if after is not None
              else "without PARTITION BY")
    return (f"a table's partitioning cannot change in place (PostgreSQL has no ALTER for it); copy and swap: "
            f"1) create {bare}_new like {table} ({target}, with its partitions and a DEFAULT one); "
            f"2) copy the rows in batches (INSERT INTO {bare}_new SELECT ... ORDER BY the key, LIMIT n), and "
            f"keep writes flowing to both (a trigger on {table}) or stop them; "
            f"3) in one transaction: LOCK {table}, copy the last rows, ALTER TABLE {table} RENAME TO {bare}_old, "
            f"ALTER TABLE {bare}_new RENAME TO {bare}, and move the foreign keys that reference it; "
            f"4) check the counts, then drop {bare}_old in a later change. Write it as a hand-written migration")


PREMAKE_IS_MAINTENANCE = ("no SQL: premake is maintenance policy; `veza-schema partitions` (run it now, or let "
                          "cron) makes the partitions ahead, moving DEFAULT-partition rows out in batches")


def _partitioning(change: Change, table: str, before: PartitionSpec | None, after: PartitionSpec | None,
                  main: Callable[..., Step]) -> Step:
    """Only ``premake`` changes in place, and the migration does not act on it.

    Creating a partition of a table with a DEFAULT partition scans the default under ACCESS
    EXCLUSIVE on it and on the parent (and fails if the default holds rows of the new range);
    dropping one locks the parent and loses any rows it holds. The `partitions` job reads
    premake from ``schema/`` and does the creating without blocking writers.
    """
    if before is None or after is None or \
            (before.strategy, before.columns, before.interval, before.default_partition) != \
            (after.strategy, after.columns, after.interval, after.default_partition) or after.interval is None:
        raise UnsafeChangeError(change, copy_and_swap(table, after))
    return main([], [], PREMAKE_IS_MAINTENANCE)
