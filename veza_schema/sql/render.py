"""Model objects -> SQL text: small typed functions for one-line statements, templates for the rest.

One job: writing SQL; its length is one small function per statement form the planner emits.

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
from typing import TYPE_CHECKING

from veza_schema.managed import suffix_format
from veza_schema.model import (
    FK_ACTIONS,
    INDEX_METHODS,
    PARALLEL_SAFETY,
    POLICY_COMMANDS,
    PRIVILEGES,
    PUBLIC_ROLE,
    TABLE_PRIVILEGES_EXTRA,
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
from veza_schema.sql.routes import (
    sql_arguments,
    sql_collation,
    sql_default,
    sql_exclusion_element,
    sql_expression,
    sql_language,
    sql_operator_class,
    sql_query,
    sql_returns,
    sql_setting_name,
    sql_type,
)
from veza_schema.sql.text import (
    Sql,
    comment_line,
    compose,
    dollar_quote,
    ident,
    join,
    keyword,
    literal,
    qname,
    unqualified,
    wrapped_whole,
)

TIMINGS = ("before", "after", "instead of")
EVENTS = ("insert", "update", "delete", "truncate")
VOLATILITIES = ("volatile", "stable", "immutable")
IDENTITIES = ("always", "by default")
STRATEGIES = ("range", "list", "hash")
INTERVALS = ("day", "week", "month", "year")
COMMENT_KINDS = ("TABLE", "COLUMN", "TYPE", "FUNCTION", "VIEW", "MATERIALIZED VIEW", "SCHEMA", "ROLE", "SEQUENCE")
GRANT_KINDS = ("TABLE", "SEQUENCE", "FUNCTION", "SCHEMA", "TABLES", "SEQUENCES", "FUNCTIONS", "TYPES", "SCHEMAS")
ALL_PRIVILEGES = frozenset(p for kind in PRIVILEGES.values() for p in kind) | frozenset(TABLE_PRIVILEGES_EXTRA)

if TYPE_CHECKING:
    import jinja2  # imported when the first template renders: lint --offline renders none


def templates_dir() -> Path:
    """Installed wheels ship templates inside the package; a source checkout has them at the top."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates"
    if packaged.is_dir():
        return packaged
    return package.parent / "templates"


@cache
def template_digest(template: str) -> str:
    """What a rendering of ``template`` depends on besides its arguments: the template's text and the
    quoting code its filters run. A disk-cached rendering is keyed on it, so an edit re-renders."""
    import hashlib

    digest = hashlib.sha256((templates_dir() / template).read_bytes())
    for module in ("render.py", "text.py"):
        digest.update(Path(__file__).with_name(module).read_bytes())
    return digest.hexdigest()[:20]


def _only_sql(value: object) -> object:
    """Jinja's ``finalize``: a template may print SQL made by the quoting route, or an integer, nothing else."""
    if isinstance(value, Sql) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    import jinja2  # loaded by environment() already

    if isinstance(value, jinja2.Undefined):  # `{{ x if cond }}` with cond false
        return ""
    raise TypeError(f"refusing to print {value!r} into a SQL template: it did not come through the quoting route")


@cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=False,
        finalize=_only_sql,
    )
    env.filters.update(ident=ident, literal=literal, dollar_quote=dollar_quote, comment_line=comment_line,
                       qname=qname, unqualified=unqualified)
    return env


def _number(value: float) -> Sql:
    """``5.0`` -> ``5``, ``0.25`` -> ``0.25``: COST and ROWS as PostgreSQL reads them back."""
    return Sql(f"{float(value):g}")


def render_template(template: str, **context: object) -> Sql:
    """Render one template; the result always ends with exactly one newline."""
    return Sql(environment().get_template(template).render(**context).strip("\n") + "\n")


def _statement(template: str, *parts: Sql | int) -> Sql:
    """One statement on one line, newline-terminated like a rendered template."""
    return Sql(compose(template, *parts) + "\n")


def _names(names: Iterable[str]) -> Sql:
    return join(ident(name) for name in names)


# -- one object, one statement --------------------------------------------------------
def create_namespace(namespace: Namespace) -> Sql:
    return _statement("CREATE SCHEMA {};", ident(namespace.name))


def drop_namespace(namespace: Namespace) -> Sql:
    return _statement("DROP SCHEMA {};", ident(namespace.name))


def _role_attributes(role: Role) -> Sql:
    return join((Sql(word) for word in (
        "LOGIN" if role.login else "NOLOGIN", "INHERIT" if role.inherit else "NOINHERIT",
        "CREATEDB" if role.createdb else "NOCREATEDB", "CREATEROLE" if role.createrole else "NOCREATEROLE",
        "BYPASSRLS" if role.bypassrls else "NOBYPASSRLS")), " ")


def alter_role_attributes(role: Role) -> Sql:
    return _statement("ALTER ROLE {} {} CONNECTION LIMIT {};", ident(role.name), _role_attributes(role),
                      int(role.connection_limit))


def _flag(value: bool) -> Sql:
    return Sql("true" if value else "false")


def create_role_block(role: Role) -> Sql:
    """The DO block creating ``role`` when missing, then setting its attributes and comment only when they
    differ (migrations of several databases of one cluster may run at once; roles are cluster-wide)."""
    return render_template("objects/role.sql.j2", role=role.name, attributes=_role_attributes(role),
                           login=_flag(role.login), inherit=_flag(role.inherit), createdb=_flag(role.createdb),
                           createrole=_flag(role.createrole), bypassrls=_flag(role.bypassrls),
                           connection_limit=int(role.connection_limit),
                           comment=None if role.comment is None else literal(role.comment))


def create_role(role: Role) -> list[Sql]:
    """Create when missing, set the attributes and comment, grant the memberships (roles are cluster-wide)."""
    statements = [create_role_block(role)]
    statements += [role_membership(role.name, other, True) for other in role.member_of]
    return statements


def role_membership(role: str, other: str, granted: bool) -> Sql:
    if granted:
        return _statement("GRANT {} TO {};", ident(other), ident(role))
    return _statement("REVOKE {} FROM {};", ident(other), ident(role))


def create_sequence(sequence: SequenceObject) -> Sql:
    what = f"sequence {sequence.name}"
    minimum = Sql("NO MINVALUE") if sequence.min_value is None else compose("MINVALUE {}", int(sequence.min_value))
    maximum = Sql("NO MAXVALUE") if sequence.max_value is None else compose("MAXVALUE {}", int(sequence.max_value))
    return render_template("objects/sequence.sql.j2", name=qname(sequence.name),
                           type=sql_type(sequence.type, f"type of {what}"), start=int(sequence.start),
                           increment=int(sequence.increment), minimum=minimum, maximum=maximum,
                           cache=int(sequence.cache), cycle=sequence.cycle)


def sequence_owner(sequence: SequenceObject, owned: bool = True) -> Sql:
    """ALTER SEQUENCE ... OWNED BY table.column (or NONE): the sequence is then dropped with its column."""
    if not owned or sequence.owned_by is None:
        return _statement("ALTER SEQUENCE {} OWNED BY NONE;", qname(sequence.name))
    return _statement("ALTER SEQUENCE {} OWNED BY {}.{};", qname(sequence.name), qname(sequence.owner_table or ""),
                      ident(sequence.owner_column or ""))


def drop_sequence(sequence: SequenceObject) -> Sql:
    return _statement("DROP SEQUENCE {};", qname(sequence.name))


def index_key(index: Index) -> str:
    """An index's name qualified by its table's schema (DROP INDEX and ALTER INDEX need it)."""
    return qualify(schema_of(index.table), index.name)


# -- privileges ----------------------------------------------------------------------------------
_GRANT_OPTION = " with grant option"


def _grantee(role: str) -> Sql:
    return Sql("PUBLIC") if role == PUBLIC_ROLE else ident(role)


_NO_PREFIX = Sql("")


def grant_statements(kind: str, target: Sql | None, before: Grants, after: Grants, *,
                     prefix: Sql = _NO_PREFIX) -> list[Sql]:
    """GRANT and REVOKE statements taking ``target`` from ``before`` to ``after``.

    ``kind`` is the object word (TABLE, SEQUENCE, FUNCTION, SCHEMA; TABLES... after ``prefix``,
    which is ``ALTER DEFAULT PRIVILEGES ...`` for default privileges). Privileges are the model's
    closed set; roles go through the quoting route.
    """
    word = keyword(kind, GRANT_KINDS, upper=False)
    on = compose("ON {} {}", word, target) if target else compose("ON {}", word)
    statements: list[Sql] = []
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
            statements.append(_statement("{}REVOKE {} {} FROM {};", prefix, _privileges(revoke), on, who))
        if revoke_option:
            statements.append(_statement("{}REVOKE GRANT OPTION FOR {} {} FROM {};", prefix,
                                         _privileges(revoke_option), on, who))
        if grant:
            statements.append(_statement("{}GRANT {} {} TO {};", prefix, _privileges(grant), on, who))
        if grant_option:
            statements.append(_statement("{}GRANT {} {} TO {} WITH GRANT OPTION;", prefix, _privileges(grant_option),
                                         on, who))
    return statements


def _privileges(names: list[str]) -> Sql:
    return join(keyword(name, ALL_PRIVILEGES) for name in names)


def table_grants(name: str, grants: Grants, before: Grants | None = None) -> list[Sql]:
    return grant_statements("TABLE", qname(name), before or {}, grants)


def sequence_grants(sequence: SequenceObject, before: Grants | None = None) -> list[Sql]:
    return grant_statements("SEQUENCE", qname(sequence.name), before or {}, sequence.grants)


def function_grants(fn: Function, before: Grants | None = None) -> list[Sql]:
    base = dict(default_grants("function")) if before is None else before
    return grant_statements("FUNCTION", function_signature(fn), base, fn.grants)


def namespace_grants(namespace: Namespace, before: Grants | None = None) -> list[Sql]:
    return grant_statements("SCHEMA", ident(namespace.name), before or {}, namespace.grants)


def default_privilege_statements(entry: DefaultPrivilege, before: Grants | None) -> list[Sql]:
    """ALTER DEFAULT PRIVILEGES taking ``entry``'s target from ``before`` (None: PostgreSQL's default)."""
    kind = entry.on.removesuffix("s")
    start = dict(default_grants(kind)) if before is None and entry.schema is None else (before or {})
    prefix = compose("ALTER DEFAULT PRIVILEGES FOR ROLE {} ", ident(entry.for_role))
    if entry.schema is not None:
        prefix = compose("{}IN SCHEMA {} ", prefix, ident(entry.schema))
    return grant_statements(entry.on.upper(), None, start, entry.grants, prefix=prefix)


# -- row-level security ----------------------------------------------------------------------------
def create_policy(policy: Policy, *, roles: bool = True) -> Sql:
    """CREATE POLICY; ``roles=False`` (the shadow database, which has no roles of ours) writes TO PUBLIC."""
    names = join(_grantee(role) for role in policy.roles) if roles else Sql("PUBLIC")
    what = f"policy {policy.name}"
    using = sql_expression(policy.using, f"using of {what}") if policy.using is not None else None
    with_check = sql_expression(policy.with_check, f"with_check of {what}") if policy.with_check is not None \
        else None
    return render_template("objects/policy.sql.j2", name=ident(policy.name), table=qname(policy.table),
                           permissive=Sql("PERMISSIVE" if policy.permissive else "RESTRICTIVE"),
                           command=keyword(policy.command, POLICY_COMMANDS), roles=names, using=using,
                           with_check=with_check)


def drop_policy(policy: Policy) -> Sql:
    return _statement("DROP POLICY {} ON {};", ident(policy.name), qname(policy.table))


def row_security(table: str, enabled: bool, forced: bool) -> list[Sql]:
    """ENABLE/DISABLE and FORCE/NO FORCE ROW LEVEL SECURITY, both stated."""
    return [_statement("ALTER TABLE {} {} ROW LEVEL SECURITY;", qname(table), Sql("ENABLE" if enabled else "DISABLE")),
            _statement("ALTER TABLE {} {} ROW LEVEL SECURITY;", qname(table), Sql("FORCE" if forced else "NO FORCE"))]


def column_statistics(table: str, column: str, target: int | None) -> Sql:
    value = -1 if target is None else int(target)
    return _statement("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {};", qname(table), ident(column), value)


def set_persistence(table: str, unlogged: bool) -> Sql:
    return _statement("ALTER TABLE {} SET {};", qname(table), Sql("UNLOGGED" if unlogged else "LOGGED"))


def exclusion_clause(ex: ExclusionConstraint) -> Sql:
    what = f"exclusion constraint {ex.name}"
    parts = [compose("CONSTRAINT {} EXCLUDE USING {} ({})", ident(ex.name),
                     keyword(ex.method, INDEX_METHODS, upper=False),
                     join(sql_exclusion_element(element, f"element of {what}") for element in ex.elements))]
    if ex.include:
        parts.append(compose("INCLUDE ({})", _names(ex.include)))
    if ex.where:
        parts.append(compose("WHERE ({})", sql_expression(ex.where, f"where of {what}")))
    if ex.deferrable:
        parts.append(Sql("DEFERRABLE INITIALLY DEFERRED" if ex.initially_deferred else "DEFERRABLE"))
    return join(parts, " ")


def alter_extension_version(ext: Extension, version: str | None) -> Sql:
    if version:
        return _statement("ALTER EXTENSION {} UPDATE TO {};", ident(ext.name), literal(version))
    return _statement("ALTER EXTENSION {} UPDATE;", ident(ext.name))


def create_extension(ext: Extension) -> Sql:
    text = compose("CREATE EXTENSION IF NOT EXISTS {}", ident(ext.name))
    if ext.schema:
        text = compose("{} SCHEMA {}", text, ident(ext.schema))
    if ext.version:
        text = compose("{} VERSION {}", text, literal(ext.version))
    return _statement("{};", text)


def drop_extension(ext: Extension) -> Sql:
    return _statement("DROP EXTENSION IF EXISTS {};", ident(ext.name))


def create_enum(enum: EnumType) -> Sql:
    return render_template("objects/enum.sql.j2", name=qname(enum.name), values=[literal(v) for v in enum.values])


def create_composite_type(ctype: CompositeType) -> Sql:
    attributes = [compose("{} {}", ident(a.name), sql_type(a.type, f"attribute {ctype.name}.{a.name}"))
                  for a in ctype.attributes]
    return render_template("objects/composite_type.sql.j2", name=qname(ctype.name), attributes=attributes)


def drop_type(name: str) -> Sql:
    return _statement("DROP TYPE {};", qname(name))


def function_signature(fn: Function) -> Sql:
    """``name(arguments)``: how DROP, GRANT and COMMENT name a function."""
    return compose("{}({})", qname(fn.name), sql_arguments(fn.arguments, f"arguments of function {fn.name}"))


# Parameters whose value is a list of names: each item is its own literal (PostgreSQL quotes them back).
_NAME_LIST_SETTINGS = frozenset({"search_path", "temp_tablespaces"})


def function_settings(fn: Function) -> list[Sql]:
    """SET clauses as SQL: ``search_path = 'pg_catalog', 'public'``; ``work_mem = '64MB'``."""
    rendered = []
    for name, value in fn.settings:
        setting = sql_setting_name(name, f"setting of function {fn.name}")
        if name in _NAME_LIST_SETTINGS:
            items = [literal(item) for item in _split_name_list(value)]
            rendered.append(compose("{} = {}", setting, join(items) if items else Sql("''")))
        else:
            rendered.append(compose("{} = {}", setting, literal(value)))
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


def create_function(fn: Function) -> Sql:
    return render_template(
        "objects/function.sql.j2", signature=function_signature(fn),
        returns=sql_returns(fn.returns, f"result of function {fn.name}"),
        language=sql_language(fn.language, f"language of function {fn.name}"),
        volatility=keyword(fn.volatility, VOLATILITIES), strict=fn.strict, security_definer=fn.security_definer,
        leakproof=fn.leakproof,
        parallel=keyword(fn.parallel, PARALLEL_SAFETY) if fn.parallel != "unsafe" else None,
        cost=_number(fn.cost) if fn.cost is not None else None,
        rows=_number(fn.rows) if fn.rows is not None else None,
        settings=function_settings(fn), body=dollar_quote(fn.body))


def drop_function(fn: Function) -> Sql:
    return _statement("DROP FUNCTION {};", function_signature(fn))


def column_definition(column: Column) -> Sql:
    """``name type [GENERATED ...] [NOT NULL] [DEFAULT ...]``, as in CREATE TABLE and ADD COLUMN."""
    what = f"column {column.name}"
    parts = [compose("{} {}", ident(column.name), sql_type(column.type, f"type of {what}"))]
    if column.collation:
        parts.append(compose("COLLATE {}", sql_collation(column.collation, f"collation of {what}")))
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


def _deferrable(deferrable: bool, initially_deferred: bool) -> Sql:
    if not deferrable:
        return Sql("")
    return Sql(" DEFERRABLE INITIALLY DEFERRED" if initially_deferred else " DEFERRABLE")


def primary_key_clause(pk: PrimaryKey) -> Sql:
    return compose("CONSTRAINT {} PRIMARY KEY ({}){}", ident(pk.name), _names(pk.columns),
                   _deferrable(pk.deferrable, pk.initially_deferred))


def unique_clause(uq: UniqueConstraint) -> Sql:
    nulls = Sql("NULLS NOT DISTINCT ") if uq.nulls_not_distinct else Sql("")
    return compose("CONSTRAINT {} UNIQUE {}({}){}", ident(uq.name), nulls, _names(uq.columns),
                   _deferrable(uq.deferrable, uq.initially_deferred))


def check_clause(ck: CheckConstraint, not_valid: bool = False) -> Sql:
    clause = compose("CONSTRAINT {} CHECK ({})", ident(ck.name), sql_expression(ck.expression, f"check {ck.name}"))
    return Sql(clause + " NOT VALID") if not_valid else clause


def not_null_check_clause(name: str, column: str) -> Sql:
    """The temporary ``CHECK (col IS NOT NULL) NOT VALID`` that lets SET NOT NULL skip its table scan."""
    return compose("CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID", ident(name), ident(column))


def foreign_key_clause(fk: ForeignKey, not_valid: bool = False) -> Sql:
    parts = [compose("CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({})", ident(fk.name), _names(fk.columns),
                     qname(fk.ref_table), _names(fk.ref_columns))]
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
    return _statement("ALTER TABLE {} ADD {};", qname(table), clause)


def drop_constraint(table: str, name: str, *, if_exists: bool = False) -> Sql:
    if if_exists:
        return _statement("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {};", qname(table), ident(name))
    return _statement("ALTER TABLE {} DROP CONSTRAINT {};", qname(table), ident(name))


def validate_constraint(table: str, name: str) -> Sql:
    return _statement("ALTER TABLE {} VALIDATE CONSTRAINT {};", qname(table), ident(name))


def validate_constraint_if_exists(table: str, name: str) -> Sql:
    """VALIDATE that can run again: a re-run after a crash past the later DROP of the check skips it."""
    return render_template("changes/validate_constraint_if_exists.sql.j2", table=table, name=name)


def rename_constraint(table: str, old: str, new: str) -> Sql:
    return _statement("ALTER TABLE {} RENAME CONSTRAINT {} TO {};", qname(table), ident(old), ident(new))


def create_table(table: Table, inline_foreign_keys: Iterable[ForeignKey] | None = None) -> Sql:
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
    partition_by = None
    if table.partition:
        partition_by = compose(" PARTITION BY {} ({})", keyword(table.partition.strategy, STRATEGIES),
                               _names(table.partition.columns))
    return render_template("objects/create_table.sql.j2", name=qname(table.name), unlogged=table.unlogged,
                           lines=lines, partition_by=partition_by)


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


def table_extras(table: Table) -> list[Sql]:
    """What CREATE TABLE cannot say: repeated keys, column statistics targets, row-level security."""
    statements = [add_constraint(table.name, unique_clause(uq)) for uq in repeated_keys(table)]
    statements += [column_statistics(table.name, c.name, c.statistics) for c in table.columns
                   if c.statistics is not None]
    if table.row_security:
        statements.append(_statement("ALTER TABLE {} ENABLE ROW LEVEL SECURITY;", qname(table.name)))
    if table.force_row_security:
        statements.append(_statement("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", qname(table.name)))
    return statements


def drop_table(table: Table) -> Sql:
    return _statement("DROP TABLE {};", qname(table.name))


def rename_table(old: str, new: str) -> Sql:
    return _statement("ALTER TABLE {} RENAME TO {};", qname(old), unqualified(new))


def add_column(table: str, column: Column) -> Sql:
    return _statement("ALTER TABLE {} ADD COLUMN {};", qname(table), column_definition(column))


def drop_column(table: str, column: str) -> Sql:
    return _statement("ALTER TABLE {} DROP COLUMN {};", qname(table), ident(column))


def rename_column(table: str, old: str, new: str) -> Sql:
    return _statement("ALTER TABLE {} RENAME COLUMN {} TO {};", qname(table), ident(old), ident(new))


def alter_column_type(table: str, column: str, type_: str, via: str | None = None) -> Sql:
    """``TYPE t USING col[::via]::t``: an explicit cast, through ``via`` (``text`` for enums) when given."""
    target = sql_type(type_, f"type of column {table}.{column}")
    using = compose("{}::{}", ident(column), sql_type(via, f"cast of column {table}.{column}")) if via \
        else ident(column)
    return _statement("ALTER TABLE {} ALTER COLUMN {} TYPE {} USING {}::{};", qname(table), ident(column), target,
                      using, target)


def alter_column_default(table: str, column: str, default: str | None) -> Sql:
    if default is None:
        return _statement("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT;", qname(table), ident(column))
    return _statement("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {};", qname(table), ident(column),
                      sql_expression(default, f"default of column {table}.{column}"))


def alter_column_nullability(table: str, column: str, nullable: bool) -> Sql:
    verb = Sql("DROP") if nullable else Sql("SET")
    return _statement("ALTER TABLE {} ALTER COLUMN {} {} NOT NULL;", qname(table), ident(column), verb)


def alter_column_identity(table: str, column: str, before: str | None, after: str | None) -> Sql:
    if before is None:
        assert after is not None
        return _statement("ALTER TABLE {} ALTER COLUMN {} ADD GENERATED {} AS IDENTITY;", qname(table),
                          ident(column), keyword(after, IDENTITIES))
    if after is None:
        return _statement("ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY IF EXISTS;", qname(table), ident(column))
    return _statement("ALTER TABLE {} ALTER COLUMN {} SET GENERATED {};", qname(table), ident(column),
                      keyword(after, IDENTITIES))


def add_identity(table: str, column: str, kind: str, *, idempotent: bool) -> Sql:
    """Identity on a column that may hold values already: the sequence continues after the largest one."""
    return render_template("changes/add_identity.sql.j2", table=table, column=column,
                           kind=keyword(kind, IDENTITIES), idempotent=idempotent)


def rename_type(old: str, new: str) -> Sql:
    return _statement("ALTER TYPE {} RENAME TO {};", qname(old), unqualified(new))


def add_enum_value(enum: str, value: str, *, before: str | None = None, after: str | None = None) -> Sql:
    if before is not None:
        return _statement("ALTER TYPE {} ADD VALUE IF NOT EXISTS {} BEFORE {};", qname(enum), literal(value),
                          literal(before))
    if after is not None:
        return _statement("ALTER TYPE {} ADD VALUE IF NOT EXISTS {} AFTER {};", qname(enum), literal(value),
                          literal(after))
    return _statement("ALTER TYPE {} ADD VALUE IF NOT EXISTS {};", qname(enum), literal(value))


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
    head = compose(" ".join(words) + " {} ON {}", ident(index.name), qname(index.table))
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
    return _statement(" ".join(words) + " {};", qname(name))


def rename_function(old: str, new: str, arguments: str) -> Sql:
    return _statement("ALTER FUNCTION {}({}) RENAME TO {};", qname(old),
                      sql_arguments(arguments, f"arguments of function {old}"), unqualified(new))


def rename_index(old: str, new: str) -> Sql:
    return _statement("ALTER INDEX {} RENAME TO {};", qname(old), unqualified(new))


def comment(kind: str, target: Sql, text: str | None) -> Sql:
    """COMMENT ON <kind> <target>; ``text=None`` removes the comment."""
    value = Sql("NULL") if text is None else literal(text)
    return _statement("COMMENT ON {} {} IS {};", keyword(kind, COMMENT_KINDS), target, value)


def object_comment(kind: str, name: str, text: str | None, *, column: str | None = None,
                   arguments: str | None = None) -> Sql:
    """COMMENT ON an object named by its parts: a column's table, a function's arguments."""
    if column is not None:
        target = compose("{}.{}", qname(name), ident(column))
    elif arguments is not None:
        target = compose("{}({})", qname(name), sql_arguments(arguments, f"arguments of function {name}"))
    elif kind.upper() in ("SCHEMA", "ROLE"):
        target = ident(name)
    else:
        target = qname(name)
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
                           table=qname(trigger.table), for_each=keyword(trigger.for_each, ("row", "statement")),
                           when=when, function=qname(trigger.function))


def drop_trigger(trigger: Trigger) -> Sql:
    return _statement("DROP TRIGGER {} ON {};", ident(trigger.name), qname(trigger.table))


def create_view(view: View, *, or_replace: bool = False) -> Sql:
    """CREATE [OR REPLACE] [MATERIALIZED] VIEW; a materialized view is filled (WITH DATA)."""
    return render_template("objects/view.sql.j2", name=qname(view.name), materialized=view.materialized,
                           or_replace=or_replace, query=sql_query(view.query, f"query of view {view.name}"))


def drop_view(view: View) -> Sql:
    if view.materialized:
        return _statement("DROP MATERIALIZED VIEW {};", qname(view.name))
    return _statement("DROP VIEW {};", qname(view.name))


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
                                     qname(table.name)))
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


def create_schema_sections(schema: Schema, *, privileges: bool = True) -> list[Section]:
    """Everything needed to build ``schema`` in an empty database, in a safe order.

    ``privileges=False`` leaves out what is cluster-wide or names roles (roles, grants, default
    privileges, policies' roles): the shadow database of ``diff`` is built so, on a server that
    does not have our roles, and :func:`veza_schema.db.shadow.graft_metadata` puts them back.
    """
    sections: list[Section] = []

    def add(title: str, statements: Iterable[Sql]) -> None:
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
    table_statements: list[Sql] = []
    for name in order.tables:
        table = schema.tables[name]
        inline = [fk for fk in table.foreign_keys.values() if fk.name not in deferred]
        table_statements.append(create_table(table, inline))
        if table.partition:
            table_statements += create_partitions(table)
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
    view_statements: list[Sql] = []
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


def schema_comments(schema: Schema, view_order: list[str], functions: list[Function]) -> list[Sql]:
    comments: list[Sql] = []
    for namespace_name in sorted(schema.namespaces):
        if schema.namespaces[namespace_name].comment is not None:
            comments.append(comment("SCHEMA", ident(namespace_name), schema.namespaces[namespace_name].comment))
    for enum_name in sorted(schema.enums):
        if schema.enums[enum_name].comment is not None:
            comments.append(object_comment("TYPE", enum_name, schema.enums[enum_name].comment))
    for type_name in sorted(schema.composite_types):
        if schema.composite_types[type_name].comment is not None:
            comments.append(object_comment("TYPE", type_name, schema.composite_types[type_name].comment))
    for sequence_name in sorted(schema.sequences):
        if schema.sequences[sequence_name].comment is not None:
            comments.append(object_comment("SEQUENCE", sequence_name, schema.sequences[sequence_name].comment))
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
    return comments


def privilege_statements(schema: Schema) -> list[Sql]:
    """The grants of every object, from the state PostgreSQL gives a new object."""
    statements: list[Sql] = []
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

    def add(title: str, statements: Iterable[Sql]) -> None:
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


def _undo_default_privileges(entry: DefaultPrivilege) -> list[Sql]:
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


def sections_to_sql(sections: Iterable[Section]) -> Sql:
    """The sections one after the other, each under its title on one comment line."""
    parts = []
    for section in sections:
        parts.append(compose("-- {}\n", comment_line(section.title)) + join(section.statements, "\n"))
    return join((Sql(part) for part in parts), "\n")
