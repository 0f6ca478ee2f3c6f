"""Apply a schema on a PostgreSQL server and attribute every error to its YAML object.

The work behind :func:`veza_schema.lint.verify.verify` (which says why), fastest first:

1. Render the script ``generate`` would write for the whole schema. If the shadow server
   already holds its template (:mod:`veza_schema.db.shadow`; found by the hash of the
   sources, else of the script), it applied cleanly there before: one catalog query.
2. Else apply it to a scratch database in batches of statements (each batch a transaction,
   which bounds the locks a large schema takes). Clean: the database is kept as the
   script's template for the next run (and for ``diff``'s shadow database).
3. On an error, start again in a fresh scratch database with the schema taken apart per
   object (a table's columns, then each constraint, each index, view, trigger, comment),
   each statement under a savepoint so one bad object does not hide the others. A column
   that fails is found by adding the table's columns one at a time (and kept without its
   default when only that failed). Each error becomes a finding (PG101-PG103) at the YAML
   ``file:line:col`` of its object, with PostgreSQL's message, DETAIL and HINT. A statement
   needing an object that failed is not run: its error would only repeat the first one.

Materialized views are created ``WITH NO DATA`` (:func:`veza_schema.db.shadow.unpopulated`):
nothing of schema/ is executed, only parsed and analyzed. Nothing is left behind but the
template of a script that applied cleanly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from veza_schema.db.catalog import catalog_facts
from veza_schema.db.errors import database_error
from veza_schema.db.shadow import (
    SHADOW_OPTIONS,
    admin_connection,
    find_by_source,
    has_template,
    shadow_database,
    template_build,
    template_name,
    unpopulated,
)
from veza_schema.lint.findings import Finding
from veza_schema.lint.rules.common import column_path, index_path, table_path
from veza_schema.lint.rules.server import SERVER_INVALID_DEFINITION, SERVER_UNKNOWN_OBJECT, rule_for
from veza_schema.model import Column, Index, Schema, SourcePos, Table
from veza_schema.sql import render
from veza_schema.sql.facts import CatalogFacts
from veza_schema.sql.parse import parse_sql
from veza_schema.types import base_type

BATCH_STATEMENTS = 200  # per transaction while building: bounds the locks held at once
_PROBE_TABLE = "veza_verify_probe"
_QUOTED = re.compile(r'"([^"]+)"')
# Errors that only say "what you need is missing": when the missing name failed earlier, said already.
_CONSEQUENTIAL_STATES = frozenset({"42P01", "42703", "42704", "42883", "3F000"})



@dataclass(frozen=True)
class ServerVerdict:
    """What the server said: its findings, its version, whether a cached template answered."""

    findings: tuple[Finding, ...]
    server: str  # "PostgreSQL 18.6"
    cached: bool
    not_run: int = 0
    facts: CatalogFacts | None = None


def run_on_server(schema: Schema, server: str, source_key: str | None) -> ServerVerdict:
    """Apply ``schema`` on the shadow server ``server`` (a DSN: :func:`veza_schema.db.shadow.shadow_server`).

    ``source_key`` labels the template kept for a clean script, and finds it again without
    rendering anything.

    Raises:
        DatabaseError: the shadow server cannot be reached or cannot create a database (exit 3).
    """
    with admin_connection(server) as admin:
        version = admin.info.server_version
        label = f"PostgreSQL {version // 10000}.{version % 10000}"
        if source_key and find_by_source(admin, source_key):
            return ServerVerdict((), label, True)
        sections = render.create_schema_sections(schema)
        script = render.sections_to_sql(sections)
        cached = has_template(admin, script)
        if cached and source_key:
            admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(template_name(script)), sql.Literal(f"veza-schema sources {source_key}")))
        # A cached script applied cleanly on this server: the built-in facts serve the rules then.
        facts = None if cached else catalog_facts(admin)
    if cached:
        return ServerVerdict((), label, True)
    statements = [unpopulated(statement) for section in sections for statement in section.statements]
    with template_build(server, script) as build:
        first_error = _apply_in_batches(build.dsn, statements)
        if first_error is None:
            build.keep(source_key)
            return ServerVerdict((), label, False, facts=facts)
    with shadow_database(server) as dsn:
        findings, not_run = _Attribution(schema, version // 10000).run(dsn)
    if not findings:  # only the whole script fails (an ordering problem): say it without a location
        findings = [SERVER_INVALID_DEFINITION.finding(
            f"PostgreSQL {version // 10000} refuses the schema's script: {_message(first_error)}",
            None, "schema", fix=_hint(first_error) or SERVER_INVALID_DEFINITION.fix)]
    return ServerVerdict(tuple(findings), label, False, not_run, facts)


def _connect(dsn: str) -> psycopg.Connection[Any]:
    """A connection to a scratch database (exit 3 when it fails: that is the server, not the schema)."""
    try:
        return psycopg.connect(dsn, connect_timeout=10, application_name="veza-schema lint", options=SHADOW_OPTIONS)
    except psycopg.Error as exc:
        raise database_error("cannot connect to the scratch database", exc) from exc


def _apply_in_batches(dsn: str, statements: Sequence[str]) -> psycopg.Error | None:
    """Run the script in transactions of :data:`BATCH_STATEMENTS` statements; the first error, if any."""
    with _connect(dsn) as conn:
        try:
            for start in range(0, len(statements), BATCH_STATEMENTS):
                conn.execute("\n".join(statements[start:start + BATCH_STATEMENTS]).encode("utf-8"))
                conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            return exc
    return None


def _message(error: BaseException) -> str:
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(error).strip().splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    return f"{primary} (DETAIL: {detail})" if detail else str(primary)


def _hint(error: BaseException) -> str | None:
    hint = getattr(getattr(error, "diag", None), "message_hint", None)
    return f"PostgreSQL's hint: {hint}" if hint else None


# -- attribution, object by object ----------------------------------------------------------------
@dataclass
class _Step:
    """One statement of the taken-apart schema and the object it belongs to."""

    sql: str
    what: str  # "index idx_users_email", for the message
    path: str  # the finding's object path
    pos: SourcePos | None
    needs: frozenset[str] = frozenset()  # keys of objects that must exist
    makes: tuple[str, ...] = ()  # keys of the objects it creates
    extension: bool = False


def _key_columns(table: str, columns: Iterable[str]) -> frozenset[str]:
    return frozenset(f"column:{table}.{c}" for c in columns)


def _key(table: str, columns: Iterable[str]) -> str:
    return f"key:{table}:{','.join(sorted(columns))}"


class _Attribution:
    """Apply the schema object by object; every failing statement becomes a finding."""

    def __init__(self, schema: Schema, major: int) -> None:
        self.schema = schema
        self.major = major
        self.failed: set[str] = set()  # keys of objects that failed or were not created
        self.failed_names: set[str] = set()  # their bare names, to recognise an error about them
        self.findings: list[Finding] = []
        self.not_run = 0
        self._since_commit = 0

    # keys --------------------------------------------------------------------------------------
    def _type_needs(self, type_text: str) -> frozenset[str]:
        base = base_type(type_text)
        own = base in self.schema.enums or base in self.schema.composite_types
        return frozenset({f"type:{base}"}) if own else frozenset()

    def _expression_needs(self, table: str, text: str | None) -> frozenset[str]:
        if not text:
            return frozenset()
        parsed = parse_sql(text)
        needs = {f"column:{table}.{c}" for c in parsed.columns}
        needs |= {f"function:{f}" for f in parsed.functions if f in self.schema.functions}
        return frozenset(needs)

    def _fail(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.failed.add(key)
            kind, _, name = key.partition(":")
            if kind != "key":
                self.failed_names.add(name.rsplit(".", 1)[-1])

    # running -----------------------------------------------------------------------------------
    def _try(self, conn: psycopg.Connection[Any], statement: str, keep: bool = True) -> psycopg.Error | None:
        """Run one statement under a savepoint (rolled back when it fails, or when not ``keep``)."""
        self._since_commit += 1
        try:
            conn.execute(("SAVEPOINT veza_step;\n" + statement).encode("utf-8"))
        except psycopg.Error as exc:
            conn.execute("ROLLBACK TO SAVEPOINT veza_step; RELEASE SAVEPOINT veza_step")
            return exc
        conn.execute("ROLLBACK TO SAVEPOINT veza_step; RELEASE SAVEPOINT veza_step" if not keep
                     else "RELEASE SAVEPOINT veza_step")
        if self._since_commit >= BATCH_STATEMENTS:
            conn.commit()
            self._since_commit = 0
        return None

    def _consequential(self, error: psycopg.Error) -> bool:
        """An error about a missing object that failed before: the first error says it already."""
        if error.sqlstate not in _CONSEQUENTIAL_STATES:
            return False
        primary = getattr(error.diag, "message_primary", None) or ""
        return any(name in self.failed_names for name in _QUOTED.findall(primary))

    def _report(self, error: psycopg.Error, what: str, path: str, pos: SourcePos | None,
                extension: bool = False) -> None:
        if self._consequential(error):
            self.not_run += 1
            return
        rule = SERVER_UNKNOWN_OBJECT if extension and error.sqlstate == "0A000" else rule_for(error.sqlstate)
        self.findings.append(rule.finding(f"PostgreSQL {self.major} refuses {what}: {_message(error)}", pos, path,
                                          fix=_hint(error) or rule.fix))

    def _step(self, conn: psycopg.Connection[Any], step: _Step) -> None:
        if step.needs & self.failed:
            self.not_run += 1
            self._fail(step.makes)
            return
        error = self._try(conn, step.sql)
        if error is not None:
            self._report(error, step.what, step.path, step.pos, step.extension)
            self._fail(step.makes)

    def run(self, dsn: str) -> tuple[list[Finding], int]:
        with _connect(dsn) as conn:
            for step in self._before_tables():
                self._step(conn, step)
            order = render.order_tables(dict(self.schema.tables))
            for name in order.tables:
                self._create_table(conn, self.schema.tables[name])
            for step in self._after_tables(order.tables):
                self._step(conn, step)
            conn.rollback()
        return self.findings, self.not_run

    # tables, column by column when needed --------------------------------------------------------
    def _create_table(self, conn: psycopg.Connection[Any], table: Table) -> None:
        tp = table_path(table.name)
        columns = []
        for column in table.columns:
            needs = self._type_needs(column.type) | self._expression_needs(table.name, column.default)
            if needs & self.failed:
                self.not_run += 1
                self._fail([f"column:{table.name}.{column.name}"])
            else:
                columns.append(column)
        bare = replace(table, columns=tuple(columns), primary_key=None, uniques={}, checks={}, foreign_keys={},
                       indexes={}, triggers={})
        error = self._try(conn, render.create_table(bare, []))
        if error is None:
            return
        passing: dict[str, Column] = {}
        for column in sorted(columns, key=lambda c: c.generated is not None):  # generated ones read others
            probe = replace(bare, name=_PROBE_TABLE, columns=(*passing.values(), column), partition=None)
            column_error = self._try(conn, render.create_table(probe, []), keep=False)
            if column_error is None:
                passing[column.name] = column
                continue
            self._report(column_error, f"column {table.name}.{column.name}", column_path(table.name, column.name),
                         _column_pos(column, column_error))
            # Keep the column without its expression when only that failed: what reads it is verified too.
            plain = replace(column, default=None, generated=None, identity=None)
            probe = replace(probe, columns=(*passing.values(), plain))
            if plain != column and self._try(conn, render.create_table(probe, []), keep=False) is None:
                passing[column.name] = plain
            else:
                self._fail([f"column:{table.name}.{column.name}"])
        if all(passing.get(c.name) is c for c in columns):
            self._report(error, f"table {table.name}", tp, table.meta.pos)
            self._fail([f"table:{table.name}"])
            return
        kept = tuple(passing[c.name] for c in columns if c.name in passing)
        table_error = self._try(conn, render.create_table(replace(bare, columns=kept), []))
        if table_error is not None:
            self._report(table_error, f"table {table.name}", tp, table.meta.pos)
            self._fail([f"table:{table.name}"])

    # every other statement, in creation order ------------------------------------------------------
    def _before_tables(self) -> Iterator[_Step]:
        schema = self.schema
        for ext in schema.extensions.values():
            yield _Step(render.create_extension(ext), f"extension {ext.name}", f"extensions.{ext.name}",
                        ext.meta.pos, makes=(f"extension:{ext.name}",), extension=True)
        for name in sorted(schema.enums):
            enum = schema.enums[name]
            yield _Step(render.create_enum(enum), f"enum {name}", f"enums.{name}", enum.meta.pos,
                        makes=(f"type:{name}",))
        for name in sorted(schema.composite_types):
            ctype = schema.composite_types[name]
            needs = frozenset().union(*(self._type_needs(a.type) for a in ctype.attributes))
            yield _Step(render.create_composite_type(ctype), f"type {name}", f"types.{name}", ctype.meta.pos,
                        needs, (f"type:{name}",))
        if any(t.partition for t in schema.tables.values()):
            yield _Step(render.partition_function(), "the partition helper function", "schema", None,
                        makes=("function:veza_ensure_partitions",))
        for name in sorted(schema.functions):
            function = schema.functions[name]
            if function.language != "sql":
                yield _Step(render.create_function(function), f"function {name}", f"functions.{name}",
                            function.meta.pos, makes=(f"function:{name}",))

    def _after_tables(self, table_order: Sequence[str]) -> Iterator[_Step]:
        schema = self.schema
        for name in table_order:
            table = schema.tables[name]
            yield from self._keys_and_checks(table)
        for name in table_order:
            table = schema.tables[name]
            if table.partition:
                yield _Step("".join(render.create_partitions(table)), f"the partitions of {name}", table_path(name),
                            table.meta.at("partition_by"),
                            frozenset({f"table:{name}", "function:veza_ensure_partitions"}))
        for name in table_order:
            yield from self._foreign_keys(schema.tables[name])
        for fname in sorted(schema.functions):
            function = schema.functions[fname]
            if function.language == "sql":
                yield _Step(render.create_function(function), f"function {fname}", f"functions.{fname}",
                            function.meta.pos, makes=(f"function:{fname}",))
        for index in sorted((i for t in schema.tables.values() for i in t.indexes.values()),
                            key=lambda i: (i.table, i.name)):
            yield self._index(index, on_view=False)
        for name in render.order_views(dict(schema.views)):
            view = schema.views[name]
            needs = frozenset(f"table:{d}" if d in schema.tables else f"view:{d}" for d in view.depends_on)
            kind = "materialized view" if view.materialized else "view"
            yield _Step(unpopulated(render.create_view(view)), f"{kind} {name}", f"views.{name}", view.meta.pos,
                        needs, (f"view:{name}", f"table:{name}"))
            for index_name in sorted(view.indexes):
                yield self._index(view.indexes[index_name], on_view=True)
        for trigger in schema.triggers:
            needs = frozenset({f"table:{trigger.table}", f"function:{trigger.function}"})
            needs |= self._expression_needs(trigger.table, trigger.when)
            yield _Step(render.create_trigger(trigger), f"trigger {trigger.name} on {trigger.table}",
                        f"{table_path(trigger.table)}.triggers.{trigger.name}", trigger.meta.pos, needs)
        yield from self._comments()

    def _keys_and_checks(self, table: Table) -> Iterator[_Step]:
        tp, name = table_path(table.name), table.name
        table_needs = frozenset({f"table:{name}"})
        if table.primary_key:
            pk = table.primary_key
            yield _Step(render.add_constraint(name, render.primary_key_clause(pk)), f"primary key {pk.name}",
                        f"{tp}.primary_key", pk.meta.pos, table_needs | _key_columns(name, pk.columns),
                        (_key(name, pk.columns),))
        for uq_name in sorted(table.uniques):
            uq = table.uniques[uq_name]
            yield _Step(render.add_constraint(name, render.unique_clause(uq)), f"unique constraint {uq_name}",
                        f"{tp}.unique.{uq_name}", uq.meta.pos, table_needs | _key_columns(name, uq.columns),
                        (_key(name, uq.columns),))
        for ck_name in sorted(table.checks):
            ck = table.checks[ck_name]
            yield _Step(render.add_constraint(name, render.check_clause(ck)), f"check {ck_name}",
                        f"{tp}.checks.{ck_name}", ck.meta.at("expression"),
                        table_needs | self._expression_needs(name, ck.expression))

    def _foreign_keys(self, table: Table) -> Iterator[_Step]:
        name = table.name
        for fk_name in sorted(table.foreign_keys):
            fk = table.foreign_keys[fk_name]
            needs = frozenset({f"table:{name}", f"table:{fk.ref_table}", _key(fk.ref_table, fk.ref_columns)})
            needs |= _key_columns(name, fk.columns) | _key_columns(fk.ref_table, fk.ref_columns)
            yield _Step(render.add_constraint(name, render.foreign_key_clause(fk)), f"foreign key {fk_name}",
                        f"{table_path(name)}.foreign_keys.{fk_name}", fk.meta.pos, needs)

    def _index(self, index: Index, on_view: bool) -> _Step:
        owner = f"view:{index.table}" if on_view else f"table:{index.table}"
        needs = {owner} | _key_columns(index.table, index.include)
        for element in index.elements:
            if element.is_column:
                needs.add(f"column:{index.table}.{element.expression}")
            else:
                needs |= self._expression_needs(index.table, element.expression)
        needs |= self._expression_needs(index.table, index.where)
        keys = (_key(index.table, index.column_names),) if index.serves_concurrent_refresh else ()
        return _Step(render.create_index(index), f"index {index.name}", index_path(index, on_view), index.meta.pos,
                     frozenset(needs), keys)

    def _comments(self) -> Iterator[_Step]:
        schema = self.schema
        for name in sorted(schema.enums):
            if schema.enums[name].comment is not None:
                yield _Step(render.object_comment("TYPE", name, schema.enums[name].comment),
                            f"the comment of enum {name}", f"enums.{name}", schema.enums[name].meta.at("comment"),
                            frozenset({f"type:{name}"}))
        for name in sorted(schema.composite_types):
            ctype = schema.composite_types[name]
            if ctype.comment is not None:
                yield _Step(render.object_comment("TYPE", name, ctype.comment), f"the comment of type {name}",
                            f"types.{name}", ctype.meta.at("comment"), frozenset({f"type:{name}"}))
        for name in sorted(schema.functions):
            function = schema.functions[name]
            if function.comment is not None:
                yield _Step(render.object_comment("FUNCTION", function.name, function.comment,
                                                    arguments=function.arguments),
                            f"the comment of function {name}", f"functions.{name}", function.meta.at("comment"),
                            frozenset({f"function:{name}"}))
        for name in sorted(schema.tables):
            table = schema.tables[name]
            if table.comment is not None:
                yield _Step(render.object_comment("TABLE", name, table.comment), f"the comment of table {name}",
                            table_path(name), table.meta.at("comment"), frozenset({f"table:{name}"}))
            for column in table.columns:
                if column.comment is not None:
                    yield _Step(render.object_comment("COLUMN", name, column.comment, column=column.name),
                                f"the comment of column {name}.{column.name}", column_path(name, column.name),
                                column.meta.at("comment"),
                                frozenset({f"table:{name}", f"column:{name}.{column.name}"}))
        for name in render.order_views(dict(schema.views)):
            view = schema.views[name]
            if view.comment is not None:
                kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
                yield _Step(render.object_comment(kind, name, view.comment), f"the comment of view {name}",
                            f"views.{name}", view.meta.at("comment"), frozenset({f"view:{name}"}))


def _column_pos(column: Column, error: psycopg.Error) -> SourcePos | None:
    """The YAML key the error is about: the default, the generated expression, or the type."""
    primary = (getattr(error.diag, "message_primary", None) or "").lower()
    state = error.sqlstate or ""
    if column.default is not None and (state.startswith("22") or "default" in primary):
        return column.meta.at("default")
    if column.generated is not None and ("generat" in primary or state in ("42703", "42883")):
        return column.meta.at("generated")
    if state == "42704" or "type" in primary:
        return column.meta.at("type")
    if column.default is not None and state in ("42883", "42703"):
        return column.meta.at("default")
    return column.meta.pos


