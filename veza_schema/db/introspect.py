"""Live database -> the typed model, in a fixed number of bulk catalog queries.

One job: reading a schema out of pg_catalog; its length is one query and one builder per object kind.

Why bulk: ``diff`` must stay fast on databases with thousands of tables, so every
object kind is read with one query over the whole schema (never one query per
table) and assembled in Python. :class:`IntrospectionStats` counts the queries so
benchmarks can show the count does not grow with the table count.

Why faithful: the introspector reports what PostgreSQL stores, in PostgreSQL's own
spelling (``format_type``, ``pg_get_expr``, ``pg_get_constraintdef``...). It never
rewrites expressions to look like the YAML; comparing differently spelled texts is the
job of :mod:`veza_schema.sql.normalize` (offline) or of a shadow database (online).

Objects veza-schema manages itself are left out: partitions of partitioned tables
(created by ``veza_ensure_partitions`` and ``veza-schema partitions``), the SQLx history
table ``_sqlx_migrations`` and functions named ``veza_*``. Objects owned by extensions are
left out too (they come back with ``CREATE EXTENSION``). Catalog facts the model cannot
express (EXCLUDE constraints, trigger arguments, disabled triggers...) are not dropped
silently: each one adds a line to :attr:`IntrospectionStats.warnings`.

Queries (10, whatever the table count): search_path setup, relations (tables, partitions
and their bounds, views, sequences), columns (tables and composite types), constraints,
indexes, types (enums, domains), functions, triggers, comments, extensions; plus one to
restore the caller's search_path when called inside an open transaction. Works on
PostgreSQL 13 and later: the catalog columns older majors lack (``confdelsetcols``,
``indnullsnotdistinct``, ``prosqlbody``) are replaced by what they mean there (:data:`_SINCE`).
"""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, cast

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from veza_schema.managed import MANAGED_FUNCTION_PREFIX, classify_span, is_managed_table, period_start
from veza_schema.model import (
    CheckConstraint,
    Column,
    CompositeAttribute,
    CompositeType,
    EnumType,
    Extension,
    ForeignKey,
    Function,
    Index,
    IndexElement,
    PartitionSpec,
    PrimaryKey,
    Schema,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)
from veza_schema.sql.text import wrapped_whole

IGNORED_EXTENSIONS: frozenset[str] = frozenset({"plpgsql"})

Row = dict[str, Any]


@dataclass
class IntrospectionStats:
    """What one :func:`introspect` call cost and what it could not represent."""

    queries: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # Indexes PostgreSQL holds as INVALID (a failed or interrupted concurrent build): in the model
    # like any index, since they exist, but unusable; drift reports them (see drift.compare).
    invalid_indexes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- queries
# Every query takes the namespace oid as %(ns)s and returns one row per object of the
# whole schema. "Owned by an extension" is pg_depend deptype 'e'.

_SETUP = """
WITH old AS MATERIALIZED (SELECT current_setting('search_path') AS search_path)
SELECT n.oid AS ns, old.search_path AS old_search_path,
       set_config('search_path', quote_ident(n.nspname) || ', pg_catalog', true) AS new_search_path
FROM old JOIN pg_namespace n ON n.nspname = %(schema)s
"""

_RESTORE_SEARCH_PATH = "SELECT set_config('search_path', %(path)s, true)"

_RELATIONS = """
SELECT c.oid, c.relname, c.relkind, c.relispartition,
       pt.partstrat, pg_get_partkeydef(c.oid) AS partkeydef,
       ARRAY(SELECT pt.partattrs[k - 1] FROM generate_series(1, pt.partnatts) AS k ORDER BY k)
           AS partattrs,
       COALESCE(pt.partdefid <> 0, false) AS has_default_partition,
       inh.inhparent AS parent,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partbound,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS viewdef,
       (c.relkind = 'S' AND EXISTS (
           SELECT 1 FROM pg_depend d
           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
       )) AS owned_sequence,
       (c.relkind IN ('r', 'p') AND NOT c.relispartition AND EXISTS (
           SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid
       )) AS inherits
FROM pg_class c
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid AND c.relispartition
WHERE c.relnamespace = %(ns)s
  AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'S', 'f')
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, a.attidentity, a.attgenerated,
       pg_get_expr(ad.adbin, ad.adrelid, true) AS default_expr,
       (a.attcollation <> 0 AND a.attcollation <> t.typcollation) AS custom_collation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE c.relnamespace = %(ns)s
  AND c.relkind IN ('r', 'p', 'c')
  AND NOT c.relispartition
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype, con.conkey, con.confrelid, con.confkey,
       rc.relname AS ref_table, rn.nspname AS ref_schema,
       -- Column numbers are named in Python from the columns query; a referenced table that
       -- query does not cover (another schema, a partition) is named here.
       CASE WHEN rc.relnamespace <> %(ns)s OR rc.relispartition THEN
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.ord)
       END AS ref_columns,
       con.confdeltype, con.confupdtype, con.confmatchtype,
       con.condeferrable, con.condeferred, con.convalidated,
       con.confdelsetcols IS NOT NULL AS partial_set_action,
       COALESCE((SELECT i.indnullsnotdistinct FROM pg_index i WHERE i.indexrelid = con.conindid
                 AND con.contype = 'u'), false) AS nulls_not_distinct,
       -- Deparsing is the costly part: only for the kinds whose text the model keeps.
       CASE WHEN con.contype IN ('c', 'x') THEN pg_get_constraintdef(con.oid, true) END AS definition
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE c.relnamespace = %(ns)s
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND con.contype IN ('p', 'u', 'c', 'f', 'x')
  AND con.conparentid = 0
"""

# Key columns come first in indkey, INCLUDE columns after (indnkeyatts..indnatts).
_INDEXES = """
SELECT i.indrelid, ic.relname AS name, am.amname AS method, i.indisunique, i.indisvalid,
       i.indnkeyatts, i.indnatts,
       ARRAY(SELECT i.indkey[k - 1] FROM generate_series(1, i.indnatts) AS k ORDER BY k) AS attnums,
       ARRAY(SELECT COALESCE(a.attname::text, pg_get_indexdef(i.indexrelid, k, true))
             FROM generate_series(1, i.indnatts) AS k
             LEFT JOIN pg_attribute a
                    ON a.attrelid = i.indrelid AND a.attnum = i.indkey[k - 1] AND i.indkey[k - 1] <> 0
             ORDER BY k) AS texts,
       ARRAY(SELECT i.indoption[k - 1] FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)
           AS options,
       ARRAY(SELECT CASE WHEN opc.opcdefault THEN NULL ELSE opc.opcname::text END
             FROM generate_series(1, i.indnkeyatts) AS k
             JOIN pg_opclass opc ON opc.oid = i.indclass[k - 1]
             ORDER BY k) AS opclasses,
       pg_get_expr(i.indpred, i.indrelid, true) AS predicate
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE c.relnamespace = %(ns)s
  AND c.relkind IN ('r', 'p', 'm')
  AND NOT c.relispartition
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint con
      WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
  )
"""

_TYPES = """
SELECT t.oid, t.typname, t.typtype, t.typrelid,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
           AS labels
FROM pg_type t
LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE t.typnamespace = %(ns)s
  AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND c.relkind = 'c'))
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
  )
ORDER BY t.typname
"""

_FUNCTIONS = """
SELECT p.oid, p.proname, p.prokind,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_identity_arguments(p.oid) AS identity_arguments,
       pg_get_function_result(p.oid) AS result,
       l.lanname AS language,
       CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END AS body,
       p.provolatile, p.prosecdef, p.proconfig
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = %(ns)s
  AND NOT starts_with(p.proname, %(managed_prefix)s)
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  )
ORDER BY p.proname, identity_arguments
"""

_TRIGGERS = """
SELECT t.tgrelid, c.relkind, t.tgname, t.tgtype, t.tgenabled, t.tgnargs,
       t.tgconstraint <> 0 AS is_constraint_trigger,
       cardinality(t.tgattr::int2[]) > 0 AS has_columns,
       (t.tgoldtable IS NOT NULL OR t.tgnewtable IS NOT NULL) AS has_transition_tables,
       p.proname AS function, pn.nspname AS function_schema,
       pg_get_triggerdef(t.oid, true) AS definition
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_proc p ON p.oid = t.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
WHERE c.relnamespace = %(ns)s
  AND NOT t.tgisinternal
  AND t.tgparentid = 0
  AND NOT c.relispartition
ORDER BY t.tgrelid, t.tgname
"""

_COMMENTS = """
SELECT 'pg_class' AS catalog, d.objoid, d.objsubid, d.description
FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
WHERE d.classoid = 'pg_class'::regclass AND c.relnamespace = %(ns)s
UNION ALL
SELECT 'pg_type', d.objoid, d.objsubid, d.description
FROM pg_description d JOIN pg_type t ON t.oid = d.objoid
WHERE d.classoid = 'pg_type'::regclass AND t.typnamespace = %(ns)s
UNION ALL
SELECT 'pg_proc', d.objoid, d.objsubid, d.description
FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid
WHERE d.classoid = 'pg_proc'::regclass AND p.pronamespace = %(ns)s
"""

_EXTENSIONS = "SELECT e.extname FROM pg_extension e ORDER BY e.extname"

# --------------------------------------------------------------------------- decoding

_FK_ACTIONS: dict[str, str] = {
    "a": "no action",
    "r": "restrict",
    "c": "cascade",
    "n": "set null",
    "d": "set default",
}
_STRATEGIES: dict[str, Literal["range", "list", "hash"]] = {"r": "range", "l": "list", "h": "hash"}
_VOLATILITY: dict[str, Literal["volatile", "stable", "immutable"]] = {
    "v": "volatile",
    "s": "stable",
    "i": "immutable",
}
_ROUTINE_KINDS: dict[str, str] = {"p": "procedure", "a": "aggregate", "w": "window function"}
_IDENTITY: dict[str, Literal["always", "by default"]] = {"a": "always", "d": "by default"}

# pg_trigger.tgtype bits (src/include/catalog/pg_trigger.h).
_TG_ROW = 1 << 0
_TG_BEFORE = 1 << 1
_TG_INSERT = 1 << 2
_TG_DELETE = 1 << 3
_TG_UPDATE = 1 << 4
_TG_TRUNCATE = 1 << 5
_TG_INSTEAD = 1 << 6
# In the model's canonical order (the loader's): insert, update, delete, truncate.
_TG_EVENTS: tuple[tuple[int, str], ...] = (
    (_TG_INSERT, "insert"),
    (_TG_UPDATE, "update"),
    (_TG_DELETE, "delete"),
    (_TG_TRUNCATE, "truncate"),
)

# pg_index.indoption bits.
_INDOPTION_DESC = 1
_INDOPTION_NULLS_FIRST = 2

_CHECK_SUFFIXES = (" NOT VALID", " NO INHERIT", " NOT ENFORCED")
_WHEN_RE = re.compile(r" WHEN \((?P<when>.*)\) EXECUTE (?:FUNCTION|PROCEDURE) ", re.DOTALL)
_RANGE_BOUND_RE = re.compile(r"^FOR VALUES FROM \('(?P<lo>[^']*)'\) TO \('(?P<hi>[^']*)'\)$")


# Catalog columns a supported major lacks: (first major that has it, the text in a query above,
# what it means on older servers). NULLS NOT DISTINCT and ON DELETE SET NULL (columns) came in 15,
# SQL-standard function bodies in 14.
_SINCE: tuple[tuple[int, str, str], ...] = (
    (15, "con.confdelsetcols IS NOT NULL", "false"),
    (15, "SELECT i.indnullsnotdistinct FROM pg_index i", "SELECT false FROM pg_index i"),
    (14, "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END", "p.prosrc"),
)


@lru_cache(maxsize=64)
def for_server(query: str, server_version: int) -> str:
    """``query`` as the server of ``server_version`` (``server_version_num``) can run it."""
    for since, text, stand_in in _SINCE:
        if server_version < since * 10000:
            query = query.replace(text, stand_in)
    return query


class _Runner:
    """Runs the catalog queries on one cursor and counts them."""

    def __init__(self, conn: psycopg.Connection[Any], stats: IntrospectionStats) -> None:
        self._cur = conn.cursor(row_factory=dict_row)
        self._stats = stats
        self._version = conn.info.server_version

    def rows(self, query: str, params: Mapping[str, object]) -> list[Row]:
        self._stats.queries += 1
        self._cur.execute(sql.SQL(for_server(query, self._version)), params)  # type: ignore[arg-type]
        return self._cur.fetchall()


def introspect(
    conn: psycopg.Connection[Any],
    schema: str = "public",
    stats: IntrospectionStats | None = None,
) -> Schema:
    """Read one PostgreSQL schema into the model; ``stats`` (if given) receives counts and warnings.

    Runs inside a transaction (a savepoint if one is open) with ``search_path`` set to
    ``schema`` so ``format_type`` and ``pg_get_expr`` print names of that schema unqualified,
    exactly as the YAML writes them.
    """
    stats = stats if stats is not None else IntrospectionStats()
    started = time.perf_counter()
    nested = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    with conn.transaction():
        runner = _Runner(conn, stats)
        setup = runner.rows(_SETUP, {"schema": schema})
        if not setup:
            stats.warnings.append(f"schema {schema!r} does not exist")
            result = Schema()
        else:
            result = _Builder(runner, int(setup[0]["ns"]), schema, stats).build()
            if nested:
                # SET LOCAL outlives a released savepoint: give the caller its search_path back.
                runner.rows(_RESTORE_SEARCH_PATH, {"path": setup[0]["old_search_path"]})
    stats.seconds += time.perf_counter() - started
    return result


class _Builder:
    """Assembles model objects from the bulk query results."""

    def __init__(self, runner: _Runner, ns: int, schema: str, stats: IntrospectionStats) -> None:
        self.runner = runner
        self.params = {"ns": ns, "managed_prefix": MANAGED_FUNCTION_PREFIX}
        self.schema = schema
        self.stats = stats

    def warn(self, message: str) -> None:
        self.stats.warnings.append(message)

    def qualified(self, name: str, namespace: str | None) -> str:
        """Names in the introspected schema stay bare, others get their schema (as format_type does)."""
        return name if namespace in (None, self.schema) else f"{namespace}.{name}"

    # ----------------------------------------------------------------- top level
    def build(self) -> Schema:
        relations = self.runner.rows(_RELATIONS, self.params)
        columns = self.runner.rows(_COLUMNS, self.params)
        # Sorted here rather than in SQL: a big catalog sort spills to disk under default work_mem.
        constraints = sorted(self.runner.rows(_CONSTRAINTS, self.params), key=lambda row: row["conname"])
        indexes = sorted(self.runner.rows(_INDEXES, self.params), key=lambda row: row["name"])
        types = self.runner.rows(_TYPES, self.params)
        functions = self.runner.rows(_FUNCTIONS, self.params)
        triggers = self.runner.rows(_TRIGGERS, self.params)
        comments = self.runner.rows(_COMMENTS, self.params)
        extensions = self.runner.rows(_EXTENSIONS, self.params)

        rel_comments, type_comments, proc_comments = _split_comments(comments)
        columns_by_rel: dict[int, list[Row]] = defaultdict(list)
        for row in columns:
            columns_by_rel[row["attrelid"]].append(row)
        indexes_by_rel: dict[int, list[Row]] = defaultdict(list)
        for row in indexes:
            indexes_by_rel[row["indrelid"]].append(row)
        attnames: dict[int, dict[int, str]] = defaultdict(dict)
        for row in columns:
            attnames[row["attrelid"]][row["attnum"]] = row["attname"]
        constraints_by_rel: dict[int, list[Row]] = defaultdict(list)
        for row in constraints:
            own = attnames[row["conrelid"]]
            row["columns"] = [own.get(attnum, f"#{attnum}") for attnum in row["conkey"] or ()]
            if row["ref_columns"] is None and row["confkey"]:
                referenced = attnames[row["confrelid"]]
                row["ref_columns"] = [referenced.get(attnum, f"#{attnum}") for attnum in row["confkey"]]
            constraints_by_rel[row["conrelid"]].append(row)
        bounds_by_parent: dict[int, list[str]] = defaultdict(list)
        rel_names: dict[int, str] = {}
        for row in relations:
            rel_names[row["oid"]] = row["relname"]
            if row["relispartition"] and row["parent"] is not None:
                bounds_by_parent[row["parent"]].append(row["partbound"])
        triggers_by_rel = self._triggers(triggers, rel_names)

        tables: dict[str, Table] = {}
        views: dict[str, View] = {}
        for row in relations:
            oid, name, kind = row["oid"], row["relname"], row["relkind"]
            if row["relispartition"]:
                continue  # managed by veza_ensure_partitions / `veza-schema partitions`
            if kind in ("r", "p"):
                if is_managed_table(name):
                    continue
                if row["inherits"]:
                    self.warn(f"table {name}: table inheritance (INHERITS) is not in the model")
                tables[name] = self._table(
                    row,
                    columns_by_rel[oid],
                    constraints_by_rel[oid],
                    indexes_by_rel[oid],
                    triggers_by_rel.get(oid, {}),
                    rel_comments,
                    bounds_by_parent.get(oid, []),
                )
            elif kind in ("v", "m"):
                views[name] = View(
                    name=name,
                    query=_view_query(row["viewdef"]),
                    materialized=kind == "m",
                    indexes=self._indexes(name, indexes_by_rel[oid]),
                    comment=rel_comments.get((oid, 0)),
                )
            elif kind == "S" and not row["owned_sequence"]:
                self.warn(f"sequence {name}: standalone sequences are not in the model")
            elif kind == "f":
                self.warn(f"foreign table {name}: foreign tables are not in the model")

        enums: dict[str, EnumType] = {}
        composites: dict[str, CompositeType] = {}
        for row in types:
            name, kind = row["typname"], row["typtype"]
            if kind == "e":
                enums[name] = EnumType(
                    name=name, values=tuple(row["labels"]), comment=type_comments.get(row["oid"])
                )
            elif kind == "c":
                composites[name] = CompositeType(
                    name=name,
                    attributes=tuple(
                        CompositeAttribute(name=col["attname"], type=col["type"])
                        for col in columns_by_rel[row["typrelid"]]
                    ),
                    comment=type_comments.get(row["oid"]),
                )
            else:
                label = {"d": "domain", "r": "range type", "m": "multirange type"}[kind]
                if kind != "m":  # a multirange comes with its range type
                    self.warn(f"{label} {name}: not in the model")

        return Schema(
            tables=tables,
            enums=enums,
            composite_types=composites,
            functions=self._functions(functions, proc_comments),
            views=views,
            extensions={
                row["extname"]: Extension(name=row["extname"])
                for row in extensions
                if row["extname"] not in IGNORED_EXTENSIONS
            },
        )

    # ----------------------------------------------------------------- tables
    def _table(
        self,
        row: Row,
        columns: list[Row],
        constraints: list[Row],
        indexes: list[Row],
        triggers: dict[str, Trigger],
        comments: Mapping[tuple[int, int], str],
        bounds: list[str],
    ) -> Table:
        oid, name = row["oid"], row["relname"]
        primary_key: PrimaryKey | None = None
        uniques: dict[str, UniqueConstraint] = {}
        checks: dict[str, CheckConstraint] = {}
        foreign_keys: dict[str, ForeignKey] = {}
        for con in constraints:
            con_name, kind = con["conname"], con["contype"]
            where = f"table {name}: constraint {con_name}"
            if not con["convalidated"]:
                self.warn(f"{where} is NOT VALID (the model cannot say so)")
            if kind == "p":
                primary_key = PrimaryKey(name=con_name, columns=tuple(con["columns"]))
            elif kind == "u":
                if con["nulls_not_distinct"]:
                    self.warn(f"{where} is NULLS NOT DISTINCT (not in the model)")
                uniques[con_name] = UniqueConstraint(name=con_name, columns=tuple(con["columns"]))
            elif kind == "c":
                expression = _check_expression(con["definition"])
                checks[con_name] = CheckConstraint(name=con_name, expression=expression)
            elif kind == "f":
                foreign_keys[con_name] = self._foreign_key(con, where)
            else:  # 'x'
                self.warn(f"{where}: EXCLUDE constraints are not in the model ({con['definition']})")

        return Table(
            name=name,
            columns=self._columns(name, oid, columns, comments),
            primary_key=primary_key,
            uniques=uniques,
            checks=checks,
            foreign_keys=foreign_keys,
            indexes=self._indexes(name, indexes),
            triggers=triggers,
            partition=self._partition(row, bounds) if row["relkind"] == "p" else None,
            comment=comments.get((oid, 0)),
        )

    def _columns(
        self, table: str, oid: int, rows: list[Row], comments: Mapping[tuple[int, int], str]
    ) -> tuple[Column, ...]:
        return tuple(self._column(table, row, comments.get((oid, row["attnum"]))) for row in rows)

    def _column(self, table: str, row: Row, comment: str | None) -> Column:
        name = row["attname"]
        generated_kind = row["attgenerated"]
        default = row["default_expr"]
        generated: str | None = None
        if generated_kind:
            generated, default = default, None
            if generated_kind != "s":
                self.warn(f"column {table}.{name}: VIRTUAL generated column (the model assumes STORED)")
        if row["custom_collation"]:
            self.warn(f"column {table}.{name}: non-default COLLATE (not in the model)")
        return Column(
            name=name,
            type=row["type"],
            nullable=not row["attnotnull"],
            default=default,
            identity=_IDENTITY.get(row["attidentity"] or ""),
            generated=generated,
            comment=comment,
        )

    def _foreign_key(self, con: Row, where: str) -> ForeignKey:
        if con["confmatchtype"] == "f":
            self.warn(f"{where} is MATCH FULL (not in the model)")
        if con["partial_set_action"]:
            self.warn(f"{where} limits SET NULL/SET DEFAULT to some columns (not in the model)")
        return ForeignKey(
            name=con["conname"],
            columns=tuple(con["columns"]),
            ref_table=self.qualified(con["ref_table"], con["ref_schema"]),
            ref_columns=tuple(con["ref_columns"]),
            on_delete=_FK_ACTIONS[con["confdeltype"]],
            on_update=_FK_ACTIONS[con["confupdtype"]],
            deferrable=bool(con["condeferrable"]),
            initially_deferred=bool(con["condeferred"]),
        )

    def _partition(self, row: Row, bounds: list[str]) -> PartitionSpec:
        strategy = _STRATEGIES[row["partstrat"]]
        keys = _split_top_level(_inside_parens(row["partkeydef"]))
        columns = tuple(
            _strip_all_outer_parens(keys[i]) if attnum == 0 or i >= len(keys) else _unquote(keys[i])
            for i, attnum in enumerate(row["partattrs"])
        )
        if 0 in row["partattrs"]:
            self.warn(f"table {row['relname']}: partition key expressions are not in the model "
                      f"({row['partkeydef']})")
        default_partition = bool(row["has_default_partition"])
        if strategy != "range":
            # interval and premake mean nothing here: keep the model's defaults, as the loader does.
            return PartitionSpec(strategy, columns, None, default_partition=default_partition)
        interval, premake = _infer_interval(bounds)
        if interval is None:
            self.warn(f"table {row['relname']}: partition interval not inferable from its partitions")
        return PartitionSpec(strategy, columns, interval, premake, default_partition)

    # ----------------------------------------------------------------- indexes
    def _indexes(self, table: str, rows: list[Row]) -> dict[str, Index]:
        found: dict[str, Index] = {}
        for row in rows:
            name = row["name"]
            if not row["indisvalid"]:
                self.warn(f"index {name} on {table} is INVALID (a failed concurrent build?)")
                self.stats.invalid_indexes.append(name)
            nkeys = row["indnkeyatts"]
            elements = []
            for position in range(nkeys):
                option = row["options"][position]
                descending = bool(option & _INDOPTION_DESC)
                nulls_first = bool(option & _INDOPTION_NULLS_FIRST)
                nulls: Literal["first", "last"] | None = None
                if nulls_first and not descending:
                    nulls = "first"
                elif descending and not nulls_first:
                    nulls = "last"
                is_column = row["attnums"][position] != 0
                text = row["texts"][position]
                elements.append(
                    IndexElement(
                        expression=text if is_column else _strip_outer_parens(text),
                        is_column=is_column,
                        descending=descending,
                        nulls=nulls,
                        opclass=row["opclasses"][position],
                    )
                )
            found[name] = Index(
                name=name,
                table=table,
                elements=tuple(elements),
                unique=bool(row["indisunique"]),
                method=row["method"],
                where=row["predicate"],
                include=tuple(row["texts"][nkeys:]),
            )
        return found

    # ----------------------------------------------------------------- triggers
    def _triggers(self, rows: list[Row], rel_names: Mapping[int, str]) -> dict[int, dict[str, Trigger]]:
        found: dict[int, dict[str, Trigger]] = defaultdict(dict)
        for row in rows:
            table = rel_names.get(row["tgrelid"])
            name = row["tgname"]
            if table is None:
                continue
            where = f"trigger {name} on {table}"
            if row["relkind"] not in ("r", "p"):
                self.warn(f"{where}: triggers on views are not in the model")
                continue
            if row["is_constraint_trigger"]:
                self.warn(f"{where} is a CONSTRAINT TRIGGER (the model cannot say so)")
            if row["tgenabled"] != "O":
                self.warn(f"{where} is not enabled in the default way (tgenabled={row['tgenabled']!r})")
            if row["tgnargs"]:
                self.warn(f"{where} passes arguments to its function (not in the model)")
            if row["has_columns"]:
                self.warn(f"{where} is UPDATE OF some columns (not in the model)")
            if row["has_transition_tables"]:
                self.warn(f"{where} has REFERENCING transition tables (not in the model)")
            tgtype = row["tgtype"]
            timing: Literal["before", "after", "instead of"] = (
                "instead of" if tgtype & _TG_INSTEAD else "before" if tgtype & _TG_BEFORE else "after"
            )
            when_match = _WHEN_RE.search(row["definition"])
            found[row["tgrelid"]][name] = Trigger(
                name=name,
                table=table,
                function=self.qualified(row["function"], row["function_schema"]),
                timing=timing,
                events=tuple(event for bit, event in _TG_EVENTS if tgtype & bit),
                for_each="row" if tgtype & _TG_ROW else "statement",
                when=when_match.group("when") if when_match else None,
            )
        return found

    # ----------------------------------------------------------------- functions
    def _functions(self, rows: list[Row], comments: Mapping[int, str]) -> dict[str, Function]:
        found: dict[str, Function] = {}
        for row in rows:
            name = row["proname"]
            if row["prokind"] != "f":
                kind = _ROUTINE_KINDS.get(row["prokind"], "routine")
                self.warn(f"{kind} {name}: not in the model")
                continue
            if row["proconfig"]:
                self.warn(f"function {name}: SET {', '.join(row['proconfig'])} is not in the model")
            key = name
            if key in found:
                key = f"{name}({row['identity_arguments']})"
                self.warn(f"function {name}: overloaded; kept as {key!r}")
            found[key] = Function(
                name=name,
                arguments=row["arguments"],
                returns=row["result"],
                language=row["language"],
                body=row["body"],
                volatility=_VOLATILITY[row["provolatile"]],
                security_definer=bool(row["prosecdef"]),
                comment=comments.get(row["oid"]),
            )
        return found


# --------------------------------------------------------------------------- helpers


def _split_comments(
    rows: Iterable[Row],
) -> tuple[dict[tuple[int, int], str], dict[int, str], dict[int, str]]:
    """Comments by (relation oid, column number or 0), by type oid and by function oid."""
    relations: dict[tuple[int, int], str] = {}
    types: dict[int, str] = {}
    procs: dict[int, str] = {}
    for row in rows:
        if row["catalog"] == "pg_class":
            relations[(row["objoid"], row["objsubid"])] = row["description"]
        elif row["catalog"] == "pg_type":
            types[row["objoid"]] = row["description"]
        else:
            procs[row["objoid"]] = row["description"]
    return relations, types, procs


def _check_expression(definition: str) -> str:
    """``CHECK (price > 0::numeric) NOT VALID`` -> ``price > 0::numeric``."""
    text = definition.strip()
    stripped = True
    while stripped:
        stripped = False
        for suffix in _CHECK_SUFFIXES:
            if text.endswith(suffix):
                text = text[: -len(suffix)].rstrip()
                stripped = True
    if text.startswith("CHECK (") and text.endswith(")"):
        return text[len("CHECK (") : -1]
    return text


def _strip_outer_parens(text: str) -> str:
    """``(price + 1)`` -> ``price + 1``: the parentheses of index-element syntax, not of the expression."""
    return text[1:-1] if wrapped_whole(text) else text


def _strip_all_outer_parens(text: str) -> str:
    """``((a + 1))`` -> ``a + 1`` (pg_get_partkeydef has no pretty mode)."""
    stripped = _strip_outer_parens(text)
    while stripped != text:
        text, stripped = stripped, _strip_outer_parens(stripped)
    return stripped


def _view_query(viewdef: str) -> str:
    """``pg_get_viewdef`` text without its surrounding blanks and final semicolon."""
    text = viewdef.strip()
    return text[:-1].rstrip() if text.endswith(";") else text


def _inside_parens(text: str) -> str:
    """``RANGE (created_at)`` -> ``created_at``."""
    start, end = text.find("("), text.rfind(")")
    return text[start + 1 : end] if start != -1 and end > start else ""


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _unquote(identifier: str) -> str:
    """A partition key column as pg_get_partkeydef prints it (maybe with opclass) -> its bare name."""
    word = identifier.split(" ", 1)[0] if not identifier.startswith('"') else identifier
    if word.startswith('"'):
        return word[1 : word.index('"', 1)].replace('""', '"')
    return word


def _parse_bound(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    # veza_ensure_partitions cuts periods in UTC; the text is in the session's time zone.
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _infer_interval(
    bounds: Sequence[str],
) -> tuple[Literal["day", "week", "month", "year"] | None, int]:
    """Interval and premake of a time-partitioned table, read back from its partitions.

    Neither is stored by PostgreSQL: the interval is the span of the partitions, premake
    the number of partitions starting after the current period (true at migration time and
    kept true by the maintenance command).
    """
    spans: list[tuple[datetime, datetime]] = []
    for bound in bounds:
        match = _RANGE_BOUND_RE.match(bound or "")
        if not match:
            continue
        lo, hi = _parse_bound(match.group("lo")), _parse_bound(match.group("hi"))
        if lo is not None and hi is not None:
            spans.append((lo, hi))
    kinds = Counter(kind for lo, hi in spans if (kind := classify_span(lo, hi)) is not None)
    if not kinds:
        return None, 0
    interval = cast(Literal["day", "week", "month", "year"], kinds.most_common(1)[0][0])
    now = datetime.now(UTC)
    current = [lo for lo, hi in spans if lo <= now < hi]
    start = current[0] if current else period_start(now, interval)
    return interval, sum(1 for lo, _ in spans if lo > start)

