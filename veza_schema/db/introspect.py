"""Live database -> the typed model, in a fixed number of bulk catalog queries.

One job: reading a database out of pg_catalog; its length is one query and one builder per object kind.

Why bulk: ``diff`` must stay fast on databases with thousands of tables, so every
object kind is read with one query over every schema (never one query per table) and
assembled in Python. :class:`IntrospectionStats` counts the queries so benchmarks and a
test can show the count does not grow with the table count.

Why faithful: the introspector reports what PostgreSQL stores, in PostgreSQL's own
spelling (``format_type``, ``pg_get_expr``, ``pg_get_constraintdef``...). It never
rewrites expressions to look like the YAML; comparing differently spelled texts is the
job of :mod:`veza_schema.sql.normalize` (offline) or of a shadow database (online).

Which schemas: the home schema (``public``; its objects are named bare) and every other
schema of the database that is not a system schema or an extension's (its objects are
named ``schema.name``), as PostgreSQL prints them with ``search_path = public``.

Objects veza-schema manages itself are left out: partitions it made
(``veza_ensure_partitions``, ``veza-schema partitions``), the SQLx history table
``_sqlx_migrations``, functions named ``veza_*``, retention's archive schema and the schema of
the pg_partman extension (:data:`veza_schema.managed.MANAGED_SCHEMAS`). Objects owned by extensions are left
out too (they come back with ``CREATE EXTENSION``).

Never silent: every catalog fact the model cannot carry (a rule, table inheritance, a
domain, a trigger's arguments, a storage parameter, a column grant...) is recorded in
:attr:`IntrospectionStats.unmodeled` as an :class:`Unmodeled` fact, kind and object named.
``diff`` compares these facts between the database and the shadow (a difference is drift
of kind ``unmodeled``) and ``inspect`` prints the ones it could not write.

Queries (15, whatever the table count): search_path setup, schemas, relations (tables,
partitions and their bounds, views, sequences), columns, constraints, indexes, types,
functions, triggers, comments, extensions, policies, default privileges, other objects
(rules, statistics, collations, operators, casts, event triggers, publications...), and
roles; plus one to restore the caller's search_path when called inside an open
transaction. Works on PostgreSQL 13 and later: the catalog columns older majors lack
(``confdelsetcols``, ``indnullsnotdistinct``, ``prosqlbody``) are replaced by what they mean
there (:data:`_SINCE`).
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

from veza_schema.managed import (
    MANAGED_FUNCTION_PREFIX,
    MANAGED_SCHEMAS,
    PARTMAN_EXTENSION,
    classify_span,
    is_managed_table,
    period_start,
)
from veza_schema.model import (
    DEFAULT_PRIVILEGE_TARGETS,
    PUBLIC_ROLE,
    CheckConstraint,
    Column,
    CompositeAttribute,
    CompositeType,
    DefaultPrivilege,
    EnumType,
    ExclusionConstraint,
    Extension,
    ForeignKey,
    Function,
    Grants,
    Index,
    IndexElement,
    Namespace,
    PartitionSpec,
    Policy,
    PrimaryKey,
    Role,
    Schema,
    SequenceObject,
    Table,
    Trigger,
    UniqueConstraint,
    View,
    default_grants,
    default_privilege_key,
)
from veza_schema.sql.text import ident, wrapped_whole

IGNORED_EXTENSIONS: frozenset[str] = frozenset({"plpgsql"})

Row = dict[str, Any]

# Kinds of catalog facts the model does not carry, with what each covers (``diff --ignore-unmodeled KIND``).
UNMODELED_KINDS: dict[str, str] = {
    "inheritance": "table inheritance (INHERITS)",
    "rule": "rewrite rules (CREATE RULE)",
    "partition": "partitions veza-schema did not make (other names or bounds, sub-partitions)",
    "partition_key": "partition keys with expressions",
    "domain": "domains",
    "range_type": "range types",
    "base_type": "base types written in C",
    "routine": "procedures, aggregates and window functions",
    "function": "function features outside the model (C functions, support functions, overloads)",
    "foreign_table": "foreign tables",
    "trigger": "trigger features outside the model (arguments, UPDATE OF columns, transition tables, "
               "constraint triggers, disabled triggers)",
    "constraint": "constraint features outside the model (NOT VALID, NO INHERIT, MATCH FULL, partial "
                  "SET NULL/SET DEFAULT)",
    "index": "index features outside the model (NULLS NOT DISTINCT indexes, CLUSTER ON, replica identity "
             "index, INVALID after a failed concurrent build)",
    "generated": "VIRTUAL generated columns",
    "storage_parameter": "storage parameters (WITH (fillfactor=...)) of tables, indexes and views",
    "tablespace": "tables and indexes outside the default tablespace",
    "replica_identity": "REPLICA IDENTITY other than DEFAULT",
    "column_storage": "column STORAGE, COMPRESSION and attribute options (n_distinct...)",
    "column_grant": "column-level privileges",
    "type_grant": "privileges on types other than PostgreSQL's default",
    "schema_privileges": "privileges on the home schema other than PostgreSQL's default",
    "owner": "objects owned by another role than the one owning most objects",
    "comment": "comments on constraints, indexes, triggers, policies, sequences of columns and rules",
    "identity": "identity sequence options (START, INCREMENT, CACHE...)",
    "role_attribute": "role attributes outside the model (SUPERUSER, REPLICATION)",
    "statistics": "extended statistics objects (CREATE STATISTICS)",
    "collation": "collations created in the database",
    "operator": "operators, operator classes and families",
    "text_search": "text search configurations, dictionaries, parsers and templates",
    "conversion": "encoding conversions",
    "cast": "casts created in the database",
    "language": "procedural languages created in the database",
    "access_method": "access methods created in the database",
    "foreign_server": "foreign data wrappers and servers",
    "event_trigger": "event triggers",
    "publication": "publications (logical replication)",
    "name": "object names the model cannot key (a schema or object name with a dot)",
}


@dataclass(frozen=True, order=True)
class Unmodeled:
    """One catalog fact the model does not carry: never dropped silently."""

    kind: str  # a key of UNMODELED_KINDS
    name: str  # the object, as "table orders", "rule orders.r_protect", "domain positive"
    detail: str = ""
    # The model key of the table, view, function or type it concerns ("" for none): --exclude matches it.
    subject: str = field(default="", compare=False)

    def __str__(self) -> str:
        return f"{self.name}: {self.detail}" if self.detail else self.name


@dataclass
class IntrospectionStats:
    """What one :func:`introspect` call cost, what it could not represent, and notes."""

    queries: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    # Indexes PostgreSQL holds as INVALID (a failed or interrupted concurrent build): in the model
    # like any index, since they exist, but unusable; drift reports them (see drift.compare).
    invalid_indexes: list[str] = field(default_factory=list)
    unmodeled: list[Unmodeled] = field(default_factory=list)


# --------------------------------------------------------------------------- queries
# Every query takes the namespace oids as %(nss)s and returns one row per object of every
# schema read. "Owned by an extension" is pg_depend deptype 'e'.


def _grants(acl: str, owner: str, kind: str) -> str:
    """SQL: the privileges of ``acl`` (or the kind's default) except the owner's own, as JSON rows."""
    return f"""(SELECT COALESCE(jsonb_agg(jsonb_build_array(COALESCE(gr.rolname, 'public'),
                                                        lower(ax.privilege_type), ax.is_grantable)), '[]')
        FROM aclexplode(COALESCE({acl}, acldefault('{kind}', {owner}))) ax
        LEFT JOIN pg_roles gr ON gr.oid = ax.grantee
        WHERE ax.grantee <> {owner})"""


def _not_extension_member(catalog: str, oid: str) -> str:
    return f"""NOT EXISTS (SELECT 1 FROM pg_depend xd WHERE xd.classid = '{catalog}'::regclass
                          AND xd.objid = {oid} AND xd.deptype = 'e')"""


_SETUP = """
WITH old AS MATERIALIZED (SELECT current_setting('search_path') AS search_path)
SELECT n.oid AS ns, old.search_path AS old_search_path,
       set_config('search_path', quote_ident(n.nspname) || ', pg_catalog', true) AS new_search_path
FROM old JOIN pg_namespace n ON n.nspname = %(schema)s
"""

_RESTORE_SEARCH_PATH = "SELECT set_config('search_path', %(path)s, true)"

_NAMESPACES = f"""
SELECT n.oid, n.nspname, pg_get_userbyid(n.nspowner) AS owner,
       {_grants("n.nspacl", "n.nspowner", "n")} AS grants
FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname !~ '^pg_(toast_)?temp_'
  AND NOT n.nspname = ANY(%(managed_schemas)s)
  AND n.oid NOT IN (SELECT e.extnamespace FROM pg_extension e WHERE e.extname = %(partman)s)
  AND {_not_extension_member("pg_namespace", "n.oid")}
ORDER BY n.nspname
"""

_RELATIONS = f"""
SELECT c.oid, c.relnamespace, c.relname, c.relkind, c.relispartition, c.relpersistence,
       c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relreplident, c.reltablespace <> 0 AS in_tablespace,
       pg_get_userbyid(c.relowner) AS owner,
       pt.partstrat, pg_get_partkeydef(c.oid) AS partkeydef,
       ARRAY(SELECT pt.partattrs[k - 1] FROM generate_series(1, pt.partnatts) AS k ORDER BY k)
           AS partattrs,
       COALESCE(pt.partdefid <> 0, false) AS has_default_partition,
       inh.inhparent AS parent,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partbound,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS viewdef,
       CASE WHEN c.relkind = 'S' THEN format_type(s.seqtypid, NULL) END AS seq_type,
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       sd.refobjid AS seq_table, sd.refobjsubid AS seq_column, sd.deptype AS seq_deptype,
       CASE WHEN c.relkind IN ('r', 'p') AND NOT c.relispartition THEN
           ARRAY(SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid
                 ORDER BY i.inhseqno)
       END AS inherits,
       CASE WHEN c.relkind IN ('r', 'p', 'v', 'm', 'f') THEN {_grants("c.relacl", "c.relowner", "r")}
            WHEN c.relkind = 'S' THEN {_grants("c.relacl", "c.relowner", "s")} END AS grants
FROM pg_class c
LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid AND c.relispartition
LEFT JOIN pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_depend sd ON c.relkind = 'S' AND sd.classid = 'pg_class'::regclass AND sd.objid = c.oid
                      AND sd.refclassid = 'pg_class'::regclass AND sd.deptype IN ('a', 'i')
WHERE c.relnamespace = ANY(%(nss)s)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'S', 'f')
  AND {_not_extension_member("pg_class", "c.oid")}
ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull, a.attidentity, a.attgenerated,
       pg_get_expr(ad.adbin, ad.adrelid, true) AS default_expr,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN co.collname END AS collation,
       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation THEN con.nspname END AS collation_schema,
       NULLIF(a.attstattarget, -1) AS statistics,
       a.attstorage <> t.typstorage AS custom_storage, a.attstorage, a.attcompression, a.attoptions,
       a.attacl IS NOT NULL AS has_column_grants, a.attacl::text AS column_acl
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_namespace con ON con.oid = co.collnamespace
WHERE c.relnamespace = ANY(%(nss)s)
  AND c.relkind IN ('r', 'p', 'c', 'v', 'm')
  AND NOT c.relispartition
  AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype, con.conkey, con.confrelid, con.confkey,
       rc.relname AS ref_table, rn.nspname AS ref_schema,
       -- Column numbers are named in Python from the columns query; a referenced table that
       -- query does not cover (a partition, a schema not read) is named here.
       CASE WHEN NOT (rc.relnamespace = ANY(%(nss)s)) OR rc.relispartition THEN
           ARRAY(SELECT a.attname::text
                 FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
                 ORDER BY k.ord)
       END AS ref_columns,
       con.confdeltype, con.confupdtype, con.confmatchtype,
       con.condeferrable, con.condeferred, con.convalidated, con.connoinherit,
       con.confdelsetcols IS NOT NULL AS partial_set_action,
       COALESCE((SELECT i.indnullsnotdistinct FROM pg_index i WHERE i.indexrelid = con.conindid
                 AND con.contype = 'u'), false) AS nulls_not_distinct,
       -- Deparsing is the costly part: only for the kinds whose text the model keeps.
       CASE WHEN con.contype IN ('c', 'x') THEN pg_get_constraintdef(con.oid, true) END AS definition,
       CASE WHEN con.contype = 'x' THEN (SELECT am.amname FROM pg_class ic JOIN pg_am am ON am.oid = ic.relam
                                        WHERE ic.oid = con.conindid) END AS method
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE c.relnamespace = ANY(%(nss)s)
  AND c.relkind IN ('r', 'p')
  AND NOT c.relispartition
  AND con.contype IN ('p', 'u', 'c', 'f', 'x')
  AND con.conparentid = 0
"""

# Key columns come first in indkey, INCLUDE columns after (indnkeyatts..indnatts).
_INDEXES = """
SELECT i.indrelid, i.indexrelid, ic.relname AS name, am.amname AS method, i.indisunique, i.indisvalid,
       i.indnkeyatts, i.indnatts, i.indnullsnotdistinct, i.indisclustered, i.indisreplident,
       ic.reloptions, ic.reltablespace <> 0 AS in_tablespace,
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
       pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
       EXISTS (SELECT 1 FROM pg_constraint con
               WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid
                 AND con.contype IN ('p', 'u', 'x')) AS backs_constraint
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE c.relnamespace = ANY(%(nss)s)
  AND c.relkind IN ('r', 'p', 'm')
  AND NOT c.relispartition
"""

_TYPES = f"""
SELECT t.oid, t.typnamespace, t.typname, t.typtype, t.typrelid,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
           AS labels,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base_type,
       pg_get_userbyid(t.typowner) AS owner,
       {_grants("t.typacl", "t.typowner", "T")} AS grants
FROM pg_type t
LEFT JOIN pg_class c ON c.oid = t.typrelid
WHERE t.typnamespace = ANY(%(nss)s)
  AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND c.relkind = 'c')
       OR (t.typtype = 'b' AND NOT (t.typelem <> 0 AND t.typsubscript = 'array_subscript_handler'::regproc)))
  AND {_not_extension_member("pg_type", "t.oid")}
ORDER BY t.typname
"""

_FUNCTIONS = f"""
SELECT p.oid, p.pronamespace, p.proname, p.prokind,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_identity_arguments(p.oid) AS identity_arguments,
       pg_get_function_result(p.oid) AS result,
       l.lanname AS language,
       CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END AS body,
       p.provolatile, p.prosecdef, p.proconfig, p.proisstrict, p.proleakproof, p.proparallel,
       p.procost, p.prorows, p.proretset, p.prosupport <> 0 AS has_support, p.probin,
       pg_get_userbyid(p.proowner) AS owner,
       {_grants("p.proacl", "p.proowner", "f")} AS grants
FROM pg_proc p
JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = ANY(%(nss)s)
  AND NOT starts_with(p.proname, %(managed_prefix)s)
  AND {_not_extension_member("pg_proc", "p.oid")}
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
WHERE c.relnamespace = ANY(%(nss)s)
  AND NOT t.tgisinternal
  AND t.tgparentid = 0
  AND NOT c.relispartition
ORDER BY t.tgrelid, t.tgname
"""

# (catalog, object, sub-object, text, what): ``what`` names objects whose comment the model does not keep.
# Objects made after initdb have oids from 16384 (FirstNormalObjectId): the system's comments are skipped.
_COMMENTS = """
SELECT 'pg_class' AS catalog, d.objoid, d.objsubid, d.description,
       CASE WHEN c.relkind IN ('i', 'I', 'S') THEN c.relkind::text END AS what
FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
WHERE d.objoid >= 16384 AND d.classoid = 'pg_class'::regclass AND c.relnamespace = ANY(%(nss)s)
UNION ALL
SELECT 'pg_type', d.objoid, d.objsubid, d.description, NULL
FROM pg_description d JOIN pg_type t ON t.oid = d.objoid
WHERE d.objoid >= 16384 AND d.classoid = 'pg_type'::regclass AND t.typnamespace = ANY(%(nss)s)
UNION ALL
SELECT 'pg_proc', d.objoid, d.objsubid, d.description, NULL
FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid
WHERE d.objoid >= 16384 AND d.classoid = 'pg_proc'::regclass AND p.pronamespace = ANY(%(nss)s)
UNION ALL
SELECT 'pg_namespace', d.objoid, d.objsubid, d.description, NULL
FROM pg_description d
WHERE d.classoid = 'pg_namespace'::regclass AND d.objoid = ANY(%(nss)s)
UNION ALL
SELECT 'other', d.objoid, d.objsubid, d.description,
       CASE d.classoid
           WHEN 'pg_constraint'::regclass THEN 'constraint ' || con.conname || ' on ' || cc.oid::regclass::text
                       WHEN 'pg_trigger'::regclass THEN 'trigger ' || tg.tgname || ' on ' || tc.oid::regclass::text
                       WHEN 'pg_policy'::regclass THEN 'policy ' || po.polname || ' on ' || pc.oid::regclass::text
                       WHEN 'pg_rewrite'::regclass THEN 'rule ' || ru.rulename || ' on ' || rc.oid::regclass::text
       END
FROM pg_description d
LEFT JOIN pg_constraint con ON d.classoid = 'pg_constraint'::regclass AND con.oid = d.objoid
LEFT JOIN pg_class cc ON cc.oid = con.conrelid
LEFT JOIN pg_trigger tg ON d.classoid = 'pg_trigger'::regclass AND tg.oid = d.objoid
LEFT JOIN pg_class tc ON tc.oid = tg.tgrelid
LEFT JOIN pg_policy po ON d.classoid = 'pg_policy'::regclass AND po.oid = d.objoid
LEFT JOIN pg_class pc ON pc.oid = po.polrelid
LEFT JOIN pg_rewrite ru ON d.classoid = 'pg_rewrite'::regclass AND ru.oid = d.objoid
LEFT JOIN pg_class rc ON rc.oid = ru.ev_class
WHERE d.classoid IN ('pg_constraint'::regclass, 'pg_trigger'::regclass, 'pg_policy'::regclass,
                     'pg_rewrite'::regclass)
  AND d.objoid >= 16384
  AND COALESCE(con.connamespace, tc.relnamespace, pc.relnamespace, rc.relnamespace) = ANY(%(nss)s)
  AND (tg.oid IS NULL OR NOT tg.tgisinternal)
"""

# pg_available_extensions reads every control file on disk: one scan, joined, and none without extensions.
_EXTENSIONS = """
WITH installed AS MATERIALIZED (
    SELECT e.extname, e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname <> 'plpgsql'
)
SELECT i.extname, i.extversion, i.nspname, a.default_version
FROM installed i
LEFT JOIN pg_available_extensions a ON a.name = i.extname AND EXISTS (SELECT 1 FROM installed)
ORDER BY i.extname
"""

_POLICIES = """
SELECT p.polrelid, p.polname, p.polcmd, p.polpermissive,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
             FROM unnest(p.polroles) AS r) AS roles,
       pg_get_expr(p.polqual, p.polrelid, true) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid, true) AS check_expr
FROM pg_policy p
JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = ANY(%(nss)s)
ORDER BY p.polname
"""

# A per-schema entry holds only what it adds; a global one the whole ACL (owner's rights included).
_DEFAULT_ACL = """
SELECT pg_get_userbyid(d.defaclrole) AS for_role, n.nspname, d.defaclobjtype,
       (SELECT COALESCE(jsonb_agg(jsonb_build_array(COALESCE(gr.rolname, 'public'),
                                                    lower(ax.privilege_type), ax.is_grantable)), '[]')
        FROM aclexplode(d.defaclacl) ax LEFT JOIN pg_roles gr ON gr.oid = ax.grantee
        WHERE ax.grantee <> d.defaclrole) AS grants
FROM pg_default_acl d
LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
"""

_FIRST_USER_OID = 16384  # FirstNormalObjectId: objects made after initdb

# Objects of kinds the model has no place for at all: (kind, name, detail).
_OTHER_OBJECTS = f"""
SELECT 'rule' AS kind, c.oid::regclass::text || '.' || r.rulename AS name, pg_get_ruledef(r.oid, true) AS detail
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = ANY(%(nss)s) AND r.rulename <> '_RETURN'
UNION ALL
SELECT 'statistics', s.stxname::text, pg_get_statisticsobjdef(s.oid)
FROM pg_statistic_ext s
WHERE s.stxnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_statistic_ext", "s.oid")}
UNION ALL
SELECT 'collation', quote_ident(n.nspname) || '.' || quote_ident(co.collname), co.collprovider::text
FROM pg_collation co JOIN pg_namespace n ON n.oid = co.collnamespace
WHERE co.collnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_collation", "co.oid")}
UNION ALL
SELECT 'operator', o.oid::regoperator::text, ''
FROM pg_operator o
WHERE o.oprnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_operator", "o.oid")}
UNION ALL
SELECT 'operator', 'operator class ' || oc.opcname, ''
FROM pg_opclass oc
WHERE oc.opcnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_opclass", "oc.oid")}
UNION ALL
SELECT 'operator', 'operator family ' || f.opfname, ''
FROM pg_opfamily f
WHERE f.opfnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_opfamily", "f.oid")}
UNION ALL
SELECT 'text_search', 'text search configuration ' || t.cfgname, ''
FROM pg_ts_config t
WHERE t.cfgnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_ts_config", "t.oid")}
UNION ALL
SELECT 'text_search', 'text search dictionary ' || t.dictname, ''
FROM pg_ts_dict t
WHERE t.dictnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_ts_dict", "t.oid")}
UNION ALL
SELECT 'text_search', 'text search parser ' || t.prsname, ''
FROM pg_ts_parser t
WHERE t.prsnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_ts_parser", "t.oid")}
UNION ALL
SELECT 'text_search', 'text search template ' || t.tmplname, ''
FROM pg_ts_template t
WHERE t.tmplnamespace = ANY(%(nss)s) AND {_not_extension_member("pg_ts_template", "t.oid")}
UNION ALL
SELECT 'conversion', cv.conname, ''
FROM pg_conversion cv
WHERE cv.connamespace = ANY(%(nss)s) AND {_not_extension_member("pg_conversion", "cv.oid")}
UNION ALL
SELECT 'cast', format_type(ca.castsource, NULL) || ' AS ' || format_type(ca.casttarget, NULL), ''
FROM pg_cast ca
WHERE ca.oid >= {_FIRST_USER_OID} AND {_not_extension_member("pg_cast", "ca.oid")}
UNION ALL
SELECT 'language', l.lanname, ''
FROM pg_language l
WHERE l.oid >= {_FIRST_USER_OID} AND l.lanname <> 'plpgsql' AND {_not_extension_member("pg_language", "l.oid")}
UNION ALL
SELECT 'access_method', am.amname, ''
FROM pg_am am
WHERE am.oid >= {_FIRST_USER_OID} AND {_not_extension_member("pg_am", "am.oid")}
UNION ALL
SELECT 'foreign_server', 'foreign data wrapper ' || w.fdwname, ''
FROM pg_foreign_data_wrapper w
WHERE {_not_extension_member("pg_foreign_data_wrapper", "w.oid")}
UNION ALL
SELECT 'foreign_server', 'server ' || s.srvname, ''
FROM pg_foreign_server s
WHERE {_not_extension_member("pg_foreign_server", "s.oid")}
UNION ALL
SELECT 'event_trigger', e.evtname, e.evtevent
FROM pg_event_trigger e
WHERE {_not_extension_member("pg_event_trigger", "e.oid")}
UNION ALL
SELECT 'publication', p.pubname, ''
FROM pg_publication p
"""

_ROLES = """
SELECT r.rolname, r.rolcanlogin, r.rolinherit, r.rolcreatedb, r.rolcreaterole, r.rolbypassrls,
       r.rolconnlimit, r.rolsuper, r.rolreplication,
       ARRAY(SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1) AS member_of,
       shobj_description(r.oid, 'pg_authid') AS comment
FROM pg_roles r
WHERE r.rolname = ANY(%(roles)s)
ORDER BY r.rolname
"""

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
_PARALLEL: dict[str, Literal["unsafe", "restricted", "safe"]] = {"u": "unsafe", "r": "restricted", "s": "safe"}
_ROUTINE_KINDS: dict[str, str] = {"p": "procedure", "a": "aggregate", "w": "window function"}
_IDENTITY: dict[str, Literal["always", "by default"]] = {"a": "always", "d": "by default"}
_POLICY_COMMANDS: dict[str, Literal["all", "select", "insert", "update", "delete"]] = {
    "*": "all", "r": "select", "a": "insert", "w": "update", "d": "delete"}
_DEFAULT_ACL_TARGETS: dict[str, str] = {"r": "tables", "S": "sequences", "f": "functions", "T": "types",
                                        "n": "schemas"}
_DEFAULT_ACL_KINDS: dict[str, str] = {"tables": "table", "sequences": "sequence", "functions": "function",
                                      "types": "type", "schemas": "schema"}
_STORAGE: dict[str, str] = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
# Attribute options the server writes itself: PostgreSQL 17.12 stamps every column with
# ``pg_attver=N`` (no ALTER sets or resets it; pg_dump leaves it out). Not a hand change.
_SERVER_ATTOPTIONS: tuple[str, ...] = ("pg_attver=",)
_REPLICA_IDENTITY: dict[str, str] = {"n": "NOTHING", "f": "FULL", "i": "USING INDEX"}

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
_EXCLUDE_HEAD_RE = re.compile(r"^EXCLUDE USING (?P<method>\w+) \(")


def grants_from_rows(rows: Iterable[Sequence[Any]] | None) -> dict[str, tuple[str, ...]]:
    """``[["app", "select", false], ...]`` (the queries' JSON) -> the model's grants mapping."""
    found: dict[str, set[str]] = defaultdict(set)
    for grantee, privilege, grantable in rows or ():
        found[grantee].add(f"{privilege} with grant option" if grantable else privilege)
    return {grantee: tuple(sorted(privileges)) for grantee, privileges in sorted(found.items())}


# Catalog columns a supported major lacks: (first major that has it, the text in a query above,
# what it means on older servers). NULLS NOT DISTINCT and ON DELETE SET NULL (columns) came in 15,
# SQL-standard function bodies and column compression in 14.
_SINCE: tuple[tuple[int, str, str], ...] = (
    (15, "con.confdelsetcols IS NOT NULL", "false"),
    (15, "SELECT i.indnullsnotdistinct FROM pg_index i", "SELECT false FROM pg_index i"),
    (14, "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) ELSE p.prosrc END", "p.prosrc"),
    (15, "i.indnatts, i.indnullsnotdistinct,", "i.indnatts, false AS indnullsnotdistinct,"),
    (14, "a.attstorage, a.attcompression,", "a.attstorage, NULL::\"char\" AS attcompression,"),
    # PostgreSQL 13 has no typsubscript: a true array type there is one with an element type and
    # variable length (fixed-length types such as name or point have typelem but are not arrays).
    (14, "t.typsubscript = 'array_subscript_handler'::regproc", "t.typlen = -1"),
)


def _home_schema_default(name: str, server_version: int) -> dict[str, tuple[str, ...]]:
    """The grants ``initdb`` gives the home schema: before PostgreSQL 15, public let PUBLIC create too."""
    if name == "public" and server_version < 150000:
        return {PUBLIC_ROLE: ("create", "usage")}
    return {PUBLIC_ROLE: ("usage",)}


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

    @property
    def version(self) -> int:
        """The server's ``server_version_num``."""
        return self._version

    def rows(self, query: str, params: Mapping[str, object]) -> list[Row]:
        self._stats.queries += 1
        self._cur.execute(sql.SQL(for_server(query, self._version)), params)  # type: ignore[arg-type]
        return self._cur.fetchall()


def introspect(
    conn: psycopg.Connection[Any],
    schema: str = "public",
    stats: IntrospectionStats | None = None,
    roles: Iterable[str] = (),
) -> Schema:
    """Read one database into the model; ``stats`` (if given) receives counts, notes and unmodeled facts.

    ``schema`` is the home schema (its objects are named bare). Roles are read when the
    database refers to them (grants, policies, default privileges) or when named in ``roles``
    (``diff`` names the roles the YAML declares). Runs inside a transaction (a savepoint if one
    is open) with ``search_path`` set to ``schema`` so ``format_type`` and ``pg_get_expr`` print
    names of that schema unqualified and others qualified, exactly as the YAML writes them.
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
            result = _Builder(runner, int(setup[0]["ns"]), schema, stats, tuple(roles)).build()
            if nested:
                # SET LOCAL outlives a released savepoint: give the caller its search_path back.
                runner.rows(_RESTORE_SEARCH_PATH, {"path": setup[0]["old_search_path"]})
    stats.unmodeled.sort()
    stats.seconds += time.perf_counter() - started
    return result


class _Builder:
    """Assembles model objects from the bulk query results."""

    def __init__(self, runner: _Runner, ns: int, schema: str, stats: IntrospectionStats,
                 roles: tuple[str, ...]) -> None:
        self.runner = runner
        self.home = ns
        self.params: dict[str, object] = {"managed_prefix": MANAGED_FUNCTION_PREFIX,
                                          "managed_schemas": sorted(MANAGED_SCHEMAS), "partman": PARTMAN_EXTENSION}
        self.schema = schema
        self.stats = stats
        self.requested_roles = roles
        self.ns_names: dict[int, str] = {}
        self.referenced_roles: set[str] = set()
        self.owners: list[tuple[str, str]] = []

    def fact(self, kind: str, name: str, detail: str = "", subject: str = "") -> None:
        self.stats.unmodeled.append(Unmodeled(kind, name, " ".join(detail.split()), subject or _subject_of(name)))

    def qualified(self, name: str, namespace: str | None) -> str:
        """Names in the home schema stay bare, others get their schema (as format_type does)."""
        return name if namespace in (None, self.schema) else f"{namespace}.{name}"

    def key(self, ns_oid: int, name: str, what: str) -> str | None:
        """The model key of an object, or None (and a fact) when its names cannot make one."""
        namespace = self.ns_names.get(ns_oid)
        if "." in name or (namespace is not None and "." in namespace):
            self.fact("name", f"{what} {namespace}.{name}" if namespace else f"{what} {name}",
                      "a name with a dot cannot be written in the model (rename it)")
            return None
        return self.qualified(name, namespace)

    def grants(self, rows: Iterable[Sequence[Any]] | None) -> dict[str, tuple[str, ...]]:
        found = grants_from_rows(rows)
        self.referenced_roles.update(grantee for grantee in found if grantee != PUBLIC_ROLE)
        return found

    def owner(self, row: Row, what: str) -> None:
        self.owners.append((row["owner"], what))

    def owner_facts(self) -> None:
        """Objects owned by another role than the one owning most of them (whoever runs the migrations)."""
        counts = Counter(owner for owner, _ in self.owners)
        if len(counts) < 2:
            return
        usual = min(counts, key=lambda owner: (-counts[owner], owner))
        for owner, what in self.owners:
            if owner != usual:
                self.fact("owner", what, f"owned by {owner}, the other objects by {usual}")

    # ----------------------------------------------------------------- top level
    def build(self) -> Schema:
        namespaces_rows = self.runner.rows(_NAMESPACES, self.params)
        self.ns_names = {row["oid"]: row["nspname"] for row in namespaces_rows}
        self.params["nss"] = list(self.ns_names)
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
        policies = self.runner.rows(_POLICIES, self.params)
        default_acl = self.runner.rows(_DEFAULT_ACL, self.params)
        others = self.runner.rows(_OTHER_OBJECTS, self.params)

        comment_map = _Comments(comments)
        for row in comments:
            if row["catalog"] == "other" and row["what"]:
                self.fact("comment", f"comment on {row['what']}", row["description"])
        for row in others:
            self.fact(row["kind"], f"{row['kind'].replace('_', ' ')} {row['name']}", row["detail"] or "")

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
        partitions_by_parent: dict[int, list[Row]] = defaultdict(list)
        rel_keys: dict[int, str] = {}
        rel_kinds: dict[int, str] = {}
        for row in relations:
            rel_kinds[row["oid"]] = row["relkind"]
            if row["relispartition"] and row["parent"] is not None:
                partitions_by_parent[row["parent"]].append(row)
                continue
            key = self.key(row["relnamespace"], row["relname"], _RELKIND_WORDS.get(row["relkind"], "relation"))
            if key is not None:
                rel_keys[row["oid"]] = key
        triggers_by_rel = self._triggers(triggers, rel_keys)
        policies_by_rel: dict[int, dict[str, Policy]] = defaultdict(dict)
        for row in policies:
            table = rel_keys.get(row["polrelid"])
            if table is not None:
                policies_by_rel[row["polrelid"]][row["polname"]] = self._policy(row, table)

        tables: dict[str, Table] = {}
        views: dict[str, View] = {}
        sequences: dict[str, SequenceObject] = {}
        for row in relations:
            oid, kind = row["oid"], row["relkind"]
            name = rel_keys.get(oid)
            if row["relispartition"] or name is None:
                continue
            what = f"{_RELKIND_WORDS.get(kind, 'relation')} {name}"
            if kind in ("r", "p"):
                if is_managed_table(name):
                    continue
                self.owner(row, what)
                self._relation_facts(row, what)
                if row["inherits"]:
                    self.fact("inheritance", what, "INHERITS (" + ", ".join(row["inherits"]) + ")")
                tables[name] = self._table(
                    row, name,
                    columns_by_rel[oid],
                    constraints_by_rel[oid],
                    indexes_by_rel[oid],
                    triggers_by_rel.get(oid, {}),
                    policies_by_rel.get(oid, {}),
                    comment_map,
                    partitions_by_parent.get(oid, []),
                )
            elif kind in ("v", "m"):
                self.owner(row, what)
                self._relation_facts(row, what)
                view_triggers = triggers_by_rel.get(oid, {})
                if kind == "m":
                    view_triggers = {}
                views[name] = View(
                    name=name,
                    query=_view_query(row["viewdef"]),
                    materialized=kind == "m",
                    indexes=self._indexes(name, indexes_by_rel[oid], comment_map),
                    comment=comment_map.relation(oid),
                    triggers=view_triggers,
                    grants=self.grants(row["grants"]),
                    columns=tuple(f"{col['attname']} {col['type']}" for col in columns_by_rel[oid]),
                )
                for col in columns_by_rel[oid]:
                    self._column_grant_fact(name, col)
            elif kind == "S":
                sequence = self._sequence(row, name, rel_keys, attnames, comment_map)
                if sequence is not None:
                    self.owner(row, what)
                    sequences[name] = sequence
            elif kind == "f":
                self.fact("foreign_table", what)

        enums: dict[str, EnumType] = {}
        composites: dict[str, CompositeType] = {}
        for row in types:
            kind = row["typtype"]
            label = {"e": "enum", "c": "type", "d": "domain", "r": "range type", "m": "multirange type",
                     "b": "base type"}[kind]
            name = self.key(row["typnamespace"], row["typname"], label)
            if name is None:
                continue
            if kind in ("e", "c"):
                self.owner(row, f"{label} {name}")
                type_grants = grants_from_rows(row["grants"])
                if type_grants != dict(default_grants("type")):
                    self.fact("type_grant", f"{label} {name}", _grants_text(type_grants))
            if kind == "e":
                enums[name] = EnumType(name=name, values=tuple(row["labels"]),
                                       comment=comment_map.type(row["oid"]))
            elif kind == "c":
                composites[name] = CompositeType(
                    name=name,
                    attributes=tuple(
                        CompositeAttribute(name=col["attname"], type=col["type"])
                        for col in columns_by_rel[row["typrelid"]]
                    ),
                    comment=comment_map.type(row["oid"]),
                )
            elif kind == "d":
                self.fact("domain", f"domain {name}", f"over {row['base_type']}")
            elif kind == "r":
                self.fact("range_type", f"range type {name}")
            elif kind == "b":
                self.fact("base_type", f"base type {name}")

        namespaces: dict[str, Namespace] = {}
        for row in namespaces_rows:
            name = row["nspname"]
            if row["oid"] == self.home:
                home_grants = grants_from_rows(row["grants"])
                if home_grants != _home_schema_default(name, self.runner.version):
                    self.fact("schema_privileges", f"schema {name}", _grants_text(home_grants))
                if comment_map.namespace(row["oid"]) not in (None, "standard public schema"):
                    self.fact("comment", f"comment on schema {name}", comment_map.namespace(row["oid"]) or "")
                continue
            if "." in name:
                continue  # reported with its objects' keys
            self.owner(row, f"schema {name}")
            namespaces[name] = Namespace(name=name, comment=comment_map.namespace(row["oid"]),
                                         grants=self.grants(row["grants"]))

        result = Schema(
            tables=tables,
            enums=enums,
            composite_types=composites,
            functions=self._functions(functions, comment_map),
            views=views,
            extensions=self._extensions(extensions),
            sequences=sequences,
            namespaces=namespaces,
            default_privileges=self._default_privileges(default_acl),
        )
        self.owner_facts()
        roles = self.runner.rows(_ROLES, {"roles": sorted(self.referenced_roles | set(self.requested_roles))})
        return Schema(**{**{f: getattr(result, f) for f in _SCHEMA_FIELDS}, "roles": self._roles(roles)})

    # ----------------------------------------------------------------- facts of any relation
    def _relation_facts(self, row: Row, what: str) -> None:
        options = row["reloptions"] or []
        if options:
            self.fact("storage_parameter", what, "WITH (" + ", ".join(options) + ")")
        if row["in_tablespace"]:
            self.fact("tablespace", what, "not in the default tablespace")
        if row["relkind"] in ("r", "p") and row["relreplident"] != "d":
            self.fact("replica_identity", what, "REPLICA IDENTITY " + _REPLICA_IDENTITY.get(row["relreplident"], "?"))

    # ----------------------------------------------------------------- tables
    def _table(
        self,
        row: Row,
        name: str,
        columns: list[Row],
        constraints: list[Row],
        indexes: list[Row],
        triggers: dict[str, Trigger],
        policies: dict[str, Policy],
        comments: _Comments,
        partitions: list[Row],
    ) -> Table:
        oid = row["oid"]
        primary_key: PrimaryKey | None = None
        uniques: dict[str, UniqueConstraint] = {}
        checks: dict[str, CheckConstraint] = {}
        foreign_keys: dict[str, ForeignKey] = {}
        exclusions: dict[str, ExclusionConstraint] = {}
        for con in constraints:
            con_name, kind = con["conname"], con["contype"]
            where = f"constraint {con_name} on {name}"
            if not con["convalidated"]:
                self.fact("constraint", where, "NOT VALID")
            if con["connoinherit"] and kind == "c":
                self.fact("constraint", where, "NO INHERIT")
            if kind == "p":
                primary_key = PrimaryKey(name=con_name, columns=tuple(con["columns"]),
                                         deferrable=bool(con["condeferrable"]),
                                         initially_deferred=bool(con["condeferred"]))
            elif kind == "u":
                uniques[con_name] = UniqueConstraint(name=con_name, columns=tuple(con["columns"]),
                                                     deferrable=bool(con["condeferrable"]),
                                                     initially_deferred=bool(con["condeferred"]),
                                                     nulls_not_distinct=bool(con["nulls_not_distinct"]))
            elif kind == "c":
                expression = _check_expression(con["definition"])
                checks[con_name] = CheckConstraint(name=con_name, expression=expression)
            elif kind == "f":
                foreign_keys[con_name] = self._foreign_key(con, where)
            else:  # 'x'
                exclusion = _exclusion(con)
                if exclusion is None:
                    self.fact("constraint", where, f"an EXCLUDE constraint this version cannot read "
                                                   f"({con['definition']})")
                else:
                    exclusions[con_name] = exclusion

        self._table_column_facts(name, columns)
        return Table(
            name=name,
            columns=self._columns(name, oid, columns, comments),
            primary_key=primary_key,
            uniques=uniques,
            checks=checks,
            foreign_keys=foreign_keys,
            indexes=self._indexes(name, indexes, comments),
            triggers=triggers,
            partition=self._partition(row, name, partitions) if row["relkind"] == "p" else None,
            comment=comments.relation(oid),
            exclusions=exclusions,
            unlogged=row["relpersistence"] == "u",
            row_security=bool(row["relrowsecurity"]),
            force_row_security=bool(row["relforcerowsecurity"]),
            policies=policies,
            grants=self.grants(row["grants"]),
        )

    def _table_column_facts(self, table: str, rows: list[Row]) -> None:
        for row in rows:
            where = f"column {table}.{row['attname']}"
            if row["custom_storage"]:
                self.fact("column_storage", where, f"STORAGE {_STORAGE.get(row['attstorage'], '?')}")
            if row["attcompression"]:
                self.fact("column_storage", where, f"COMPRESSION {'pglz' if row['attcompression'] == 'p' else 'lz4'}")
            options = [o for o in row["attoptions"] or () if not o.startswith(_SERVER_ATTOPTIONS)]
            if options:
                self.fact("column_storage", where, "SET (" + ", ".join(options) + ")")
            self._column_grant_fact(table, row)

    def _column_grant_fact(self, relation: str, row: Row) -> None:
        if row["has_column_grants"]:
            self.fact("column_grant", f"column {relation}.{row['attname']}", f"privileges {row['column_acl']}")

    def _columns(self, table: str, oid: int, rows: list[Row], comments: _Comments) -> tuple[Column, ...]:
        return tuple(self._column(table, row, comments.relation(oid, row["attnum"])) for row in rows)

    def _column(self, table: str, row: Row, comment: str | None) -> Column:
        name = row["attname"]
        generated_kind = row["attgenerated"]
        default = row["default_expr"]
        generated: str | None = None
        if generated_kind:
            generated, default = default, None
            if generated_kind != "s":
                self.fact("generated", f"column {table}.{name}", "VIRTUAL generated column (the model assumes "
                                                                 "STORED)")
        collation = None
        if row["collation"] is not None:
            collation_schema = row["collation_schema"]
            collation = ident(row["collation"]) if collation_schema in ("pg_catalog", self.schema) \
                else f"{ident(collation_schema)}.{ident(row['collation'])}"
        return Column(
            name=name,
            type=row["type"],
            nullable=not row["attnotnull"],
            default=default,
            identity=_IDENTITY.get(row["attidentity"] or ""),
            generated=generated,
            comment=comment,
            collation=collation,
            statistics=row["statistics"],
        )

    def _foreign_key(self, con: Row, where: str) -> ForeignKey:
        if con["confmatchtype"] == "f":
            self.fact("constraint", where, "MATCH FULL")
        if con["partial_set_action"]:
            self.fact("constraint", where, "SET NULL/SET DEFAULT limited to some columns")
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

    def _partition(self, row: Row, name: str, partitions: list[Row]) -> PartitionSpec:
        strategy = _STRATEGIES[row["partstrat"]]
        keys = _split_top_level(_inside_parens(row["partkeydef"]))
        columns = tuple(
            _strip_all_outer_parens(keys[i]) if attnum == 0 or i >= len(keys) else _unquote(keys[i])
            for i, attnum in enumerate(row["partattrs"])
        )
        if 0 in row["partattrs"]:
            self.fact("partition_key", f"table {name}", f"partition key expressions ({row['partkeydef']})")
        bare = row["relname"]
        bounds: list[str] = []
        for part in partitions:
            # Maintenance's: the default partition, and time ranges of one period (any name: retention
            # and older runs may have named them otherwise). Anything else cannot be remade from the YAML.
            bound = part["partbound"] or ""
            if part["relname"] == f"{bare}_default" and bound == "DEFAULT":
                continue
            if strategy == "range" and part["relkind"] == "r" and _period_bound(bound):
                bounds.append(bound)
                continue
            self.fact("partition", f"partition {part['relname']} of {name}", bound)
        default_partition = bool(row["has_default_partition"]) and any(
            part["relname"] == f"{bare}_default" for part in partitions)
        if strategy != "range":
            # interval and premake mean nothing here: keep the model's defaults, as the loader does.
            return PartitionSpec(strategy, columns, None, default_partition=default_partition)
        interval, premake = _infer_interval(bounds)
        if interval is None and bounds:
            self.fact("partition", f"table {name}", "partition interval not inferable from its partitions")
        return PartitionSpec(strategy, columns, interval, premake, default_partition)

    # ----------------------------------------------------------------- indexes
    def _indexes(self, table: str, rows: list[Row], comments: _Comments) -> dict[str, Index]:
        found: dict[str, Index] = {}
        for row in rows:
            name = row["name"]
            where = f"index {name} on {table}"
            if row["in_tablespace"]:
                self.fact("tablespace", where, "not in the default tablespace")
            if row["reloptions"]:
                self.fact("storage_parameter", where, "WITH (" + ", ".join(row["reloptions"]) + ")")
            if row["indisclustered"]:
                self.fact("index", where, f"CLUSTER {table} USING {name}")
            if row["indisreplident"]:
                self.fact("replica_identity", where, "REPLICA IDENTITY USING INDEX")
            comment = comments.relation(row["indexrelid"])
            if comment is not None:
                self.fact("comment", f"comment on {where}", comment)
            if row["backs_constraint"]:
                continue  # a PRIMARY KEY, UNIQUE or EXCLUDE constraint's own index
            if not row["indisvalid"]:
                self.fact("index", where, "INVALID (a failed concurrent build?)")
                self.stats.invalid_indexes.append(name)  # drift reports it (drift.compare)
            if row["indnullsnotdistinct"]:
                self.fact("index", where, "NULLS NOT DISTINCT")
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

    # ----------------------------------------------------------------- triggers and policies
    def _triggers(self, rows: list[Row], rel_keys: Mapping[int, str]) -> dict[int, dict[str, Trigger]]:
        found: dict[int, dict[str, Trigger]] = defaultdict(dict)
        for row in rows:
            table = rel_keys.get(row["tgrelid"])
            name = row["tgname"]
            if table is None:
                continue
            where = f"trigger {name} on {table}"
            if row["relkind"] not in ("r", "p", "v"):
                self.fact("trigger", where, f"a trigger on a {_RELKIND_WORDS.get(row['relkind'], 'relation')}")
                continue
            if row["is_constraint_trigger"]:
                self.fact("trigger", where, "CONSTRAINT TRIGGER")
            if row["tgenabled"] != "O":
                self.fact("trigger", where, f"not enabled in the default way (tgenabled={row['tgenabled']!r})")
            if row["tgnargs"]:
                self.fact("trigger", where, "passes arguments to its function")
            if row["has_columns"]:
                self.fact("trigger", where, "UPDATE OF some columns")
            if row["has_transition_tables"]:
                self.fact("trigger", where, "REFERENCING transition tables")
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

    def _policy(self, row: Row, table: str) -> Policy:
        roles = tuple(sorted(row["roles"])) or (PUBLIC_ROLE,)
        self.referenced_roles.update(role for role in roles if role != PUBLIC_ROLE)
        return Policy(
            name=row["polname"],
            table=table,
            command=_POLICY_COMMANDS[row["polcmd"]],
            permissive=bool(row["polpermissive"]),
            roles=roles,
            using=row["using_expr"],
            with_check=row["check_expr"],
        )

    # ----------------------------------------------------------------- sequences
    def _sequence(self, row: Row, name: str, rel_keys: Mapping[int, str], attnames: Mapping[int, Mapping[int, str]],
                  comments: _Comments) -> SequenceObject | None:
        owner_table = rel_keys.get(row["seq_table"]) if row["seq_table"] is not None else None
        owner_column = attnames.get(row["seq_table"], {}).get(row["seq_column"]) if owner_table else None
        seq_type = row["seq_type"]
        low, high = _SEQUENCE_RANGES.get(seq_type, (None, None))
        increment = int(row["seqincrement"])
        default_min = 1 if increment > 0 else low
        default_max = high if increment > 0 else -1
        if row["seq_deptype"] == "i":
            default_start = default_min if increment > 0 else default_max
            options = []
            if int(row["seqstart"]) != default_start:
                options.append(f"START WITH {row['seqstart']}")
            if increment != 1:
                options.append(f"INCREMENT BY {increment}")
            if int(row["seqmin"]) != default_min:
                options.append(f"MINVALUE {row['seqmin']}")
            if int(row["seqmax"]) != default_max:
                options.append(f"MAXVALUE {row['seqmax']}")
            if int(row["seqcache"]) != 1:
                options.append(f"CACHE {row['seqcache']}")
            if row["seqcycle"]:
                options.append("CYCLE")
            if options and owner_table:
                self.fact("identity", f"column {owner_table}.{owner_column}", " ".join(options))
            return None  # an identity column's own sequence: comes back with the column
        return SequenceObject(
            name=name,
            type=seq_type,
            start=int(row["seqstart"]),
            increment=increment,
            min_value=None if int(row["seqmin"]) == default_min else int(row["seqmin"]),
            max_value=None if int(row["seqmax"]) == default_max else int(row["seqmax"]),
            cache=int(row["seqcache"]),
            cycle=bool(row["seqcycle"]),
            owned_by=f"{owner_table}.{owner_column}" if owner_table and owner_column else None,
            comment=comments.relation(row["oid"]),
            grants=self.grants(row["grants"]),
        )

    # ----------------------------------------------------------------- functions
    def _functions(self, rows: list[Row], comments: _Comments) -> dict[str, Function]:
        found: dict[str, Function] = {}
        for row in rows:
            name = self.key(row["pronamespace"], row["proname"], "function")
            if name is None:
                continue
            what = f"function {name}({row['identity_arguments']})"
            if row["prokind"] != "f":
                kind = _ROUTINE_KINDS.get(row["prokind"], "routine")
                self.fact("routine", f"{kind} {name}({row['arguments']})")
                continue
            if row["probin"] is not None or row["language"] in ("c", "internal"):
                self.fact("function", what, f"a {row['language']} function (AS {row['probin']!r}, "
                                            f"{row['body']!r})")
            if row["has_support"]:
                self.fact("function", what, "has a SUPPORT function")
            self.owner(row, what)
            key = name
            if key in found:
                key = f"{name}({row['identity_arguments']})"
                self.fact("function", what, f"overloaded; kept as {key!r}")
            settings = tuple(sorted(_setting(item) for item in row["proconfig"] or ()))
            default_cost = 1.0 if row["language"] in ("c", "internal") else 100.0
            default_rows = 1000.0 if row["proretset"] else 0.0
            found[key] = Function(
                name=name,
                arguments=row["arguments"],
                returns=row["result"],
                language=row["language"],
                body=row["body"],
                volatility=_VOLATILITY[row["provolatile"]],
                security_definer=bool(row["prosecdef"]),
                comment=comments.function(row["oid"]),
                strict=bool(row["proisstrict"]),
                leakproof=bool(row["proleakproof"]),
                parallel=_PARALLEL[row["proparallel"]],
                cost=None if float(row["procost"]) == default_cost else float(row["procost"]),
                rows=None if float(row["prorows"]) == default_rows else float(row["prorows"]),
                settings=settings,
                grants=self.grants(row["grants"]),
            )
        return found

    # ----------------------------------------------------------------- extensions, privileges, roles
    def _extensions(self, rows: list[Row]) -> dict[str, Extension]:
        found: dict[str, Extension] = {}
        for row in rows:
            name = row["extname"]
            if name in IGNORED_EXTENSIONS:
                continue
            version = None if row["extversion"] == row["default_version"] else row["extversion"]
            schema = None if row["nspname"] == self.schema else row["nspname"]
            found[name] = Extension(name=name, version=version, schema=schema)
        return found

    def _default_privileges(self, rows: list[Row]) -> dict[str, DefaultPrivilege]:
        found: dict[str, DefaultPrivilege] = {}
        for row in rows:
            target = _DEFAULT_ACL_TARGETS.get(row["defaclobjtype"])
            if target is None or target not in DEFAULT_PRIVILEGE_TARGETS:
                continue
            schema = row["nspname"]
            grants = self.grants(row["grants"])
            if schema is None and grants == dict(default_grants(_DEFAULT_ACL_KINDS[target])):
                continue  # only the owner's rights changed: not modeled
            self.referenced_roles.add(row["for_role"])
            key = default_privilege_key(row["for_role"], schema, target)
            found[key] = DefaultPrivilege(for_role=row["for_role"], on=target,  # type: ignore[arg-type]
                                          schema=schema, grants=grants)
        return found

    def _roles(self, rows: list[Row]) -> dict[str, Role]:
        found: dict[str, Role] = {}
        for row in rows:
            name = row["rolname"]
            if row["rolsuper"]:
                self.fact("role_attribute", f"role {name}", "SUPERUSER")
            if row["rolreplication"]:
                self.fact("role_attribute", f"role {name}", "REPLICATION")
            found[name] = Role(
                name=name,
                login=bool(row["rolcanlogin"]),
                inherit=bool(row["rolinherit"]),
                createdb=bool(row["rolcreatedb"]),
                createrole=bool(row["rolcreaterole"]),
                bypassrls=bool(row["rolbypassrls"]),
                connection_limit=int(row["rolconnlimit"]),
                member_of=tuple(sorted(row["member_of"])),
                comment=row["comment"],
            )
        return found


_SCHEMA_FIELDS = ("tables", "enums", "composite_types", "functions", "views", "extensions", "sequences",
                  "namespaces", "default_privileges")
_RELKIND_WORDS: dict[str, str] = {"r": "table", "p": "table", "v": "view", "m": "materialized view",
                                  "c": "type", "S": "sequence", "f": "foreign table"}
_SEQUENCE_RANGES: dict[str, tuple[int, int]] = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}


class _Comments:
    """Comments by (relation oid, column number or 0), by type oid, function oid and schema oid."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self._relations: dict[tuple[int, int], str] = {}
        self._types: dict[int, str] = {}
        self._procs: dict[int, str] = {}
        self._namespaces: dict[int, str] = {}
        for row in rows:
            catalog = row["catalog"]
            if catalog == "pg_class":
                self._relations[(row["objoid"], row["objsubid"])] = row["description"]
            elif catalog == "pg_type":
                self._types[row["objoid"]] = row["description"]
            elif catalog == "pg_proc":
                self._procs[row["objoid"]] = row["description"]
            elif catalog == "pg_namespace":
                self._namespaces[row["objoid"]] = row["description"]

    def relation(self, oid: int, column: int = 0) -> str | None:
        return self._relations.get((oid, column))

    def type(self, oid: int) -> str | None:
        return self._types.get(oid)

    def function(self, oid: int) -> str | None:
        return self._procs.get(oid)

    def namespace(self, oid: int) -> str | None:
        return self._namespaces.get(oid)


_OWNED_BY = re.compile(r" (?:on|of) (?P<owner>\S+)$")
_OWN_NAME = re.compile(r"^(?:table|view|materialized view|sequence|foreign table|function|procedure|aggregate|"
                       r"window function|enum|type|domain|range type|base type) (?P<name>[^(\s]+)")


def _subject_of(name: str) -> str:
    """The model key a fact's name is about (``index i on orders`` -> ``orders``), for ``--exclude``."""
    owned = _OWNED_BY.search(name)
    if owned:
        return owned.group("owner")
    if name.startswith("column "):
        return name.removeprefix("column ").rpartition(".")[0]
    own = _OWN_NAME.match(name)
    return own.group("name") if own else ""


def _grants_text(grants: Grants) -> str:
    return "; ".join(f"{grantee}: {', '.join(privileges)}" for grantee, privileges in grants.items()) or "none"


def _setting(item: str) -> tuple[str, str]:
    """``search_path=pg_catalog, public`` (proconfig) -> ``("search_path", "pg_catalog, public")``."""
    name, _, value = item.partition("=")
    return name, value


def _period_bound(bound: str) -> bool:
    """``FOR VALUES FROM ('2026-11-01 ...') TO ('2026-12-01 ...')``: one day, week, month or year."""
    match = _RANGE_BOUND_RE.match(bound)
    if not match:
        return False
    lo, hi = _parse_bound(match.group("lo")), _parse_bound(match.group("hi"))
    return lo is not None and hi is not None and classify_span(lo, hi) is not None


def _exclusion(con: Row) -> ExclusionConstraint | None:
    """``EXCLUDE USING gist (room WITH =, during WITH &&) WHERE (...)`` -> the model, or None if unreadable."""
    text = con["definition"] or ""
    head = _EXCLUDE_HEAD_RE.match(text)
    if not head:
        return None
    close = _closing_paren(text, head.end() - 1)
    if close is None:
        return None
    elements = tuple(_split_top_level(text[head.end():close]))
    rest = text[close + 1:]
    include: tuple[str, ...] = ()
    where = None
    if rest.startswith(" INCLUDE ("):
        end = _closing_paren(rest, len(" INCLUDE "))
        if end is None:
            return None
        include = tuple(_unquote(part) for part in _split_top_level(rest[len(" INCLUDE ("):end]))
        rest = rest[end + 1:]
    flags = ""
    for flag in (" INITIALLY DEFERRED", " DEFERRABLE"):
        if rest.endswith(flag):
            flags += flag
            rest = rest[: -len(flag)]
    if rest.endswith(" INITIALLY DEFERRED"):
        return None
    if rest.startswith(" WHERE ("):
        end = _closing_paren(rest, len(" WHERE "))
        if end != len(rest) - 1:
            return None
        where = rest[len(" WHERE ("):end]
    elif rest:
        return None
    return ExclusionConstraint(
        name=con["conname"],
        elements=elements,
        method=head.group("method"),
        where=where,
        include=include,
        deferrable="DEFERRABLE" in flags,
        initially_deferred="INITIALLY DEFERRED" in flags,
    )


def _closing_paren(text: str, start: int) -> int | None:
    """Index of the parenthesis closing the one at ``start`` (quotes respected), or None."""
    depth = 0
    quote: str | None = None
    for position in range(start, len(text)):
        char = text[position]
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return position
    return None


# --------------------------------------------------------------------------- helpers


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

