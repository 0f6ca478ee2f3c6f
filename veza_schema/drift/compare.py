"""Drift: what a live database lacks, has in excess, or has differently, against ``schema/``.

Why a library module: the CLI (``veza-schema diff``), the tests and the benchmark all run
the same steps: introspect the live database, obtain the desired schema *as PostgreSQL
would hold it* (a shadow database by default, :mod:`veza_schema.db.shadow`; or sqlglot
normalization with ``offline=True``), leave out managed and excluded objects, diff with
:func:`veza_schema.diff.differ.diff_schemas` and order with
:func:`veza_schema.diff.order.order_changes`.

Direction: the live database is *current*, the YAML is *desired*, so a create/add change
(``+``) is something the database lacks, a drop (``-``) something it has in excess, an
alteration (``~``) or rename (``>``) something it has differently. Reports are in
:mod:`.report`, the reconciling SQL in :mod:`.reconcile`.
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import psycopg

from veza_schema.db.introspect import UNMODELED_KINDS, IntrospectionStats, Unmodeled, introspect
from veza_schema.diff.changes import Change
from veza_schema.diff.differ import diff_schemas
from veza_schema.diff.order import order_changes
from veza_schema.drift.shadow_cache import build_in_shadow_cached
from veza_schema.managed import is_managed_function, is_managed_table
from veza_schema.model import Index, Schema, Table, View

Mode = Literal["shadow", "offline"]


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

    Names matched: tables, views, enums, composite types, functions, extensions, sequences,
    schemas, roles, and inside tables indexes, constraints, triggers and policies by their own
    name and columns as ``table.column``. Objects of other schemas match as ``schema.name``.
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
            exclusions={n: x for n, x in t.exclusions.items() if keep(n)},
            policies={n: p for n, p in t.policies.items() if keep(n)},
        )

    def view(v: View) -> View:
        return replace(v, indexes={n: i for n, i in v.indexes.items() if keep(n)},
                       triggers={n: g for n, g in v.triggers.items() if keep(n)})

    return replace(
        schema,
        tables={n: table(t) for n, t in schema.tables.items() if keep(n)},
        views={n: view(v) for n, v in schema.views.items() if keep(n)},
        enums={n: e for n, e in schema.enums.items() if keep(n)},
        composite_types={n: c for n, c in schema.composite_types.items() if keep(n)},
        functions={n: f for n, f in schema.functions.items() if keep(f.name) and keep(n)},
        extensions={n: x for n, x in schema.extensions.items() if keep(n)},
        sequences={n: q for n, q in schema.sequences.items() if keep(n)},
        namespaces={n: x for n, x in schema.namespaces.items() if keep(n)},
        roles={n: r for n, r in schema.roles.items() if keep(n)},
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
        from veza_schema.sql.normalize import normalize_expression  # sqlglot: only offline or across versions

        normalize = normalize_expression
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


# -- facts the model does not carry -----------------------------------------------------------------
@dataclass(frozen=True, order=True)
class UnmodeledDrift:
    """A catalog fact the model cannot carry that differs: held by the database only, or by schema/ only."""

    fact: Unmodeled
    side: Literal["database", "schema"]

    def __str__(self) -> str:
        where = "only in the database" if self.side == "database" else "only in what schema/ builds"
        return f"{self.fact} [{self.fact.kind}, {where}]"


def check_unmodeled_kinds(kinds: Iterable[str]) -> None:
    """Raise ``ValueError`` naming a kind ``--ignore-unmodeled`` does not know."""
    unknown = sorted(set(kinds) - set(UNMODELED_KINDS) - {"all"})
    if unknown:
        raise ValueError(f"unknown unmodeled kind(s) {', '.join(unknown)}; known: all, "
                         f"{', '.join(sorted(UNMODELED_KINDS))}")


def unmodeled_drift(live: Iterable[Unmodeled], built: Iterable[Unmodeled], ignore: Sequence[str] = (),
                    exclude: Sequence[str] = ()) -> tuple[UnmodeledDrift, ...]:
    """Facts the database holds that the desired schema does not (and the reverse), minus ignored kinds.

    The shadow database is built from YAML, which cannot express these facts, so any fact of
    the live database is a difference ``diff`` must not hide: it is reported by name.
    """
    def kept(fact: Unmodeled) -> bool:
        if "all" in ignore or fact.kind in ignore:
            return False
        return not (fact.subject and excluded(fact.subject, exclude))

    live_facts, built_facts = Counter(f for f in live if kept(f)), Counter(f for f in built if kept(f))
    found = [UnmodeledDrift(fact, "database") for fact in sorted((live_facts - built_facts).elements())]
    found += [UnmodeledDrift(fact, "schema") for fact in sorted((built_facts - live_facts).elements())]
    return tuple(found)


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
    unmodeled: tuple[UnmodeledDrift, ...] = ()
    ignored_unmodeled: tuple[str, ...] = ()
    source: Schema | None = None  # the YAML model, when ``desired`` was built in a shadow database
    shadow: str = ""  # where the shadow database was built ("a postgres:15 container"); "" offline

    @property
    def drift(self) -> bool:
        return bool(self.changes) or bool(self.unmodeled)


def without_invalid_indexes(live: Schema, desired: Schema, stats: IntrospectionStats) -> Schema:
    """``live`` without the INVALID indexes that ``desired`` declares, so each shows as missing.

    Why: an INVALID index (a concurrent build that failed or was interrupted) exists in the
    catalog but no query uses it and no constraint can rely on it; treating it as present
    would report "no drift" over a broken index. Reported as missing, its reconciling SQL is
    the online build, which drops the INVALID leftover first. An INVALID index the YAML does
    not declare stays in ``live`` and is reported as extra. The introspector's note names each.
    """
    invalid = set(stats.invalid_indexes)
    if not invalid:
        return live
    wanted = {name for table in desired.tables.values() for name in table.indexes}
    wanted |= {name for view in desired.views.values() for name in view.indexes}
    for table in desired.tables.values():
        wanted |= {key.name for key in (table.primary_key, *table.uniques.values()) if key is not None}
    tables = {n: replace(t, indexes={i: ix for i, ix in t.indexes.items() if i not in invalid or i not in wanted})
              for n, t in live.tables.items()}
    views = {n: replace(v, indexes={i: ix for i, ix in v.indexes.items() if i not in invalid or i not in wanted})
             for n, v in live.views.items()}
    return replace(live, tables=tables, views=views)


def compare(current: Schema, desired: Schema, exclude: Sequence[str] = ()) -> list[Change]:
    """Ordered changes from ``current`` to ``desired``, managed and excluded objects left out."""
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
    ignore_unmodeled: Sequence[str] = (),
    shadow_cache: Path | None = None,
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
        ignore_unmodeled: kinds of unmodeled facts (:data:`UNMODELED_KINDS`, or ``all``) accepted as
            they are: differences of those kinds are not drift.
        shadow_cache: a directory keeping the shadow's model per rendered script and server
            (:mod:`veza_schema.drift.shadow_cache`); None builds the shadow every time.

    Raises:
        DatabaseError: the shadow database could not be built.
    """
    stats = live_stats if live_stats is not None else IntrospectionStats()
    built_facts: list[Unmodeled] = []
    shadow = ""
    if offline:
        live = introspect(conn, stats=stats, roles=desired.roles)
        target = desired
        live = align_expressions(live, desired)
    else:
        # The live database is read on its own connection in a second thread while this one builds
        # and reads the shadow: both wait mostly on their servers, so the slower side sets the time.
        live_version = conn.info.server_version
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="veza-introspect") as pool:
            reading = pool.submit(introspect, conn, stats=stats, roles=desired.roles)
            shadow_stats = IntrospectionStats()
            try:
                built = build_in_shadow_cached(desired, shadow_dsn, shadow_cache, shadow_stats,
                                               live_version=live_version)
            finally:
                live = reading.result()  # its error first when both fail: the database is what was asked about
        stats.warnings.extend(shadow_stats.warnings)
        built_facts = shadow_stats.unmodeled
        target, shadow = built.schema, built.server
        if built.server_version // 10000 != conn.info.server_version // 10000:
            # Another major version deparses some expressions (view queries above all) differently.
            live = align_expressions(live, target)
    live = without_invalid_indexes(live, desired, stats)
    changes = compare(live, target, exclude)
    return DriftReport(
        changes=tuple(changes), current=live, desired=target, mode="offline" if offline else "shadow",
        database=database, excluded=tuple(exclude), warnings=tuple(stats.warnings), queries=stats.queries,
        seconds=stats.seconds, modules=module_map(desired), shadow=shadow,
        unmodeled=unmodeled_drift(stats.unmodeled, built_facts, ignore_unmodeled, exclude),
        ignored_unmodeled=tuple(ignore_unmodeled), source=None if offline else desired,
    )
