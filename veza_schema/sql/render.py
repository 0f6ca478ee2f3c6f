"""Model objects -> SQL text: small typed functions for one-line statements, templates for the rest.

Every piece of data reaches a statement through the quoting route (:mod:`veza_schema.sql.text`):
names through ``ident``, values through ``literal``, keywords through ``keyword`` (a closed set),
and SQL text (defaults, checks, predicates, view queries, types, function signatures) through
:mod:`veza_schema.sql.routes`, which parses it again before it is written, whatever the model's
source. One-line statements are put together here with :func:`~veza_schema.sql.text.compose`;
multi-line SQL (DO blocks, functions, tables, file headers) lives in ``templates/``, whose every
``{{ }}`` must be :class:`~veza_schema.sql.text.Sql` (the environment refuses anything else).
Output depends only on the model: the same YAML gives byte-identical SQL.

One job: writing SQL for model objects (one function per statement form, hence its length).
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
    FK_ACTIONS,
    INDEX_METHODS,
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
from veza_schema.sql.routes import (
    sql_arguments,
    sql_default,
    sql_expression,
    sql_language,
    sql_operator_class,
    sql_query,
    sql_returns,
    sql_type,
)
from veza_schema.sql.text import Sql, comment_line, compose, dollar_quote, ident, join, keyword, literal, wrapped_whole

TIMINGS = ("before", "after", "instead of")
EVENTS = ("insert", "update", "delete", "truncate")
VOLATILITIES = ("volatile", "stable", "immutable")
IDENTITIES = ("always", "by default")
STRATEGIES = ("range", "list", "hash")
INTERVALS = ("day", "week", "month", "year")
COMMENT_KINDS = ("TABLE", "COLUMN", "TYPE", "FUNCTION", "VIEW", "MATERIALIZED VIEW")


def templates_dir() -> Path:
    """Installed wheels ship templates inside the package; a source checkout has them at the top."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates"
    if packaged.is_dir():
        return packaged
    return package.parent / "templates"


def _only_sql(value: object) -> object:
    """Jinja's ``finalize``: a template may print SQL made by the quoting route, or an integer, nothing else."""
    if isinstance(value, Sql) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, jinja2.Undefined):  # `{{ x if cond }}` with cond false
        return ""
    raise TypeError(f"refusing to print {value!r} into a SQL template: it did not come through the quoting route")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
        finalize=_only_sql,
    )
    env.filters.update(ident=ident, literal=literal, dollar_quote=dollar_quote, comment_line=comment_line)
    return env


def render_template(template: str, **context: object) -> Sql:
    """Render one template; the result always ends with exactly one newline."""
    return Sql(environment().get_template(template).render(**context).strip("\n") + "\n")


def _statement(template: str, *parts: Sql | int) -> Sql:
    """One statement on one line, newline-terminated like a rendered template."""
    return Sql(compose(template, *parts) + "\n")


def _names(names: Iterable[str]) -> Sql:
    return join(ident(name) for name in names)


# -- one object, one statement --------------------------------------------------------
def create_extension(ext: Extension) -> Sql:
    return _statement("CREATE EXTENSION IF NOT EXISTS {};", ident(ext.name))


def drop_extension(ext: Extension) -> Sql:
    return _statement("DROP EXTENSION IF EXISTS {};", ident(ext.name))


def create_enum(enum: EnumType) -> Sql:
    return render_template("objects/enum.sql.j2", name=ident(enum.name), values=[literal(v) for v in enum.values])


def create_composite_type(ctype: CompositeType) -> Sql:
    attributes = [compose("{} {}", ident(a.name), sql_type(a.type, f"attribute {ctype.name}.{a.name}"))
                  for a in ctype.attributes]
    return render_template("objects/composite_type.sql.j2", name=ident(ctype.name), attributes=attributes)


def drop_type(name: str) -> Sql:
    return _statement("DROP TYPE {};", ident(name))


def function_signature(fn: Function) -> Sql:
    """``name(arguments)``: how DROP and COMMENT name a function."""
    return compose("{}({})", ident(fn.name), sql_arguments(fn.arguments, f"arguments of function {fn.name}"))


def create_function(fn: Function) -> Sql:
    return render_template(
        "objects/function.sql.j2", signature=function_signature(fn),
        returns=sql_returns(fn.returns, f"result of function {fn.name}"),
        language=sql_language(fn.language, f"language of function {fn.name}"),
        volatility=keyword(fn.volatility, VOLATILITIES), security_definer=fn.security_definer,
        body=dollar_quote(fn.body))


def drop_function(fn: Function) -> Sql:
    return _statement("DROP FUNCTION {};", function_signature(fn))


def column_definition(column: Column) -> Sql:
    """``name type [GENERATED ...] [NOT NULL] [DEFAULT ...]``, as in CREATE TABLE and ADD COLUMN."""
    what = f"column {column.name}"
    parts = [compose("{} {}", ident(column.name), sql_type(column.type, f"type of {what}"))]
    if column.identity:
        parts.append(compose("GENERATED {} AS IDENTITY", keyword(column.identity, IDENTITIES)))
    if column.generated:
        parts.append(compose("GENERATED ALWAYS AS ({}) STORED", sql_expression(column.generated,
                                                                            f"generated of {what}")))
    if not column.nullable:
        parts.append(Sql("NOT NULL"))
    if column.default is not None:
        parts.append(compose("DEFAULT {}", sql_default(column.default, f"default of {what}")))
    return Sql(join(parts, " ").strip())


def primary_key_clause(pk: PrimaryKey) -> Sql:
    return compose("CONSTRAINT {} PRIMARY KEY ({})", ident(pk.name), _names(pk.columns))


def unique_clause(uq: UniqueConstraint) -> Sql:
    return compose("CONSTRAINT {} UNIQUE ({})", ident(uq.name), _names(uq.columns))


def check_clause(ck: CheckConstraint, not_valid: bool = False) -> Sql:
    clause = compose("CONSTRAINT {} CHECK ({})", ident(ck.name), sql_expression(ck.expression, f"check {ck.name}"))
    return Sql(clause + " NOT VALID") if not_valid else clause


def not_null_check_clause(name: str, column: str) -> Sql:
    """The temporary ``CHECK (col IS NOT NULL) NOT VALID`` that lets SET NOT NULL skip its table scan."""
    return compose("CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID", ident(name), ident(column))


def foreign_key_clause(fk: ForeignKey, not_valid: bool = False) -> Sql:
    parts = [compose("CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})", ident(fk.name), _names(fk.columns),
                     ident(fk.ref_table), _names(fk.ref_columns))]
    if fk.on_delete != "no action":
        parts.append(compose("ON DELETE {}", keyword(fk.on_delete, FK_ACTIONS)))
    if fk.on_update != "no action":
        parts.append(compose("ON UPDATE {}", keyword(fk.on_update, FK_ACTIONS)))
    if fk.deferrable:
        parts.append(Sql("DEFERRABLE INITIALLY DEFERRED" if fk.initially_deferred else "DEFERRABLE"))
    if not_valid:
        parts.append(Sql("NOT VALID"))
    return join(parts, " ")


def add_constraint(table: str, clause: Sql) -> Sql:
    return _statement("ALTER TABLE {} ADD {};", ident(table), clause)


def drop_constraint(table: str, name: str, *, if_exists: bool = False) -> Sql:
    if if_exists:
        return _statement("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {};", ident(table), ident(name))
    return _statement("ALTER TABLE {} DROP CONSTRAINT {};", ident(table), ident(name))


def validate_constraint(table: str, name: str) -> Sql:
    return _statement("ALTER TABLE {} VALIDATE CONSTRAINT {};", ident(table), ident(name))


def validate_constraint_if_exists(table: str, name: str) -> Sql:
    """VALIDATE that can run again: a re-run after a crash past the later DROP of the check skips it."""
    return render_template("changes/validate_constraint_if_exists.sql.j2", table=table, name=name)


def rename_constraint(table: str, old: str, new: str) -> Sql:
    return _statement("ALTER TABLE {} RENAME CONSTRAINT {} TO {};", ident(table), ident(old), ident(new))


def create_table(table: Table, inline_foreign_keys: Iterable[ForeignKey] | None = None) -> Sql:
    """CREATE TABLE with its columns and constraints; FKs not inlined are added later."""
    fks = sorted(table.foreign_keys.values() if inline_foreign_keys is None else inline_foreign_keys,
                 key=lambda fk: fk.name)
    lines = [column_definition(column) for column in table.columns]
    if table.primary_key:
        lines.append(primary_key_clause(table.primary_key))
    lines += [unique_clause(uq) for uq in sorted(table.uniques.values(), key=lambda u: u.name)]
    lines += [check_clause(ck) for ck in sorted(table.checks.values(), key=lambda c: c.name)]
    lines += [foreign_key_clause(fk) for fk in fks]
    partition_by = None
    if table.partition:
        partition_by = compose(" PARTITION BY {} ({})", keyword(table.partition.strategy, STRATEGIES),
                               _names(table.partition.columns))
    return render_template("objects/create_table.sql.j2", name=ident(table.name), lines=lines,
                           partition_by=partition_by)


def drop_table(table: Table) -> Sql:
    return _statement("DROP TABLE {};", ident(table.name))


def rename_table(old: str, new: str) -> Sql:
    return _statement("ALTER TABLE {} RENAME TO {};", ident(old), ident(new))


def add_column(table: str, column: Column) -> Sql:
    return _statement("ALTER TABLE {} ADD COLUMN {};", ident(table), column_definition(column))


def drop_column(table: str, column: str) -> Sql:
    return _statement("ALTER TABLE {} DROP COLUMN {};", ident(table), ident(column))


def rename_column(table: str, old: str, new: str) -> Sql:
    return _statement("ALTER TABLE {} RENAME COLUMN {} TO {};", ident(table), ident(old), ident(new))


def alter_column_type(table: str, column: str, type_: str, via: str | None = None) -> Sql:
    """``TYPE t USING col[::via]::t``: an explicit cast, through ``via`` (``text`` for enums) when given."""
    target = sql_type(type_, f"type of column {table}.{column}")
    using = compose("{}::{}", ident(column), sql_type(via, f"cast of column {table}.{column}")) if via \
        else ident(column)
    return _statement("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{};", ident(table), ident(column), target,
                      using, target)


def alter_column_default(table: str, column: str, default: str | None) -> Sql:
    if default is None:
        return _statement("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT;", ident(table), ident(column))
    return _statement("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {};", ident(table), ident(column),
                      sql_expression(default, f"default of column {table}.{column}"))


def alter_column_nullability(table: str, column: str, nullable: bool) -> Sql:
    verb = Sql("DROP") if nullable else Sql("SET")
    return _statement("ALTER TABLE {} ALTER COLUMN {} {} NOT NULL;", ident(table), ident(column), verb)


def alter_column_identity(table: str, column: str, before: str | None, after: str | None) -> Sql:
    if before is None:
        assert after is not None
        return _statement("ALTER TABLE {} ALTER COLUMN {} ADD GENERATED {} AS IDENTITY;", ident(table),
                          ident(column), keyword(after, IDENTITIES))
    if after is None:
        return _statement("ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY;", ident(table), ident(column))
    return _statement("ALTER TABLE {} ALTER COLUMN {} SET GENERATED {};", ident(table), ident(column),
                      keyword(after, IDENTITIES))


def rename_type(old: str, new: str) -> Sql:
    return _statement("ALTER TYPE {} RENAME TO {};", ident(old), ident(new))


def add_enum_value(enum: str, value: str, *, before: str | None = None, after: str | None = None) -> Sql:
    if before is not None:
        return _statement("ALTER TYPE {} ADD VALUE IF NOT EXISTS {} BEFORE {};", ident(enum), literal(value),
                          literal(before))
    if after is not None:
        return _statement("ALTER TYPE {} ADD VALUE IF NOT EXISTS {} AFTER {};", ident(enum), literal(value),
                          literal(after))
    return _statement("ALTER TYPE {} ADD VALUE IF NOT EXISTS {};", ident(enum), literal(value))


def index_element(element_expression: str, is_column: bool, descending: bool, nulls: str | None,
                  opclass: str | None) -> Sql:
    what = f"index element {element_expression[:40]!r}"
    text = ident(element_expression) if is_column else _parenthesize(sql_expression(element_expression, what))
    if opclass:
        text = compose("{} {}", text, sql_operator_class(opclass, f"operator class of {what}"))
    if descending:
        text = Sql(text + " DESC")
    if nulls:
        text = compose("{} NULLS {}", text, keyword(nulls, ("first", "last")))
    return text


def _parenthesize(expression: Sql) -> Sql:
    """An index expression must be parenthesized unless it is a function call."""
    stripped = Sql(expression.strip())
    if wrapped_whole(stripped):
        return stripped
    return compose("({})", stripped)


def create_index(index: Index, concurrently: bool = False, *, if_not_exists: bool = False) -> Sql:
    elements = join(index_element(e.expression, e.is_column, e.descending, e.nulls, e.opclass)
                    for e in index.elements)
    words = ["CREATE", "UNIQUE INDEX" if index.unique else "INDEX"]
    if concurrently:
        words.append("CONCURRENTLY")
    if if_not_exists:
        words.append("IF NOT EXISTS")
    head = compose(" ".join(words) + " {} ON {}", ident(index.name), ident(index.table))
    if index.method != "btree":
        head = compose("{} USING {}", head, keyword(index.method, INDEX_METHODS, upper=False))
    text = compose("{} ({})", head, elements)
    if index.include:
        text = compose("{} INCLUDE ({})", text, _names(index.include))
    if index.where:
        text = compose("{} WHERE {}", text, sql_expression(index.where, f"where of index {index.name}"))
    return _statement("{};", text)


def drop_index(name: str, concurrently: bool = False, if_exists: bool = False) -> Sql:
    words = ["DROP INDEX"] + (["CONCURRENTLY"] if concurrently else []) + (["IF EXISTS"] if if_exists else [])
    return _statement(" ".join(words) + " {};", ident(name))


def rename_function(old: str, new: str, arguments: str) -> Sql:
    return _statement("ALTER FUNCTION {}({}) RENAME TO {};", ident(old),
                      sql_arguments(arguments, f"arguments of function {old}"), ident(new))


def rename_index(old: str, new: str) -> Sql:
    return _statement("ALTER INDEX {} RENAME TO {};", ident(old), ident(new))


def comment(kind: str, target: Sql, text: str | None) -> Sql:
    """COMMENT ON <kind> <target>; ``text=None`` removes the comment."""
    value = Sql("NULL") if text is None else literal(text)
    return _statement("COMMENT ON {} {} IS {};", keyword(kind, COMMENT_KINDS), target, value)


def object_comment(kind: str, name: str, text: str | None, *, column: str | None = None,
                   arguments: str | None = None) -> Sql:
    """COMMENT ON an object named by its parts: a column's table, a function's arguments."""
    if column is not None:
        target = compose("{}.{}", ident(name), ident(column))
    elif arguments is not None:
        target = compose("{}({})", ident(name), sql_arguments(arguments, f"arguments of function {name}"))
    else:
        target = ident(name)
    return comment(kind.upper(), target, text)


def table_comments(table: Table) -> list[Sql]:
    out = []
    if table.comment is not None:
        out.append(object_comment("TABLE", table.name, table.comment))
    for column in table.columns:
        if column.comment is not None:
            out.append(object_comment("COLUMN", table.name, column.comment, column=column.name))
    return out


def create_trigger(trigger: Trigger) -> Sql:
    when = sql_expression(trigger.when, f"when of trigger {trigger.name}") if trigger.when else None
    return render_template("objects/trigger.sql.j2", name=ident(trigger.name),
                           timing=keyword(trigger.timing, TIMINGS),
                           events=join((keyword(e, EVENTS) for e in trigger.events), " OR "),
                           table=ident(trigger.table), for_each=keyword(trigger.for_each, ("row", "statement")),
                           when=when, function=ident(trigger.function))


def drop_trigger(trigger: Trigger) -> Sql:
    return _statement("DROP TRIGGER {} ON {};", ident(trigger.name), ident(trigger.table))


def create_view(view: View, *, or_replace: bool = False) -> Sql:
    """CREATE [OR REPLACE] [MATERIALIZED] VIEW; a materialized view is filled (WITH DATA)."""
    return render_template("objects/view.sql.j2", name=ident(view.name), materialized=view.materialized,
                           or_replace=or_replace, query=sql_query(view.query, f"query of view {view.name}"))


def drop_view(view: View) -> Sql:
    if view.materialized:
        return _statement("DROP MATERIALIZED VIEW {};", ident(view.name))
    return _statement("DROP VIEW {};", ident(view.name))


# -- DO blocks: multi-line PL/pgSQL, in templates/changes ------------------------------------------
def add_constraint_if_missing(table: str, name: str, clause: Sql) -> Sql:
    """ADD CONSTRAINT that does nothing when the constraint exists (files outside a transaction re-run)."""
    return render_template("changes/add_constraint_if_missing.sql.j2", table=table, name=name, constraint=clause)


def add_constraint_using_index(table: str, name: str, kind: str) -> Sql:
    """Attach the index built concurrently under the same name as a UNIQUE or PRIMARY KEY constraint."""
    return render_template("changes/add_constraint_using_index.sql.j2", table=table, name=name,
                           kind=keyword(kind, ("UNIQUE", "PRIMARY KEY")))


def drop_invalid_index(name: str) -> Sql:
    """Drop the INVALID index a failed concurrent build left behind, so the build can run again."""
    return render_template("changes/drop_invalid_index.sql.j2", name=name)


def assert_index_valid(name: str) -> Sql:
    """Fail instead of recording success over an INVALID index (IF NOT EXISTS would skip it)."""
    return render_template("changes/assert_index_valid.sql.j2", name=name)


def drop_partitions_beyond(table: str, interval: str, keep: int, upto: int) -> Sql:
    """Drop the future partitions from ``keep + 1`` to ``upto`` periods ahead (undoing a premake increase)."""
    return render_template("changes/drop_partitions_beyond.sql.j2", table=table,
                           interval=keyword(interval, INTERVALS, upper=False), keep=int(keep), upto=int(upto))


def partition_function() -> Sql:
    return render_template("objects/partition_function.sql.j2")


def drop_partition_function() -> Sql:
    return Sql("DROP FUNCTION veza_ensure_partitions(text, text, integer);\n")


def ensure_partitions(table: str, interval: str, premake: int) -> Sql:
    """Make the partitions of ``table`` up to ``premake`` periods ahead (idempotent)."""
    return _statement("SELECT veza_ensure_partitions({}, {}, {});", literal(table),
                      literal(keyword(interval, INTERVALS, upper=False)), int(premake))


def create_partitions(table: Table) -> tuple[Sql, ...]:
    """The default partition and the time-range partitions a new partitioned table starts with."""
    assert table.partition is not None
    partition = table.partition
    if partition.backend == "partman" and partition.interval:
        return (partman_create_parent(table.name, partition.columns[0], partition.interval, partition.premake),)
    statements: list[Sql] = []
    if partition.default_partition:
        statements.append(_statement("CREATE TABLE {} PARTITION OF {} DEFAULT;", ident(table.name + "_default"),
                                     ident(table.name)))
    if partition.strategy == "range" and partition.interval:
        statements.append(ensure_partitions(table.name, partition.interval, partition.premake))
    return tuple(statements)


def partman_create_parent(table: str, column: str, interval: str, premake: int) -> Sql:
    """pg_partman 4.x registers the table and makes its first partitions, renamed to veza-schema's names."""
    interval = keyword(interval, INTERVALS, upper=False)
    return render_template("objects/partman_create_parent.sql.j2", table=literal(table),
                           parent=literal("public." + table), column=literal(column), interval=literal(interval),
                           step=literal("1 " + interval), premake=int(premake), suffix=literal(suffix_format(interval)))


def drop_partitions(table: Table) -> tuple[Sql, ...]:
    """Statements after DROP TABLE of a partitioned table: pg_partman's records of it, if it has any."""
    if table.partition is None or table.partition.backend != "partman":
        return ()
    return (partman_forget(table.name),)


def partman_forget(table: str) -> Sql:
    """Remove pg_partman's part_config row and template table of ``table`` (a no-op without pg_partman)."""
    return render_template("objects/partman_forget.sql.j2", parent=literal("public." + table))


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
    statements: tuple[Sql, ...]


def _is_sql_function(fn: Function) -> bool:
    # SQL-language bodies are checked against existing tables at creation; plpgsql is not.
    return fn.language == "sql"


def create_schema_sections(schema: Schema) -> list[Section]:
    """Everything needed to build ``schema`` in an empty database, in a safe order."""
    sections: list[Section] = []

    def add(title: str, statements: Iterable[Sql]) -> None:
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
    table_statements: list[Sql] = []
    for name in order.tables:
        table = schema.tables[name]
        inline = [fk for fk in table.foreign_keys.values() if fk.name not in deferred]
        table_statements.append(create_table(table, inline))
        if table.partition:
            table_statements += create_partitions(table)
    add("Tables", table_statements)
    add("Foreign keys closing cycles", (add_constraint(fk_table(schema, fk), foreign_key_clause(fk))
                                        for fk in order.deferred_fks))
    add("SQL functions", (create_function(f) for f in functions if _is_sql_function(f)))
    table_indexes = sorted((index for t in schema.tables.values() for index in t.indexes.values()),
                           key=lambda i: (i.table, i.name))
    add("Indexes", (create_index(i) for i in table_indexes))
    view_order = order_views(dict(schema.views))
    view_statements: list[Sql] = []
    for name in view_order:
        view = schema.views[name]
        view_statements.append(create_view(view))
        view_statements += [create_index(view.indexes[i]) for i in sorted(view.indexes)]
    add("Views", view_statements)
    add("Triggers", (create_trigger(t) for t in schema.triggers))
    comments: list[Sql] = []
    for enum_name in sorted(schema.enums):
        if schema.enums[enum_name].comment is not None:
            comments.append(object_comment("TYPE", enum_name, schema.enums[enum_name].comment))
    for type_name in sorted(schema.composite_types):
        if schema.composite_types[type_name].comment is not None:
            comments.append(object_comment("TYPE", type_name, schema.composite_types[type_name].comment))
    for fn in functions:
        if fn.comment is not None:
            comments.append(object_comment("FUNCTION", fn.name, fn.comment, arguments=fn.arguments))
    for name in sorted(schema.tables):
        comments += table_comments(schema.tables[name])
    for name in view_order:
        view = schema.views[name]
        if view.comment is not None:
            kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
            comments.append(object_comment(kind, name, view.comment))
    add("Comments", comments)
    return sections


def drop_schema_sections(schema: Schema) -> list[Section]:
    """The exact reverse of :func:`create_schema_sections`."""
    sections: list[Section] = []

    def add(title: str, statements: Iterable[Sql]) -> None:
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


def sections_to_sql(sections: Iterable[Section]) -> Sql:
    """The sections one after the other, each under its title on one comment line."""
    parts = []
    for section in sections:
        parts.append(compose("-- {}\n", comment_line(section.title)) + join(section.statements, "\n"))
    return join((Sql(part) for part in parts), "\n")
