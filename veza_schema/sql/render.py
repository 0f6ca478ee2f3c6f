"""Model objects -> SQL text, through the Jinja templates in ``templates/``.

One job: spelling model objects as SQL; its length is one renderer per kind of statement.

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
    PUBLIC_ROLE,
    CheckConstraint,
    Column,
    CompositeType,
    DefaultPrivilege,
    EnumType,
    ExclusionConstraint,
    Extension,
    ForeignKey,
    Function,
    Grants,
    Index,
    Namespace,
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
    qualify,
    schema_of,
)
from veza_schema.sql.text import dollar_quote, ident, literal, qname, unqualified, wrapped_whole
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
    env.filters.update(ident=ident, literal=literal, sqltype=short_type, dollar_quote=dollar_quote, qname=qname,
                       unqualified=unqualified, number=_number)
    return env


def _number(value: float) -> str:
    """``5.0`` -> ``5``, ``0.25`` -> ``0.25``: COST and ROWS as PostgreSQL reads them back."""
    return f"{value:g}"


def render_template(template: str, **context: object) -> str:
    """Render one template; the result always ends with exactly one newline."""
    return environment().get_template(template).render(**context).strip("\n") + "\n"


# -- one object, one statement --------------------------------------------------------
def create_namespace(namespace: Namespace) -> str:
    return f"CREATE SCHEMA {ident(namespace.name)};\n"


def drop_namespace(namespace: Namespace) -> str:
    return f"DROP SCHEMA {ident(namespace.name)};\n"


def create_role(role: Role) -> list[str]:
    """Create when missing, set the attributes, grant the memberships (roles are cluster-wide)."""
    statements = [render_template("objects/role.sql.j2", role=role)]
    statements += [f"GRANT {ident(other)} TO {ident(role.name)};\n" for other in role.member_of]
    if role.comment is not None:
        statements.append(comment("ROLE", ident(role.name), role.comment))
    return statements


def role_membership(role: str, other: str, granted: bool) -> str:
    return f"GRANT {ident(other)} TO {ident(role)};\n" if granted else f"REVOKE {ident(other)} FROM {ident(role)};\n"


def create_sequence(sequence: SequenceObject) -> str:
    return render_template("objects/sequence.sql.j2", seq=sequence)


def sequence_owner(sequence: SequenceObject, owned: bool = True) -> str:
    """ALTER SEQUENCE ... OWNED BY table.column (or NONE): the sequence is then dropped with its column."""
    if not owned or sequence.owned_by is None:
        return f"ALTER SEQUENCE {qname(sequence.name)} OWNED BY NONE;\n"
    return (f"ALTER SEQUENCE {qname(sequence.name)} OWNED BY {qname(sequence.owner_table or '')}."
            f"{ident(sequence.owner_column or '')};\n")


def drop_sequence(sequence: SequenceObject) -> str:
    return f"DROP SEQUENCE {qname(sequence.name)};\n"


def index_key(index: Index) -> str:
    """An index's name qualified by its table's schema (DROP INDEX and ALTER INDEX need it)."""
    return qualify(schema_of(index.table), index.name)


# -- privileges ----------------------------------------------------------------------------------
_GRANT_OPTION = " with grant option"


def _grantee(role: str) -> str:
    return "PUBLIC" if role == PUBLIC_ROLE else ident(role)


def grant_statements(kind: str, target: str, before: Grants, after: Grants, *, prefix: str = "") -> list[str]:
    """GRANT and REVOKE statements taking ``target`` (SQL text) from ``before`` to ``after``.

    ``kind`` is the object word (TABLE, SEQUENCE, FUNCTION, SCHEMA; TABLES... after ``prefix``,
    which is ``ALTER DEFAULT PRIVILEGES ...`` for default privileges). Privileges are the model's
    closed set; roles go through the quoting route.
    """
    on = f"ON {kind} {target}".rstrip() if target else f"ON {kind}"
    statements: list[str] = []
    for grantee in sorted(set(before) | set(after)):
        old, new = set(before.get(grantee, ())), set(after.get(grantee, ()))
        old_base = {p.removesuffix(_GRANT_OPTION) for p in old}
        new_base = {p.removesuffix(_GRANT_OPTION) for p in new}
        revoke = sorted(old_base - new_base)
        revoke_option = sorted(p.removesuffix(_GRANT_OPTION) for p in old - new if p.endswith(_GRANT_OPTION)
                               and p.removesuffix(_GRANT_OPTION) in new)
        grant = sorted(p for p in new - old if not p.endswith(_GRANT_OPTION) and p not in old_base)
        grant_option = sorted(p.removesuffix(_GRANT_OPTION) for p in new - old if p.endswith(_GRANT_OPTION))
        who = _grantee(grantee)
        if revoke:
            statements.append(f"{prefix}REVOKE {_privileges(revoke)} {on} FROM {who};\n")
        if revoke_option:
            statements.append(f"{prefix}REVOKE GRANT OPTION FOR {_privileges(revoke_option)} {on} FROM {who};\n")
        if grant:
            statements.append(f"{prefix}GRANT {_privileges(grant)} {on} TO {who};\n")
        if grant_option:
            statements.append(f"{prefix}GRANT {_privileges(grant_option)} {on} TO {who} WITH GRANT OPTION;\n")
    return statements


def _privileges(names: list[str]) -> str:
    return ", ".join(name.upper() for name in names)


def table_grants(name: str, grants: Grants, before: Grants | None = None) -> list[str]:
    return grant_statements("TABLE", qname(name), before or {}, grants)


def sequence_grants(sequence: SequenceObject, before: Grants | None = None) -> list[str]:
    return grant_statements("SEQUENCE", qname(sequence.name), before or {}, sequence.grants)


def function_grants(fn: Function, before: Grants | None = None) -> list[str]:
    base = dict(default_grants("function")) if before is None else before
    return grant_statements("FUNCTION", function_signature(fn), base, fn.grants)


def namespace_grants(namespace: Namespace, before: Grants | None = None) -> list[str]:
    return grant_statements("SCHEMA", ident(namespace.name), before or {}, namespace.grants)


def default_privilege_statements(entry: DefaultPrivilege, before: Grants | None) -> list[str]:
    """ALTER DEFAULT PRIVILEGES taking ``entry``'s target from ``before`` (None: PostgreSQL's default)."""
    kind = entry.on.removesuffix("s")
    start = dict(default_grants(kind)) if before is None and entry.schema is None else (before or {})
    prefix = f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(entry.for_role)} "
    if entry.schema is not None:
        prefix += f"IN SCHEMA {ident(entry.schema)} "
    return grant_statements(entry.on.upper(), "", start, entry.grants, prefix=prefix)


def function_signature(fn: Function) -> str:
    return f"{qname(fn.name)}({fn.arguments})"


# -- row-level security ----------------------------------------------------------------------------
def create_policy(policy: Policy, *, roles: bool = True) -> str:
    """CREATE POLICY; ``roles=False`` (the shadow database, which has no roles of ours) writes TO PUBLIC."""
    names = [_grantee(role) for role in policy.roles] if roles else ["PUBLIC"]
    return render_template("objects/policy.sql.j2", policy=policy, roles=names)


def drop_policy(policy: Policy) -> str:
    return f"DROP POLICY {ident(policy.name)} ON {qname(policy.table)};\n"


def row_security(table: str, enabled: bool, forced: bool) -> list[str]:
    """ENABLE/DISABLE and FORCE/NO FORCE ROW LEVEL SECURITY, both stated."""
    return [f"ALTER TABLE {qname(table)} {'ENABLE' if enabled else 'DISABLE'} ROW LEVEL SECURITY;\n",
            f"ALTER TABLE {qname(table)} {'FORCE' if forced else 'NO FORCE'} ROW LEVEL SECURITY;\n"]


def column_statistics(table: str, column: str, target: int | None) -> str:
    value = -1 if target is None else target
    return f"ALTER TABLE {qname(table)} ALTER COLUMN {ident(column)} SET STATISTICS {value};\n"


def set_persistence(table: str, unlogged: bool) -> str:
    return f"ALTER TABLE {qname(table)} SET {'UNLOGGED' if unlogged else 'LOGGED'};\n"


def exclusion_clause(ex: ExclusionConstraint) -> str:
    return render_template("objects/exclusion.sql.j2", ex=ex).strip()


def alter_extension_version(ext: Extension, version: str | None) -> str:
    target = f" TO {literal(version)}" if version else ""
    return f"ALTER EXTENSION {ident(ext.name)} UPDATE{target};\n"


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
    return render_template("objects/function.sql.j2", fn=fn, settings=function_settings(fn))


# Parameters whose value is a list of names: each item is its own literal (PostgreSQL quotes them back).
_NAME_LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces"})


def function_settings(fn: Function) -> list[tuple[str, str]]:
    """SET clauses as SQL: ``search_path = 'pg_catalog', 'public'``; ``work_mem = '64MB'``."""
    rendered = []
    for name, value in fn.settings:
        if name in _NAME_LIST_SETTINGS:
            items = [literal(item) for item in _split_name_list(value)]
            rendered.append((name, ", ".join(items) if items else "''"))
        else:
            rendered.append((name, literal(value)))
    return rendered


def _split_name_list(value: str) -> list[str]:
    """``"$user", public`` -> ``['$user', 'public']`` (PostgreSQL's stored list form)."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    position = 0
    while position < len(value):
        char = value[position]
        if char == '"':
            if quoted and value[position + 1:position + 2] == '"':
                current.append('"')
                position += 2
                continue
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        position += 1
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items


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
    """CREATE TABLE with its columns and constraints; FKs not inlined are added later, and so are
    keys repeating another key (:func:`repeated_keys`), which CREATE TABLE would silently merge."""
    fks = sorted(table.foreign_keys.values() if inline_foreign_keys is None else inline_foreign_keys,
                 key=lambda fk: fk.name)
    repeated = {uq.name for uq in repeated_keys(table)}
    lines = [column_definition(column) for column in table.columns]
    if table.primary_key:
        lines.append(primary_key_clause(table.primary_key))
    lines += [unique_clause(uq) for uq in sorted(table.uniques.values(), key=lambda u: u.name)
              if uq.name not in repeated]
    lines += [check_clause(ck) for ck in sorted(table.checks.values(), key=lambda c: c.name)]
    lines += [exclusion_clause(ex) for ex in sorted(table.exclusions.values(), key=lambda e: e.name)]
    lines += [foreign_key_clause(fk) for fk in fks]
    return render_template("objects/create_table.sql.j2", table=table, lines=lines)


def repeated_keys(table: Table) -> list[UniqueConstraint]:
    """UNIQUE constraints with the columns and options of the primary key or of an earlier UNIQUE.

    CREATE TABLE keeps only the first of such keys (the primary key first, then by name), so
    these are added by ALTER TABLE afterwards, where PostgreSQL keeps them: the database then
    holds what the YAML declares (lint rule PG040 reports the duplicate).
    """
    seen: set[tuple[object, ...]] = set()
    if table.primary_key is not None:
        pk = table.primary_key
        seen.add((pk.columns, pk.deferrable, pk.initially_deferred, False))
    repeated = []
    for uq in sorted(table.uniques.values(), key=lambda u: u.name):
        shape = (uq.columns, uq.deferrable, uq.initially_deferred, uq.nulls_not_distinct)
        if shape in seen:
            repeated.append(uq)
        seen.add(shape)
    return repeated


def table_extras(table: Table) -> list[str]:
    """What CREATE TABLE cannot say: repeated keys, column statistics targets, row-level security."""
    statements = [add_constraint(table.name, unique_clause(uq)) for uq in repeated_keys(table)]
    statements += [column_statistics(table.name, c.name, c.statistics) for c in table.columns
                   if c.statistics is not None]
    if table.row_security:
        statements.append(f"ALTER TABLE {qname(table.name)} ENABLE ROW LEVEL SECURITY;\n")
    if table.force_row_security:
        statements.append(f"ALTER TABLE {qname(table.name)} FORCE ROW LEVEL SECURITY;\n")
    return statements


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
        out.append(comment("TABLE", qname(table.name), table.comment))
    for column in table.columns:
        if column.comment is not None:
            out.append(comment("COLUMN", f"{qname(table.name)}.{ident(column.name)}", column.comment))
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


def create_schema_sections(schema: Schema, *, privileges: bool = True) -> list[Section]:
    """Everything needed to build ``schema`` in an empty database, in a safe order.

    ``privileges=False`` leaves out what is cluster-wide or names roles (roles, grants, default
    privileges, policies' roles): the shadow database of ``diff`` is built so, on a server that
    does not have our roles, and :func:`veza_schema.db.shadow.graft_metadata` puts them back.
    """
    sections: list[Section] = []

    def add(title: str, statements: Iterable[str]) -> None:
        items = tuple(statements)
        if items:
            sections.append(Section(title, items))

    if privileges:
        add("Roles", (statement for name in sorted(schema.roles) for statement in create_role(schema.roles[name])))
    add("Schemas", (create_namespace(schema.namespaces[n]) for n in sorted(schema.namespaces)))
    add("Extensions", (create_extension(e) for e in schema.extensions.values()))
    add("Enums", (create_enum(schema.enums[n]) for n in sorted(schema.enums)))
    add("Composite types", (create_composite_type(schema.composite_types[n])
                            for n in sorted(schema.composite_types)))
    add("Sequences", (create_sequence(schema.sequences[n]) for n in sorted(schema.sequences)))
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
        table_statements += table_extras(table)
    add("Tables", table_statements)
    add("Sequence owners", (sequence_owner(schema.sequences[n]) for n in sorted(schema.sequences)
                            if schema.sequences[n].owned_by))
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
    add("Row-level security policies", (create_policy(p, roles=privileges) for p in schema.policies))
    add("Comments", schema_comments(schema, view_order, functions))
    if privileges:
        add("Privileges", privilege_statements(schema))
        add("Default privileges", (statement for key in sorted(schema.default_privileges)
                                   for statement in default_privilege_statements(schema.default_privileges[key],
                                                                                 None)))
    return sections


def schema_comments(schema: Schema, view_order: list[str], functions: list[Function]) -> list[str]:
    comments: list[str] = []
    for namespace_name in sorted(schema.namespaces):
        if schema.namespaces[namespace_name].comment is not None:
            comments.append(comment("SCHEMA", ident(namespace_name), schema.namespaces[namespace_name].comment))
    for enum_name in sorted(schema.enums):
        if schema.enums[enum_name].comment is not None:
            comments.append(comment("TYPE", qname(enum_name), schema.enums[enum_name].comment))
    for type_name in sorted(schema.composite_types):
        if schema.composite_types[type_name].comment is not None:
            comments.append(comment("TYPE", qname(type_name), schema.composite_types[type_name].comment))
    for sequence_name in sorted(schema.sequences):
        if schema.sequences[sequence_name].comment is not None:
            comments.append(comment("SEQUENCE", qname(sequence_name), schema.sequences[sequence_name].comment))
    for fn in functions:
        if fn.comment is not None:
            comments.append(comment("FUNCTION", function_signature(fn), fn.comment))
    for name in sorted(schema.tables):
        comments += table_comments(schema.tables[name])
    for name in view_order:
        view = schema.views[name]
        if view.comment is not None:
            kind = "MATERIALIZED VIEW" if view.materialized else "VIEW"
            comments.append(comment(kind, qname(name), view.comment))
    return comments


def privilege_statements(schema: Schema) -> list[str]:
    """The grants of every object, from the state PostgreSQL gives a new object."""
    statements: list[str] = []
    for name in sorted(schema.namespaces):
        statements += namespace_grants(schema.namespaces[name])
    for name in sorted(schema.sequences):
        statements += sequence_grants(schema.sequences[name])
    for key in sorted(schema.functions):
        statements += function_grants(schema.functions[key])
    for name in sorted(schema.tables):
        statements += table_grants(name, schema.tables[name].grants)
    for name in sorted(schema.views):
        statements += table_grants(name, schema.views[name].grants)
    return statements


def drop_schema_sections(schema: Schema) -> list[Section]:
    """The exact reverse of :func:`create_schema_sections` (roles stay: they are cluster-wide)."""
    sections: list[Section] = []

    def add(title: str, statements: Iterable[str]) -> None:
        items = tuple(statements)
        if items:
            sections.append(Section(title, items))

    add("Default privileges", (statement for key in sorted(schema.default_privileges, reverse=True)
                               for statement in _undo_default_privileges(schema.default_privileges[key])))
    add("Views", (drop_view(schema.views[n]) for n in reversed(order_views(dict(schema.views)))))
    order = order_tables(dict(schema.tables))
    add("Foreign keys closing cycles", (drop_constraint(fk_table(schema, fk), fk.name)
                                        for fk in reversed(order.deferred_fks)))
    functions = [schema.functions[n] for n in sorted(schema.functions)]
    add("SQL functions", (drop_function(f) for f in reversed(functions) if _is_sql_function(f)))
    add("Tables", (statement for n in reversed(order.tables)
                   for statement in (drop_table(schema.tables[n]), *drop_partitions(schema.tables[n]))))
    add("Sequences", (drop_sequence(schema.sequences[n]) for n in sorted(schema.sequences, reverse=True)
                      if not schema.sequences[n].owned_by))
    partitioned = any(t.partition for t in schema.tables.values())
    drops = [drop_function(f) for f in reversed(functions) if not _is_sql_function(f)]
    if partitioned:
        drops.append(drop_partition_function())
    add("Functions", drops)
    add("Composite types", (drop_type(n) for n in sorted(schema.composite_types, reverse=True)))
    add("Enums", (drop_type(n) for n in sorted(schema.enums, reverse=True)))
    add("Extensions", (drop_extension(e) for e in reversed(list(schema.extensions.values()))))
    add("Schemas", (drop_namespace(schema.namespaces[n]) for n in sorted(schema.namespaces, reverse=True)))
    return sections


def _undo_default_privileges(entry: DefaultPrivilege) -> list[str]:
    """Back to PostgreSQL's own default for ``entry``'s role, schema and kind."""
    kind = entry.on.removesuffix("s")
    back = dict(default_grants(kind)) if entry.schema is None else {}
    reverted = DefaultPrivilege(entry.for_role, entry.on, entry.schema, back)
    return default_privilege_statements(reverted, entry.grants)


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
