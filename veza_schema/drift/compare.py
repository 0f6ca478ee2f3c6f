"""Drift: what a live database lacks, has in excess, or has differently, against ``schema/``.

Why a library module: the CLI (``veza-schema diff``), the tests and the benchmark all run
the same steps — introspect the live database, obtain the desired schema *as PostgreSQL
would hold it* (a shadow database by default, :mod:`veza_schema.db.shadow`; or sqlglot
normalization with ``offline=True``), leave out managed and excluded objects, diff with
:func:`veza_schema.diff.differ.diff_schemas` and order with
:func:`veza_schema.diff.order.order_changes`.

Direction: the live database is *current*, the YAML is *desired*, so a create/add change
(``+``) is something the database lacks, a drop (``-``) something it has in excess, an
alteration (``~``) or rename (``>``) something it has differently. The reconciling SQL is
the planner's rendering of exactly those changes.

The JSON document (:func:`drift_document`) is versioned; its shape is documented in
``docs/diff.md``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddEnumValue,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnDefault,
    AlterColumnGenerated,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnType,
    AlterCompositeType,
    Change,
    ChangePartitioning,
    CreateCompositeType,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreatePartitionHelper,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropCompositeType,
    DropEnum,
    DropExtension,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropPartitionHelper,
    DropPrimaryKey,
    DropTable,
    DropTrigger,
    DropUnique,
    DropView,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameIndex,
    RenameTable,
    ReplaceFunction,
    ReplaceView,
    SetComment,
    describe,
)
from veza_schema.managed import PARTITION_FUNCTION, is_managed_function, is_managed_table
from veza_schema.model import Index, Schema, Table, View

if TYPE_CHECKING:
    import psycopg
    from rich.tree import Tree

    from veza_schema.db.introspect import IntrospectionStats
    from veza_schema.diff.plan import Plan

DOCUMENT_VERSION = 1

Mode = Literal["shadow", "offline"]
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
        case CreateExtension(extension=ext) | DropExtension(extension=ext):
            return Subject("extension", ext.name)
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


# -- managed and excluded objects ---------------------------------------------------------------
def without_managed(schema: Schema) -> Schema:
    """``schema`` without the objects veza-schema manages outside ``schema/`` (never drift).

    The introspector already leaves them out; this keeps the rule true for any model.
    Partitions of partitioned tables never appear as tables in the model.
    """
    return replace(
        schema,
        tables={n: t for n, t in schema.tables.items() if not is_managed_table(n)},
        functions={n: f for n, f in schema.functions.items() if not is_managed_function(f.name)},
    )


def excluded(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def without_excluded(schema: Schema, patterns: Sequence[str]) -> Schema:
    """``schema`` without every object whose name matches one of ``patterns`` (``fnmatch``).

    Names matched: tables, views, enums, composite types, functions, extensions, and inside
    tables indexes, constraints and triggers by their own name and columns as ``table.column``.
    """
    if not patterns:
        return schema

    def keep(name: str) -> bool:
        return not excluded(name, patterns)

    def table(t: Table) -> Table:
        pk = t.primary_key if t.primary_key is None or keep(t.primary_key.name) else None
        return replace(
            t,
            columns=tuple(c for c in t.columns if keep(f"{t.name}.{c.name}")),
            primary_key=pk,
            uniques={n: u for n, u in t.uniques.items() if keep(n)},
            checks={n: c for n, c in t.checks.items() if keep(n)},
            foreign_keys={n: f for n, f in t.foreign_keys.items() if keep(n)},
            indexes={n: i for n, i in t.indexes.items() if keep(n)},
            triggers={n: g for n, g in t.triggers.items() if keep(n)},
        )

    def view(v: View) -> View:
        return replace(v, indexes={n: i for n, i in v.indexes.items() if keep(n)})

    return replace(
        schema,
        tables={n: table(t) for n, t in schema.tables.items() if keep(n)},
        views={n: view(v) for n, v in schema.views.items() if keep(n)},
        enums={n: e for n, e in schema.enums.items() if keep(n)},
        composite_types={n: c for n, c in schema.composite_types.items() if keep(n)},
        functions={n: f for n, f in schema.functions.items() if keep(f.name) and keep(n)},
        extensions={n: x for n, x in schema.extensions.items() if keep(n)},
    )


# -- offline comparison -------------------------------------------------------------------------
def align_expressions(current: Schema, desired: Schema,
                      normalize: Callable[[str], str] | None = None) -> Schema:
    """``current`` with each expression text replaced by the desired one when both mean the same.

    Why not diff two normalized models: the changes would then carry normalized texts, which
    are for comparison only and not meant to be run. Aligning keeps the real texts on both
    sides, so the differ's textual comparison sees only the differences that matter and the
    SQL renders the YAML's own expressions.
    """
    if normalize is None:
        from veza_schema.sql.normalize import normalize_expression as normalize
    assert normalize is not None
    norm = normalize

    def same(live: str | None, wanted: str | None) -> bool:
        if live is None or wanted is None:
            return live is wanted
        return live == wanted or norm(live) == norm(wanted)

    def pick(live: str | None, wanted: str | None) -> str | None:
        return wanted if same(live, wanted) else live

    def indexes(live: Mapping[str, Index], wanted: Mapping[str, Index]) -> dict[str, Index]:
        found: dict[str, Index] = {}
        for name, index in live.items():
            other = wanted.get(name)
            if other is not None and len(other.elements) == len(index.elements):
                elements = tuple(
                    replace(e, expression=o.expression)
                    if not e.is_column and not o.is_column and same(e.expression, o.expression) else e
                    for e, o in zip(index.elements, other.elements, strict=True)
                )
                index = replace(index, elements=elements, where=pick(index.where, other.where))
            found[name] = index
        return found

    tables: dict[str, Table] = {}
    for name, table in current.tables.items():
        other_table = desired.tables.get(name)
        if other_table is not None:
            columns = []
            for column in table.columns:
                wanted = other_table.column(column.name)
                if wanted is not None:
                    column = replace(column, default=pick(column.default, wanted.default),
                                     generated=pick(column.generated, wanted.generated))
                columns.append(column)
            checks = {n: replace(c, expression=pick(c.expression, other_table.checks[n].expression) or "")
                      if n in other_table.checks else c for n, c in table.checks.items()}
            triggers = {n: replace(t, when=pick(t.when, other_table.triggers[n].when))
                        if n in other_table.triggers else t for n, t in table.triggers.items()}
            table = replace(table, columns=tuple(columns), checks=checks, triggers=triggers,
                            indexes=indexes(table.indexes, other_table.indexes))
        tables[name] = table
    views: dict[str, View] = {}
    for name, view in current.views.items():
        other_view = desired.views.get(name)
        if other_view is not None:
            view = replace(view, query=pick(view.query, other_view.query) or "",
                           indexes=indexes(view.indexes, other_view.indexes))
        views[name] = view
    return replace(current, tables=tables, views=views)


# -- the report ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftReport:
    """The outcome of one comparison; ``changes`` are in the order the reconciling SQL runs."""

    changes: tuple[Change, ...]
    current: Schema
    desired: Schema
    mode: Mode
    database: str = ""
    excluded: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    queries: int = 0
    seconds: float = 0.0
    modules: Mapping[str, str] = field(default_factory=dict)

    @property
    def drift(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        """Reported items per kind (a drop + add of one object counts once, as different)."""
        found = {"missing": 0, "extra": 0, "different": 0}
        for item in report_items(self.changes):
            found[item.drift] += 1
        return found


def compare(current: Schema, desired: Schema, exclude: Sequence[str] = ()) -> list[Change]:
    """Ordered changes from ``current`` to ``desired``, managed and excluded objects left out."""
    from veza_schema.diff.differ import diff_schemas
    from veza_schema.diff.order import order_changes

    current = without_excluded(without_managed(current), exclude)
    desired = without_excluded(without_managed(desired), exclude)
    current = with_maintained_partitions(current, desired)
    return order_changes(diff_schemas(current, desired))


def with_maintained_partitions(current: Schema, desired: Schema) -> Schema:
    """Partitions made ahead by maintenance (`veza-schema partitions`) are not drift.

    PostgreSQL does not store ``premake``; the introspector reads it back from how many future
    partitions exist today. More than declared is maintenance's doing and is ignored; fewer
    means maintenance has lapsed, which stays visible as drift.
    """
    tables = dict(current.tables)
    for name, table in current.tables.items():
        wanted = desired.tables.get(name)
        live_spec, wanted_spec = table.partition, wanted.partition if wanted else None
        if live_spec is None or wanted_spec is None or live_spec.premake <= wanted_spec.premake:
            continue
        if replace(live_spec, premake=wanted_spec.premake) == wanted_spec:
            tables[name] = replace(table, partition=wanted_spec)
    return replace(current, tables=tables)


def module_map(*schemas: Schema) -> dict[str, str]:
    """Object name -> module, from YAML-loaded models (first one wins)."""
    found: dict[str, str] = {}
    for schema in schemas:
        groups: Iterable[Mapping[str, Any]] = (schema.tables, schema.views, schema.enums,
                                               schema.composite_types, schema.functions, schema.extensions)
        for group in groups:
            for name, item in group.items():
                if getattr(item, "module", "") and name not in found:
                    found[name] = item.module
    return found


def detect_drift(
    conn: psycopg.Connection[Any],
    desired: Schema,
    *,
    offline: bool = False,
    shadow_dsn: str | None = None,
    exclude: Sequence[str] = (),
    database: str = "",
    live_stats: IntrospectionStats | None = None,
) -> DriftReport:
    """Compare the database behind ``conn`` with ``desired`` (a model loaded from ``schema/``).

    Args:
        conn: the live database.
        desired: the YAML model.
        offline: compare through sqlglot normalization instead of a shadow database (also
            used, for the texts that differ, when the shadow server's major version is not
            the live one's).
        shadow_dsn: the server to build the shadow database on (default: the embedded server).
        exclude: ``fnmatch`` globs of object names that are never drift.
        database: how to name the database in reports.
        live_stats: receives the live introspection's query count, time and warnings.

    Raises:
        DatabaseError: the shadow database could not be built.
    """
    from veza_schema.db.introspect import IntrospectionStats, introspect

    stats = live_stats if live_stats is not None else IntrospectionStats()
    live = introspect(conn, stats=stats)
    if offline:
        target = desired
        live = align_expressions(live, desired)
    else:
        from veza_schema.db.shadow import build_in_shadow

        shadow_stats = IntrospectionStats()
        built = build_in_shadow(desired, shadow_dsn, shadow_stats, live_version=conn.info.server_version)
        stats.warnings.extend(shadow_stats.warnings)
        target = built.schema
        if built.server_version // 10000 != conn.info.server_version // 10000:
            # Another major version deparses some expressions (view queries above all) differently.
            live = align_expressions(live, target)
    changes = compare(live, target, exclude)
    return DriftReport(
        changes=tuple(changes), current=live, desired=target, mode="offline" if offline else "shadow",
        database=database, excluded=tuple(exclude), warnings=tuple(stats.warnings), queries=stats.queries,
        seconds=stats.seconds, modules=module_map(desired),
    )


# -- SQL ----------------------------------------------------------------------------------------
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "15min"


@dataclass(frozen=True)
class Reconciliation:
    """The planner's SQL for a list of changes, and the changes it refused (no online-safe form)."""

    statements: tuple[str, ...]
    refused: tuple[tuple[Change, str], ...] = ()
    # Changes with no online-safe form whose statements are still included, last, under a warning.
    unsafe: tuple[tuple[Change, str], ...] = ()


def reconcile(changes: Sequence[Change], current: Schema, desired: Schema) -> Reconciliation:
    """The statements that apply ``changes``, online-safe, from the migrations' planner.

    Statements come in the planner's file order (``DROP INDEX CONCURRENTLY``, new enum
    values, the transactional main part wrapped in ``BEGIN``/``COMMIT``, then ``CREATE INDEX
    CONCURRENTLY`` and validations), after the migrations' ``SET lock_timeout`` and
    ``statement_timeout``: run them one by one in autocommit, as ``psql`` runs a script.
    A change the planner refuses as not online-safe (e.g. removing an enum value, which
    rebuilds the type and rewrites every table using it) comes last, under a warning comment,
    and is listed in ``unsafe``; one with no in-place form at all is listed in ``refused``.
    """
    from veza_schema.diff.plan import UnsafeChangeError, build_plan

    remaining = list(changes)
    refused: list[tuple[Change, str]] = []
    while True:
        try:
            plan = build_plan(remaining, current, desired)
            break
        except UnsafeChangeError as exc:
            if not any(exc.change is c for c in remaining):
                raise
            refused.append((exc.change, exc.reason))
            remaining = [c for c in remaining if c is not exc.change]
    statements: list[str] = []
    if plan.files:
        statements += _timeouts()
    statements += _plan_statements(plan)
    unsafe: list[tuple[Change, str]] = []
    if refused:
        # Reconciling drift is a human's decision made on reading the SQL: show the statements of
        # changes without an online-safe form too (a rebuilt enum rewrites its tables), last and
        # under a warning, unless they have no in-place form at all.
        try:
            forced = build_plan([c for c, _ in refused], current, desired, allow_forbidden=True)
        except UnsafeChangeError:
            pass
        else:
            unsafe, refused = refused, []
            if not plan.files:
                statements += _timeouts()
            statements += [f"-- WARNING, not online-safe: {describe(c)}: {reason}" for c, reason in unsafe]
            statements += _plan_statements(forced)
    return Reconciliation(tuple(statements), tuple(refused), tuple(unsafe))


def _plan_statements(plan: Plan) -> list[str]:
    """A plan's statements one by one, transactional files wrapped in BEGIN/COMMIT."""
    from veza_schema.sql.split import split_statements

    statements: list[str] = []
    for planned in plan.files:
        body = [s.text.strip() + ";" for section in planned.up_sections() for text in section.statements
                for s in split_statements(text)]
        if body:
            statements += ["BEGIN;", *body, "COMMIT;"] if planned.transactional else body
    return statements


def reconcile_statements(changes: Sequence[Change], current: Schema, desired: Schema) -> list[str]:
    """Just the statements of :func:`reconcile` (refused changes are left out)."""
    return list(reconcile(changes, current, desired).statements)


def _timeouts() -> list[str]:
    """The migrations' session timeouts, so reconciling SQL waits for locks no longer than they do."""
    from psycopg import sql

    return [sql.SQL("SET lock_timeout = {};").format(sql.Literal(LOCK_TIMEOUT)).as_string(None),
            sql.SQL("SET statement_timeout = {};").format(sql.Literal(STATEMENT_TIMEOUT)).as_string(None)]


# -- outputs ------------------------------------------------------------------------------------
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


_PAIRS: dict[type, tuple[type, str, str]] = {
    AddForeignKey: (DropForeignKey, "foreign_key", "ForeignKey"),
    AddCheck: (DropCheck, "check", "Check"),
    AddUnique: (DropUnique, "unique", "Unique"),
    AddPrimaryKey: (DropPrimaryKey, "primary_key", "PrimaryKey"),
    CreateIndex: (DropIndex, "index", "Index"),
    CreateTrigger: (DropTrigger, "trigger", "Trigger"),
    CreateView: (DropView, "view", "View"),
    CreateFunction: (DropFunction, "function", "Function"),
}


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
        for add_kind, (drop_kind, _, _) in _PAIRS.items():
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
            attr, suffix = _PAIRS[type(change)][1:]
            old, new = getattr(drop, attr), getattr(change, attr)
            text = describe(change)[2:]
            detail = "; ".join(_differences(old, new)) if type(old) is type(new) else ""
            result.append(Item((drop, change), "~", "Replace" + suffix, f"{text}: {detail}" if detail else text))
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
        attr = _PAIRS[type(item.change)][1]
        details = {"before": _encode(getattr(item.changes[0], attr)), "after": _encode(getattr(item.change, attr))}
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


def drift_document(report: DriftReport) -> dict[str, Any]:
    """The versioned JSON shape of ``diff --format json`` (documented in ``docs/diff.md``)."""
    reported = report_items(report.changes)
    return {
        "version": DOCUMENT_VERSION,
        "kind": "drift",
        "database": report.database,
        "mode": report.mode,
        "drift": report.drift,
        "counts": report.counts(),
        "excluded": list(report.excluded),
        "warnings": list(report.warnings),
        "changes": [item_entry(item, report.modules) for item in reported],
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
    from rich.markup import escape
    from rich.tree import Tree

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
