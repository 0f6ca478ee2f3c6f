"""Hypothesis strategies: random schemas within the YAML format, and random edits of them.

A schema is drawn as a small structured spec (:class:`SchemaSpec`), written as YAML by
:func:`to_yaml` and read back by the real loader, so every property starts from text a
user could have written. Specs keep, for every CHECK and index expression, the column it
reads (``{c}`` in a template), so an edit that renames or drops a column can fix or drop
what depends on it and the pair (old, new) stays a valid schema.

What is drawn: tables (regular and range-partitioned by month), column types across the
common families (integers, numeric, text, varchar(n), boolean, timestamptz, date, uuid,
jsonb, text[], enums), nullability, defaults, primary keys, UNIQUE, CHECK, foreign keys
with every action, indexes (multi-column, DESC/NULLS, partial, expression, INCLUDE, hash,
gin, unique), enums (values with quotes and spaces), comments (quotes, non-ASCII), names
that need quoting (reserved words, capitals).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml
from hypothesis import strategies as st

from veza_schema.sql.text import ident

# -- the universe ------------------------------------------------------------------------------------
TABLE_NAMES = ("artists", "tracks", "user", "Playlists", "order", "events", "plays", "tags")
COLUMN_NAMES = ("title", "name", "position", "Rank", "score", "starts_at", "day", "flag", "payload",
                "labels", "note", "order", "amount", "ref", "kind")
ENUM_NAMES = ("status", "visibility")
ENUM_VALUES = ("draft", "published", "on hold", "it's", "Archived", "x")
COMMENTS = (None, "plain", "it's quoted", "ünïcödé ✓", "$$ dollar $$ and ; semicolon", "line one\nline two")

# family -> YAML type spellings
FAMILIES: dict[str, tuple[str, ...]] = {
    "int": ("integer", "bigint", "smallint"),
    "num": ("numeric(10,2)",),
    "text": ("text", "varchar(40)", "varchar(255)"),
    "bool": ("boolean",),
    "ts": ("timestamptz",),
    "date": ("date",),
    "uuid": ("uuid",),
    "json": ("jsonb",),
    "array": ("text[]",),
}
DEFAULTS: dict[str, tuple[str, ...]] = {
    "int": ("0", "1", "-7"),
    "num": ("0", "1.50"),
    "text": ("''", "'x'", "'it''s'"),
    "bool": ("true", "false"),
    "ts": ("now()", "CURRENT_TIMESTAMP"),
    "date": ("CURRENT_DATE",),
    "uuid": ("gen_random_uuid()",),
    "json": ("'{}'::jsonb",),
    "array": ("'{}'::text[]",),
}
CHECKS: dict[str, tuple[str, ...]] = {
    "int": ("{c} >= 0", "{c} <> 13"),
    "num": ("{c} >= 0",),
    "text": ("length({c}) < 200", "{c} <> ''"),
    "ts": ("{c} > '2000-01-01 00:00:00+00'",),
    "date": ("{c} >= '2000-01-01'",),
}
EXPRESSIONS: dict[str, tuple[str, ...]] = {"text": ("lower({c})",), "int": ("({c} + 1)",)}
PARTIAL: dict[str, tuple[str, ...]] = {"int": ("{c} > 0",), "text": ("{c} <> ''",), "bool": ("{c}",)}
KEY_FAMILIES = ("int", "text", "uuid", "date")
FK_ACTIONS = ("cascade", "restrict", "set null", "set default", "no action")
# Changes of type in place, both ways (a pair and its rollback): widening one way, narrowing the other.
RETYPES = (("integer", "bigint"), ("smallint", "integer"), ("varchar(40)", "varchar(255)"),
           ("varchar(255)", "text"), ("numeric(10,2)", "numeric(12,2)"))


def family_of(type_text: str, enums: dict[str, list[str]]) -> str:
    if type_text in enums:
        return "enum"
    for family, spellings in FAMILIES.items():
        if type_text in spellings:
            return family
    if type_text == "numeric(12,2)":
        return "num"
    raise AssertionError(type_text)


# -- specs ----------------------------------------------------------------------------------------------
@dataclass
class ColumnSpec:
    name: str
    type: str
    nullable: bool = False
    default: str | None = None
    comment: str | None = None
    renamed_from: str | None = None


@dataclass
class IndexSpec:
    elements: list[tuple[str, str]]  # (template, column): "{c}", "{c} desc", "lower({c})"...
    unique: bool = False
    method: str = "btree"
    where: tuple[str, str] | None = None  # (template, column)
    include: list[str] = field(default_factory=list)

    def columns(self) -> set[str]:
        used = {c for _, c in self.elements} | set(self.include)
        return used | ({self.where[1]} if self.where else set())


@dataclass
class ForeignKeySpec:
    column: str
    ref_table: str
    ref_column: str
    on_delete: str
    on_update: str


@dataclass
class TableSpec:
    name: str
    columns: list[ColumnSpec]
    primary_key: list[str] = field(default_factory=list)
    uniques: dict[str, list[str]] = field(default_factory=dict)
    checks: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (template, column)
    foreign_keys: dict[str, ForeignKeySpec] = field(default_factory=dict)
    indexes: dict[str, IndexSpec] = field(default_factory=dict)
    partition: tuple[str, int, bool] | None = None  # (column, premake, default partition)
    comment: str | None = None
    renamed_from: str | None = None
    # Column names renamed or dropped by earlier edits: an added column reusing one would read as the old
    # column moved to the end, a reorder the planner refuses by design (PostgreSQL cannot reorder columns).
    retired: set[str] = field(default_factory=set)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    def pinned(self, name: str) -> bool:
        """A key column: part of the primary key or the partition key."""
        return name in self.primary_key or (self.partition is not None and self.partition[0] == name)


@dataclass
class SchemaSpec:
    enums: dict[str, list[str]] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)

    def referenced(self, table: str, column: str | None = None) -> bool:
        """Whether a foreign key points at the table (from another table) or at one of its columns (from any)."""
        return any(fk.ref_table == table and (column is None or fk.ref_column == column)
                   for t in self.tables.values() for fk in t.foreign_keys.values() if t.name != table or column)


def _expression(template: str, column: str) -> str:
    return template.format(c=ident(column))


def to_yaml(spec: SchemaSpec) -> str:
    """The module ``app`` as YAML, through PyYAML (so quoting in YAML is PyYAML's business)."""
    document: dict = {"module": "app"}
    if spec.enums:
        document["enums"] = {name: list(values) for name, values in spec.enums.items()}
    tables: dict = {}
    for table in spec.tables.values():
        body: dict = {}
        if table.renamed_from:
            body["renamed_from"] = table.renamed_from
        if table.comment is not None:
            body["comment"] = table.comment
        columns: dict = {}
        for column in table.columns:
            entry: dict = {"type": column.type}
            if column.nullable:
                entry["nullable"] = True
            if column.default is not None:
                entry["default"] = column.default
            if column.comment is not None:
                entry["comment"] = column.comment
            if column.renamed_from:
                entry["renamed_from"] = column.renamed_from
            columns[column.name] = entry
        body["columns"] = columns
        if table.primary_key:
            body["primary_key"] = list(table.primary_key)
        if table.uniques:
            body["unique"] = {name: list(cols) for name, cols in table.uniques.items()}
        if table.checks:
            body["checks"] = {name: _expression(*check) for name, check in table.checks.items()}
        if table.foreign_keys:
            body["foreign_keys"] = {
                name: {"columns": [fk.column], "references": f"{fk.ref_table}({fk.ref_column})",
                       "on_delete": fk.on_delete, "on_update": fk.on_update}
                for name, fk in table.foreign_keys.items()}
        if table.indexes:
            indexes = {}
            for name, index in table.indexes.items():
                entry = {"expressions": [_element(t, c) for t, c in index.elements]}
                if index.unique:
                    entry["unique"] = True
                if index.method != "btree":
                    entry["using"] = index.method
                if index.where:
                    entry["where"] = _expression(*index.where)
                if index.include:
                    entry["include"] = list(index.include)
                indexes[name] = entry
            body["indexes"] = indexes
        if table.partition:
            column, premake, default = table.partition
            body["partition_by"] = {"range": [column], "interval": "month", "premake": premake,
                                    "default_partition": default}
        tables[table.name] = body
    if tables:
        document["tables"] = tables
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)


def _element(template: str, column: str) -> str:
    """An index element: a column by its bare name (the loader quotes it), else an expression."""
    if template.startswith("{c}"):
        return column + template[3:]
    return _expression(template, column)


# -- drawing --------------------------------------------------------------------------------------------
Draw = Callable[..., object]


def _type(draw: Draw, enums: dict[str, list[str]]) -> str:
    families = list(FAMILIES) + (["enum"] if enums else [])
    family = draw(st.sampled_from(families))
    if family == "enum":
        return draw(st.sampled_from(sorted(enums)))  # type: ignore[return-value]
    return draw(st.sampled_from(FAMILIES[family]))  # type: ignore[return-value]


def _default(draw: Draw, type_text: str, enums: dict[str, list[str]]) -> str | None:
    family = family_of(type_text, enums)
    if family == "enum":
        value = draw(st.sampled_from(enums[type_text]))
        return "'" + str(value).replace("'", "''") + "'"
    return draw(st.sampled_from(DEFAULTS[family]))  # type: ignore[return-value]


def new_column(draw: Draw, name: str, enums: dict[str, list[str]], nullable: bool | None = None) -> ColumnSpec:
    type_text = _type(draw, enums)
    if nullable is None:
        nullable = draw(st.booleans())  # type: ignore[assignment]
    default = _default(draw, type_text, enums) if draw(st.booleans()) else None
    return ColumnSpec(name, type_text, bool(nullable), default, draw(st.sampled_from(COMMENTS)))  # type: ignore[arg-type]


def _free(draw: Draw, pool: tuple[str, ...], used: set[str], prefix: str) -> str:
    free = [n for n in pool if n not in used]
    if free:
        return draw(st.sampled_from(free))  # type: ignore[return-value]
    n = 1
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"


def constraint_name(kind: str, table: str, used: set[str]) -> str:
    base = f"{kind}_{table.lower()}"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    return name


def all_names(spec: SchemaSpec) -> set[str]:
    """Relation and constraint names share namespaces in PostgreSQL: keep every generated name unique."""
    names = set(spec.tables)
    for table in spec.tables.values():
        names |= set(table.uniques) | set(table.checks) | set(table.foreign_keys) | set(table.indexes)
        names |= {f"pk_{table.name}"}
    return names


def add_index(draw: Draw, spec: SchemaSpec, table: TableSpec) -> None:
    families = {c.name: family_of(c.type, spec.enums) for c in table.columns}
    column = draw(st.sampled_from([c.name for c in table.columns]))
    family = families[column]  # type: ignore[index]
    method = "btree"
    if family in ("json", "array"):
        method = "gin"
    elif draw(st.integers(0, 5)) == 0 and family not in ("bool",):
        method = "hash"
    if method != "btree":
        index = IndexSpec([("{c}", column)], method=method)  # type: ignore[list-item]
    else:
        keyable = [c for c, f in families.items() if f not in ("json", "array")]
        if not keyable:
            return
        chosen = draw(st.lists(st.sampled_from(keyable), min_size=1, max_size=3, unique=True))
        elements = []
        for name in chosen:  # type: ignore[attr-defined]
            options = ["{c}", "{c} desc", "{c} nulls first", "{c} desc nulls last", "{c} desc nulls first",
                       "{c} nulls last"] + list(
                EXPRESSIONS.get(families[name], ()))
            elements.append((draw(st.sampled_from(options)), name))
        unique = table.partition is None and draw(st.integers(0, 3)) == 0
        where = None
        partial = [(t, c) for c, f in families.items() for t in PARTIAL.get(f, ())]
        if partial and draw(st.integers(0, 3)) == 0:
            where = draw(st.sampled_from(partial))
        rest = [c for c in keyable if c not in chosen]  # type: ignore[operator]
        include = draw(st.lists(st.sampled_from(rest), max_size=1, unique=True)) if rest else []
        index = IndexSpec(elements, bool(unique), "btree", where, list(include))  # type: ignore[arg-type]
    name = constraint_name("idx", f"{table.name}_{column}", all_names(spec))
    table.indexes[name] = index


def add_check(draw: Draw, spec: SchemaSpec, table: TableSpec) -> None:
    options = [(t, c.name) for c in table.columns for t in CHECKS.get(family_of(c.type, spec.enums), ())]
    if options:
        table.checks[constraint_name("chk", table.name, all_names(spec))] = draw(st.sampled_from(options))  # type: ignore[assignment]


def add_unique(draw: Draw, spec: SchemaSpec, table: TableSpec) -> None:
    keyable = [c.name for c in table.columns if family_of(c.type, spec.enums) in KEY_FAMILIES + ("bool", "ts")]
    if table.partition is None and keyable:
        columns = draw(st.lists(st.sampled_from(keyable), min_size=1, max_size=2, unique=True))
        # PostgreSQL's CREATE TABLE keeps one of several identical keys (the primary key first) and drops the
        # others silently: a UNIQUE repeating a key is for lint to refuse (issue 19), not drawn here.
        if list(columns) in [table.primary_key, *table.uniques.values()]:  # type: ignore[call-overload]
            return
        table.uniques[constraint_name("uq", table.name, all_names(spec))] = list(columns)  # type: ignore[arg-type]


def add_foreign_key(draw: Draw, spec: SchemaSpec, table: TableSpec) -> None:
    """A new column referencing another (regular) table's single-column primary key."""
    targets = [t for t in spec.tables.values() if len(t.primary_key) == 1 and t.partition is None]
    if not targets:
        return
    target = draw(st.sampled_from(targets))
    key = target.column(target.primary_key[0])  # type: ignore[attr-defined]
    name = _free(draw, COLUMN_NAMES, set(c.name for c in table.columns), "ref")
    on_delete = draw(st.sampled_from(FK_ACTIONS))
    nullable = on_delete in ("set null",) or draw(st.booleans())
    table.columns.append(ColumnSpec(name, key.type, bool(nullable)))
    fk = ForeignKeySpec(name, target.name, key.name, on_delete, draw(st.sampled_from(FK_ACTIONS)))  # type: ignore[arg-type, attr-defined]
    table.foreign_keys[constraint_name("fk", table.name, all_names(spec))] = fk


def new_table(draw: Draw, spec: SchemaSpec, name: str) -> TableSpec:
    enums = spec.enums
    partitioned = draw(st.integers(0, 4)) == 0
    count = draw(st.integers(1, 4))
    used: set[str] = set()
    columns: list[ColumnSpec] = []
    primary_key: list[str] = []
    partition = None
    if partitioned:
        columns = [ColumnSpec("id", "bigint"), ColumnSpec("starts_at", "timestamptz", default="now()")]
        primary_key = ["id", "starts_at"]
        partition = ("starts_at", draw(st.integers(0, 2)), draw(st.booleans()))
        used = {"id", "starts_at"}
    elif draw(st.integers(0, 4)) > 0:
        key_type = draw(st.sampled_from(["integer", "bigint", "uuid", "text"]))
        default = "gen_random_uuid()" if key_type == "uuid" and draw(st.booleans()) else None
        columns = [ColumnSpec("id", key_type, default=default)]  # type: ignore[arg-type]
        primary_key = ["id"]
        used = {"id"}
    for _ in range(count):
        column_name = _free(draw, COLUMN_NAMES, used, "c")
        used.add(column_name)
        columns.append(new_column(draw, column_name, enums))
    table = TableSpec(name, columns, primary_key, partition=partition,  # type: ignore[arg-type]
                      comment=draw(st.sampled_from(COMMENTS)))  # type: ignore[arg-type]
    spec.tables[name] = table
    for adder in (add_index, add_check, add_unique, add_foreign_key):
        for _ in range(draw(st.integers(0, 2))):  # type: ignore[call-overload]
            adder(draw, spec, table)
    return table


@st.composite
def schemas(draw: Draw, max_tables: int = 4) -> SchemaSpec:
    spec = SchemaSpec()
    for name in draw(st.lists(st.sampled_from(ENUM_NAMES), max_size=2, unique=True)):  # type: ignore[attr-defined]
        spec.enums[name] = list(draw(st.lists(st.sampled_from(ENUM_VALUES), min_size=1, max_size=4, unique=True)))  # type: ignore[call-overload]
    names = draw(st.lists(st.sampled_from(TABLE_NAMES), min_size=1, max_size=max_tables, unique=True))
    for name in names:  # type: ignore[attr-defined]
        new_table(draw, spec, name)
    return spec


# -- edits: old spec -> new spec ------------------------------------------------------------------------
def _table(draw: Draw, spec: SchemaSpec, regular_only: bool = False) -> TableSpec | None:
    tables = [t for t in spec.tables.values() if not (regular_only and t.partition)]
    return draw(st.sampled_from(tables)) if tables else None  # type: ignore[return-value]


def _plain_column(draw: Draw, table: TableSpec, spec: SchemaSpec) -> ColumnSpec | None:
    """A column no key, foreign key or other table depends on."""
    fk_columns = {fk.column for fk in table.foreign_keys.values()}
    free = [c for c in table.columns if not table.pinned(c.name) and c.name not in fk_columns
            and not spec.referenced(table.name, c.name)]
    return draw(st.sampled_from(free)) if free else None  # type: ignore[return-value]


def edit_add_column(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    if table is None:
        return None
    name = _free(draw, COLUMN_NAMES, {c.name for c in table.columns} | table.retired, "c")
    table.columns.append(new_column(draw, name, spec.enums))
    return f"add column {table.name}.{name}"


def _forget_column(table: TableSpec, name: str) -> None:
    table.uniques = {n: cols for n, cols in table.uniques.items() if name not in cols}
    table.checks = {n: ck for n, ck in table.checks.items() if ck[1] != name}
    table.indexes = {n: ix for n, ix in table.indexes.items() if name not in ix.columns()}
    table.columns = [c for c in table.columns if c.name != name]
    table.retired.add(name)


def edit_drop_column(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    column = _plain_column(draw, table, spec) if table else None
    if table is None or column is None or len(table.columns) == 1:
        return None
    _forget_column(table, column.name)
    return f"drop column {table.name}.{column.name}"


def edit_rename_column(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    column = _plain_column(draw, table, spec) if table else None
    if table is None or column is None:
        return None
    new = _free(draw, COLUMN_NAMES, {c.name for c in table.columns} | table.retired, "renamed")
    old = column.name
    column.name, column.renamed_from = new, old
    table.retired.add(old)
    table.uniques = {n: [new if c == old else c for c in cols] for n, cols in table.uniques.items()}
    table.checks = {n: (t, new if c == old else c) for n, (t, c) in table.checks.items()}
    for index in table.indexes.values():
        index.elements = [(t, new if c == old else c) for t, c in index.elements]
        index.include = [new if c == old else c for c in index.include]
        if index.where and index.where[1] == old:
            index.where = (index.where[0], new)
    return f"rename column {table.name}.{old} to {new}"


def edit_retype(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    if table is None:
        return None
    fk_columns = {fk.column for fk in table.foreign_keys.values()}
    candidates = [(c, b if c.type == a else a) for c in table.columns for a, b in RETYPES
                  if c.type in (a, b) and not table.pinned(c.name) and c.name not in fk_columns
                  and not spec.referenced(table.name, c.name)]
    if not candidates:
        return None
    column, new_type = draw(st.sampled_from(candidates))  # type: ignore[misc]
    old_type, column.type = column.type, new_type
    return f"retype {table.name}.{column.name} {old_type} -> {new_type}"


def edit_nullability(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    candidates = [c for c in table.columns if not table.pinned(c.name)] if table else []
    if table is None or not candidates:
        return None
    column = draw(st.sampled_from(candidates))
    column.nullable = not column.nullable  # type: ignore[attr-defined]
    return f"{'drop' if column.nullable else 'set'} not null {table.name}.{column.name}"  # type: ignore[attr-defined]


def edit_default(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    if table is None:
        return None
    column = draw(st.sampled_from(table.columns))
    options = [None, *([_default(draw, column.type, spec.enums)])]  # type: ignore[attr-defined]
    new = draw(st.sampled_from(options))
    if new == column.default:  # type: ignore[attr-defined]
        return None
    column.default = new  # type: ignore[attr-defined]
    return f"default of {table.name}.{column.name}"  # type: ignore[attr-defined]


def edit_comment(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    if table is None:
        return None
    target = draw(st.sampled_from([table, *table.columns]))
    target.comment = draw(st.sampled_from(COMMENTS))  # type: ignore[attr-defined]
    return f"comment on {table.name}"


def _dropper(attribute: str) -> Callable[[Draw, SchemaSpec], str | None]:
    def edit(draw: Draw, spec: SchemaSpec) -> str | None:
        table = _table(draw, spec)
        items = getattr(table, attribute) if table else {}
        if not items:
            return None
        name = draw(st.sampled_from(sorted(items)))
        del items[name]
        return f"drop {attribute} {name}"
    return edit


def _adder(adder: Callable[[Draw, SchemaSpec, TableSpec], None], attribute: str) -> Callable[[Draw, SchemaSpec],
                                                                                               str | None]:
    def edit(draw: Draw, spec: SchemaSpec) -> str | None:
        table = _table(draw, spec)
        if table is None:
            return None
        before = set(getattr(table, attribute))
        adder(draw, spec, table)
        added = set(getattr(table, attribute)) - before
        return f"add {attribute} {sorted(added)}" if added else None
    return edit


def edit_fk_action(draw: Draw, spec: SchemaSpec) -> str | None:
    table = _table(draw, spec)
    if table is None or not table.foreign_keys:
        return None
    fk = table.foreign_keys[draw(st.sampled_from(sorted(table.foreign_keys)))]  # type: ignore[index]
    fk.on_delete = draw(st.sampled_from(FK_ACTIONS))  # type: ignore[assignment]
    if fk.on_delete == "set null":
        table.column(fk.column).nullable = True
    return f"on_delete of {table.name}.{fk.column}"


def edit_add_table(draw: Draw, spec: SchemaSpec) -> str | None:
    name = _free(draw, TABLE_NAMES, set(spec.tables), "t")
    new_table(draw, spec, name)
    return f"add table {name}"


def edit_drop_table(draw: Draw, spec: SchemaSpec) -> str | None:
    droppable = [t for t in spec.tables if not spec.referenced(t)]
    if len(spec.tables) < 2 or not droppable:
        return None
    name = draw(st.sampled_from(droppable))
    del spec.tables[name]  # type: ignore[arg-type]
    return f"drop table {name}"


def edit_add_enum_value(draw: Draw, spec: SchemaSpec) -> str | None:
    if not spec.enums:
        return None
    enum = draw(st.sampled_from(sorted(spec.enums)))
    values = spec.enums[enum]  # type: ignore[index]
    free = [v for v in ENUM_VALUES + ("new value", "Z") if v not in values]
    if not free:
        return None
    value = draw(st.sampled_from(free))
    values.insert(draw(st.integers(0, len(values))), value)  # type: ignore[arg-type]
    return f"add value {value!r} to {enum}"


def edit_add_enum(draw: Draw, spec: SchemaSpec) -> str | None:
    free = [n for n in ENUM_NAMES + ("mood",) if n not in spec.enums]
    table = _table(draw, spec)
    if not free or table is None:
        return None
    name = draw(st.sampled_from(free))
    spec.enums[name] = list(draw(st.lists(st.sampled_from(ENUM_VALUES), min_size=1, max_size=3, unique=True)))  # type: ignore[call-overload, index]
    column = _free(draw, COLUMN_NAMES, {c.name for c in table.columns}, "c")
    table.columns.append(ColumnSpec(column, name, nullable=True))  # type: ignore[arg-type]
    return f"add enum {name} used by {table.name}.{column}"


def edit_premake(draw: Draw, spec: SchemaSpec) -> str | None:
    partitioned = [t for t in spec.tables.values() if t.partition]
    if not partitioned:
        return None
    table = draw(st.sampled_from(partitioned))
    column, premake, default = table.partition  # type: ignore[attr-defined]
    new = draw(st.sampled_from([p for p in range(4) if p != premake]))
    table.partition = (column, new, default)  # type: ignore[attr-defined]
    return f"premake of {table.name} {premake} -> {new}"  # type: ignore[attr-defined]


def edit_primary_key(draw: Draw, spec: SchemaSpec) -> str | None:
    """Add a primary key to a regular table without one, or drop one nothing references."""
    table = _table(draw, spec, regular_only=True)
    if table is None:
        return None
    if table.primary_key:
        if spec.referenced(table.name, table.primary_key[0]):  # by another table or by itself
            return None
        dropped, table.primary_key = table.primary_key, []
        return f"drop primary key {table.name}{dropped}"
    keyable = [c for c in table.columns if family_of(c.type, spec.enums) in KEY_FAMILIES]
    if not keyable:
        return None
    column = draw(st.sampled_from(keyable))
    column.nullable = False  # type: ignore[attr-defined]
    table.primary_key = [column.name]  # type: ignore[attr-defined]
    table.uniques = {n: cols for n, cols in table.uniques.items() if cols != table.primary_key}
    return f"add primary key {table.name}({column.name})"  # type: ignore[attr-defined]


EDITS: dict[str, Callable[[Draw, SchemaSpec], str | None]] = {
    "add_column": edit_add_column,
    "drop_column": edit_drop_column,
    "rename_column": edit_rename_column,
    "retype": edit_retype,
    "nullability": edit_nullability,
    "default": edit_default,
    "comment": edit_comment,
    "add_index": _adder(add_index, "indexes"),
    "drop_index": _dropper("indexes"),
    "add_unique": _adder(add_unique, "uniques"),
    "drop_unique": _dropper("uniques"),
    "add_check": _adder(add_check, "checks"),
    "drop_check": _dropper("checks"),
    "add_foreign_key": _adder(add_foreign_key, "foreign_keys"),
    "drop_foreign_key": _dropper("foreign_keys"),
    "fk_action": edit_fk_action,
    "add_table": edit_add_table,
    "drop_table": edit_drop_table,
    "add_enum_value": edit_add_enum_value,
    "add_enum": edit_add_enum,
    "premake": edit_premake,
    "primary_key": edit_primary_key,
}


@dataclass
class Pair:
    old: SchemaSpec
    new: SchemaSpec
    edits: list[str]

    def __repr__(self) -> str:  # what hypothesis prints for a failing example: the edits, then both YAMLs
        return (f"Pair(edits={self.edits!r})\n--- old\n{to_yaml(self.old)}--- new\n{to_yaml(self.new)}")


@st.composite
def pairs(draw: Draw, edits: tuple[str, ...] = tuple(EDITS), max_tables: int = 3) -> Pair:
    """A schema and an edited copy (one to three edits that apply; renames are declared)."""
    old = draw(schemas(max_tables=max_tables))
    new = copy.deepcopy(old)
    done: list[str] = []
    for _ in range(draw(st.integers(1, 3))):  # type: ignore[call-overload]
        name = draw(st.sampled_from(edits))
        what = EDITS[name](draw, new)  # type: ignore[index]
        if what:
            done.append(what)
    if not done:
        what = edit_add_column(draw, new)
        done.append(what or "")
    return Pair(old, new, done)
