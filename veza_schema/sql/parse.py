"""SQL texts parsed by PostgreSQL's own grammar (pglast wraps libpg_query), once per distinct text.

Why PostgreSQL's parser: a YAML field that is SQL (a default, a check, a predicate, a view
query) must be exactly what it claims, one expression or one SELECT, and only the server's
grammar can say so without guessing. Why one module with a cache: lint rules, the change
policy, the planner and the loader ask questions of the same texts; an LRU cache keyed by
the text means 10,000 tables with ``deleted_at IS NULL`` cost one parse, and every consumer
gets the same answer.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from veza_schema.sql.parse_cache import on_disk


class _Lazy:
    """A pglast module imported on first use: a run whose answers all come from the disk cache
    (:mod:`veza_schema.sql.parse_cache`) never pays pglast's import."""

    def __init__(self, global_name: str, module: str) -> None:
        self._global_name = global_name
        self._module = module

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module(self._module)
        globals()[self._global_name] = module  # later lookups here skip this proxy
        value = getattr(module, name)
        setattr(self, name, value)  # and in the modules that imported the proxy itself (``from ... import ast``)
        return value


# pglast types every node field as Optional; this module checks each shape it relies on itself.
pglast: Any = _Lazy("pglast", "pglast")
ast: Any = _Lazy("ast", "pglast.ast")
_enums: Any = _Lazy("_enums", "pglast.enums")
_parser: Any = _Lazy("_parser", "pglast.parser")
enums: Any = _Lazy("enums", "pglast.enums")  # for readers of whole scripts (migrations.verify)

# An expression is parsed as the single target of this SELECT; the newline keeps a trailing
# ``--`` comment from swallowing the closing parenthesis.
_EXPRESSION_PREFIX = "SELECT ("
_EXPRESSION_SUFFIX = "\n)"

# Every clause a SELECT may carry besides its targets: an expression's SELECT has none.
_SELECT_CLAUSES = ("distinctClause", "intoClause", "fromClause", "whereClause", "groupClause", "havingClause",
                   "windowClause", "valuesLists", "sortClause", "limitOffset", "limitCount", "lockingClause",
                   "withClause", "larg", "rarg")


class SqlSyntaxError(ValueError):
    """A text that is not the SQL its field requires; ``offset`` is 0-based in that text, when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.message = message
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at character {offset + 1})")


def _parse(text: str, shift: int = 0) -> tuple[Any, ...]:
    try:
        return tuple(pglast.parse_sql(str(text)))  # exactly str: the C extension refuses subclasses
    except _parser.ParseError as error:
        message = str(error.args[0]) if error.args else "syntax error"
        location = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
        offset = None if location is None else max(0, min(location - shift, len(text) - shift))
        raise SqlSyntaxError(message, offset) from None


def script_statements(script: str) -> tuple[Any, ...]:
    """The statement nodes of a whole script (a migration file), in order; not cached (files are large).

    Raises:
        SqlSyntaxError: the script does not parse.
    """
    return tuple(raw.stmt for raw in _parse(script))


@lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[Any, ...]:
    """PostgreSQL's own lexical tokens of ``text`` (comments included), as the server will read them.

    Raises:
        SqlSyntaxError: an unterminated quote, dollar quote or comment.
    """
    return _scan(text)


def _scan(text: str) -> tuple[Any, ...]:
    try:
        return tuple(_parser.scan(str(text)))  # exactly str: the C extension refuses subclasses
    except _parser.ParseError as error:
        message = str(error.args[0]) if error.args else "syntax error"
        location = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
        raise SqlSyntaxError(message, location) from None


def ends_in_line_comment(text: str) -> bool:
    """True when a ``--`` comment runs to the end of ``text``: it would swallow the SQL written after it.

    Without ``--`` anywhere there is no such comment; the tokens of every expression are not
    kept either (asked once per text: at 10,000 tables they held ~10 MB for nothing)."""
    if "--" not in text:
        return False
    found = _scan(text)
    if not found or found[-1].name != "SQL_COMMENT":
        return False
    rest = text[found[-1].end + 1:]
    return "\n" not in rest and "\r" not in rest


def has_comment(text: str) -> bool:
    """Whether ``text`` holds a SQL comment (``--`` or ``/* */``) outside its strings."""
    return any(token.name in ("SQL_COMMENT", "C_COMMENT") for token in tokens(text))


def statement_nodes(text: str) -> tuple[Any, ...]:
    """The parse trees of every statement of ``text`` (``RawStmt`` nodes, with their locations).

    Raises:
        SqlSyntaxError: the text does not parse.
    """
    return _parse(text)


@lru_cache(maxsize=65536)
def expression_node(text: str) -> Any:
    """The parse tree of exactly one SQL expression (no second statement, no clause around it).

    A ``--`` comment may not end it (it would swallow what the SQL around it writes next) and it
    may not hold a data-modifying ``WITH`` (a subquery that deletes rows is not a value).

    Raises:
        SqlSyntaxError: anything else, with the position of the problem when PostgreSQL gives one.
    """
    if not text.strip():
        raise SqlSyntaxError("empty expression")
    statements = _parse(_EXPRESSION_PREFIX + text + _EXPRESSION_SUFFIX, len(_EXPRESSION_PREFIX))
    if len(statements) != 1:
        raise SqlSyntaxError("not a single expression: it closes the expression and adds statements")
    select = statements[0].stmt
    if not isinstance(select, ast.SelectStmt) or any(getattr(select, c) for c in _SELECT_CLAUSES) \
            or len(select.targetList or ()) != 1 or select.targetList[0].name is not None:
        raise SqlSyntaxError("not a single expression: it closes the expression and adds clauses")
    if ends_in_line_comment(text):
        raise SqlSyntaxError("a -- comment ends the expression: it would swallow the SQL written after it "
                             "(use /* */ or a YAML # comment)")
    tree = select.targetList[0].val
    if isinstance(tree, ast.RowExpr) and tree.row_format == _enums.CoercionForm.COERCE_IMPLICIT_CAST \
            and not wrapped_whole(text):  # `a, b`: a list only our own parentheses made one value
        raise SqlSyntaxError("not a single expression: a comma-separated list")
    refuse_data_modifying(tree, "an expression", text)
    return tree


@lru_cache(maxsize=65536)
@on_disk("expression_problem", lambda found: found, lambda stored: None if stored is None else tuple(stored))
def expression_problem(text: str) -> tuple[str, int | None] | None:
    """Why ``text`` is not exactly one expression, as (message, offset); None when it is.

    :func:`expression_node`'s verdict without its tree, so a check kept in the disk cache
    costs no parse on the next run.
    """
    try:
        expression_node(text)
    except SqlSyntaxError as error:
        return error.message, error.offset
    return None


def require_expression(text: str) -> None:
    """Raise what :func:`expression_node` raises, answered from the cache when it can be.

    Raises:
        SqlSyntaxError: ``text`` is not exactly one expression.
    """
    problem = expression_problem(text)
    if problem is not None:
        raise SqlSyntaxError(*problem)


def refuse_data_modifying(tree: Any, what: str, text: str | None = None) -> None:
    """Raise when a parse tree holds a ``WITH`` whose query inserts, updates or deletes rows.

    ``text``: the SQL the tree was parsed from, when known; a ``WITH`` is a keyword, spelt in
    ASCII letters in any case, so a text without those four letters in a row holds none
    (most expressions: their trees are not walked)."""
    if text is not None and "with" not in text.lower():
        return
    for node in walk(tree):
        if isinstance(node, ast.CommonTableExpr) and not isinstance(node.ctequery, ast.SelectStmt):
            raise SqlSyntaxError(f"{what} cannot hold a data-modifying WITH clause ({node.ctename})")


@lru_cache(maxsize=4096)
def query_node(text: str) -> Any:
    """The parse tree of exactly one SELECT (a view query): no other statement, no data-modifying CTE.

    Raises:
        SqlSyntaxError: anything else.
    """
    statements = _parse(text)
    if len(statements) != 1:
        raise SqlSyntaxError(f"a view query is one SELECT statement, found {len(statements)} statements")
    select = statements[0].stmt
    if not isinstance(select, ast.SelectStmt):
        raise SqlSyntaxError(f"a view query is a SELECT, found {type(select).__name__}")
    if select.intoClause is not None:
        raise SqlSyntaxError("a view query cannot be SELECT INTO (it would create a table)")
    if ends_in_line_comment(text):
        raise SqlSyntaxError("a -- comment ends the query: it would swallow the SQL written after it "
                             "(use /* */ or end the query with a line break)")
    refuse_data_modifying(select, "a view query", text)
    return select


def walk(node: Any) -> Iterator[Any]:
    """Every AST node under ``node`` (itself included), depth first."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, tuple | list):
            stack.extend(reversed(current))
            continue
        if not isinstance(current, ast.Node):
            continue
        yield current
        for name in getattr(type(current), "__slots__", ()):
            value = getattr(current, name, None)
            if isinstance(value, ast.Node | tuple | list):
                stack.append(value)


def called_functions(tree: Any) -> frozenset[str]:
    """Bare names of the functions a parse tree calls, SQL value functions (``CURRENT_TIMESTAMP``) included."""
    found: set[str] = set()
    for node in walk(tree):
        if isinstance(node, ast.FuncCall):
            found.add(function_name(node))
        elif isinstance(node, ast.SQLValueFunction):
            found.add(_value_function(node))
    return frozenset(found)


_OPEN, _CLOSE = "ASCII_40", "ASCII_41"  # the scanner's names for ( and )


def wrapped_whole(text: str) -> bool:
    """True for ``(a + b)``, false for ``(a) + (b)``: the first parenthesis closes at the very end.

    Read on PostgreSQL's own tokens, so parentheses inside strings, quoted names, dollar quotes
    and comments never count.
    """
    try:
        found = [t for t in tokens(text.strip()) if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    except SqlSyntaxError:
        return False
    if len(found) < 2 or found[0].name != _OPEN or found[-1].name != _CLOSE:
        return False
    depth = 0
    for position, token in enumerate(found):
        if token.name == _OPEN:
            depth += 1
        elif token.name == _CLOSE:
            depth -= 1
            if depth == 0 and position != len(found) - 1:
                return False
    return depth == 0


def _name(parts: Any) -> str:
    return ".".join(getattr(part, "sval", "*") for part in parts or ())


def function_name(node: Any) -> str:
    """``public.uuid_generate_v4`` -> ``uuid_generate_v4``: the bare name PostgreSQL resolves."""
    return _name(node.funcname).rsplit(".", 1)[-1]


def _value_function(node: Any) -> str:
    """``CURRENT_TIMESTAMP`` and friends are keywords, not calls; named as PostgreSQL spells them."""
    name = _enums.SQLValueFunctionOp(node.op).name.removeprefix("SVFOP_").lower()
    return name.removesuffix("_n")


@dataclass(frozen=True, slots=True)
class ParsedSql:
    """What consumers need from one SQL expression text; ``error`` is set when it is not one."""

    error: str | None
    columns: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    subqueries: bool = False


@lru_cache(maxsize=65536)
@on_disk("parse_sql", lambda p: (p.error, p.columns, p.functions, p.subqueries), lambda t: ParsedSql(*t))
def parse_sql(text: str) -> ParsedSql:
    """Columns one expression references (last name part) and functions it calls (bare names)."""
    try:
        tree = expression_node(text)
    except SqlSyntaxError as error:
        return ParsedSql(error=str(error)[:200])
    columns: set[str] = set()
    functions: set[str] = set()
    subqueries = False
    node: Any
    for node in walk(tree):
        if isinstance(node, ast.ColumnRef):
            last = node.fields[-1] if node.fields else None
            if isinstance(last, ast.String):
                columns.add(last.sval)
        elif isinstance(node, ast.FuncCall):
            functions.add(function_name(node))
        elif isinstance(node, ast.SQLValueFunction):
            functions.add(_value_function(node))
        elif isinstance(node, ast.SubLink):
            subqueries = True
    return ParsedSql(None, frozenset(columns), frozenset(functions), subqueries)


@lru_cache(maxsize=4096)
@on_disk("not_null_columns", lambda found: found, lambda stored: stored)
def not_null_columns(predicate: str) -> frozenset[str] | None:
    """``a IS NOT NULL [AND b IS NOT NULL ...]`` -> ``{a, b}``; any other predicate -> None."""
    try:
        tree: Any = expression_node(predicate)
    except SqlSyntaxError:
        return None
    conjuncts = tree.args if isinstance(tree, ast.BoolExpr) and tree.boolop == _enums.BoolExprType.AND_EXPR else (tree,)
    found: set[str] = set()
    conjunct: Any
    for conjunct in conjuncts:
        if not (isinstance(conjunct, ast.NullTest) and conjunct.nulltesttype == _enums.NullTestType.IS_NOT_NULL
                and isinstance(conjunct.arg, ast.ColumnRef) and len(conjunct.arg.fields) == 1
                and isinstance(conjunct.arg.fields[0], ast.String)):
            return None
        found.add(conjunct.arg.fields[0].sval)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class ViewFilters:
    """Columns a view query filters on (WHERE), resolved to their tables where possible."""

    error: str | None
    # (table or None when unqualified and unresolved, column)
    refs: frozenset[tuple[str | None, str]] = frozenset()
    tables: frozenset[str] = frozenset()


@lru_cache(maxsize=4096)
@on_disk("view_filters", lambda v: (v.error, v.refs, v.tables), lambda t: ViewFilters(*t))
def view_filters(query: str) -> ViewFilters:
    """Parse a view query and collect the column references inside its WHERE clauses."""
    try:
        select = query_node(query)
    except SqlSyntaxError as error:
        return ViewFilters(error=str(error)[:200])
    aliases: dict[str, str] = {}
    wheres: list[Any] = []
    node: Any
    for node in walk(select):
        if isinstance(node, ast.RangeVar):
            name = node.relname
            aliases[node.alias.aliasname if node.alias else name] = name
            aliases.setdefault(name, name)
        elif isinstance(node, ast.SelectStmt) and node.whereClause is not None:
            wheres.append(node.whereClause)
    refs: set[tuple[str | None, str]] = set()
    for where in wheres:
        for node in walk(where):
            if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
                names = [getattr(f, "sval", "*") for f in node.fields]
                qualifier = names[-2] if len(names) > 1 else None
                refs.add((aliases.get(qualifier, qualifier) if qualifier else None, names[-1]))
    return ViewFilters(error=None, refs=frozenset(refs), tables=frozenset(aliases.values()))


def view_output_columns(query: str) -> tuple[str, ...] | None:
    """The column names a view query yields, as PostgreSQL names them; None when a ``*`` or an
    unparsable query leaves them unknown (the differ then recreates the view instead of replacing it)."""
    try:
        select = query_node(query)
    except SqlSyntaxError:
        return None
    while select.op is not None and select.op != pglast.enums.SetOperation.SETOP_NONE and select.larg is not None:
        select = select.larg
    names: list[str] = []
    for target in select.targetList or ():
        if target.name is not None:
            names.append(target.name)
            continue
        name = _figure_column_name(target.val)
        if name is None:
            return None
        names.append(name)
    return tuple(names)


def _figure_column_name(node: Any) -> str | None:
    """PostgreSQL's FigureColname for the common cases; None for ``*``."""
    if isinstance(node, ast.ColumnRef):
        last = node.fields[-1]
        return None if isinstance(last, ast.A_Star) else last.sval
    if isinstance(node, ast.TypeCast):
        inner = _figure_column_name(node.arg)
        if inner is not None and inner != "?column?":
            return inner
        return node.typeName.names[-1].sval if node.typeName and node.typeName.names else "?column?"
    if isinstance(node, ast.FuncCall):
        return function_name(node)
    if isinstance(node, ast.CoalesceExpr):
        return "coalesce"
    if isinstance(node, ast.SubLink) and node.subselect is not None:
        return "exists" if node.subLinkType == pglast.enums.SubLinkType.EXISTS_SUBLINK else "?column?"
    return "?column?"
