"""Every YAML text field has exactly one route into SQL, decided here (docs/security.md).

Why: ``schema/`` is untrusted input (anyone can edit it in a pull request) that a DBA applies
with owner rights. A text reaches SQL in one of a few ways, each safe by construction:

- names go through :func:`veza_schema.sql.text.ident` (quoted when PostgreSQL needs it);
- values and free text through :func:`~veza_schema.sql.text.literal` (a quoted literal) or
  :func:`~veza_schema.sql.text.comment_line` (one ``--`` line, line breaks removed);
- keyword-like fields are members of a closed set, emitted as our own keyword;
- SQL fields (expressions, view queries, types, function signatures, operator classes) are parsed
  with PostgreSQL's own grammar (:mod:`veza_schema.sql.parse`) and must be exactly the one thing
  they declare, in the context they are rendered in;
- function bodies are arbitrary by design, inside a dollar quote they cannot close.

The loader checks each field when it reads it (so ``lint``, ``check``, ``generate``, ``diff`` and
``docs`` all refuse the same input, exit 2 with ``file:line:col``), through the validators below.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any

import veza_schema.sql.volatility
import veza_schema.types
from veza_schema.errors import VezaSchemaError
from veza_schema.model import Schema
from veza_schema.sql.parse import (
    SqlSyntaxError,
    ast,
    called_functions,
    enums,
    expression_node,
    has_comment,
    parse_sql,
    query_node,
    refuse_data_modifying,
    require_expression,
    statement_nodes,
    walk,
)
from veza_schema.sql.parse_cache import on_disk
from veza_schema.sql.text import Sql
from veza_schema.sql.volatility import VALUE_GENERATORS, offline_facts
from veza_schema.types import TypeSyntaxError, normalize_type, short_type

# What the disk-cached verdicts below are worked out by (besides parse.py, which every key covers): an
# edit to any of them re-answers, even in a checkout whose version did not change.
_VERDICT_SOURCES = (Path(__file__), Path(veza_schema.types.__file__), Path(veza_schema.sql.volatility.__file__))


class Route(Enum):
    """How one YAML field's text reaches SQL (or why it never does)."""

    IDENTIFIER = "identifier: validated as a name, emitted through text.ident"
    LITERAL = "literal: any text, emitted as a quoted literal (text.literal)"
    FREE_TEXT = "free text: never SQL; at most one comment line (text.comment_line)"
    RFC = "RFC reference: must match RFC_REFERENCE; emitted on a comment line"
    KEYWORD = "keyword: one of a closed set, emitted as our own keyword"
    TYPE = "type: a column type, parsed by PostgreSQL's grammar as exactly a type"
    EXPRESSION = "expression: exactly one SQL expression (PostgreSQL's grammar), no volatile call"
    DEFAULT = "default: one SQL expression, also exactly a DEFAULT in a column definition"
    QUERY = "query: exactly one SELECT (PostgreSQL's grammar), no data-modifying WITH"
    FUNCTION_ARGUMENTS = "function arguments: parsed as exactly the argument list of a CREATE FUNCTION"
    FUNCTION_RETURNS = "function result: parsed as exactly the RETURNS clause of a CREATE FUNCTION"
    FUNCTION_BODY = "function body: arbitrary, inside a dollar quote it cannot close (text.dollar_quote)"
    OPERATOR_CLASS = "operator class: parsed as exactly an operator class of an index element"
    EXCLUSION_ELEMENT = "exclusion element: parsed as exactly one 'expression WITH operator' of an EXCLUDE"
    COLLATION = "collation: a (schema-qualified) name, each part an identifier, quoted as PostgreSQL needs"
    SETTING = "setting: a configuration parameter name (validated); its value is a literal (text.literal)"
    REFERENCE = "reference: table.column or table(a, b), names validated as identifiers"
    NOT_TEXT = "not text: a boolean, an integer, a date, or a mapping/list of other fields"


# Routes whose text reaches SQL or its comments: every such field is in the hostile-input corpus.
TEXT_ROUTES: frozenset[Route] = frozenset(route for route in Route if route is not Route.NOT_TEXT)


class RouteError(ValueError):
    """A text that is not what its field declares; ``offset`` is 0-based in the text, when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at character {offset + 1})")


def _from_syntax(error: SqlSyntaxError) -> RouteError:
    return RouteError(error.message, error.offset)


# -- names, free text, RFC references --------------------------------------------------------------
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
# Extension names are looked up as files by the server: letters, digits, '_' and '-' ("uuid-ossp").
EXTENSION_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
# The shape of an RFC reference at load time: one token, a key, a dash, a number (RFC-0042). The
# project's numbering convention (`^RFC-\d{4,}$` by default) is the change policy's, configurable
# with `check --rfc-pattern`.
RFC_REFERENCE = re.compile(r"^[A-Z][A-Z0-9]*-[0-9]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_identifier(text: str, *, pattern: re.Pattern[str] = IDENTIFIER_PATTERN) -> str:
    """A name as PostgreSQL will store it: letters, digits, ``_`` and ``$`` (lint checks the length)."""
    if not pattern.match(text):
        raise RouteError(f"{text!r} is not a valid name (letters, digits and _, not starting with a digit)")
    return text


def check_extension_name(text: str) -> str:
    return check_identifier(text, pattern=EXTENSION_PATTERN)


def check_free_text(text: str) -> str:
    """Free text may hold line breaks and tabs, not other control characters (NUL ends a C string)."""
    found = _CONTROL.search(text)
    if found:
        raise RouteError(f"control character {found.group()!r} in text", found.start())
    return text


def check_rfc(text: str) -> str:
    if not RFC_REFERENCE.match(text):
        raise RouteError(f"{text!r} is not an RFC reference (one token such as RFC-0042)")
    return text


def check_keyword(text: str, allowed: Iterable[str]) -> str:
    """A keyword-like value, compared lower-case with runs of spaces and ``_`` as one space."""
    value = " ".join(text.lower().replace("_", " ").split())
    choices = tuple(allowed)
    if value not in choices:
        raise RouteError(f"{text!r} is not one of {', '.join(choices)}")
    return value


# -- SQL fields, parsed by PostgreSQL's grammar ------------------------------------------------------
def check_expression(text: str) -> str:
    """Exactly one SQL expression (see :func:`veza_schema.sql.parse.expression_node`)."""
    _no_control(text)
    try:
        require_expression(text)
    except SqlSyntaxError as error:
        raise _from_syntax(error) from None
    return text


def check_default(text: str) -> str:
    """A column default: one expression that stays exactly that after ``DEFAULT`` in a column definition.

    ``DEFAULT`` takes a restricted expression there, so ``'x' COLLATE "C"`` would silently become
    the column's collation; such a default must be parenthesized.
    """
    check_expression(text)
    if not _default_in_column(text):
        raise RouteError("in a column definition this default does not stay one expression "
                         "(it would change the column); put it in parentheses")
    return text


@lru_cache(maxsize=65536)
@on_disk("default_in_column", bool, bool, sources=_VERDICT_SOURCES)
def _default_in_column(text: str) -> bool:
    try:
        statements = statement_nodes(f"CREATE TABLE t (c text DEFAULT {text}\n)")
    except SqlSyntaxError:
        return False
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.CreateStmt):
        return False
    elements: Any = statements[0].stmt.tableElts or ()
    if len(elements) != 1 or not isinstance(elements[0], ast.ColumnDef):
        return False
    column = elements[0]
    constraints: Any = column.constraints or ()
    if column.collClause is not None or len(constraints) != 1 or constraints[0].raw_expr is None:
        return False
    return bool(constraints[0].raw_expr == expression_node(text))


def check_query(text: str) -> str:
    """Exactly one SELECT (see :func:`veza_schema.sql.parse.query_node`)."""
    _no_control(text)
    problem = _query_problem(text)
    if problem is not None:
        raise _from_syntax(SqlSyntaxError(*problem))
    return text


@lru_cache(maxsize=65536)
@on_disk("query_problem", lambda found: found, lambda stored: None if stored is None else tuple(stored),
         sources=_VERDICT_SOURCES)
def _query_problem(text: str) -> tuple[str, int | None] | None:
    """Why ``text`` is not exactly one SELECT, as (message, offset); None when it is (kept on disk)."""
    try:
        query_node(text)
    except SqlSyntaxError as error:
        return error.message, error.offset
    return None


def check_type(text: str) -> str:
    """A column type, returned in the model's spelling (``format_type``); parsed as exactly a type."""
    try:
        canonical = normalize_type(text)
    except TypeSyntaxError:
        raise RouteError(f"not a type: {text!r}") from None
    if _type_spelling(canonical) is None:
        raise RouteError(f"not a type: {text!r} (a type name, its modifiers and [] only)")
    return canonical


@lru_cache(maxsize=4096)
def _type_spelling(canonical: str) -> str | None:
    """How a model type is written in DDL, or None when that is not exactly a type."""
    spelling = short_type(canonical)
    return spelling if _is_column_type(spelling) else None


@on_disk("column_type", bool, bool, sources=_VERDICT_SOURCES)  # a warm run parses no type: pglast is not even imported
def _is_column_type(spelling: str) -> bool:
    if has_comment(spelling):
        return False
    try:
        statements = statement_nodes(f"CREATE TABLE t (c {spelling})")
    except SqlSyntaxError:
        return False
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.CreateStmt):
        return False
    elements: Any = statements[0].stmt.tableElts or ()
    return (len(elements) == 1 and isinstance(elements[0], ast.ColumnDef) and not elements[0].constraints
            and elements[0].collClause is None and elements[0].typeName is not None)


# A sentinel body the arguments or result cannot have written: they sit before it in the statement.
_PROBE_BODY = "veza_probe_body"


@lru_cache(maxsize=4096)
def _function_probe(arguments: str, returns: str) -> Any:
    """``CREATE FUNCTION f(<arguments>) RETURNS <returns> LANGUAGE sql AS '...'``, checked to be exactly that."""
    try:
        if has_comment(arguments) or has_comment(returns):
            raise RouteError("SQL comments are not allowed in a function signature")
        statements = statement_nodes(f"CREATE FUNCTION f({arguments}\n)\nRETURNS {returns}\n"
                                     f"LANGUAGE sql\nAS '{_PROBE_BODY}'")
    except SqlSyntaxError as error:  # positions in the probe statement mean nothing to the reader
        raise RouteError(f"not a function signature: {error.message}") from None
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.CreateFunctionStmt):
        raise RouteError("not a function signature: it adds statements")
    stmt = statements[0].stmt
    options = {option.defname: option.arg for option in stmt.options or ()}
    body = options.get("as")
    if stmt.is_procedure or stmt.sql_body is not None or set(options) != {"as", "language"} \
            or getattr(options["language"], "sval", None) != "sql" or not isinstance(body, tuple) \
            or len(body) != 1 or getattr(body[0], "sval", None) != _PROBE_BODY or stmt.returnType is None \
            or [getattr(part, "sval", None) for part in stmt.funcname] != ["f"]:
        raise RouteError("not a function signature: it adds clauses to the function")
    for node in walk((stmt.returnType, stmt.parameters)):
        if isinstance(node, ast.TypeName) and any(not isinstance(mod, ast.A_Const | ast.ColumnRef)
                                                  for mod in node.typmods or ()):
            # The grammar takes any expression as a type modifier; a type's modifiers are constants.
            raise RouteError("not a function signature: a type modifier that is not a constant")
    for parameter in stmt.parameters or ():
        if not isinstance(parameter, ast.FunctionParameter):
            raise RouteError("not a function signature")
        if parameter.defexpr is not None:
            try:
                refuse_data_modifying(parameter.defexpr, "an argument default")
            except SqlSyntaxError as error:
                raise _from_syntax(error) from None
    return stmt


def check_function_arguments(text: str) -> str:
    """The argument list of a function (``a integer, b text DEFAULT 'x'``), parsed, not pasted."""
    _no_control(text)
    if text.strip():
        _raise(_arguments_problem(text))
    return text


def check_function_returns(text: str) -> str:
    """A function's result (``trigger``, ``SETOF text``, ``TABLE (a int)``), parsed as exactly a RETURNS clause."""
    _no_control(text)
    _raise(_returns_problem(text))
    return text


def _raise(problem: tuple[str, int | None] | None) -> None:
    if problem is not None:
        raise RouteError(*problem)


# The two signature checks' verdicts as (message, offset), None when the text passes: kept in the
# disk cache, so a warm run parses no signature.
@lru_cache(maxsize=4096)
@on_disk("function_arguments", lambda found: found, lambda stored: None if stored is None else tuple(stored),
         sources=_VERDICT_SOURCES)
def _arguments_problem(text: str) -> tuple[str, int | None] | None:
    try:
        _function_probe(text, "void")
    except RouteError as error:
        return error.message, error.offset
    return None


@lru_cache(maxsize=4096)
@on_disk("function_returns", lambda found: found, lambda stored: None if stored is None else tuple(stored),
         sources=_VERDICT_SOURCES)
def _returns_problem(text: str) -> tuple[str, int | None] | None:
    try:
        stmt = _function_probe("", text)
        if any(p.mode != enums.FunctionParameterMode.FUNC_PARAM_TABLE for p in stmt.parameters or ()):
            raise RouteError("not a function result")
    except RouteError as error:
        return error.message, error.offset
    return None


# Procedural languages a function may be written in: trusted ones. C and internal functions run
# native code with the server's rights; untrusted languages (plpython3u...) too.
LANGUAGES: tuple[str, ...] = ("sql", "plpgsql")


def check_language(text: str) -> str:
    return check_keyword(text, LANGUAGES)


def check_operator_class(text: str) -> str:
    """An index element's operator class (``gin_trgm_ops``, ``jsonb_path_ops``, with parameters if any)."""
    _no_control(text)
    if not _is_operator_class(text):
        raise RouteError(f"not an operator class: {text!r}")
    return text


@lru_cache(maxsize=4096)
@on_disk("operator_class", bool, bool, sources=_VERDICT_SOURCES)
def _is_operator_class(text: str) -> bool:
    try:
        if has_comment(text):
            return False
        statements = statement_nodes(f"CREATE INDEX i ON t (c {text})")
    except SqlSyntaxError:
        return False
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.IndexStmt):
        return False
    stmt = statements[0].stmt
    params: Any = stmt.indexParams or ()
    if len(params) != 1 or stmt.whereClause is not None or stmt.indexIncludingParams:
        return False
    element = params[0]
    return (element.name == "c" and element.expr is None and bool(element.opclass) and element.collation is None
            and int(element.ordering) == 0 and int(element.nulls_ordering) == 0)


def check_exclusion_element(text: str) -> str:
    """One ``expression WITH operator`` of an exclusion constraint (``during WITH &&``)."""
    _no_control(text)
    if not _is_exclusion_element(text):
        raise RouteError(f"not an exclusion element ('expression WITH operator'): {text!r}")
    return text


@lru_cache(maxsize=4096)
@on_disk("exclusion_element", bool, bool, sources=_VERDICT_SOURCES)
def _is_exclusion_element(text: str) -> bool:
    try:
        if has_comment(text):
            return False
        statements = statement_nodes(f"ALTER TABLE t ADD CONSTRAINT c EXCLUDE USING gist ({text})")
    except SqlSyntaxError:
        return False
    if len(statements) != 1 or not isinstance(statements[0].stmt, ast.AlterTableStmt):
        return False
    commands: Any = statements[0].stmt.cmds or ()
    if len(commands) != 1 or not isinstance(commands[0].def_, ast.Constraint):
        return False
    constraint = commands[0].def_
    return (len(constraint.exclusions or ()) == 1 and constraint.where_clause is None
            and not constraint.including and constraint.conname == "c" and not constraint.deferrable)


_COLLATION_PART = r'(?:[a-z_][a-z0-9_$]*|"(?:[^"\x00]|"")+")'
COLLATION_PATTERN = re.compile(rf"^{_COLLATION_PART}(?:\.{_COLLATION_PART})?$")
SETTING_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?$")


def check_collation(text: str) -> str:
    """A collation as the loader writes it: ``"C"``, ``pg_catalog."en_US"`` (already quoted as needed)."""
    if not COLLATION_PATTERN.match(text):
        raise RouteError(f"{text!r} is not a collation name")
    return text


def check_setting_value(text: str) -> str:
    """A configuration value (written as a literal): one line, no control character."""
    found = re.search(r"[\x00-\x1f\x7f\u2028\u2029]", text)
    if found:
        raise RouteError(f"control character or line break {found.group()!r} in a setting's value", found.start())
    return text


def check_setting_name(text: str) -> str:
    if not SETTING_PATTERN.match(text):
        raise RouteError(f"{text!r} is not a configuration parameter name")
    return text


def check_function_body(text: str) -> str:
    """Any text (a body is code the YAML declares on purpose), except NUL, which no SQL string may hold."""
    _no_control(text)
    return text


def _no_control(text: str) -> None:
    if "\x00" in text:
        raise RouteError("NUL character in SQL text", text.index("\x00"))


# -- what runs at apply time ------------------------------------------------------------------------
# Volatile functions a column default may call: value generators (volatility.VALUE_GENERATORS).
# A default is evaluated for every existing row when its column is added, with the rights of whoever
# applies the migration, so any other volatile call (pg_terminate_backend, set_config, dblink_exec,
# lo_import...) is refused.
VOLATILE_DEFAULT_FUNCTIONS: frozenset[str] = VALUE_GENERATORS


def refused_calls(text: str, schema: Schema | None = None, *, default: bool = False, query: bool = False
                  ) -> list[str]:
    """Volatile functions an expression (``query``: a view query) calls that it may not, sorted.

    Expressions evaluated row by row when a migration runs (CHECK, index expressions and
    predicates, generated columns, trigger conditions, materialized view queries) may not call a
    VOLATILE function; a column default may, when it is a value generator
    (:data:`VOLATILE_DEFAULT_FUNCTIONS`). The schema's own functions count as declared; any other
    function the built-in table does not know counts as volatile.
    """
    facts = offline_facts()
    return sorted(name for name in _called(text, query)
                  if facts.of(name, schema) == "volatile" and not (default and name in VOLATILE_DEFAULT_FUNCTIONS))


@lru_cache(maxsize=65536)
def _called(text: str, query: bool) -> frozenset[str]:
    if not query:  # parse_sql's answer is kept in the disk cache; empty when the text does not parse
        return parse_sql(text).functions
    return _query_calls(text)


@on_disk("query_calls", lambda found: found, frozenset, sources=_VERDICT_SOURCES)
def _query_calls(text: str) -> frozenset[str]:
    try:
        return called_functions(query_node(text))
    except SqlSyntaxError:
        return frozenset()  # refused on its own route


# -- the renderer's side: SQL text enters a statement only through these -------------------------
class UnsafeSqlError(VezaSchemaError):
    """A model text that is not what its field declares reached the renderer (exit 2).

    The loader refuses such YAML first; this catches the other sources of a model (a hand-edited
    ``veza.snapshot.json``, a model built in code) before their text becomes a statement.
    """


def _emit(check: Any, text: str, what: str) -> Sql:
    try:
        return Sql(check(text))
    except RouteError as error:
        raise UnsafeSqlError(f"refusing to write SQL for {what}: {error} ({text[:80]!r})") from None


def sql_expression(text: str, what: str) -> Sql:
    """An expression for a parenthesized or ``a_expr`` context (CHECK, WHERE, WHEN, SET DEFAULT...)."""
    return _emit(check_expression, text, what)


def sql_default(text: str, what: str) -> Sql:
    """A default after ``DEFAULT`` in a column definition."""
    return _emit(check_default, text, what)


def sql_query(text: str, what: str) -> Sql:
    return _emit(check_query, text, what)


def sql_type(canonical: str, what: str) -> Sql:
    """A model type (``format_type`` spelling) as written in DDL: ``character varying(255)`` -> ``varchar(255)``."""
    spelling = _type_spelling(canonical)
    if spelling is None:
        raise UnsafeSqlError(f"refusing to write SQL for {what}: not a type ({canonical[:80]!r})")
    return Sql(spelling)


def sql_arguments(text: str, what: str) -> Sql:
    return _emit(check_function_arguments, text, what)


def sql_returns(text: str, what: str) -> Sql:
    return _emit(check_function_returns, text, what)


def sql_language(text: str, what: str) -> Sql:
    """A language name (any identifier here: a live database may hold C functions the YAML may not declare)."""
    return _emit(check_identifier, text, what)


def sql_operator_class(text: str, what: str) -> Sql:
    return _emit(check_operator_class, text, what)


def sql_exclusion_element(text: str, what: str) -> Sql:
    return _emit(check_exclusion_element, text, what)


def sql_collation(text: str, what: str) -> Sql:
    return _emit(check_collation, text, what)


def sql_setting_name(text: str, what: str) -> Sql:
    return _emit(check_setting_name, text, what)
