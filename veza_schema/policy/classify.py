"""Classify every change of a diff as allowed, RFC-required or forbidden, with the reason.

One job: judging changes; its length is one handler per change kind, as the policy is a table.

Why a separate pass over the differ's list: the differ stays policy-free (it serves generate,
drift and docs too), while the policy needs context the list alone does not carry: whether
the base already deprecated a dropped object, whether a dropped foreign key is redefined
under the same name, whether an index goes away only because its table does. Each decision
names a registered ``POL`` rule (:mod:`veza_schema.policy.rules`), so its documentation is
one lookup away, and points at the YAML the reviewer must read.

Deprecations are YAML-only (the differ sees no change), so they are compared here, on the
models themselves. ``prior`` models are earlier states consulted for deprecations when the
base cannot carry them (the migration snapshot keeps no YAML metadata).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

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
)
from veza_schema.diff.typechange import classify_type_change
from veza_schema.model import Column, Deprecation, Meta, PartitionSpec, Schema, SourcePos, View
from veza_schema.policy import rules as R
from veza_schema.policy.rules import PolicyClass, PolicyRule
from veza_schema.project import DEFAULT_RFC_PATTERN  # one default, shared with the project settings
from veza_schema.sql.parse import parse_sql
from veza_schema.sql.volatility import volatile_calls

Relocate = Callable[[SourcePos | None], SourcePos | None]

@dataclass(frozen=True, slots=True)
class Decision:
    """One change (or YAML-only deprecation) with its class, reason, location and RFC."""

    policy: PolicyRule
    summary: str  # the change, as in a migration header: "- column users.bio text"
    reason: str
    object: str  # YAML-shaped path: tables.users.columns.bio
    pos: SourcePos | None
    change: Change | None = None
    rfc: str | None = None
    rfc_error: str | None = None  # an RFC-required change without a valid reference: why
    accepted: bool = False  # a forbidden change let through by --allow-forbidden with an RFC

    @property
    def klass(self) -> PolicyClass:
        return self.policy.klass

    @property
    def code(self) -> str:
        return self.policy.code

    @property
    def blocking(self) -> bool:
        """Fails ``check``: forbidden (not accepted), or RFC-required without a valid RFC."""
        if self.klass == "forbidden":
            return not self.accepted
        return self.klass == "rfc-required" and self.rfc_error is not None


@dataclass(frozen=True, slots=True)
class PolicyReport:
    decisions: tuple[Decision, ...]
    rfc_pattern: str = DEFAULT_RFC_PATTERN

    def of_class(self, klass: PolicyClass) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.klass == klass)

    @property
    def blocking(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.blocking)

    @property
    def forbidden(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.klass == "forbidden" and not d.accepted)

    @property
    def missing_rfc(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.klass == "rfc-required" and d.rfc_error is not None)

    @property
    def rfcs(self) -> tuple[str, ...]:
        """Every valid RFC reference of the change set, sorted: what a migration header lists."""
        return tuple(sorted({d.rfc for d in self.decisions if d.rfc and d.rfc_error is None}))

    def rfc_for(self, change: Change) -> str | None:
        """The valid RFC approving ``change`` (an equal change from another diff works too): for headers."""
        for decision in self.decisions:
            if decision.change == change and decision.rfc and decision.rfc_error is None:
                return decision.rfc
        return None

    @property
    def exit_code(self) -> int:
        return 1 if self.blocking else 0


def rfc_matches(reference: str, pattern: str = DEFAULT_RFC_PATTERN) -> bool:
    return re.search(pattern, reference) is not None


def _same_place(pos: SourcePos | None) -> SourcePos | None:
    return pos


@dataclass
class _Context:
    base: Schema
    desired: Schema
    changes: Sequence[Change]
    prior: Sequence[Schema]
    relocate: Relocate
    dropped_tables: set[str] = field(default_factory=set)
    created_tables: set[str] = field(default_factory=set)
    dropped_columns: set[tuple[str, str]] = field(default_factory=set)
    added_names: dict[tuple[type, str, str], Change] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for change in self.changes:
            if isinstance(change, DropTable):
                self.dropped_tables.add(change.table.name)
            elif isinstance(change, CreateTable):
                self.created_tables.add(change.table.name)
            elif isinstance(change, DropColumn):
                self.dropped_columns.add((change.table, change.column.name))
            key = _pair_key(change)
            if key is not None and not key[3]:
                self.added_names[key[:3]] = change

    def deprecation(self, table: str, column: str | None, own: Meta) -> Deprecation | None:
        """The deprecation of an object in the base (its own meta) or any prior state."""
        if own.deprecated is not None:
            return own.deprecated
        for schema in (self.base, *self.prior):
            found = schema.tables.get(table)
            if found is None:
                continue
            meta = found.meta if column is None else getattr(found.column(column), "meta", None)
            if meta is not None and meta.deprecated is not None:
                return meta.deprecated
        return None

    def goes_with_drop(self, table: str, columns: Iterable[str] = ()) -> bool:
        return table in self.dropped_tables or any((table, c) in self.dropped_columns for c in columns)


_PAIRED: dict[type, tuple[type, str]] = {
    DropForeignKey: (AddForeignKey, "foreign_key"), AddForeignKey: (AddForeignKey, "foreign_key"),
    DropUnique: (AddUnique, "unique"), AddUnique: (AddUnique, "unique"),
    DropCheck: (AddCheck, "check"), AddCheck: (AddCheck, "check"),
    DropPrimaryKey: (AddPrimaryKey, "primary_key"), AddPrimaryKey: (AddPrimaryKey, "primary_key"),
    DropExclusion: (AddExclusion, "exclusion"), AddExclusion: (AddExclusion, "exclusion"),
}


def _pair_key(change: Change) -> tuple[type, str, str, bool] | None:
    """(kind, table, name, is_drop) of a droppable named object, to pair a drop with its re-add."""
    if type(change) in _PAIRED:
        kind, attr = _PAIRED[type(change)]
        obj = getattr(change, attr)
        return kind, getattr(change, "table"), obj.name, type(change).__name__.startswith("Drop")  # noqa: B009
    if isinstance(change, (CreateIndex, DropIndex)):
        return CreateIndex, change.index.table, change.index.name, isinstance(change, DropIndex)
    if isinstance(change, (CreateTrigger, DropTrigger)):
        return CreateTrigger, change.trigger.table, change.trigger.name, isinstance(change, DropTrigger)
    if isinstance(change, (CreateFunction, DropFunction)):
        return CreateFunction, "", change.function.name, isinstance(change, DropFunction)
    if isinstance(change, (CreateView, DropView)):
        return CreateView, "", change.view.name, isinstance(change, DropView)
    return None


def classify(
    changes: Sequence[Change],
    base: Schema,
    desired: Schema,
    *,
    prior: Sequence[Schema] = (),
    rfc_pattern: str = DEFAULT_RFC_PATTERN,
    extra_rfc: str | None = None,
    allow_forbidden: bool = False,
    relocate: Relocate = _same_place,
) -> PolicyReport:
    """Classify ``changes`` (``diff_schemas(base, desired)``) under the seed's change policy.

    Args:
        changes: the differ's list for ``base`` -> ``desired``.
        base, desired: the two models (their YAML metadata: RFCs, deprecations, positions).
        prior: earlier states consulted for deprecations the base may not carry.
        rfc_pattern: a regular expression every RFC reference must match.
        extra_rfc: an RFC given on the command line (``--rfc``), for changes that have none.
        allow_forbidden: accept forbidden changes when ``extra_rfc`` is a valid RFC.
        relocate: maps base positions (e.g. a temporary git checkout) to the paths shown.

    Returns:
        A :class:`PolicyReport`, decisions sorted by class (forbidden first), then location.

    Example:
        >>> from veza_schema.model import Column, Table
        >>> from veza_schema.diff.differ import diff_schemas
        >>> old = Schema(tables={"t": Table("t", (Column("id", "uuid"),))})
        >>> new = Schema(tables={"t": Table("t", (Column("id", "uuid"), Column("bio", "text", nullable=True)))})
        >>> [(d.code, d.klass) for d in classify(diff_schemas(old, new), old, new).decisions]
        [('POL001', 'allowed')]
    """
    ctx = _Context(base, desired, changes, prior, relocate)
    decisions: list[Decision] = []
    for change in changes:
        rule, reason, pos = _judge(change, ctx)
        decisions.append(_decide(rule, describe(change), reason, _object_path(change), pos, change,
                                 _rfc_candidates(change, ctx), rfc_pattern, extra_rfc, allow_forbidden))
    for rule, summary, reason, obj, pos, candidates in _deprecations(ctx):
        decisions.append(_decide(rule, summary, reason, obj, pos, None, candidates, rfc_pattern, extra_rfc,
                                 allow_forbidden))
    order = {"forbidden": 0, "rfc-required": 1, "allowed": 2}
    decisions.sort(key=lambda d: (order[d.klass], d.pos or SourcePos("", 0, 0), d.code, d.summary))
    return PolicyReport(tuple(decisions), rfc_pattern)


def _decide(rule: PolicyRule, summary: str, reason: str, obj: str, pos: SourcePos | None, change: Change | None,
            candidates: list[str | None], pattern: str, extra_rfc: str | None,
            allow_forbidden: bool) -> Decision:
    found = [c for c in candidates if c]
    if rule.klass == "forbidden":
        if allow_forbidden and extra_rfc and rfc_matches(extra_rfc, pattern):
            return Decision(rule, summary, reason, obj, pos, change, extra_rfc, None, accepted=True)
        return Decision(rule, summary, reason, obj, pos, change, None, None)
    if rule.klass == "allowed":
        return Decision(rule, summary, reason, obj, pos, change, found[0] if found else None, None)
    if extra_rfc:
        found.append(extra_rfc)
    valid = [c for c in found if rfc_matches(c, pattern)]
    if valid:
        return Decision(rule, summary, reason, obj, pos, change, valid[0], None)
    if found:
        error = f"RFC reference {found[0]!r} does not match the required pattern {pattern}"
        return Decision(rule, summary, reason, obj, pos, change, found[0], error)
    return Decision(rule, summary, reason, obj, pos, change, None,
                    "no RFC reference (`rfc: RFC-NNNN` on the object or its table)")


# -- where a change's RFC may be declared -------------------------------------------------------
def _table_of(change: Change) -> str | None:
    table = getattr(change, "table", None)
    if isinstance(table, str):
        return table
    if isinstance(change, (CreateTable, DropTable)):
        return change.table.name
    if isinstance(change, (CreateIndex, DropIndex)):
        return change.index.table
    if isinstance(change, (CreateTrigger, DropTrigger)):
        return change.trigger.table
    if isinstance(change, RenameTable):
        return change.new
    if isinstance(change, SetComment) and change.target.kind in ("table", "column"):
        return change.target.name
    return None


def _columns_of(change: Change) -> tuple[str, ...]:
    """Columns a change is about (for a check or an index expression: the columns it reads)."""
    for attr in ("foreign_key", "unique", "primary_key"):
        obj = getattr(change, attr, None)
        if obj is not None:
            return tuple(obj.columns)
    if isinstance(change, (AddCheck, DropCheck)):
        return _read_columns(change.check.expression)
    if isinstance(change, (CreateIndex, DropIndex)):
        index = change.index
        read = [c for e in index.elements if not e.is_column for c in _read_columns(e.expression)]
        read += [c for c in _read_columns(index.where or "")]
        return tuple(e.expression for e in index.elements if e.is_column) + index.include + tuple(read)
    if isinstance(change, (AlterColumnType, AlterColumnDefault, AlterColumnNullability, AlterColumnIdentity,
                           AlterColumnGenerated)):
        return (change.after.name,)
    if isinstance(change, RenameColumn):
        return (change.new,)
    if isinstance(change, SetComment) and change.target.column:
        return (change.target.column,)
    return ()


def _read_columns(expression: str) -> tuple[str, ...]:
    if not expression:
        return ()
    return tuple(sorted(parse_sql(expression).columns))


def _rfc_candidates(change: Change, ctx: _Context) -> list[str | None]:
    """The object's own RFC, a re-added counterpart's, its column's, then its table's."""
    candidates: list[str | None] = [change.meta.rfc]
    key = _pair_key(change)
    if key is not None and key[3]:
        counterpart = ctx.added_names.get(key[:3])
        if counterpart is not None:
            candidates.append(counterpart.meta.rfc)
    table_name = _table_of(change)
    table = ctx.desired.tables.get(table_name) if table_name else None
    if table is not None:
        columns = _columns_of(change)
        if len(columns) == 1 and table.column(columns[0]) is not None:
            candidates.append(table.column(columns[0]).meta.rfc)  # type: ignore[union-attr]
        candidates.append(table.meta.rfc)
    return candidates


# -- the judgement of one change ------------------------------------------------------------------
def _judge(change: Change, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    handler = _HANDLERS.get(type(change))
    if handler is None:  # a change kind the differ gained later: fail loudly, never allow silently
        raise TypeError(f"change policy: no rule for {type(change).__name__}")
    return handler(change, ctx)


def _add_column(change: AddColumn, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    column = change.column
    pos = column.meta.pos
    if column.identity or column.generated:
        what = "an identity" if column.identity else "a stored generated expression"
        return R.ADD_REWRITING_COLUMN, f"{what} fills every existing row: a table rewrite", pos
    volatile = volatile_calls(column.default, ctx.desired)
    if volatile:
        return (R.ADD_REWRITING_COLUMN, f"default {column.default} calls volatile {', '.join(volatile)}(): every "
                "existing row is rewritten", column.meta.at("default"))
    if column.nullable:
        suffix = f" with the constant default {column.default}" if column.default else ""
        return R.ADD_NULLABLE_COLUMN, f"nullable column{suffix}: catalog-only, no reader or writer affected", pos
    if column.default is not None:
        return (R.ADD_NOT_NULL_COLUMN_WITH_DEFAULT, f"NOT NULL column with default {column.default}: compatible "
                "and catalog-only, but outside the seed's list", pos)
    return R.ADD_NOT_NULL_COLUMN, "NOT NULL column without a default: fails on a table with rows", pos


def _drop_column(change: DropColumn, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    pos = ctx.relocate(change.column.meta.pos) or change.meta.pos
    deprecation = ctx.deprecation(change.table, change.column.name, change.column.meta)
    if deprecation is not None:
        return R.DROP_DEPRECATED_COLUMN, f"deprecated since {_since(deprecation)} in the base: the contract step", pos
    reason = "dropped without being deprecated in the base first: its values are lost"
    look_alike = _rename_look_alike(change, ctx)
    if look_alike:
        reason += (f"; if it was renamed to {look_alike}, add `renamed_from: {change.column.name}` to "
                   f"{change.table}.{look_alike}")
    return R.DROP_COLUMN, reason, pos


def _rename_look_alike(change: DropColumn, ctx: _Context) -> str | None:
    for other in ctx.changes:
        if isinstance(other, AddColumn) and other.table == change.table and other.column.type == change.column.type:
            return other.column.name
    return None


def _since(deprecation: Deprecation) -> str:
    return deprecation.since + (f" ({deprecation.rfc})" if deprecation.rfc else "")


def _drop_table(change: DropTable, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    pos = ctx.relocate(change.table.meta.pos)
    deprecation = ctx.deprecation(change.table.name, None, change.table.meta)
    if deprecation is not None:
        return R.DROP_DEPRECATED_TABLE, f"deprecated since {_since(deprecation)} in the base: the contract step", pos
    return R.DROP_TABLE, "dropped without being deprecated in the base first: its rows are lost", pos


def _alter_type(change: AlterColumnType, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    verdict = classify_type_change(change.before.type, change.after.type)
    pos = change.after.meta.at("type")
    if verdict.kind in ("same", "widening"):
        return R.WIDEN_COLUMN_TYPE, f"compatible (widening): {verdict.note}", pos
    return R.INCOMPATIBLE_TYPE, f"{verdict.kind}: {verdict.note}", pos


def _partitioning(change: ChangePartitioning, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    pos = change.meta.at("partition_by")
    before, after = change.before, change.after
    if before is None or after is None:
        what = "partitioning added to an existing table" if before is None else "partitioning removed"
        return R.CHANGE_PARTITIONING, what + ": the whole table must be copied", pos
    if (before.strategy, before.columns) != (after.strategy, after.columns):
        return (R.CHANGE_PARTITIONING, f"partition strategy or key {_spec(before)} -> {_spec(after)}: the whole "
                "table must be copied", pos)
    if before.interval != after.interval:
        return (R.CHANGE_PARTITIONING, f"partition interval {before.interval} -> {after.interval}: new partitions "
                "would overlap the existing ones", pos)
    if before.default_partition and not after.default_partition:
        return R.CHANGE_PARTITIONING, "DEFAULT partition removed: it is dropped with the rows it holds", pos
    if after.premake < before.premake:
        return R.PARTITION_SHRINK, f"premake {before.premake} -> {after.premake}", pos
    return R.PARTITION_MAINTENANCE, f"premake {before.premake} -> {after.premake}, default partition " \
        f"{'kept' if before.default_partition else 'added' if after.default_partition else 'absent'}", pos


def _spec(spec: PartitionSpec) -> str:
    return f"{spec.strategy}({', '.join(spec.columns)})"


def _drop_fk(change: DropForeignKey, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    fk = change.foreign_key
    pos = ctx.relocate(fk.meta.pos) or change.meta.pos
    if ctx.goes_with_drop(change.table, fk.columns) or ctx.goes_with_drop(fk.ref_table, fk.ref_columns):
        return R.DERIVED_CHANGE, "goes away with a dropped table or column, judged on its own", pos
    if (AddForeignKey, change.table, fk.name) in ctx.added_names:
        return R.REDEFINE_FOREIGN_KEY, "dropped and added again under the same name: integrity is kept", pos
    return R.DROP_FOREIGN_KEY, f"{change.table}({', '.join(fk.columns)}) -> {fk.ref_table} stops being " \
        "enforced", pos


def _drop_dependent(rule: PolicyRule, reason: str) -> Callable[[Change, _Context],
                                                               tuple[PolicyRule, str, SourcePos | None]]:
    """Drops of indexes, constraints and triggers: derived when their table or column goes too."""

    def judge(change: Change, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
        table = _table_of(change) or ""
        obj = next(getattr(change, a) for a in ("index", "unique", "check", "trigger", "primary_key", "exclusion")
                   if hasattr(change, a))
        pos = ctx.relocate(obj.meta.pos) or change.meta.pos
        columns = _columns_of(change)
        if ctx.goes_with_drop(table, columns):
            return R.DERIVED_CHANGE, "goes away with a dropped table or column, judged on its own", pos
        key = _pair_key(change)
        redefined = key is not None and key[:3] in ctx.added_names
        return rule, reason + (" (redefined: dropped and added again)" if redefined else ""), pos

    return judge


def _create_dependent(change: Change, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    table = _table_of(change) or ""
    pos = change.meta.pos
    if table in ctx.created_tables:
        return R.DERIVED_CHANGE, f"part of the new table {table}, judged with it", pos
    if isinstance(change, CreateIndex):
        if change.index.unique:
            return R.ADD_UNIQUENESS, "a unique index fails on existing duplicates", pos
        return R.CREATE_NON_UNIQUE_INDEX, "non-unique index: cannot fail on data", pos
    if isinstance(change, (AddUnique, AddPrimaryKey)):
        return R.ADD_UNIQUENESS, "fails on existing duplicates; builds under ACCESS EXCLUSIVE", pos
    if isinstance(change, (AddCheck, AddForeignKey)):
        return R.ADD_VALIDATED_CONSTRAINT, "fails on existing rows that violate it; scans the table", pos
    return R.CHANGE_TRIGGER, "changes what every write to the table does", pos


def _recreate_enum(change: RecreateEnum, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    removed = [v for v in change.before.values if v not in change.after.values]
    if removed:
        return (R.REMOVE_ENUM_VALUE, f"value(s) {', '.join(removed)} removed: rows holding them block the rebuild",
                change.meta.pos)
    return R.REORDER_ENUM, "values reordered: the type is rebuilt and its columns rewritten", change.meta.pos


def _alter_composite(change: AlterCompositeType, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    name = change.before.name
    users = [f"{t.name}.{c.name}" for t in ctx.base.tables.values() for c in t.columns
             if c.type in (name, name + "[]")]
    if users:
        return R.ALTER_USED_COMPOSITE, f"used by {', '.join(users)}: an incompatible type change", change.meta.pos
    return R.CHANGE_TYPE, "unused composite type redefined (drop + create)", change.meta.pos


def _simple(rule: PolicyRule, reason: str, base_pos: bool = False) -> Callable[
        [Change, _Context], tuple[PolicyRule, str, SourcePos | None]]:
    def judge(change: Change, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
        pos = change.meta.pos
        if base_pos:
            for attr in ("enum", "ctype", "function", "extension"):
                obj = getattr(change, attr, None)
                if obj is not None:
                    pos = ctx.relocate(obj.meta.pos) or pos
        return rule, reason, pos

    return judge


def _on_table(rule: PolicyRule, reason: str) -> Callable[[Change, _Context], tuple[PolicyRule, str, SourcePos | None]]:
    """Part of a new table (judged with it), or judged on its own on an existing one."""

    def judge(change: Change, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
        table = getattr(change, "table", None)
        policy = getattr(change, "policy", None)
        table = policy.table if policy is not None else table
        if table in ctx.created_tables:
            return R.DERIVED_CHANGE, f"part of the new table {table}, judged with it", change.meta.pos
        return rule, reason, change.meta.pos

    return judge


def _keyed_pos(rule: PolicyRule, reason: str, key: str) -> Callable[
        [Change, _Context], tuple[PolicyRule, str, SourcePos | None]]:
    def judge(change: Change, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
        return rule, reason, change.meta.at(key)

    return judge


def _nullability(change: AlterColumnNullability, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    if change.after.nullable:
        return R.ALTER_NULLABILITY, "DROP NOT NULL: readers may now get NULLs", change.meta.at("nullable")
    return R.ALTER_NULLABILITY, "SET NOT NULL: fails on existing NULLs and scans the table", change.meta.pos


def _same_view(before: View | None, after: View | None) -> bool:
    """Unchanged definition: the differ recreates such views around a change of a table they read."""
    return before is not None and after is not None and before.materialized == after.materialized \
        and " ".join(before.query.split()) == " ".join(after.query.split())


_RECREATED = "dropped and recreated unchanged around a change of a table it reads, judged with that change"


def _drop_view(change: DropView, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    pos = ctx.relocate(change.view.meta.pos) or change.meta.pos
    if _same_view(change.view, ctx.desired.views.get(change.view.name)):
        return R.DERIVED_CHANGE, _RECREATED, pos
    return R.CHANGE_VIEW, "readers of the view break", pos


def _create_view(change: CreateView, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    if _same_view(ctx.base.views.get(change.view.name), change.view):
        return R.DERIVED_CHANGE, _RECREATED, change.meta.pos
    if change.view.materialized:
        return R.CHANGE_VIEW, "a materialized view runs its whole query and stores the result", change.meta.pos
    return R.CREATE_VIEW, "a plain view holds no data", change.meta.pos


def _rename_index(change: RenameIndex, ctx: _Context) -> tuple[PolicyRule, str, SourcePos | None]:
    """An index renamed by its own ``renamed_from`` is a declared rename; otherwise it follows one."""
    if change.meta.renamed_from == change.old:
        return R.RENAME, "scripts naming the index (REINDEX, hints, monitoring) must switch", \
            change.meta.at("renamed_from")
    return R.DERIVED_CHANGE, "follows a declared rename", change.meta.pos


_HANDLERS: dict[type, Callable[[Change, _Context], tuple[PolicyRule, str, SourcePos | None]]] = {
    CreateExtension: _simple(R.CHANGE_EXTENSION, "a new extension on every server"),
    DropExtension: _simple(R.CHANGE_EXTENSION, "an extension removed", base_pos=True),
    CreateEnum: _simple(R.CREATE_TYPE, "a new type changes nothing until a column uses it"),
    DropEnum: _simple(R.CHANGE_TYPE, "an enum type dropped", base_pos=True),
    AddEnumValue: _simple(R.ADD_ENUM_VALUE, "typed readers must know the new value before it is written"),
    RecreateEnum: _recreate_enum,  # type: ignore[dict-item]
    CreateCompositeType: _simple(R.CREATE_TYPE, "a new type changes nothing until a column uses it"),
    DropCompositeType: _simple(R.CHANGE_TYPE, "a composite type dropped", base_pos=True),
    AlterCompositeType: _alter_composite,  # type: ignore[dict-item]
    CreateFunction: _simple(R.CHANGE_FUNCTION, "a new function"),
    ReplaceFunction: _simple(R.CHANGE_FUNCTION, "the body of a function in use changes"),
    DropFunction: _simple(R.CHANGE_FUNCTION, "a function dropped", base_pos=True),
    CreatePartitionHelper: _simple(R.DERIVED_CHANGE, "the managed partition helper, needed by a partitioned table"),
    DropPartitionHelper: _simple(R.DERIVED_CHANGE, "the managed partition helper, no longer needed"),
    CreateTable: _simple(R.CREATE_TABLE, "a new table: a new contract in a locked schema"),
    DropTable: _drop_table,  # type: ignore[dict-item]
    RenameTable: _keyed_pos(R.RENAME, "queries using the old name break at commit", "renamed_from"),
    RenameFunction: _keyed_pos(R.RENAME, "callers using the old name break at commit; triggers follow it",
                               "renamed_from"),
    AddColumn: _add_column,  # type: ignore[dict-item]
    DropColumn: _drop_column,  # type: ignore[dict-item]
    RenameColumn: _keyed_pos(R.RENAME, "queries using the old name break at commit", "renamed_from"),
    AlterColumnType: _alter_type,  # type: ignore[dict-item]
    AlterColumnDefault: _keyed_pos(R.ALTER_COLUMN_DEFAULT, "changes what inserts omitting the column write",
                                   "default"),
    AlterColumnNullability: _nullability,  # type: ignore[dict-item]
    AlterColumnIdentity: _keyed_pos(R.ALTER_COLUMN_KIND, "identity changed", "identity"),
    AlterColumnGenerated: _keyed_pos(R.ALTER_COLUMN_KIND, "generated expression changed: every row recomputed",
                                     "generated"),
    ChangePartitioning: _partitioning,  # type: ignore[dict-item]
    AddPrimaryKey: _create_dependent,
    DropPrimaryKey: _drop_dependent(R.DROP_PRIMARY_KEY, "row identity and the foreign keys to it depend on it"),
    AddUnique: _create_dependent,
    DropUnique: _drop_dependent(R.RELAX_CONSTRAINT, "uniqueness stops being enforced"),
    AddCheck: _create_dependent,
    DropCheck: _drop_dependent(R.RELAX_CONSTRAINT, "the check stops being enforced"),
    AddForeignKey: _create_dependent,
    DropForeignKey: _drop_fk,  # type: ignore[dict-item]
    RenameConstraint: _simple(R.DERIVED_CHANGE, "follows a declared rename"),
    CreateIndex: _create_dependent,
    DropIndex: _drop_dependent(R.DROP_INDEX, "queries using it may slow down"),
    RenameIndex: _rename_index,  # type: ignore[dict-item]
    CreateTrigger: _create_dependent,
    DropTrigger: _drop_dependent(R.CHANGE_TRIGGER, "changes what every write to the table does"),
    CreateView: _create_view,  # type: ignore[dict-item]
    ReplaceView: _simple(R.CHANGE_VIEW, "readers of the view see a different query"),
    DropView: _drop_view,  # type: ignore[dict-item]
    SetComment: _keyed_pos(R.CHANGE_COMMENT, "documentation only", "comment"),
    CreateRole: _simple(R.CHANGE_ACCESS, "a new role (created on the server if missing)"),
    DropRole: _simple(R.CHANGE_ACCESS, "a role no longer declared (kept on the server)"),
    AlterRole: _simple(R.CHANGE_ACCESS, "a role's attributes or memberships changed"),
    AlterGrants: _simple(R.CHANGE_ACCESS, "who may use the object changes"),
    AlterDefaultPrivileges: _simple(R.CHANGE_ACCESS, "who may use objects created later changes"),
    AlterRowSecurity: _on_table(R.CHANGE_ACCESS, "which rows each role sees changes"),
    CreatePolicy: _on_table(R.CHANGE_ACCESS, "which rows each role sees changes"),
    DropPolicy: _on_table(R.CHANGE_ACCESS, "which rows each role sees changes"),
    CreateNamespace: _simple(R.CREATE_SCHEMA_OR_SEQUENCE, "a new schema"),
    DropNamespace: _simple(R.DROP_SCHEMA_OR_SEQUENCE, "a schema dropped"),
    CreateSequence: _simple(R.CREATE_SCHEMA_OR_SEQUENCE, "a new sequence"),
    DropSequence: _simple(R.DROP_SCHEMA_OR_SEQUENCE, "a sequence dropped: its position is lost"),
    AlterSequence: _simple(R.CHANGE_STORAGE, "the sequence's options change the ids it gives"),
    SetSequenceOwner: _simple(R.DERIVED_CHANGE, "follows the column that uses the sequence"),
    AlterExtension: _simple(R.CHANGE_EXTENSION, "an extension updated or moved"),
    AlterColumnCollation: _keyed_pos(R.CHANGE_STORAGE, "ordering and uniqueness follow the new collation",
                                     "collation"),
    AlterColumnStatistics: _keyed_pos(R.TUNE_STATISTICS, "planner statistics only", "statistics"),
    AlterTablePersistence: _keyed_pos(R.CHANGE_STORAGE, "an UNLOGGED table loses its rows on a crash; the switch "
                                                        "rewrites it", "unlogged"),
    AddExclusion: _on_table(R.ADD_UNIQUENESS, "fails on existing conflicting rows; builds under ACCESS EXCLUSIVE"),
    DropExclusion: _drop_dependent(R.RELAX_CONSTRAINT, "the exclusion stops being enforced"),
    ReorderColumns: _simple(R.DERIVED_CHANGE, "column order only; the planner refuses it (no in-place form)"),
}


# -- object paths (as waivers and lint findings name objects) -----------------------------------
def _object_path(change: Change) -> str:
    match change:
        case CreateTable(table=t) | DropTable(table=t):
            return f"tables.{t.name}"
        case RenameTable():
            return f"tables.{change.new}"
        case RenameFunction():
            return f"functions.{change.new}"
        case AddColumn(table=table, column=column) | DropColumn(table=table, column=column):
            return f"tables.{table}.columns.{column.name}"
        case RenameColumn():
            return f"tables.{change.table}.columns.{change.new}"
        case AlterColumnType() | AlterColumnDefault() | AlterColumnNullability() | AlterColumnIdentity() \
                | AlterColumnGenerated():
            return f"tables.{change.table}.columns.{change.after.name}"
        case ChangePartitioning():
            return f"tables.{change.table}.partition_by"
        case AddPrimaryKey() | DropPrimaryKey():
            return f"tables.{change.table}.primary_key"
        case AddUnique(table=table, unique=obj) | DropUnique(table=table, unique=obj):
            return f"tables.{table}.unique.{obj.name}"
        case AddCheck(table=table, check=ck) | DropCheck(table=table, check=ck):
            return f"tables.{table}.checks.{ck.name}"
        case AddForeignKey(table=table, foreign_key=fk) | DropForeignKey(table=table, foreign_key=fk):
            return f"tables.{table}.foreign_keys.{fk.name}"
        case RenameConstraint():
            return f"tables.{change.table}.constraints.{change.new}"
        case CreateIndex(index=index) | DropIndex(index=index):
            return f"tables.{index.table}.indexes.{index.name}"
        case RenameIndex():
            return f"indexes.{change.new}"
        case CreateTrigger(trigger=tg) | DropTrigger(trigger=tg):
            return f"tables.{tg.table}.triggers.{tg.name}"
        case CreateEnum(enum=enum) | DropEnum(enum=enum):
            return f"enums.{enum.name}"
        case AddEnumValue() | RecreateEnum():
            return f"enums.{change.after.name}"
        case CreateCompositeType(ctype=ct) | DropCompositeType(ctype=ct):
            return f"types.{ct.name}"
        case AlterCompositeType():
            return f"types.{change.after.name}"
        case CreateFunction(function=fn) | DropFunction(function=fn):
            return f"functions.{fn.name}"
        case ReplaceFunction():
            return f"functions.{change.after.name}"
        case CreatePartitionHelper() | DropPartitionHelper():
            return "functions.veza_ensure_partitions"
        case CreateView(view=view) | DropView(view=view):
            return f"views.{view.name}"
        case ReplaceView():
            return f"views.{change.after.name}"
        case CreateExtension(extension=ext) | DropExtension(extension=ext):
            return f"extensions.{ext.name}"
        case SetComment():
            target = change.target
            if target.kind == "column":
                return f"tables.{target.name}.columns.{target.column}"
            prefix = {"table": "tables", "type": "types", "function": "functions"}.get(target.kind, "views")
            return f"{prefix}.{target.name}"
    return type(change).__name__


# -- YAML-only: deprecations ----------------------------------------------------------------------
def _deprecations(ctx: _Context) -> list[tuple[PolicyRule, str, str, str, SourcePos | None, list[str | None]]]:
    """Deprecation markers added or withdrawn on tables and columns present on both sides."""
    found: list[tuple[PolicyRule, str, str, str, SourcePos | None, list[str | None]]] = []
    for name in sorted(set(ctx.base.tables) & set(ctx.desired.tables)):
        table = ctx.desired.tables[name]
        base_table = ctx.base.tables[name]
        items: list[tuple[str | None, Meta, Meta | None]] = [(None, table.meta, base_table.meta)]
        for column in table.columns:
            before: Column | None = base_table.column(column.name)
            if before is not None:
                items.append((column.name, column.meta, before.meta))
        for column_name, meta, base_meta in items:
            label = f"table {name}" if column_name is None else f"column {name}.{column_name}"
            path = f"tables.{name}" + (f".columns.{column_name}" if column_name else "")
            had = ctx.deprecation(name, column_name, base_meta or Meta())
            if meta.deprecated is not None and had is None:
                dep = meta.deprecated
                found.append((R.DEPRECATE, f"~ {label} deprecated since {dep.since}",
                              "the approval of its later removal; nothing changes in the database", path,
                              meta.at("deprecated"), [dep.rfc, meta.rfc, table.meta.rfc]))
            elif meta.deprecated is None and base_meta is not None and base_meta.deprecated is not None:
                found.append((R.DEPRECATION_WITHDRAWN, f"~ {label} no longer deprecated",
                              "the object stays; its planned removal is cancelled", path, meta.pos, [meta.rfc]))
    return found
