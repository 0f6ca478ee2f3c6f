"""The typed schema model: the one shape every source (YAML, live database, history) produces.

One job: saying what a schema holds; its length is one frozen dataclass per kind of object
PostgreSQL holds, and the packed source positions (:class:`Meta`) every object carries.

Equality is defined as "PostgreSQL would hold the same thing": fields that exist only
in our YAML (source positions, waivers, tags, RFC references, deprecation notes, module
membership) are declared with ``compare=False``, so a model loaded from YAML equals the
model introspected from a database the YAML was applied to.

Conventions shared by every producer:
- identifiers are stored unquoted, exactly as PostgreSQL stores them;
- objects of the home schema (``public``) are named bare, objects of other schemas
  ``schema.name`` (the way PostgreSQL prints them with ``search_path = public``): that is
  their key in the model and the name every reference uses. No identifier contains a dot,
  so the key is never ambiguous (:func:`split_name`);
- column types use PostgreSQL's ``format_type`` spelling (``character varying(255)``,
  ``timestamp with time zone``); see :mod:`veza_schema.types`;
- named collections are ``dict``s keyed by name (order-insensitive equality), ordered
  ones (columns, index elements, enum values) are tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from struct import Struct
from types import MappingProxyType
from typing import Literal

HOME_SCHEMA = "public"

FkAction = Literal["cascade", "restrict", "set null", "set default", "no action"]
FK_ACTIONS: tuple[str, ...] = ("cascade", "restrict", "set null", "set default", "no action")
INDEX_METHODS: tuple[str, ...] = ("btree", "gin", "gist", "hash", "brin", "spgist")
PARALLEL_SAFETY: tuple[str, ...] = ("unsafe", "restricted", "safe")
POLICY_COMMANDS: tuple[str, ...] = ("all", "select", "insert", "update", "delete")
# Privileges each kind of object can be granted, in PostgreSQL's order (``all`` expands to them;
# MAINTAIN exists from PostgreSQL 17 and is listed explicitly when wanted).
PRIVILEGES: dict[str, tuple[str, ...]] = {
    "table": ("select", "insert", "update", "delete", "truncate", "references", "trigger"),
    "sequence": ("usage", "select", "update"),
    "function": ("execute",),
    "schema": ("usage", "create"),
    "type": ("usage",),
}
TABLE_PRIVILEGES_EXTRA: tuple[str, ...] = ("maintain",)
DEFAULT_PRIVILEGE_TARGETS: tuple[str, ...] = ("tables", "sequences", "functions", "types", "schemas")
PUBLIC_ROLE = "public"
# What PostgreSQL grants PUBLIC on a new object of each kind (the owner's own rights are not modeled).
PUBLIC_DEFAULTS: dict[str, tuple[str, ...]] = {"function": ("execute",), "type": ("usage",)}

Grants = Mapping[str, tuple[str, ...]]
"""Role name (``public`` for PUBLIC) -> sorted privileges, ``"select with grant option"`` for a grantable one.

The owner's own privileges are not part of it: the owner is whoever runs the migrations."""


def split_name(key: str) -> tuple[str | None, str]:
    """``audit.events`` -> ``("audit", "events")``; ``users`` -> ``(None, "users")`` (the home schema)."""
    schema, dot, name = key.partition(".")
    return (schema, name) if dot else (None, key)


def schema_of(key: str) -> str:
    """The schema an object key lives in: ``audit.events`` -> ``audit``, ``users`` -> ``public``."""
    return split_name(key)[0] or HOME_SCHEMA


def qualify(schema: str | None, name: str) -> str:
    """The model key of ``name`` in ``schema`` (bare in the home schema)."""
    return name if schema in (None, HOME_SCHEMA) else f"{schema}.{name}"


def default_grants(kind: str) -> Mapping[str, tuple[str, ...]]:
    """What PUBLIC holds on a new object of ``kind`` (functions: EXECUTE; types: USAGE; else nothing)."""
    public = PUBLIC_DEFAULTS.get(kind)
    return MappingProxyType({PUBLIC_ROLE: public} if public else {})


@dataclass(frozen=True, slots=True, order=True)
class SourcePos:
    """Where an object was declared, so every message can say ``schema/auth.yaml:42:7``."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


# Fields added after ``meta`` in a class came later than its first positional users: pass them by keyword.


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


Notes = tuple[tuple[Waiver, ...], str | None, Deprecation | None, str | None]
"""A :class:`Meta`'s waivers, RFC, deprecation and former name (in that order): rare, so kept apart."""


class PositionLayout:
    """What the positions of many objects have in common: the file, whether the object itself has a
    position, the keys whose values have one, how the numbers are packed ("HB": a line below 65,536
    in two bytes and a column below 256 in one, "II": four bytes each) and the object's notes.
    Shared by every :class:`Meta` with the same ones (:func:`position_layout`);
    numbered in this process, each :class:`Meta` starts with the number."""

    __slots__ = ("file", "located", "keys", "width", "notes", "index", "numbers", "pair", "tag")

    def __init__(self, file: str, located: bool, keys: tuple[str, ...], width: str, notes: Notes | None) -> None:
        self.file, self.located, self.keys, self.width, self.notes = file, located, keys, width, notes
        self.index = {key: i for i, key in enumerate(keys, start=1)}  # 0: the object itself
        self.numbers = Struct("=" + width * (len(keys) + 1))
        self.pair = Struct("=" + width)
        self.tag = _NUMBER.pack(len(_LAYOUTS))
        _LAYOUTS.append(self)


_NUMBER = Struct("=I")
_LAYOUTS: list[PositionLayout] = []
_SHARED: dict[tuple[object, ...], PositionLayout] = {}


def position_layout(file: str, located: bool, keys: tuple[str, ...], width: str,
                    notes: Notes | None = None) -> PositionLayout:
    """The layout of these positions and notes, shared by every Meta with the same ones.

    Notes are nearly always one object's own, yet shared too: a process that loads a file again (a
    test session, a warm run's cache) makes no new layout for it, so ``_LAYOUTS`` stops growing. A
    waiver's position is not part of its equality, so the key carries it apart."""
    key: tuple[object, ...] = (file, located, keys, width)
    if notes is not None:
        key += (notes, tuple(waiver.pos for waiver in notes[0]))
    found = _SHARED.get(key)
    if found is None:
        found = _SHARED[key] = PositionLayout(file, located, keys, width, notes)
    return found


class Meta(bytes):
    """YAML-only facts about an object: never compared, never rendered as DDL.

    ``pos`` is where the object was declared, ``at(key)`` where one of its keys' values was written
    (``default``, ``where``...). Every object of a 10,000-table schema has one, so a Meta is one bytes
    object: its :class:`PositionLayout`'s number then the line/column numbers, packed; a
    :class:`SourcePos` is made when one is asked for (one object where a position object, a key
    position map and a Meta made three: ~120 MB less at 10,000 tables). Its bytes are not its
    value: equality, hash and pickling (:func:`meta_from`) go by the positions and notes.
    """

    __slots__ = ()

    def __new__(cls, pos: SourcePos | None = None, waivers: tuple[Waiver, ...] = (), rfc: str | None = None,
                deprecated: Deprecation | None = None, renamed_from: str | None = None,
                key_pos: Mapping[str, SourcePos] | None = None) -> Meta:
        key_pos = key_pos or {}
        files = {p.file for p in (pos, *key_pos.values()) if p is not None}
        if len(files) > 1:
            raise ValueError(f"positions of one object in several files: {sorted(files)}")
        numbers = [pos.line, pos.column] if pos is not None else [0, 0]
        for key_position in key_pos.values():
            numbers += (key_position.line, key_position.column)
        notes = (waivers, rfc, deprecated, renamed_from)
        if pos is None and not key_pos and notes == ((), None, None, None):
            return bytes.__new__(cls)
        return cls.packed(files.pop() if files else "", tuple(key_pos), numbers, notes, located=pos is not None)

    @classmethod
    def packed(cls, file: str, keys: tuple[str, ...], numbers: list[int], notes: Notes | None = None, *,
               located: bool = True) -> Meta:
        """The loader's way: line, column of the object then of each key's value, in ``keys``' order."""
        # Nearly every file's numbers fit three bytes a position: a Meta of up to three positions is 64 bytes.
        width = "HB" if max(numbers[0::2]) < 1 << 16 and max(numbers[1::2]) < 1 << 8 else "II"
        layout = position_layout(file, located, keys, width,
                                 notes if notes is not None and notes != ((), None, None, None) else None)
        return bytes.__new__(cls, layout.tag + layout.numbers.pack(*numbers))

    @property
    def layout(self) -> PositionLayout | None:
        return _LAYOUTS[_NUMBER.unpack_from(self)[0]] if bytes.__len__(self) else None

    def _position(self, layout: PositionLayout, index: int) -> SourcePos:
        line, column = layout.pair.unpack_from(self, _NUMBER.size + index * layout.pair.size)
        return SourcePos(layout.file, line, column)

    @property
    def pos(self) -> SourcePos | None:
        layout = self.layout
        return self._position(layout, 0) if layout is not None and layout.located else None

    def at(self, key: str) -> SourcePos | None:
        """Position of one key of the object, falling back to the object itself."""
        layout = self.layout
        if layout is None:
            return None
        index = layout.index.get(key, 0)
        return self._position(layout, index) if index or layout.located else None

    @property
    def key_pos(self) -> Mapping[str, SourcePos]:
        """Per-key positions inside the object's mapping (e.g. "default", "where")."""
        layout = self.layout
        if layout is None:
            return MappingProxyType({})
        return MappingProxyType({key: self._position(layout, i) for key, i in layout.index.items()})

    @property
    def notes(self) -> Notes:
        layout = self.layout
        return layout.notes if layout is not None and layout.notes is not None else ((), None, None, None)

    @property
    def waivers(self) -> tuple[Waiver, ...]:
        return self.notes[0]

    @property
    def rfc(self) -> str | None:
        return self.notes[1]

    @property
    def deprecated(self) -> Deprecation | None:
        return self.notes[2]

    @property
    def renamed_from(self) -> str | None:
        return self.notes[3]

    def replace(self, **changes: object) -> Meta:  # type: ignore[override] # not bytes.replace: Meta's bytes are private
        """A copy with some of the constructor's arguments changed (what ``dataclasses.replace`` does)."""
        now: dict[str, object] = dict(zip(("waivers", "rfc", "deprecated", "renamed_from"), self.notes, strict=True))
        now.update(pos=self.pos, key_pos=self.key_pos)
        unknown = set(changes) - set(now)
        if unknown:
            raise TypeError(f"Meta has no field {sorted(unknown)}")
        return Meta(**{**now, **changes})  # type: ignore[arg-type]

    def __reduce__(self) -> tuple[type[Meta], tuple[object, ...]]:
        """Pickled and copied by value: the bytes start with a layout number that means nothing in another process."""
        waivers, rfc, deprecated, renamed_from = self.notes
        return Meta, (self.pos, waivers, rfc, deprecated, renamed_from, dict(self.key_pos))

    def numbers(self) -> bytes:
        """The packed line/column numbers (what :func:`meta_from` takes back with the layout)."""
        return bytes(self[_NUMBER.size:])

    def _value(self) -> tuple[object, ...]:
        return self.pos, tuple(self.key_pos.items()), self.notes

    def __eq__(self, other: object) -> bool:  # never equal to bytes: not NotImplemented, bytes would compare
        return isinstance(other, Meta) and self._value() == other._value()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self._value())

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        fields = {"pos": self.pos, "key_pos": dict(self.key_pos),
                  **dict(zip(("waivers", "rfc", "deprecated", "renamed_from"), self.notes, strict=True))}
        return f"Meta({', '.join(f'{k}={v!r}' for k, v in fields.items() if v not in (None, (), {}))})"

    __str__ = __repr__


def meta_from(layout: PositionLayout | None, numbers: bytes) -> Meta:
    """A :class:`Meta` from its layout and packed numbers (the load cache rebuilds them so)."""
    return bytes.__new__(Meta, layout.tag + numbers) if layout is not None else NO_META


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
    # COLLATE as SQL text (``"C"``, ``"en_US.utf8"``), only when not the type's default.
    collation: str | None = None
    # ALTER COLUMN ... SET STATISTICS; None is the server's default target.
    statistics: int | None = None


@dataclass(frozen=True, slots=True)
class PrimaryKey:
    name: str
    columns: tuple[str, ...]
    meta: Meta = field(default=NO_META, compare=False, repr=False)
    deferrable: bool = False
    initially_deferred: bool = False


@dataclass(frozen=True, slots=True)
class UniqueConstraint:
    name: str
    columns: tuple[str, ...]
    meta: Meta = field(default=NO_META, compare=False, repr=False)
    deferrable: bool = False
    initially_deferred: bool = False
    nulls_not_distinct: bool = False


@dataclass(frozen=True, slots=True)
class ExclusionConstraint:
    """``EXCLUDE USING gist (room_id WITH =, during WITH &&)``: no two rows may match on every element.

    ``elements`` are ``"expression WITH operator"`` texts as PostgreSQL prints them.
    """

    name: str
    elements: tuple[str, ...]
    method: str = "gist"
    where: str | None = None
    include: tuple[str, ...] = ()
    deferrable: bool = False
    initially_deferred: bool = False
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Policy:
    """A row-level security policy (CREATE POLICY); ``roles`` sorted, ``("public",)`` for everyone."""

    name: str
    table: str
    command: Literal["all", "select", "insert", "update", "delete"] = "all"
    permissive: bool = True
    roles: tuple[str, ...] = (PUBLIC_ROLE,)
    using: str | None = None
    with_check: str | None = None
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
    """Declarative range partitioning by time: a new table's first partitions are made by its migration.

    Premake, retention and the backend are maintenance settings, not catalog facts (PostgreSQL
    stores none of them), hence ``compare=False``: `veza-schema partitions` applies them on every run.
    """

    strategy: Literal["range", "list", "hash"]
    columns: tuple[str, ...]
    interval: Literal["day", "week", "month", "year"] | None = "month"
    # Partitions made ahead of the current period: maintenance policy too (the `partitions` job
    # reads it; PostgreSQL holds only today's partitions, whose count moves with the calendar).
    premake: int = field(default=3, compare=False)
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
    exclusions: Mapping[str, ExclusionConstraint] = field(default_factory=dict)
    unlogged: bool = False
    row_security: bool = False  # ENABLE ROW LEVEL SECURITY
    force_row_security: bool = False  # FORCE ROW LEVEL SECURITY (applies to the owner too)
    policies: Mapping[str, Policy] = field(default_factory=dict)
    grants: Grants = field(default_factory=dict)

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
    strict: bool = False  # RETURNS NULL ON NULL INPUT
    leakproof: bool = False
    parallel: Literal["unsafe", "restricted", "safe"] = "unsafe"
    cost: float | None = None  # None: PostgreSQL's default (1 for C and internal, else 100)
    rows: float | None = None  # None: PostgreSQL's default (1000 for set-returning functions)
    # SET clauses, sorted by name: (("search_path", "pg_catalog, public"),); values as PostgreSQL keeps them.
    settings: tuple[tuple[str, str], ...] = ()
    grants: Grants = field(default_factory=lambda: default_grants("function"))


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
    triggers: Mapping[str, Trigger] = field(default_factory=dict)  # INSTEAD OF triggers of a plain view
    grants: Grants = field(default_factory=dict)
    # Output columns as "name type", when known (introspection): tells a replaceable query change
    # from one that must drop and recreate the view. YAML leaves it empty.
    columns: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def refreshable_concurrently(self) -> bool:
        return self.materialized and any(index.serves_concurrent_refresh for index in self.indexes.values())


@dataclass(frozen=True, slots=True)
class Extension:
    name: str
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)
    version: str | None = None  # None: the server's default version
    schema: str | None = None  # None: the home schema


@dataclass(frozen=True, slots=True)
class SequenceObject:
    """A sequence: standalone, or owned by a column (``serial`` makes one per column).

    ``min_value``/``max_value`` are None when they are the default for the type and direction.
    """

    name: str
    type: str = "bigint"
    start: int = 1
    increment: int = 1
    min_value: int | None = None
    max_value: int | None = None
    cache: int = 1
    cycle: bool = False
    owned_by: str | None = None  # "table.column" (table key), dropped with the column
    comment: str | None = None
    grants: Grants = field(default_factory=dict)
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)

    @property
    def owner_table(self) -> str | None:
        return self.owned_by.rpartition(".")[0] if self.owned_by else None

    @property
    def owner_column(self) -> str | None:
        return self.owned_by.rpartition(".")[2] if self.owned_by else None


@dataclass(frozen=True, slots=True)
class Namespace:
    """A PostgreSQL schema other than the home one (``CREATE SCHEMA``)."""

    name: str
    comment: str | None = None
    grants: Grants = field(default_factory=dict)
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Role:
    """A role the schema grants to (cluster-wide in PostgreSQL: created if missing, never dropped)."""

    name: str
    login: bool = False
    inherit: bool = True
    createdb: bool = False
    createrole: bool = False
    bypassrls: bool = False
    connection_limit: int = -1
    member_of: tuple[str, ...] = ()  # sorted role names
    comment: str | None = None
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DefaultPrivilege:
    """ALTER DEFAULT PRIVILEGES FOR ROLE ``for_role`` [IN SCHEMA ``schema``] GRANT ... ON ``on``.

    ``grants`` are the rights added to what PostgreSQL grants by itself (the owner's, and
    PUBLIC's on functions and types); a global entry (``schema`` None) may also take PUBLIC's away,
    which shows as ``grants`` without ``public``.
    """

    for_role: str
    on: Literal["tables", "sequences", "functions", "types", "schemas"]
    schema: str | None = None
    grants: Grants = field(default_factory=dict)
    module: str = field(default="", compare=False, repr=False)
    meta: Meta = field(default=NO_META, compare=False, repr=False)

    @property
    def key(self) -> str:
        return default_privilege_key(self.for_role, self.schema, self.on)


def default_privilege_key(for_role: str, schema: str | None, on: str) -> str:
    """``veza_owner:public:tables``; ``*`` for every schema."""
    return f"{for_role}:{schema or '*'}:{on}"


@dataclass(frozen=True, slots=True)
class Module:
    """One YAML file: a seed module. Not a PostgreSQL object; kept for docs and messages."""

    name: str
    description: str | None = None
    file: str = ""


@dataclass(frozen=True, slots=True)
class Schema:
    """A whole database: the home schema ``public``, the other schemas it declares, roles it grants to."""

    tables: Mapping[str, Table] = field(default_factory=dict)
    enums: Mapping[str, EnumType] = field(default_factory=dict)
    composite_types: Mapping[str, CompositeType] = field(default_factory=dict)
    functions: Mapping[str, Function] = field(default_factory=dict)
    views: Mapping[str, View] = field(default_factory=dict)
    extensions: Mapping[str, Extension] = field(default_factory=dict)
    sequences: Mapping[str, SequenceObject] = field(default_factory=dict)
    namespaces: Mapping[str, Namespace] = field(default_factory=dict)
    roles: Mapping[str, Role] = field(default_factory=dict)
    default_privileges: Mapping[str, DefaultPrivilege] = field(default_factory=dict)
    modules: Mapping[str, Module] = field(default_factory=dict, compare=False, repr=False)

    @property
    def indexes(self) -> list[Index]:
        """Every index of tables and materialized views, sorted by name."""
        found = [index for table in self.tables.values() for index in table.indexes.values()]
        found += [index for view in self.views.values() for index in view.indexes.values()]
        return sorted(found, key=lambda index: index.name)

    @property
    def triggers(self) -> list[Trigger]:
        """Every trigger of tables and views, sorted by (table, name)."""
        found = [trigger for table in self.tables.values() for trigger in table.triggers.values()]
        found += [trigger for view in self.views.values() for trigger in view.triggers.values()]
        return sorted(found, key=lambda trigger: (trigger.table, trigger.name))

    @property
    def policies(self) -> list[Policy]:
        found = [policy for table in self.tables.values() for policy in table.policies.values()]
        return sorted(found, key=lambda policy: (policy.table, policy.name))
