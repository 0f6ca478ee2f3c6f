"""The change-policy rules (``POL``): one per change kind and class, as lint :class:`Rule` objects.

Why lint rules: ``docs/rules.md``, SARIF rule metadata and GitHub annotation titles all come
from a :class:`~veza_schema.lint.registry.Registry`, so a policy decision cannot exist without
its documentation. The rules
have no ``check`` function (``veza-schema lint`` never fires them): ``veza-schema check``
reports them from a diff. Codes: ``POL0xx`` allowed, ``POL1xx`` RFC-required,
``POL2xx`` forbidden. Severity is the severity of a violation: forbidden and RFC-required
rules are errors (an RFC-required change with a valid RFC is reported as a warning, for
reviewers); allowed rules are warnings that are never raised as findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from veza_schema.lint.registry import Registry, Rule, declare

PolicyClass = Literal["allowed", "rfc-required", "forbidden"]
CLASSES: tuple[PolicyClass, ...] = ("allowed", "rfc-required", "forbidden")

_RFC_FIX = ("Add `rfc: RFC-NNNN` (the approved RFC with its up and down plan) on the changed object or its "
            "table in the YAML.")


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """A registered rule and the class of the changes it covers."""

    rule: Rule
    klass: PolicyClass

    @property
    def code(self) -> str:
        return self.rule.code


def _policy(code: str, name: str, klass: PolicyClass, *, summary: str, why: str, fix: str) -> PolicyRule:
    severity: Literal["error", "warning"] = "warning" if klass == "allowed" else "error"
    label = {"allowed": "Allowed without an RFC", "rfc-required": "Needs an RFC",
             "forbidden": "Forbidden"}[klass]
    return PolicyRule(declare(code, name, severity, "policy", summary=f"{label}: {summary}", why=why, fix=fix),
                      klass)


# -- allowed (POL0xx) -------------------------------------------------------------------------
ADD_NULLABLE_COLUMN = _policy(
    "POL001", "add-nullable-column", "allowed",
    summary="a nullable column without a volatile (computed) default.",
    why="Listed by the seed. PostgreSQL 11+ adds it in the catalog only (no rewrite, a brief lock), and no "
        "existing reader or writer is affected.",
    fix="Nothing to do.")
CREATE_NON_UNIQUE_INDEX = _policy(
    "POL002", "create-non-unique-index", "allowed",
    summary="a non-unique index on an existing table or materialized view.",
    why="Listed by the seed. It cannot fail on existing data and is built CONCURRENTLY, without blocking writes.",
    fix="Nothing to do.")
CHANGE_COMMENT = _policy(
    "POL003", "change-comment", "allowed",
    summary="a COMMENT on a table, column, type, function or view added, changed or removed.",
    why="Listed by the seed (comments/documentation): catalog metadata only.",
    fix="Nothing to do.")
DROP_DEPRECATED_COLUMN = _policy(
    "POL004", "drop-deprecated-column", "allowed",
    summary="dropping a column that the base already marks `deprecated`.",
    why="The contract step of expand/contract: the deprecation, approved by its RFC and released earlier, gave "
        "every reader time to stop using the column.",
    fix="Nothing to do; `apply` still refuses it while the column holds data unless `--allow-data-loss`.")
DROP_DEPRECATED_TABLE = _policy(
    "POL005", "drop-deprecated-table", "allowed",
    summary="dropping a table that the base already marks `deprecated`.",
    why="The contract step of expand/contract, approved when the table was deprecated.",
    fix="Nothing to do; `apply` still refuses it while the table has rows unless `--allow-data-loss`.")
CREATE_TYPE = _policy(
    "POL006", "create-type", "allowed",
    summary="a new enum or composite type.",
    why="A type nothing uses yet changes nothing; the column that starts using it is classified on its own.",
    fix="Nothing to do.")
CREATE_VIEW = _policy(
    "POL007", "create-view", "allowed",
    summary="a new plain (not materialized) view.",
    why="A view holds no data, takes no lasting lock and breaks no existing reader.",
    fix="Nothing to do.")
DERIVED_CHANGE = _policy(
    "POL008", "derived-change", "allowed",
    summary="a change that only follows another one: an index or constraint renamed along with a declared "
            "rename, an object that goes away with its dropped table or column, the managed partition helper.",
    why="Judged with the change it follows (the rename, the drop), which is reported on its own.",
    fix="Nothing to do.")
DEPRECATION_WITHDRAWN = _policy(
    "POL009", "deprecation-withdrawn", "allowed",
    summary="a `deprecated` marker removed from a table or column.",
    why="The object stays; only its planned removal is cancelled.",
    fix="Nothing to do.")
CREATE_SCHEMA_OR_SEQUENCE = _policy(
    "POL011", "create-schema-or-sequence", "allowed",
    summary="a new schema or sequence.",
    why="Nothing uses it yet; the column or object that starts using it is classified on its own.",
    fix="Nothing to do.")
TUNE_STATISTICS = _policy(
    "POL012", "tune-statistics", "allowed",
    summary="a column's statistics target changed (SET STATISTICS).",
    why="Catalog only: the next ANALYZE samples more or less; no reader or writer is affected.",
    fix="Nothing to do.")
PARTITION_MAINTENANCE = _policy(
    "POL010", "partition-maintenance", "allowed",
    summary="more partitions made ahead (`premake` raised) or a DEFAULT partition added.",
    why="The migration runs no SQL for `premake`: `veza-schema partitions` makes the partitions ahead (moving "
        "DEFAULT-partition rows out in batches, without blocking writers); existing rows and the key are untouched.",
    fix="Nothing to do.")

# -- RFC required (POL1xx) --------------------------------------------------------------------
CREATE_TABLE = _policy(
    "POL101", "create-table", "rfc-required",
    summary="a new table (with its columns, keys, indexes and triggers).",
    why="The seed's schema is locked: a table is a new contract (naming, ownership, retention, foreign keys "
        "that lock their parent tables) that the architecture review approves. One `rfc:` on the table covers "
        "everything inside it.",
    fix=_RFC_FIX)
ADD_NOT_NULL_COLUMN_WITH_DEFAULT = _policy(
    "POL102", "add-not-null-column-with-default", "rfc-required",
    summary="a NOT NULL column with a constant (non-volatile) default.",
    why="Compatible and catalog-only in PostgreSQL 11+, but not in the seed's list: the default silently fills "
        "every existing row and hides writers that forget the column.",
    fix=_RFC_FIX)
ADD_NOT_NULL_COLUMN = _policy(
    "POL103", "add-not-null-column-without-default", "rfc-required",
    summary="a NOT NULL column without a default.",
    why="Fails on any table that has rows, and breaks every writer that does not set it yet. Needs a plan: add "
        "it nullable, backfill in batches, then SET NOT NULL.",
    fix=_RFC_FIX)
ADD_REWRITING_COLUMN = _policy(
    "POL104", "add-rewriting-column", "rfc-required",
    summary="a column with a volatile default (`gen_random_uuid()`, `nextval()`, ...), an identity or a stored "
            "generated expression.",
    why="The seed allows nullable columns only without a computed default: these rewrite the whole table under "
        "ACCESS EXCLUSIVE, blocking reads and writes for the length of the rewrite.",
    fix=_RFC_FIX + " Or add the column without the default and backfill in batches.")
WIDEN_COLUMN_TYPE = _policy(
    "POL105", "widen-column-type", "rfc-required",
    summary="a compatible (widening) type change: varchar(n) -> varchar(m > n) or text, int -> bigint, a larger "
            "numeric precision.",
    why="Every value is kept, but readers with fixed-size buffers or types (Go int32, Rust i32) must be ready, "
        "and some widenings (int -> bigint) rewrite the table under ACCESS EXCLUSIVE.",
    fix=_RFC_FIX)
ALTER_COLUMN_DEFAULT = _policy(
    "POL106", "alter-column-default", "rfc-required",
    summary="a column default set, changed or dropped.",
    why="Changes what every insert that omits the column writes; dropping it breaks writers of a NOT NULL column.",
    fix=_RFC_FIX)
ALTER_NULLABILITY = _policy(
    "POL107", "alter-column-nullability", "rfc-required",
    summary="SET NOT NULL (fails on existing NULLs, scans the table) or DROP NOT NULL (readers may get NULLs).",
    why="Either way the column's contract changes for existing readers or writers.",
    fix=_RFC_FIX)
ALTER_COLUMN_KIND = _policy(
    "POL108", "alter-identity-or-generated", "rfc-required",
    summary="a column's identity or stored generated expression changed.",
    why="Identity changes affect every writer; a generated expression change recomputes every row (a rewrite).",
    fix=_RFC_FIX)
ADD_UNIQUENESS = _policy(
    "POL109", "add-unique", "rfc-required",
    summary="a unique index, UNIQUE constraint or PRIMARY KEY on an existing table.",
    why="Fails when existing rows hold duplicates, and a constraint takes ACCESS EXCLUSIVE while it builds.",
    fix=_RFC_FIX + " Check the data for duplicates first.")
ADD_VALIDATED_CONSTRAINT = _policy(
    "POL110", "add-check-or-foreign-key", "rfc-required",
    summary="a CHECK or FOREIGN KEY constraint on an existing table.",
    why="Fails when existing rows violate it, scans the table, and a foreign key locks both tables.",
    fix=_RFC_FIX)
RELAX_CONSTRAINT = _policy(
    "POL111", "drop-unique-or-check", "rfc-required",
    summary="a UNIQUE or CHECK constraint dropped (or redefined: dropped and added).",
    why="Integrity the applications rely on stops being enforced.",
    fix=_RFC_FIX)
RENAME = _policy(
    "POL112", "rename", "rfc-required",
    summary="a table, column, index or function renamed (`renamed_from`).",
    why="Every query using the old name breaks at the moment the migration commits; needs a plan (a view or a "
        "dual-write period) so applications can switch.",
    fix=_RFC_FIX)
ADD_ENUM_VALUE = _policy(
    "POL113", "add-enum-value", "rfc-required",
    summary="a value added to an enum.",
    why="Cheap in PostgreSQL, but typed readers (Rust sqlx enums, Go switch statements) fail on a value they do "
        "not know, so they must be deployed first; and undoing it means rebuilding the type.",
    fix=_RFC_FIX)
REORDER_ENUM = _policy(
    "POL114", "reorder-enum-values", "rfc-required",
    summary="an enum's values reordered (same values).",
    why="Changes ORDER BY and comparisons on the enum; the type is rebuilt and every column using it rewritten.",
    fix=_RFC_FIX)
CHANGE_FUNCTION = _policy(
    "POL115", "change-function", "rfc-required",
    summary="a function created, replaced or dropped.",
    why="Functions run inside triggers and queries on live data; a change alters behaviour everywhere at once.",
    fix=_RFC_FIX + " For a dropped function, pass the RFC with `--rfc`.")
CHANGE_TRIGGER = _policy(
    "POL116", "change-trigger", "rfc-required",
    summary="a trigger added, dropped or redefined on an existing table.",
    why="Changes what every write to the table does (audit trails, updated_at, denormalized counters).",
    fix=_RFC_FIX)
CHANGE_VIEW = _policy(
    "POL117", "change-view", "rfc-required",
    summary="a view's query replaced, a view dropped, or a materialized view created or rebuilt.",
    why="Readers of the view see other columns or rows, or none; a materialized view runs its whole query.",
    fix=_RFC_FIX + " For a dropped view, pass the RFC with `--rfc`.")
CHANGE_EXTENSION = _policy(
    "POL118", "change-extension", "rfc-required",
    summary="a PostgreSQL extension added or removed.",
    why="Extensions need installing on every server, often superuser rights, and bring their own upgrade cycle.",
    fix=_RFC_FIX + " For a removed extension, pass the RFC with `--rfc`.")
CHANGE_TYPE = _policy(
    "POL119", "change-unused-type", "rfc-required",
    summary="an enum or composite type dropped, or the attributes of an unused composite type changed.",
    why="Application code may still cast to the type.",
    fix=_RFC_FIX + " For a dropped type, pass the RFC with `--rfc`.")
REDEFINE_FOREIGN_KEY = _policy(
    "POL120", "redefine-foreign-key", "rfc-required",
    summary="a foreign key redefined (dropped and added again under the same name, e.g. another ON DELETE).",
    why="Referential integrity is kept, but deletes behave differently and the new key is validated on both "
        "tables.",
    fix=_RFC_FIX)
DEPRECATE = _policy(
    "POL121", "deprecate", "rfc-required",
    summary="a table or column marked `deprecated`.",
    why="The deprecation is what later allows the drop (expand/contract), so it is where the removal is "
        "approved. Nothing changes in the database.",
    fix="Give the approving RFC: `deprecated: {since: 2026-11-01, rfc: RFC-NNNN}`.")
PARTITION_SHRINK = _policy(
    "POL122", "partition-premake-lowered", "rfc-required",
    summary="fewer partitions made ahead (`premake` lowered).",
    why="Less headroom: when the partitions job lapses, rows of the coming periods land in the DEFAULT "
        "partition sooner, and moving them out later costs batches of row moves (partitions already made stay).",
    fix=_RFC_FIX)
DROP_INDEX = _policy(
    "POL123", "drop-index", "rfc-required",
    summary="an index dropped or redefined (dropped and created again).",
    why="Queries that used it may turn into sequential scans under production load; a unique index also stops "
        "enforcing uniqueness.",
    fix=_RFC_FIX)

CHANGE_ACCESS = _policy(
    "POL124", "change-access", "rfc-required",
    summary="roles, grants, default privileges, row-level security or its policies changed.",
    why="Who may read or write which rows changes: a missing grant breaks the application at once, an extra "
        "one opens data to a role that should not see it.",
    fix=_RFC_FIX)
CHANGE_STORAGE = _policy(
    "POL125", "change-storage-setting", "rfc-required",
    summary="a table made UNLOGGED or LOGGED, a column's collation changed, or a sequence's options changed.",
    why="UNLOGGED tables lose their rows on a crash and rewriting one locks it; a collation change reorders "
        "and may break uniqueness; a sequence's bounds or increment change the ids the application gets.",
    fix=_RFC_FIX)
DROP_SCHEMA_OR_SEQUENCE = _policy(
    "POL126", "drop-schema-or-sequence", "rfc-required",
    summary="a schema or a standalone sequence dropped.",
    why="A dropped sequence loses its position (ids restart if it comes back); code may still use either.",
    fix=_RFC_FIX + " Pass the RFC with `--rfc`.")

# -- forbidden (POL2xx) -----------------------------------------------------------------------
DROP_TABLE = _policy(
    "POL201", "drop-table", "forbidden",
    summary="a table dropped without being deprecated in the base first.",
    why="Listed by the seed: the rows are gone for good, and every reader breaks at once.",
    fix="Deprecate it first (`deprecated: {since, rfc}`), release that, and drop it in a later change. If it "
        "must go now: `generate --allow-forbidden --rfc RFC-NNNN`.")
DROP_COLUMN = _policy(
    "POL202", "drop-column", "forbidden",
    summary="a column dropped without being deprecated in the base first (a rename without `renamed_from` "
            "also shows as a drop plus an add).",
    why="Listed by the seed: the values are gone for good, and readers still selecting it break.",
    fix="Deprecate it first (`deprecated: {since, rfc}`) and drop it in a later change; for a rename, add "
        "`renamed_from: old_name` to the new column.")
INCOMPATIBLE_TYPE = _policy(
    "POL203", "incompatible-type-change", "forbidden",
    summary="a column type narrowed or changed to another type family.",
    why="Listed by the seed: values are truncated, rounded or converted, or the migration fails on existing "
        "data.",
    fix="Expand/contract: add a new column of the new type, backfill, switch readers, deprecate and drop the "
        "old one.")
DROP_FOREIGN_KEY = _policy(
    "POL204", "drop-foreign-key", "forbidden",
    summary="a foreign key dropped (its table and columns staying).",
    why="Listed by the seed: referential integrity stops being enforced and orphans accumulate.",
    fix="Keep the foreign key; to change its behaviour, redefine it under the same name (RFC-required).")
CHANGE_PARTITIONING = _policy(
    "POL205", "change-partitioning", "forbidden",
    summary="a table's partitioning strategy, key or interval changed, partitioning added or removed, or its "
            "DEFAULT partition removed.",
    why="Listed by the seed: it cannot be done in place and means copying the whole table (a massive "
        "migration); a removed DEFAULT partition takes its rows with it.",
    fix="Create a new partitioned table, migrate the data in batches, switch, then deprecate the old one.")
REMOVE_ENUM_VALUE = _policy(
    "POL206", "remove-enum-value", "forbidden",
    summary="a value removed from an enum.",
    why="Rows holding the value make the type rebuild fail, and readers and writers using it break.",
    fix="Stop writing the value, migrate the rows to another value, then remove it with `--allow-forbidden "
        "--rfc`.")
DROP_PRIMARY_KEY = _policy(
    "POL207", "drop-primary-key", "forbidden",
    summary="a table's primary key dropped or replaced.",
    why="Row identity and every foreign key pointing at the table depend on it (seed rule 1).",
    fix="Keep the primary key; add a UNIQUE constraint for another key.")
ALTER_USED_COMPOSITE = _policy(
    "POL208", "alter-used-composite-type", "forbidden",
    summary="the attributes of a composite type that columns use changed.",
    why="An incompatible type change of every column using it (and the drop + create fails while they exist).",
    fix="Create a new type, migrate the columns by expand/contract, then drop the old type.")


POLICY_RULES: dict[str, PolicyRule] = {policy.code: policy for policy in (
    ADD_NULLABLE_COLUMN,
    CREATE_NON_UNIQUE_INDEX,
    CHANGE_COMMENT,
    DROP_DEPRECATED_COLUMN,
    DROP_DEPRECATED_TABLE,
    CREATE_TYPE,
    CREATE_VIEW,
    DERIVED_CHANGE,
    DEPRECATION_WITHDRAWN,
    PARTITION_MAINTENANCE,
    CREATE_SCHEMA_OR_SEQUENCE,
    TUNE_STATISTICS,
    CREATE_TABLE,
    ADD_NOT_NULL_COLUMN_WITH_DEFAULT,
    ADD_NOT_NULL_COLUMN,
    ADD_REWRITING_COLUMN,
    WIDEN_COLUMN_TYPE,
    ALTER_COLUMN_DEFAULT,
    ALTER_NULLABILITY,
    ALTER_COLUMN_KIND,
    ADD_UNIQUENESS,
    ADD_VALIDATED_CONSTRAINT,
    RELAX_CONSTRAINT,
    RENAME,
    ADD_ENUM_VALUE,
    REORDER_ENUM,
    CHANGE_FUNCTION,
    CHANGE_TRIGGER,
    CHANGE_VIEW,
    CHANGE_EXTENSION,
    CHANGE_TYPE,
    REDEFINE_FOREIGN_KEY,
    DEPRECATE,
    PARTITION_SHRINK,
    DROP_INDEX,
    CHANGE_ACCESS,
    CHANGE_STORAGE,
    DROP_SCHEMA_OR_SEQUENCE,
    DROP_TABLE,
    DROP_COLUMN,
    INCOMPATIBLE_TYPE,
    DROP_FOREIGN_KEY,
    CHANGE_PARTITIONING,
    REMOVE_ENUM_VALUE,
    DROP_PRIMARY_KEY,
    ALTER_USED_COMPOSITE,
)}
POLICY_REGISTRY = Registry(policy.rule for policy in POLICY_RULES.values())
