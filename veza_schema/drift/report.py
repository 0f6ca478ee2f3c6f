"""How drift (or a review) is shown: items per object, the versioned JSON document, a rich tree.

The differ expresses a modified constraint, index, trigger or view as a drop plus an add;
reports show such a pair as one ``~`` item naming the fields that differ. The JSON document
(:func:`drift_document`) is versioned; its shape is documented in ``docs/diff.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.markup import escape
from rich.tree import Tree

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
    carried_object,
    describe,
    dropping_kind,
)
from veza_schema.drift.compare import DriftReport
from veza_schema.managed import PARTITION_FUNCTION

DOCUMENT_VERSION = 1
DriftKind = Literal["missing", "extra", "different"]


# -- what a change is about -------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subject:
    """The object a change touches: its kind, its name, and the table (or view) it belongs to."""

    kind: str
    name: str
    table: str | None = None


def subject(change: Change) -> Subject:
    """What ``change`` is about, for grouping and for the JSON document."""
    match change:
        case CreateRole(role=role) | DropRole(role=role):
            return Subject("role", role.name)
        case AlterRole():
            return Subject("role", change.after.name)
        case CreateNamespace(namespace=namespace) | DropNamespace(namespace=namespace):
            return Subject("schema", namespace.name)
        case AlterGrants(target=target):
            owner = target.name if target.kind in ("table", "view") else None
            return Subject("privileges", target.name, owner)
        case AlterDefaultPrivileges():
            return Subject("default privileges", f"{change.for_role} on {change.on}"
                                                 + (f" in {change.schema}" if change.schema else ""))
        case CreateExtension(extension=ext) | DropExtension(extension=ext):
            return Subject("extension", ext.name)
        case AlterExtension():
            return Subject("extension", change.after.name)
        case CreateSequence(sequence=sequence) | DropSequence(sequence=sequence):
            return Subject("sequence", sequence.name)
        case AlterSequence():
            return Subject("sequence", change.after.name)
        case SetSequenceOwner():
            return Subject("sequence", change.sequence)
        case AlterColumnCollation() | AlterColumnStatistics():
            return Subject("column", change.after.name, change.table)
        case AlterTablePersistence():
            return Subject("persistence", change.table, change.table)
        case ReorderColumns():
            return Subject("column order", change.table, change.table)
        case AlterRowSecurity():
            return Subject("row-level security", change.table, change.table)
        case CreatePolicy(policy=policy) | DropPolicy(policy=policy):
            return Subject("policy", policy.name, policy.table)
        case AddExclusion(table=table, exclusion=ex) | DropExclusion(table=table, exclusion=ex):
            return Subject("exclusion constraint", ex.name, table)
        case CreateEnum(enum=enum) | DropEnum(enum=enum):
            return Subject("enum", enum.name)
        case AddEnumValue() | RecreateEnum():
            return Subject("enum", change.after.name)
        case CreateCompositeType(ctype=ctype) | DropCompositeType(ctype=ctype):
            return Subject("type", ctype.name)
        case AlterCompositeType():
            return Subject("type", change.after.name)
        case CreateFunction(function=fn) | DropFunction(function=fn):
            return Subject("function", fn.name)
        case ReplaceFunction():
            return Subject("function", change.after.name)
        case CreatePartitionHelper() | DropPartitionHelper():
            return Subject("function", PARTITION_FUNCTION)
        case CreateTable(table=table) | DropTable(table=table):
            return Subject("table", table.name, table.name)
        case RenameTable():
            return Subject("table", change.new, change.new)
        case RenameFunction():
            return Subject("function", change.new)
        case AddColumn(table=table, column=column) | DropColumn(table=table, column=column):
            return Subject("column", column.name, table)
        case AlterColumnType() | AlterColumnDefault() | AlterColumnNullability() | AlterColumnIdentity() \
                | AlterColumnGenerated():
            return Subject("column", change.after.name, change.table)
        case RenameColumn():
            return Subject("column", change.new, change.table)
        case ChangePartitioning():
            return Subject("partitioning", change.table, change.table)
        case AddPrimaryKey(table=table, primary_key=pk) | DropPrimaryKey(table=table, primary_key=pk):
            return Subject("primary key", pk.name, table)
        case AddUnique(table=table, unique=uq) | DropUnique(table=table, unique=uq):
            return Subject("unique", uq.name, table)
        case AddCheck(table=table, check=ck) | DropCheck(table=table, check=ck):
            return Subject("check", ck.name, table)
        case AddForeignKey(table=table, foreign_key=fk) | DropForeignKey(table=table, foreign_key=fk):
            return Subject("foreign key", fk.name, table)
        case RenameConstraint():
            return Subject("constraint", change.new, change.table)
        case CreateIndex(index=index) | DropIndex(index=index):
            return Subject("index", index.name, index.table)
        case RenameIndex():
            return Subject("index", change.new)
        case CreateTrigger(trigger=trigger) | DropTrigger(trigger=trigger):
            return Subject("trigger", trigger.name, trigger.table)
        case CreateView(view=view) | DropView(view=view):
            return Subject("materialized view" if view.materialized else "view", view.name, view.name)
        case ReplaceView():
            return Subject("view", change.after.name, change.after.name)
        case SetComment(target=target):
            if target.kind == "column":
                return Subject("comment", f"{target.name}.{target.column}", target.name)
            if target.kind in ("table", "view", "materialized view"):
                return Subject("comment", target.name, target.name)
            return Subject("comment", target.name)
    raise TypeError(f"subject: unsupported change {change!r}")


def drift_kind(change: Change) -> DriftKind:
    """Create/add: the database lacks it; drop: it has it in excess; anything else: it differs."""
    sign = describe(change)[:1]
    return "missing" if sign == "+" else "extra" if sign == "-" else "different"


# -- items and outputs ------------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    """Compared fields only (no source positions, waivers or other YAML metadata)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.compare and f.name != "meta"}
    if isinstance(value, Mapping):
        return {str(k): _encode(v) for k, v in sorted(value.items())}
    if isinstance(value, (tuple, list)):
        return [_encode(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return sorted(_encode(v) for v in value)
    return value


@dataclass(frozen=True)
class Item:
    """One reported difference: a change, or a drop and an add of the same object (it differs).

    The differ expresses a modified constraint, index, trigger or materialized view as a drop
    plus an add (that is also how it is reconciled); reports show the pair as one ``~`` line
    naming the fields that differ, database value first.
    """

    changes: tuple[Change, ...]
    sign: str
    kind: str
    description: str

    @property
    def change(self) -> Change:
        return self.changes[-1]

    @property
    def drift(self) -> DriftKind:
        return "different" if len(self.changes) > 1 else drift_kind(self.changes[0])


# Objects the differ replaces by a drop and an add (reported as one "Replace<Object>" item).
_REPLACED: tuple[type, ...] = (AddForeignKey, AddCheck, AddUnique, AddPrimaryKey, CreateIndex, CreateTrigger,
                               CreateView, CreateFunction, AddExclusion, CreatePolicy)
_PAIRS: dict[type, type] = {kind: drop for kind in _REPLACED if (drop := dropping_kind(kind)) is not None}


def _replace_kind(add_kind: type) -> str:
    """``AddForeignKey`` -> ``ReplaceForeignKey``."""
    return "Replace" + add_kind.__name__.removeprefix("Add").removeprefix("Create")


def _differences(before: Any, after: Any) -> list[str]:
    """``field before -> after`` for each compared field that differs."""
    found = []
    for f in dataclasses.fields(before):
        if not f.compare or f.name == "meta":
            continue
        old, new = getattr(before, f.name), getattr(after, f.name)
        if old != new:
            found.append(f"{f.name} {_short(old)} -> {_short(new)}")
    return found


def _short(value: Any) -> str:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "(" + ", ".join(f"{k}={v}" for k, v in _encode(value).items() if v not in (None, False, ())) + ")"
    if isinstance(value, tuple):
        return "(" + ", ".join(_short(v) for v in value) + ")"
    if isinstance(value, Mapping):
        return "{" + ", ".join(sorted(value)) + "}"
    return " ".join(str(value).split())


def report_items(changes: Sequence[Change]) -> list[Item]:
    """The changes as reported: drop + add pairs of one object merged into one ``~`` item."""
    drops: dict[tuple[type, Subject], Change] = {}
    for change in changes:
        for add_kind, drop_kind in _PAIRS.items():
            if isinstance(change, drop_kind):
                drops.setdefault((add_kind, subject(change)), change)
    partner: dict[int, Change] = {}  # id(add) -> its drop
    for change in changes:
        drop = drops.get((type(change), subject(change))) if type(change) in _PAIRS else None
        if drop is not None and id(drop) not in {id(d) for d in partner.values()}:
            partner[id(change)] = drop
    paired_drops = {id(d) for d in partner.values()}
    result: list[Item] = []
    for change in changes:
        if id(change) in paired_drops:
            continue
        drop = partner.get(id(change))
        if drop is not None:
            old, new = carried_object(drop), carried_object(change)
            text = describe(change)[2:]
            detail = "; ".join(_differences(old, new)) if type(old) is type(new) else ""
            description = f"{text}: {detail}" if detail else text
            result.append(Item((drop, change), "~", _replace_kind(type(change)), description))
            continue
        line = describe(change)
        result.append(Item((change,), line[:1], type(change).__name__, line[2:]))
    return result


def item_entry(item: Item, modules: Mapping[str, str]) -> dict[str, Any]:
    """One reported difference as JSON data (see ``docs/diff.md``)."""
    about = subject(item.change)
    owner = about.table or about.name
    details: Any = _encode(item.change)
    if len(item.changes) > 1:
        details = {"before": _encode(carried_object(item.changes[0])), "after": _encode(carried_object(item.change))}
    return {
        "change": item.kind,
        "drift": item.drift,
        "sign": item.sign,
        "object": about.kind,
        "name": about.name,
        "table": about.table,
        "module": modules.get(owner) or None,
        "description": item.description,
        "details": details,
    }


def count_items(changes: Sequence[Change]) -> dict[str, int]:
    """Reported items per kind (a drop + add of one object counts once, as different)."""
    found = {"missing": 0, "extra": 0, "different": 0}
    for item in report_items(changes):
        found[item.drift] += 1
    return found


def drift_document(report: DriftReport) -> dict[str, Any]:
    """The versioned JSON shape of ``diff --format json`` (documented in ``docs/diff.md``)."""
    reported = report_items(report.changes)
    return {
        "version": DOCUMENT_VERSION,
        "kind": "drift",
        "database": report.database,
        "mode": report.mode,
        "shadow": report.shadow or None,
        "drift": report.drift,
        "counts": count_items(report.changes),
        "excluded": list(report.excluded),
        "warnings": list(report.warnings),
        "changes": [item_entry(item, report.modules) for item in reported],
        "unmodeled": [{"kind": entry.fact.kind, "name": entry.fact.name, "detail": entry.fact.detail,
                       "side": entry.side} for entry in report.unmodeled],
        "ignored_unmodeled": list(report.ignored_unmodeled),
    }


def group_title(about: Subject, views: Iterable[str]) -> str:
    """``table users``, ``view trending_tracks``, or the object itself when it has no table."""
    if about.table is not None:
        return f"{'view' if about.table in set(views) else 'table'} {about.table}"
    return f"{about.kind} {about.name}"


_STYLE = {"+": "green", "-": "red", "~": "yellow", ">": "cyan"}


def changes_tree(title: str, changes: Sequence[Change], modules: Mapping[str, str],
                 views: Iterable[str] = ()) -> Tree:
    """A rich tree: one branch per table (or other object), one colored line per reported item."""
    view_names = set(views)
    tree = Tree(title)
    groups: dict[str, list[Item]] = {}
    owners: dict[str, str] = {}
    for item in report_items(changes):
        about = subject(item.change)
        key = group_title(about, view_names)
        groups.setdefault(key, []).append(item)
        owners[key] = about.table or about.name
    for key in sorted(groups):
        module = modules.get(owners[key])
        label = f"[bold]{escape(key)}[/]" + (f" [dim]({escape(module)})[/]" if module else "")
        branch = tree.add(label)
        for item in groups[key]:
            branch.add(f"[{_STYLE.get(item.sign, 'white')}]{escape(item.sign + ' ' + item.description)}[/]")
    return tree
