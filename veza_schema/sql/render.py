"""Model objects -> SQL text, through the Jinja templates in ``templates/``.

Templates hold the SQL words; this module decides what to render and in which order.
Identifiers pass through the ``ident`` filter and values through ``literal`` (both
psycopg-backed, see :mod:`veza_schema.sql.text`); YAML text that *is* SQL (defaults,
checks, predicates, view queries, function bodies) is inserted as SQL by design.
Output depends only on the model: the same YAML gives byte-identical SQL.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from veza_schema.managed import suffix_format
from veza_schema.model import (
    CheckConstraint,
    Column,
    CompositeType,
    EnumType,
    Extension,
    ForeignKey,
    Function,
    Index,
    PrimaryKey,
    Schema,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)
from veza_schema.sql.text import dollar_quote, ident, literal, wrapped_whole
from veza_schema.types import short_type


def templates_dir() -> Path:
    """Installed wheels ship templates inside the package; a source checkout has them at the top."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates"
    if packaged.is_dir():
        return packaged
    return package.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters.update(ident=ident, literal=literal, sqltype=short_type, dollar_quote=dollar_quote)
    return env


def render_template(template: str, **context: object) -> str:
    """Render one template; the result always ends with exactly one newline."""
    return environment().get_template(template).render(**context).strip("\n") + "\n"


# -- one object, one statement --------------------------------------------------------
def create_extension(ext: Extension) -> str:
    return render_template("objects/extension.sql.j2", ext=ext)


def drop_extension(ext: Extension) -> str:
    return render_template("objects/drop_extension.sql.j2", ext=ext)


def create_enum(enum: EnumType) -> str:
    return render_template("objects/enum.sql.j2", enum=enum)


def create_composite_type(ctype: CompositeType) -> str:
    return render_template("objects/composite_type.sql.j2", ctype=ctype)


def drop_type(name: str) -> str:
    return render_template("objects/drop_type.sql.j2", name=name)


def create_function(fn: Function) -> str:
    return render_template("objects/function.sql.j2", fn=fn)


def drop_function(fn: Function) -> str:
    return render_template("objects/drop_function.sql.j2", fn=fn)


def column_definition(column: Column) -> str:
    return render_template("objects/column.sql.j2", column=column).strip()


def primary_key_clause(pk: PrimaryKey) -> str:
    return render_template("objects/primary_key.sql.j2", pk=pk).strip()


def unique_clause(uq: UniqueConstraint) -> str:
    return render_template("objects/unique.sql.j2", uq=uq).strip()


def check_clause(ck: CheckConstraint, not_valid: bool = False) -> str:
    return render_template("objects/check.sql.j2", ck=ck, not_valid=not_valid).strip()


def foreign_key_clause(fk: ForeignKey, not_valid: bool = False) -> str:
    return render_template("objects/foreign_key.sql.j2", fk=fk, not_valid=not_valid).strip()


def add_constraint(table: str, clause: str) -> str:
    return render_template("objects/add_constraint.sql.j2", table=table, constraint=clause)


def drop_constraint(table: str, name: str) -> str:
    return render_template("objects/drop_constraint.sql.j2", table=table, name=name)


def create_table(table: Table, inline_foreign_keys: Iterable[ForeignKey] | None = None) -> str:
    """CREATE TABLE with its columns and constraints; FKs not inlined are added later."""
    fks = sorted(table.foreign_keys.values() if inline_foreign_keys is None else inline_foreign_keys,
                 key=lambda fk: fk.name)
    lines = [column_definition(column) for column in table.columns]
    if table.primary_key:
        lines.append(primary_key_clause(table.primary_key))
    lines += [unique_clause(uq) for uq in sorted(table.uniques.values(), key=lambda u: u.name)]
    lines += [check_clause(ck) for ck in sorted(table.checks.values(), key=lambda c: c.name)]
    lines += [foreign_key_clause(fk) for fk in fks]
    return render_template("objects/create_table.sql.j2", table=table, lines=lines)


def drop_table(table: Table) -> str:
    return render_template("objects/drop_table.sql.j2", table=table)


def index_element(element_expression: str, is_column: bool, descending: bool, nulls: str | None,
                  opclass: str | None) -> str:
    text = ident(element_expression) if is_column else _parenthesize(element_expression)
    if opclass:
        text += f" {opclass}"
    if descending:
        text += " DESC"
    if nulls:
        text += f" NULLS {nulls.upper()}"
    return text


def _parenthesize(expression: str) -> str:
    """An index expression must be parenthesized unless it is a function call."""
    stripped = expression.strip()
    if wrapped_whole(stripped):
        return stripped
    return f"({stripped})"


def create_index(index: Index, concurrently: bool = False) -> str:
    elements = [index_element(e.expression, e.is_column, e.descending, e.nulls, e.opclass)
                for e in index.elements]
    return render_template("objects/index.sql.j2", index=index, elements=elements, concurrently=concurrently)


def drop_index(name: str, concurrently: bool = False, if_exists: bool = False) -> str:
    return render_template("objects/drop_index.sql.j2", name=name, concurrently=concurrently,
                           if_exists=if_exists)


def comment(kind: str, target: str, text: str | None) -> str:
    """COMMENT ON ...; ``text=None`` removes the comment."""
    return render_template("objects/comment.sql.j2", kind=kind, target=target, text=text)


def table_comments(table: Table) -> list[str]:
    out = []
    if table.comment is not None:
        out.append(comment("TABLE", ident(table.name), table.comment))
    for column in table.columns:
        if column.comment is not None:
            out.append(comment("COLUMN", f"{ident(table.name)}.{ident(column.name)}", column.comment))
    return out


def create_trigger(trigger: Trigger) -> str:
    return render_template("objects/trigger.sql.j2", trigger=trigger)


def drop_trigger(trigger: Trigger) -> str:
    return render_template("objects/drop_trigger.sql.j2", trigger=trigger)


def create_view(view: View) -> str:
    return render_template("objects/view.sql.j2", view=view)


def drop_view(view: View) -> str:
    return render_template("objects/drop_view.sql.j2", view=view)


def partition_function() -> str:
    return render_template("objects/partition_function.sql.j2")


def drop_partition_function() -> str:
    return render_template("objects/drop_partition_function.sql.j2")


def create_partitions(table: Table) -> str:
    assert table.partition is not None
    suffix = suffix_format(table.partition.interval or "month")
    return render_template("objects/partitions.sql.j2", table=table, partition=table.partition, suffix=suffix)


def drop_partitions(table: Table) -> list[str]:
    """Statements after DROP TABLE of a partitioned table: pg_partman's records of it, if it has any."""
    if table.partition is None or table.partition.backend != "partman":
        return []
    return [render_template("objects/drop_partitions.sql.j2", table=table)]


# -- ordering -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableOrder:
    """Creation order of tables, and the FKs that must wait until all tables exist (cycles)."""

    tables: tuple[str, ...]
    deferred_fks: tuple[ForeignKey, ...]


def order_tables(tables: dict[str, Table] | Iterable[Table]) -> TableOrder:
    """Topological order by FK; ties by name. A cycle is broken at its smallest-named table."""
    by_name = tables if isinstance(tables, dict) else {t.name: t for t in tables}
    depends: dict[str, set[str]] = {
        name: {fk.ref_table for fk in table.foreign_keys.values() if fk.ref_table != name and fk.ref_table
               in by_name}
        for name, table in by_name.items()
    }
    dependents: dict[str, set[str]] = {name: set() for name in by_name}
    for name, targets in depends.items():
        for target in targets:
            dependents[target].add(name)
    remaining = {name: len(targets) for name, targets in depends.items()}
    ready = [name for name, count in remaining.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    created: set[str] = set()
    deferred: list[ForeignKey] = []

    def release(name: str) -> None:
        for dependent in dependents[name]:
            if dependent in remaining:
                remaining[dependent] -= 1
                if remaining[dependent] == 0:
                    heapq.heappush(ready, dependent)

    while remaining:
        if not ready:
            # A cycle: create its smallest-named table now and add its forward FKs later.
            victim = min(remaining)
            for fk in by_name[victim].foreign_keys.values():
                if fk.ref_table not in created and fk.ref_table != victim and fk.ref_table in by_name:
                    deferred.append(fk)
            heapq.heappush(ready, victim)
            remaining[victim] = 0
        name = heapq.heappop(ready)
        if name not in remaining:
            continue
        del remaining[name]
        order.append(name)
        created.add(name)
        release(name)
    return TableOrder(tuple(order), tuple(sorted(deferred, key=lambda fk: fk.name)))


def order_views(views: dict[str, View]) -> list[str]:
    """Views after the views they read, ties by name."""
    depends = {name: {d for d in view.depends_on if d in views and d != name} for name, view in views.items()}
    order: list[str] = []
    placed: set[str] = set()
    while len(order) < len(views):
        ready = sorted(name for name, deps in depends.items() if name not in placed and deps <= placed)
        if not ready:  # a cycle would fail in PostgreSQL too; keep going deterministically
            ready = [min(name for name in views if name not in placed)]
        for name in ready:
            order.append(name)
            placed.add(name)
    return order


# -- whole schema -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    """A titled group of statements, so generated files read like a table of contents."""

    title: str
    statements: tuple[str, ...]


def _is_sql_function(fn: Function) -> bool:
    # SQL-language bodies are checked against existing tables at creation; plpgsql is not.
    return fn.language == "sql"


def create_schema_sections(schema: Schema) -> list[Section]:
    """Everything needed to build ``schema`` in an empty database, in a safe order."""
    sections: list[Section] = []

    def add(title: str, statements: Iterable[str]) -> None:
        items = tuple(statements)
        if items:
            sections.append(Section(title, items))

    add("Extensions", (create_extension(e) for e in schema.extensions.values()))
    add("Enums", (create_enum(schema.enums[n]) for n in sorted(schema.enums)))
    add("Composite types", (create_composite_type(schema.composite_types[n])
                            for n in sorted(schema.composite_types)))
    functions = [schema.functions[n] for n in sorted(schema.functions)]
    partitioned = any(t.partition for t in schema.tables.values())
    add("Functions", ([partition_function()] if partitioned else [])
        + [create_function(f) for f in functions if not _is_sql_function(f)])
    order = order_tables(dict(schema.tables))
    deferred = {fk.name for fk in order.deferred_fks}
    table_statements: list[str] = []
    for name in order.tables:
        table = schema.tables[name]
        inline = [fk for fk in table.foreign_keys.values() if fk.name not in deferred]
        table_statements.append(create_table(table, inline))
        if table.partition:
            table_statements.append(create_partitions(table))
    add("Tables", table_statements)
    add("Foreign keys closing cycles", (add_constraint(fk_table(schema, fk), foreign_key_clause(fk))
                                        for fk in order.deferred_fks))
    add("SQL functions", (create_function(f) for f in functions if _is_sql_function(f)))
    table_indexes = sorted((index for t in schema.tables.values() for index in t.indexes.values()),
                           key=lambda i: (i.table, i.name))
    add("Indexes", (create_index(i) for i in table_indexes))
    view_order = order_views(dict(schema.views))
    view_statements: list[str] = []
    for name in view_order:
        view = schema.views[name]
        view_statements.append(create_view(view))
        view_statements += [create_index(view.indexes[i]) for i in sorted(view.indexes)]
    add("Views", view_statements)
    add("Triggers", (create_trigger(t) for t in schema.triggers))
    comments: list[str] = []
    for enum_name in sorted(schema.enums):
        if schema.enums[enum_name].comment is not None:
            comments.append(comment("TYPE", ident(enum_name), schema.enums[enum_name].comment))
    for type_name in sorted(schema.composite_types):
        if schema.composite_types[type_name].comment is not None:
            comments.append(comment("TYPE", ident(type_name), schema.composite_types[type_name].comment))
    for fn in functions:
        if fn.comment is not None:
            comments.append(comment("FUNCTION", f"{ident(fn.name)}({fn.arguments})", fn.comment))
    for name in sorted(schema.tables):
        comments += table_comments(schema.tables[name])
    for name in view_order:
        view = schema.views[name]
        if view.comment is not None:
            kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
            comments.append(comment(kind, ident(name), view.comment))
    add("Comments", comments)
    return sections


def drop_schema_sections(schema: Schema) -> list[Section]:
    """The exact reverse of :func:`create_schema_sections`."""
    sections: list[Section] = []

    def add(title: str, statements: Iterable[str]) -> None:
        items = tuple(statements)
        if items:
            sections.append(Section(title, items))

    add("Views", (drop_view(schema.views[n]) for n in reversed(order_views(dict(schema.views)))))
    order = order_tables(dict(schema.tables))
    add("Foreign keys closing cycles", (drop_constraint(fk_table(schema, fk), fk.name)
                                        for fk in reversed(order.deferred_fks)))
    functions = [schema.functions[n] for n in sorted(schema.functions)]
    add("SQL functions", (drop_function(f) for f in reversed(functions) if _is_sql_function(f)))
    add("Tables", (statement for n in reversed(order.tables)
                   for statement in (drop_table(schema.tables[n]), *drop_partitions(schema.tables[n]))))
    partitioned = any(t.partition for t in schema.tables.values())
    drops = [drop_function(f) for f in reversed(functions) if not _is_sql_function(f)]
    if partitioned:
        drops.append(drop_partition_function())
    add("Functions", drops)
    add("Composite types", (drop_type(n) for n in sorted(schema.composite_types, reverse=True)))
    add("Enums", (drop_type(n) for n in sorted(schema.enums, reverse=True)))
    add("Extensions", (drop_extension(e) for e in reversed(list(schema.extensions.values()))))
    return sections


def fk_table(schema: Schema, fk: ForeignKey) -> str:
    """The table that owns a foreign key."""
    for table in schema.tables.values():
        if table.foreign_keys.get(fk.name) is fk:
            return table.name
    raise KeyError(fk.name)


def sections_to_sql(sections: Iterable[Section]) -> str:
    parts = []
    for section in sections:
        parts.append(f"-- {section.title}\n" + "\n".join(section.statements))
    return "\n".join(parts)
