"""Changes between two models: one frozen dataclass per kind, named Verb+Object.

One job: the vocabulary of changes; its length is one small class per change kind, with its text.

Why data and not SQL: the differ, the ordering pass, the planner (online-safe SQL) and the
change-policy classifier all read the same objects. Every change keeps the objects on both
sides it touches (a drop keeps the dropped object, an alteration keeps ``before`` and
``after``), so :func:`reverse` is pure and a classifier can judge e.g. a type change from
the two columns. ``meta`` is the desired object's YAML metadata (its RFC), or for a drop the
desired parent's; it is never compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

from veza_schema.model import (
    NO_META,
    CheckConstraint,
    Column,
    CompositeType,
    EnumType,
    ExclusionConstraint,
    Extension,
    ForeignKey,
    Function,
    Grants,
    Index,
    Meta,
    Namespace,
    PartitionSpec,
    Policy,
    PrimaryKey,
    Role,
    SequenceObject,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)


def _meta() -> Meta:
    return field(default=NO_META, compare=False, repr=False)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, order=True)
class ColumnUse:
    """A column whose type is an enum (or an array of it): what recreating the enum must convert."""

    table: str
    column: str
    type: str
    default: str | None = None


# -- roles, schemas, privileges ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateRole:
    """A role created when missing, with its attributes and memberships (roles are cluster-wide)."""

    role: Role
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropRole:
    """A role no longer declared: never dropped by a migration (other databases may use it)."""

    role: Role
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterRole:
    before: Role
    after: Role
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreateNamespace:
    """CREATE SCHEMA, with its comment and grants."""

    namespace: Namespace
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropNamespace:
    namespace: Namespace
    meta: Meta = _meta()


GrantKind = Literal["table", "view", "sequence", "function", "schema"]


@dataclass(frozen=True, slots=True, order=True)
class GrantTarget:
    kind: GrantKind
    name: str  # model key (a schema's bare name)
    arguments: str | None = None  # kind "function"


@dataclass(frozen=True, slots=True)
class AlterGrants:
    """The privileges roles hold on an existing object changed (GRANT / REVOKE)."""

    target: GrantTarget
    before: Grants
    after: Grants
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterDefaultPrivileges:
    """ALTER DEFAULT PRIVILEGES FOR ROLE ``for_role`` [IN SCHEMA ``schema``] ON ``on``; None: PostgreSQL's default."""

    for_role: str
    schema: str | None
    on: str
    before: Grants | None
    after: Grants | None
    meta: Meta = _meta()


# -- extensions and types ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateExtension:
    extension: Extension
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropExtension:
    extension: Extension
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterExtension:
    """A new version (ALTER EXTENSION ... UPDATE) or schema (SET SCHEMA) of an installed extension."""

    before: Extension
    after: Extension
    meta: Meta = _meta()


# -- sequences -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateSequence:
    """CREATE SEQUENCE with its comment and grants; its owning column is set by :class:`SetSequenceOwner`."""

    sequence: SequenceObject
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropSequence:
    sequence: SequenceObject
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterSequence:
    """Type, start, increment, bounds, cache or cycle changed (ALTER SEQUENCE)."""

    before: SequenceObject
    after: SequenceObject
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class SetSequenceOwner:
    """ALTER SEQUENCE ... OWNED BY: before a drop it is released, after a create it is attached."""

    sequence: str
    before: str | None  # "table.column" or None
    after: str | None
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreateEnum:
    enum: EnumType
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropEnum:
    enum: EnumType
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AddEnumValue:
    """New values inserted into an enum (``after`` keeps ``before``'s values in order).

    ``usages`` are the columns of the *current* schema typed with the enum: undoing the
    addition means recreating the type and converting them (PostgreSQL cannot drop a value).
    """

    before: EnumType
    after: EnumType
    usages: tuple[ColumnUse, ...] = ()
    meta: Meta = _meta()

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(v for v in self.after.values if v not in self.before.values)


@dataclass(frozen=True, slots=True)
class RecreateEnum:
    """Values removed or reordered: the type is rebuilt and ``usages`` converted (a rewrite)."""

    before: EnumType
    after: EnumType
    usages: tuple[ColumnUse, ...] = ()
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreateCompositeType:
    ctype: CompositeType
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropCompositeType:
    ctype: CompositeType
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterCompositeType:
    """Attributes changed: rendered as drop + create (fails while a column uses the type)."""

    before: CompositeType
    after: CompositeType
    meta: Meta = _meta()


# -- functions -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateFunction:
    function: Function
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class ReplaceFunction:
    """Same signature and return type: CREATE OR REPLACE."""

    before: Function
    after: Function
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropFunction:
    function: Function
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class RenameFunction:
    """Declared with ``renamed_from``: ALTER FUNCTION ... RENAME keeps every trigger using it in place."""

    old: str
    new: str
    arguments: str
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreatePartitionHelper:
    """The managed ``veza_ensure_partitions`` function, needed once a table is partitioned."""

    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropPartitionHelper:
    meta: Meta = _meta()


# -- tables and columns --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateTable:
    """A new table with its columns, constraints, indexes and comments (not its triggers)."""

    table: Table
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropTable:
    table: Table
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class RenameTable:
    old: str
    new: str
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AddColumn:
    table: str
    column: Column
    meta: Meta = _meta()
    # Its place among the desired table's columns: columns are added in that order (PostgreSQL appends).
    position: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ReorderColumns:
    """The columns would end in another order than declared: PostgreSQL only appends (no in-place form)."""

    table: str
    before: tuple[str, ...]  # the order the database will have
    after: tuple[str, ...]  # the order declared
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropColumn:
    table: str
    column: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class RenameColumn:
    table: str
    old: str
    new: str
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnType:
    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnDefault:
    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnNullability:
    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnIdentity:
    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnGenerated:
    """A stored generated expression changed: no in-place form before PostgreSQL 17."""

    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnCollation:
    """COLLATE of a column changed: ALTER COLUMN ... TYPE same COLLATE new (rebuilds its indexes)."""

    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterColumnStatistics:
    """SET STATISTICS of a column changed (catalog only; the next ANALYZE uses it)."""

    table: str
    before: Column
    after: Column
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterTablePersistence:
    """SET LOGGED / SET UNLOGGED: rewrites the table under an ACCESS EXCLUSIVE lock."""

    table: str
    before: bool  # unlogged
    after: bool
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AlterRowSecurity:
    """ENABLE/DISABLE and FORCE/NO FORCE ROW LEVEL SECURITY: (enabled, forced) before and after."""

    table: str
    before: tuple[bool, bool]
    after: tuple[bool, bool]
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreatePolicy:
    policy: Policy
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropPolicy:
    policy: Policy
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class ChangePartitioning:
    """The partition spec of an existing table changed (strategy/key: cannot be done in place)."""

    table: str
    before: PartitionSpec | None
    after: PartitionSpec | None
    meta: Meta = _meta()

    def __eq__(self, other: object) -> bool:
        """premake is maintenance policy (not compared between specs), yet it is what a premake change changes."""
        if not isinstance(other, ChangePartitioning):
            return NotImplemented
        return (self.table, self.before, self.after, self.premakes) == \
            (other.table, other.before, other.after, other.premakes)

    @property
    def premakes(self) -> tuple[int | None, int | None]:
        return (self.before.premake if self.before else None, self.after.premake if self.after else None)


# -- constraints and indexes ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AddPrimaryKey:
    table: str
    primary_key: PrimaryKey
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropPrimaryKey:
    table: str
    primary_key: PrimaryKey
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AddUnique:
    table: str
    unique: UniqueConstraint
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropUnique:
    table: str
    unique: UniqueConstraint
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AddCheck:
    table: str
    check: CheckConstraint
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropCheck:
    table: str
    check: CheckConstraint
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AddExclusion:
    table: str
    exclusion: ExclusionConstraint
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropExclusion:
    table: str
    exclusion: ExclusionConstraint
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class AddForeignKey:
    table: str
    foreign_key: ForeignKey
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropForeignKey:
    table: str
    foreign_key: ForeignKey
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class RenameConstraint:
    """Follows a declared table or column rename whose name the constraint embeds."""

    table: str
    old: str
    new: str
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreateIndex:
    index: Index  # index.table is a table or a materialized view
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropIndex:
    index: Index
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class RenameIndex:
    """Follows a declared table or column rename whose name the index embeds."""

    old: str
    new: str
    meta: Meta = _meta()


# -- triggers, views, comments -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateTrigger:
    trigger: Trigger
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropTrigger:
    trigger: Trigger
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class CreateView:
    """A view (or materialized view, with its indexes) and its comment."""

    view: View
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class ReplaceView:
    """A plain view whose query changed: CREATE OR REPLACE VIEW."""

    before: View
    after: View
    meta: Meta = _meta()


@dataclass(frozen=True, slots=True)
class DropView:
    view: View
    meta: Meta = _meta()


CommentKind = Literal["table", "column", "type", "function", "view", "materialized view", "schema", "sequence"]


@dataclass(frozen=True, slots=True, order=True)
class CommentTarget:
    kind: CommentKind
    name: str
    column: str | None = None  # kind "column"
    arguments: str | None = None  # kind "function"


@dataclass(frozen=True, slots=True)
class SetComment:
    """COMMENT ON an existing object changed (``None``: no comment)."""

    target: CommentTarget
    before: str | None
    after: str | None
    meta: Meta = _meta()


Change = (
    CreateRole | DropRole | AlterRole
    | CreateNamespace | DropNamespace | AlterGrants | AlterDefaultPrivileges
    | CreateExtension | DropExtension | AlterExtension
    | CreateSequence | DropSequence | AlterSequence | SetSequenceOwner
    | CreateEnum | DropEnum | AddEnumValue | RecreateEnum
    | CreateCompositeType | DropCompositeType | AlterCompositeType
    | CreateFunction | ReplaceFunction | DropFunction | RenameFunction | CreatePartitionHelper | DropPartitionHelper
    | CreateTable | DropTable | RenameTable
    | AddColumn | DropColumn | RenameColumn | ReorderColumns
    | AlterColumnType | AlterColumnDefault | AlterColumnNullability | AlterColumnIdentity
    | AlterColumnGenerated | AlterColumnCollation | AlterColumnStatistics
    | AlterTablePersistence | AlterRowSecurity | CreatePolicy | DropPolicy
    | ChangePartitioning
    | AddPrimaryKey | DropPrimaryKey | AddUnique | DropUnique | AddCheck | DropCheck
    | AddExclusion | DropExclusion
    | AddForeignKey | DropForeignKey | RenameConstraint
    | CreateIndex | DropIndex | RenameIndex
    | CreateTrigger | DropTrigger
    | CreateView | ReplaceView | DropView
    | SetComment
)


# -- operations on changes -----------------------------------------------------------------
# Each kind that creates an object, with the kind that drops it (each other's reverse).
CREATE_DROP_PAIRS: tuple[tuple[type, type], ...] = (
    (CreateRole, DropRole), (CreateNamespace, DropNamespace), (CreateSequence, DropSequence),
    (CreatePolicy, DropPolicy), (AddExclusion, DropExclusion),
    (CreateExtension, DropExtension), (CreateEnum, DropEnum), (CreateCompositeType, DropCompositeType),
    (CreateFunction, DropFunction), (CreatePartitionHelper, DropPartitionHelper), (CreateTable, DropTable),
    (AddColumn, DropColumn), (AddPrimaryKey, DropPrimaryKey), (AddUnique, DropUnique), (AddCheck, DropCheck),
    (AddForeignKey, DropForeignKey), (CreateIndex, DropIndex), (CreateTrigger, DropTrigger),
    (CreateView, DropView),
)
_OPPOSITE: dict[type, type] = {**{a: b for a, b in CREATE_DROP_PAIRS}, **{b: a for a, b in CREATE_DROP_PAIRS}}
_SWAPPED = (AlterCompositeType, ReplaceFunction, AlterColumnType, AlterColumnDefault, AlterColumnNullability,
            AlterColumnIdentity, AlterColumnGenerated, ChangePartitioning, ReplaceView, SetComment,
            AlterRole, AlterGrants, AlterExtension, AlterSequence, SetSequenceOwner, AlterColumnCollation,
            AlterColumnStatistics, AlterTablePersistence, AlterRowSecurity, ReorderColumns)


def extends(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """``shorter`` is ``longer`` with some values left out, order kept."""
    rest = iter(longer)
    return len(longer) > len(shorter) and all(value in rest for value in shorter)


def reverse(change: Change) -> Change:
    """The change that undoes ``change`` (pure; ``reverse(reverse(c)) == c``).

    Example:
        >>> reverse(RenameTable("users", "accounts"))
        RenameTable(old='accounts', new='users')
    """
    kind: Any = type(change)
    if kind in _OPPOSITE:
        return cast(Change, _OPPOSITE[kind](*_positional(change), meta=change.meta))
    if isinstance(change, _SWAPPED):
        values = _positional(change)
        if len(values) == 3:  # (table, before, after)
            return cast(Change, kind(values[0], values[2], values[1], meta=change.meta))
        return cast(Change, kind(values[1], values[0], meta=change.meta))
    if isinstance(change, (RenameTable, RenameIndex)):
        return type(change)(change.new, change.old, meta=change.meta)
    if isinstance(change, RenameFunction):
        return RenameFunction(change.new, change.old, change.arguments, meta=change.meta)
    if isinstance(change, (RenameColumn, RenameConstraint)):
        return type(change)(change.table, change.new, change.old, meta=change.meta)
    if isinstance(change, AlterDefaultPrivileges):
        return AlterDefaultPrivileges(change.for_role, change.schema, change.on, change.after, change.before,
                                      meta=change.meta)
    if isinstance(change, AddEnumValue):
        return RecreateEnum(change.after, change.before, change.usages, meta=change.meta)
    if isinstance(change, RecreateEnum):
        if extends(change.before.values, change.after.values):
            return AddEnumValue(change.after, change.before, change.usages, meta=change.meta)
        return RecreateEnum(change.after, change.before, change.usages, meta=change.meta)
    raise TypeError(f"reverse: unsupported change {change!r}")


def dropping_kind(kind: type) -> type | None:
    """The change kind that drops what ``kind`` creates (``AddCheck`` -> ``DropCheck``)."""
    pairs = dict(CREATE_DROP_PAIRS)
    return pairs.get(kind)


def carried_object(change: Change) -> Any:
    """The object a create or drop change carries (the index of ``CreateIndex``, the FK of ``AddForeignKey``)."""
    return _positional(change)[-1]


def _positional(change: Change) -> tuple[Any, ...]:
    """The compared fields of a change, in declaration order (``meta`` and other uncompared fields excluded)."""
    return tuple(getattr(change, name) for name, spec in change.__dataclass_fields__.items()
                 if name != "meta" and spec.compare)


def destroys_data(change: Change) -> str | None:
    """What a change destroys for good (rows, values, a sequence position), for a warning; None if nothing."""
    from veza_schema.diff.typechange import classify_type_change

    match change:
        case DropTable(table=table):
            return f"DROP TABLE {table.name} deletes its rows"
        case DropColumn(table=table, column=column):
            return f"DROP COLUMN {table}.{column.name} deletes its values"
        case DropSequence(sequence=sequence):
            return f"DROP SEQUENCE {sequence.name} loses its current value"
        case DropExtension(extension=ext):
            return f"DROP EXTENSION {ext.name} drops its objects (and any data they hold)"
        case AlterColumnType(table=table, before=before, after=after):
            verdict = classify_type_change(before.type, after.type)
            if verdict.kind not in ("same", "widening"):
                return f"{table}.{after.name} {before.type} -> {after.type}: {verdict.note}"
    return None


def rfc(change: Change) -> str | None:
    """The RFC declared on the desired object (carried into the migration header)."""
    return change.meta.rfc


def _line(text: str) -> str:
    return " ".join(text.split())


def _column_text(column: Column) -> str:
    text = f"{column.type}{'' if column.nullable else ' NOT NULL'}"
    return text + (f" DEFAULT {column.default}" if column.default is not None else "")


def describe(change: Change) -> str:
    """One human line for the migration header: ``+`` adds, ``-`` drops, ``~`` alters, ``>`` renames."""
    text: str
    match change:
        case CreateRole(role=role) | DropRole(role=role):
            text = f"role {role.name}"
        case AlterRole():
            text = f"role {change.after.name} attributes or memberships"
        case CreateNamespace(namespace=namespace) | DropNamespace(namespace=namespace):
            text = f"schema {namespace.name}"
        case AlterGrants(target=granted):
            name = f"{granted.name}({granted.arguments})" if granted.kind == "function" else granted.name
            text = (f"privileges on {granted.kind} {name}: {_grants_line(change.before)} -> "
                    f"{_grants_line(change.after)}")
        case AlterDefaultPrivileges():
            where = f" in schema {change.schema}" if change.schema else ""
            text = (f"default privileges of {change.for_role} on {change.on}{where}: "
                    f"{_grants_line(change.before)} -> {_grants_line(change.after)}")
        case CreateExtension(extension=ext) | DropExtension(extension=ext):
            text = f"extension {ext.name}" + (f" version {ext.version}" if ext.version else "")
        case AlterExtension():
            text = (f"extension {change.after.name} version {change.before.version or 'default'} -> "
                    f"{change.after.version or 'default'}, schema {change.before.schema or 'public'} -> "
                    f"{change.after.schema or 'public'}")
        case CreateSequence(sequence=seq) | DropSequence(sequence=seq):
            text = f"sequence {seq.name}"
        case AlterSequence():
            text = f"sequence {change.after.name} options"
        case SetSequenceOwner():
            text = f"sequence {change.sequence} owned by {change.before or 'nothing'} -> {change.after or 'nothing'}"
        case AlterColumnCollation():
            text = (f"column {change.table}.{change.after.name} collation {change.before.collation or 'default'} -> "
                    f"{change.after.collation or 'default'}")
        case AlterColumnStatistics():
            text = (f"column {change.table}.{change.after.name} statistics target "
                    f"{change.before.statistics if change.before.statistics is not None else 'default'} -> "
                    f"{change.after.statistics if change.after.statistics is not None else 'default'}")
        case AlterTablePersistence():
            text = (f"table {change.table} {'UNLOGGED' if change.before else 'LOGGED'} -> "
                    f"{'UNLOGGED' if change.after else 'LOGGED'}")
        case AlterRowSecurity():
            text = (f"table {change.table} row-level security {_rls_words(change.before)} -> "
                    f"{_rls_words(change.after)}")
        case CreatePolicy(policy=policy) | DropPolicy(policy=policy):
            text = f"policy {policy.name} on {policy.table}"
        case AddExclusion(table=table, exclusion=ex) | DropExclusion(table=table, exclusion=ex):
            text = f"exclusion constraint {ex.name} on {table} ({', '.join(ex.elements)})"
        case CreateEnum(enum=enum) | DropEnum(enum=enum):
            text = f"enum {enum.name} ({', '.join(enum.values)})"
        case AddEnumValue():
            text = f"enum {change.after.name} value(s) {', '.join(change.values)}"
        case RecreateEnum():
            text = (f"enum {change.after.name} rebuilt: ({', '.join(change.before.values)}) -> "
                    f"({', '.join(change.after.values)})")
        case CreateCompositeType(ctype=ctype) | DropCompositeType(ctype=ctype):
            text = f"type {ctype.name}"
        case AlterCompositeType():
            text = f"type {change.after.name} attributes (drop + create)"
        case CreateFunction(function=fn) | DropFunction(function=fn):
            text = f"function {fn.name}({fn.arguments})"
        case ReplaceFunction():
            text = f"function {change.after.name}({change.after.arguments}) replaced"
        case RenameFunction():
            text = f"function {change.old}({change.arguments}) renamed to {change.new}"
        case CreatePartitionHelper() | DropPartitionHelper():
            text = "function veza_ensure_partitions (partition helper)"
        case CreateTable(table=table) | DropTable(table=table):
            text = f"table {table.name}"
        case RenameTable():
            text = f"table {change.old} renamed to {change.new}"
        case AddColumn(table=table, column=column) | DropColumn(table=table, column=column):
            text = f"column {table}.{column.name} {_column_text(column)}"
        case RenameColumn():
            text = f"column {change.table}.{change.old} renamed to {change.new}"
        case ReorderColumns():
            text = f"table {change.table} column order ({', '.join(change.before)}) -> ({', '.join(change.after)})"
        case AlterColumnType():
            text = (f"column {change.table}.{change.after.name} type {change.before.type} -> "
                    f"{change.after.type}")
        case AlterColumnDefault():
            text = (f"column {change.table}.{change.after.name} default {change.before.default} -> "
                    f"{change.after.default}")
        case AlterColumnNullability():
            text = (f"column {change.table}.{change.after.name} "
                    f"{'DROP NOT NULL' if change.after.nullable else 'SET NOT NULL'}")
        case AlterColumnIdentity():
            text = (f"column {change.table}.{change.after.name} identity {change.before.identity} -> "
                    f"{change.after.identity}")
        case AlterColumnGenerated():
            text = f"column {change.table}.{change.after.name} generated expression"
        case ChangePartitioning(before=before, after=after) if before is not None and before == after:
            text = f"table {change.table} partitions made ahead (premake) {before.premake} -> {after.premake}"
        case ChangePartitioning():
            text = f"table {change.table} partitioning {change.before} -> {change.after}"
        case AddPrimaryKey(table=table, primary_key=pk) | DropPrimaryKey(table=table, primary_key=pk):
            text = f"primary key {pk.name} on {table} ({', '.join(pk.columns)})"
        case AddUnique(table=table, unique=uq) | DropUnique(table=table, unique=uq):
            text = f"unique {uq.name} on {table} ({', '.join(uq.columns)})"
        case AddCheck(table=table, check=ck) | DropCheck(table=table, check=ck):
            text = f"check {ck.name} on {table}: {ck.expression}"
        case AddForeignKey(table=table, foreign_key=fk) | DropForeignKey(table=table, foreign_key=fk):
            text = (f"foreign key {fk.name} on {table} ({', '.join(fk.columns)}) -> {fk.ref_table}"
                    f"({', '.join(fk.ref_columns)})")
        case RenameConstraint():
            text = f"constraint {change.old} on {change.table} renamed to {change.new}"
        case CreateIndex(index=index) | DropIndex(index=index):
            text = f"index {index.name} on {index.table}"
        case RenameIndex():
            text = f"index {change.old} renamed to {change.new}"
        case CreateTrigger(trigger=trigger) | DropTrigger(trigger=trigger):
            text = f"trigger {trigger.name} on {trigger.table}"
        case CreateView(view=view) | DropView(view=view):
            text = f"{'materialized ' if view.materialized else ''}view {view.name}"
        case ReplaceView():
            text = f"view {change.after.name} query replaced"
        case SetComment():
            target = change.target
            name = f"{target.name}.{target.column}" if target.column else target.name
            text = f"comment on {target.kind} {name}"
        case _:
            raise TypeError(f"describe: unsupported change {change!r}")
    return f"{_SIGN[_verb(change)]} {_line(text)}"


_SIGN = {"create": "+", "drop": "-", "alter": "~", "rename": ">"}


def _grants_line(grants: Grants | None) -> str:
    if grants is None:
        return "default"
    return "; ".join(f"{role} {', '.join(privileges)}" for role, privileges in sorted(grants.items())) or "none"


def _rls_words(state: tuple[bool, bool]) -> str:
    enabled, forced = state
    return ("enabled" if enabled else "disabled") + (", forced" if forced else "")


def _verb(change: Change) -> str:
    if isinstance(change, SetSequenceOwner):
        return "alter"
    name = type(change).__name__
    if name.startswith(("Create", "Add")):
        return "create"
    if name.startswith("Drop"):
        return "drop"
    if name.startswith("Rename"):
        return "rename"
    return "alter"


def slug(change: Change) -> str:
    """A migration-name fragment for a lone change: ``add_column_users_bio``."""
    words = [_SNAKE.get(type(change).__name__, type(change).__name__.lower())]
    match change:
        case AddColumn() | DropColumn():
            words += [change.table, change.column.name]
        case CreateTable(table=t) | DropTable(table=t):
            words.append(t.name)
        case CreateIndex(index=i) | DropIndex(index=i):
            words.append(i.name)
        case AddUnique() | DropUnique():
            words.append(change.unique.name)
        case AddCheck() | DropCheck():
            words.append(change.check.name)
        case AddForeignKey() | DropForeignKey():
            words.append(change.foreign_key.name)
        case RenameTable() | RenameIndex() | RenameFunction():
            words.append(change.new)
        case RenameColumn():
            words += [change.table, change.new]
        case CreateTrigger(trigger=t) | DropTrigger(trigger=t):
            words.append(t.name)
        case AddEnumValue() | RecreateEnum():
            words.append(change.after.name)
        case AlterColumnType() | AlterColumnDefault() | AlterColumnNullability():
            words += [change.table, change.after.name]
        case _:
            pass
    return "_".join(words)


def _snake(name: str) -> str:
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


_SNAKE: dict[str, str] = {cls.__name__: _snake(cls.__name__) for cls in _OPPOSITE}
