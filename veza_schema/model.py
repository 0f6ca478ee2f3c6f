"""The typed schema model: the one shape every source (YAML, live database, history) produces.

Equality is defined as "PostgreSQL would hold the same thing": fields that exist only
in our YAML (source positions, waivers, tags, RFC references, deprecation notes, module
membership) are declared with ``compare=False``, so a model loaded from YAML equals the
model introspected from a database the YAML was applied to.

Conventions shared by every producer:
- identifiers are stored unquoted, exactly as PostgreSQL stores them;
- column types use PostgreSQL's ``format_type`` spelling (``character varying(255)``,
  ``timestamp with time zone``); see :mod:`veza_schema.types`;
- named collections are ``dict``s keyed by name (order-insensitive equality), ordered
  ones (columns, index elements, enum values) are tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

FkAction = Literal["cascade", "restrict", "set null", "set default", "no action"]
FK_ACTIONS: tuple[str, ...] = ("cascade", "restrict", "set null", "set default", "no action")
INDEX_METHODS: tuple[str, ...] = ("btree", "gin", "gist", "hash", "brin", "spgist")


@dataclass(frozen=True, slots=True, order=True)
class SourcePos:
    """Where an object was declared, so every message can say ``schema/auth.yaml:42:7``."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def _meta(default: object = None) -> object:
    """A field PostgreSQL does not store: excluded from equality and repr noise."""
    return field(default=default, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Waiver:
    """A deliberate exception to a lint rule, with the reason a reviewer can judge."""

    code: str
    reason: str
    pos: SourcePos | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Deprecation:
    """Marks an object as on its way out (expand/contract); the only path to a later drop."""

    since: str
    rfc: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Meta:
    """YAML-only facts about an object: never compared, never rendered as DDL."""

    pos: SourcePos | None = None
    waivers: tuple[Waiver, ...] = ()
    rfc: str | None = None
    deprecated: Deprecation | None = None
    renamed_from: str | None = None
    # Per-key positions inside the object's mapping (e.g. "default", "where").
    key_pos: Mapping[str, SourcePos] = field(default_factory=lambda: MappingProxyType({}))

    def at(self, key: str) -> SourcePos | None:
        """Position of one key of the object, falling back to the object itself."""
        return self.key_pos.get(key, self.pos)


NO_META = Meta()


@dataclass(frozen=True, slots=True)
class CounterSpec:
    """A denormalized counter: the number of rows of ``rows_of`` whose ``via`` column holds the row's
    ``key`` (and which satisfy ``where``). YAML-only: the loader turns it into the trigger function and
    trigger that maintain it, unless ``maintained_by`` names existing triggers of ``rows_of``."""

    rows_of: str
    via: str
    key: str = "id"
    where: str | None = None
    maintained_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    nullable: bool = False
    default: str | None = None
    identity: Literal["always", "by default"] | None = None
    generated: str | None = None  # expression of a STORED generated column
    comment: str | None = None
    # A counter column: how it is counted (triggers), or who maintains it when no trigger does.
    counts: CounterSpec | None = field(default=None, compare=False, repr=False)
    maintained_by: str | None = field(default=None, compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class PrimaryKey:
    name: str
    columns: tuple[str, ...]
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class UniqueConstraint:
    name: str
    columns: tuple[str, ...]
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CheckConstraint:
    name: str
    expression: str
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "no action"
    on_update: str = "no action"
    deferrable: bool = False
    initially_deferred: bool = False
    # Whether the YAML spelled on_delete out (seed rule 4); introspection cannot know.
    on_delete_explicit: bool = field(default=True, compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class IndexElement:
    """One key of an index: a column or an expression, with its sort options."""

    expression: str  # a column name when ``is_column``
    is_column: bool = True
    descending: bool = False
    nulls: Literal["first", "last"] | None = None  # only when not the default for the order
    opclass: str | None = None


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    elements: tuple[IndexElement, ...]
    unique: bool = False
    method: str = "btree"
    where: str | None = None
    include: tuple[str, ...] = ()
    meta: Meta = field(default=NO_META, compare=False, repr=False)

    @property
    def column_names(self) -> tuple[str, ...]:
        """Leading plain columns (stops at the first expression)."""
        names: list[str] = []
        for element in self.elements:
            if not element.is_column:
                break
            names.append(element.expression)
        return tuple(names)

    @property
    def serves_concurrent_refresh(self) -> bool:
        """REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index without WHERE on plain columns."""
        return self.unique and self.where is None and all(e.is_column for e in self.elements)


PartitionBackend = Literal["builtin", "partman"]
PARTITION_BACKENDS: tuple[str, ...] = ("builtin", "partman")


@dataclass(frozen=True, slots=True)
class Retention:
    """How long a time-partitioned table keeps its partitions: ``count`` periods of ``unit``."""

    count: int
    unit: Literal["day", "week", "month", "year"]

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'' if self.count == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class Purge:
    """A plain table whose rows are deleted once ``column`` is older than ``after`` (a purge job:
    `veza-schema purge`, or the pg_cron job of `veza-schema schedule`). Not a catalog fact."""

    column: str
    after: Retention


@dataclass(frozen=True, slots=True)
class PartitionSpec:
    """Declarative range partitioning by time: partitions are made by the migration itself.

    Retention and the backend are maintenance settings, not catalog facts (PostgreSQL stores
    neither), hence ``compare=False``: `veza-schema partitions` applies them on every run.
    """

    strategy: Literal["range", "list", "hash"]
    columns: tuple[str, ...]
    interval: Literal["day", "week", "month", "year"] | None = "month"
    premake: int = 3  # partitions created ahead of the current period
    default_partition: bool = True
    # Partitions wholly older than this are detached (kept in the archive schema) or dropped.
    retention: Retention | None = field(default=None, compare=False)
    retention_keep_table: bool = field(default=True, compare=False)
    # Who creates partitions ahead and applies retention in production: veza-schema itself
    # (cron runs `veza-schema partitions`) or pg_partman 4.x (pg_cron runs its maintenance).
    backend: PartitionBackend = field(default="builtin", compare=False)


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    table: str
    function: str
    timing: Literal["before", "after", "instead of"]
    events: tuple[str, ...]  # insert / update / delete / truncate, sorted
    for_each: Literal["row", "statement"] = "row"
    when: str | None = None
    # Name of the trigger template that generated it, if any (YAML-only).
    template: str | None = field(default=None, compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: PrimaryKey | None = None
    uniques: Mapping[str, UniqueConstraint] = field(default_factory=dict)
    checks: Mapping[str, CheckConstraint] = field(default_factory=dict)
    foreign_keys: Mapping[str, ForeignKey] = field(default_factory=dict)
    indexes: Mapping[str, Index] = field(default_factory=dict)
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    partition: PartitionSpec | None = None
    comment: str | None = None
    purge: Purge | None = field(default=None, compare=False, repr=False)
    module: str = field(default="", compare=False, repr=False)
    tags: frozenset[str] = field(default_factory=frozenset, compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)

    def column(self, name: str) -> Column | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


@dataclass(frozen=True, slots=True)
class EnumType:
    name: str
    values: tuple[str, ...]
    comment: str | None = None
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class CompositeAttribute:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class CompositeType:
    name: str
    attributes: tuple[CompositeAttribute, ...]
    comment: str | None = None
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Function:
    """A function; its identity in PostgreSQL is ``name(argument types)``."""

    name: str
    arguments: str  # e.g. "parent regclass, months_ahead integer"; "" for none
    returns: str
    language: str
    body: str
    volatility: Literal["volatile", "stable", "immutable"] = "volatile"
    security_definer: bool = False
    comment: str | None = None
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class View:
    name: str
    query: str
    materialized: bool = False
    indexes: Mapping[str, Index] = field(default_factory=dict)
    comment: str | None = None
    # Tables and views the query reads, for creation order (YAML may state it; else derived).
    depends_on: tuple[str, ...] = field(default=(), compare=False, repr=False)
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)

    @property
    def refreshable_concurrently(self) -> bool:
        return self.materialized and any(index.serves_concurrent_refresh for index in self.indexes.values())


@dataclass(frozen=True, slots=True)
class Extension:
    name: str
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Module:
    """One YAML file: a seed module. Not a PostgreSQL object; kept for docs and messages."""

    name: str
    description: str | None = None
    file: str = ""


@dataclass(frozen=True, slots=True)
class Schema:
    """A whole database schema (PostgreSQL schema ``public``)."""

    tables: Mapping[str, Table] = field(default_factory=dict)
    enums: Mapping[str, EnumType] = field(default_factory=dict)
    composite_types: Mapping[str, CompositeType] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)
    views: Mapping[str, View] = field(default_factory=dict)
    extensions: Mapping[str, Extension] = field(default_factory=dict)
    modules: Mapping[str, Module] = field(default_factory=dict, compare=False, repr=False)

    @property
    def indexes(self) -> list[Index]:
        """Every index of tables and materialized views, sorted by name."""
        found = [index for table in self.tables.values() for index in table.indexes.values()]
        found += [index for view in self.views.values() for index in view.indexes.values()]
        return sorted(found, key=lambda index: index.name)

    @property
    def triggers(self) -> list[Trigger]:
        found = [trigger for table in self.tables.values() for trigger in table.triggers.values()]
        return sorted(found, key=lambda trigger: (trigger.table, trigger.name))
