"""Split a SQL file into statements, keeping each statement's first line number.

Needed because PostgreSQL runs a multi-statement string as one implicit transaction
(so ``CREATE INDEX CONCURRENTLY`` could never run), and because a failure should name
the line of the statement that failed.

Why PostgreSQL's own splitter (libpg_query, through pglast): where one statement ends is
a security boundary (``apply`` checks each statement of a file before running it) and only
the server's lexer and grammar agree with the server on quotes, dollar quotes, nested comments,
``E''`` escapes and ``BEGIN ATOMIC`` bodies. It is also about eight times faster than the
scanner this module used to be. A file that does not parse is split by PostgreSQL's scanner
at the semicolons PostgreSQL's lexer sees, so the server still reports the faulty statement
with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from veza_schema.sql.parse import SqlSyntaxError, statement_nodes
from veza_schema.sql.parse_cache import on_disk

# pglast is imported by the functions that split or parse: ``apply`` with a warm disk cache
# (:func:`parse_script`) never loads it.


@dataclass(frozen=True)
class Statement:
    text: str
    line: int  # 1-based line of the statement's first non-blank character


def split_statements(sql: str) -> list[Statement]:
    return list(_split(str(sql)))


@lru_cache(maxsize=32)
def _split(sql: str) -> tuple[Statement, ...]:
    return tuple(Statement(sql[start:stop], line) for start, stop, line in _spans(sql))


Span = tuple[int, int, int]  # a statement's text is sql[start:stop]; its first line


def _spans(sql: str) -> tuple[Span, ...]:
    from pglast.parser import ParseError
    from pglast.parser import split as pg_split

    try:
        slices = pg_split(sql, only_slices=True)
    except ParseError:
        slices = _at_semicolons(sql)
    spans = []
    line, counted = 1, 0
    for part in slices:
        start = _skip_comments(sql, part.start, part.stop)
        text = sql[start:part.stop]
        stripped = text.lstrip()
        if stripped:
            start += len(text) - len(stripped)
            line += sql.count("\n", counted, start)
            counted = start
            spans.append((start, start + len(stripped.rstrip()), line))
    return tuple(spans)


def _at_semicolons(sql: str) -> tuple[slice, ...]:
    """A file that does not parse, cut at each ``;`` PostgreSQL's lexer sees (as psql does).

    libpg_query's own scanner-based splitter is not used: it drops a statement that starts with
    an unknown word, so a typo would silently not run while the statements after it do.
    """
    from pglast.parser import ParseError
    from pglast.parser import scan as pg_scan

    try:
        tokens = pg_scan(sql)
    except ParseError as error:  # an unterminated quote or comment runs to the end, for the server to refuse
        where = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else 0
        if not 0 < where <= len(sql):
            return (slice(0, len(sql)),)
        before = _at_semicolons(sql[:where])
        return (*before[:-1], slice(before[-1].start, len(sql)))
    cuts: list[slice] = []
    start = 0
    for token in tokens:
        if token.name == "ASCII_59":  # ;
            cuts.append(slice(start, token.start))
            start = token.end + 1
    cuts.append(slice(start, len(sql)))
    return tuple(cuts)


def _skip_comments(sql: str, start: int, stop: int) -> int:
    """The first position at or after ``start`` that is neither blank nor inside a leading comment."""
    i = start
    while i < stop:
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i, stop)
            i = stop if end == -1 else end + 1
        elif sql.startswith("/*", i):
            depth, i = 1, i + 2  # PostgreSQL's block comments nest
            while i < stop and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        else:
            break
    return i


@dataclass(frozen=True)
class ParsedScript:
    """A file's statements and, when the whole file parses, each statement's parse node type (same order).

    Why node types and not whole parse trees: building pglast's Python nodes for a large file
    (the initial migration: 815 statements) costs ten times what PostgreSQL's parse itself does,
    and most statements (tables, indexes, comments) are judged by their type alone. The type
    comes from the whole file's parse (libpg_query's JSON, decoded in C); a statement's tree is
    built on demand, from that statement's own text (:meth:`tree`).
    """

    statements: tuple[Statement, ...]
    node_types: tuple[str, ...] | None  # "CreateStmt", "AlterTableStmt"... when the whole file parses
    error: str | None = None  # why it does not parse, when it does not

    def tree(self, index: int) -> Any:
        """Statement ``index``'s parse tree (a pglast node); None when its text alone does not parse."""
        return _statement_tree(self.statements[index].text)


@lru_cache(maxsize=32)
def parse_script(sql: str) -> ParsedScript:
    """Split and parse a file once, for every check that reads it (``apply``'s guards, the data-loss count),
    and ``apply``'s runner; a warm disk cache answers without pglast (keyed by the file's bytes)."""
    spans, node_types, error = _layout(str(sql))
    if not _spans_fit(sql, spans):  # a damaged cache entry must never run less, or other, than the file holds
        spans, node_types, error = _fresh_layout(str(sql))
    statements = tuple(Statement(sql[start:stop], line) for start, stop, line in spans)
    if node_types is not None and len(node_types) != len(statements):  # cannot happen with one parser for
        # both; never guess a pairing
        return ParsedScript(statements, None, "the statements and their parse trees differ in number")
    return ParsedScript(statements, node_types, error)


Layout = tuple[tuple[Span, ...], tuple[str, ...] | None, str | None]  # spans, node types, why it does not parse


def _stored_layout(stored: Any) -> Layout:
    """A layout read back from the disk cache, its shape checked (a damaged entry raises ValueError)."""
    spans, node_types, error = stored
    if {type(span) for span in spans} - {tuple} or {len(span) for span in spans} - {3} \
            or {type(number) for span in spans for number in span} - {int} \
            or (node_types is None) == (error is None) or {type(t) for t in node_types or ()} - {str} \
            or not isinstance(error or "", str):
        raise ValueError("not a script layout")
    return tuple(spans), node_types, error


# Each top-level statement of libpg_query's JSON is ``{"stmt":{"<node type>":...``. Inside a JSON string
# every quote is escaped, so ``{"`` never occurs there; a node nesting a member named "stmt" would add
# matches, so the count is checked against the statements and the JSON decoded whole when it differs.
_TOP_LEVEL_NODE = re.compile(r'\{"stmt":\{"(\w+)"')


def _spans_fit(sql: str, spans: tuple[Span, ...]) -> bool:
    """Whether ``spans`` can be the file's statements as :func:`_spans` cuts them: in order, each starting
    on the line it names and ending on no blank, with nothing but blanks, comments and semicolons between."""
    position, line, counted = 0, 1, 0
    for start, stop, first_line in (*spans, (len(sql), len(sql), 0)):
        if not position <= start <= len(sql):
            return False
        while True:  # the gap before this statement
            position = _skip_comments(sql, position, start)
            if position < start and sql[position] == ";":
                position += 1
                continue
            break
        if position != start:
            return False
        if first_line:  # a statement, not the end of the file
            line += sql.count("\n", counted, start)
            counted = start
            if line != first_line or stop <= start or stop > len(sql) or sql[stop - 1].isspace() \
                    or _skip_comments(sql, start, stop) != start:
                return False
        position = stop
    return True


def _fresh_layout(sql: str) -> Layout:
    """A file's statement spans and each statement's parse node type (None and why, when the file does not parse).

    Why node types and not whole parse trees: see :class:`ParsedScript`. They are read off libpg_query's
    JSON (:data:`_TOP_LEVEL_NODE`: decoding all of it cost a hundred times more on the initial migration);
    a file nested deeper than json's decoder goes, in the rare fallback, gets them from pglast's trees.
    """
    from pglast.parser import ParseError, parse_sql_json

    spans = _spans(sql)
    try:
        parsed = parse_sql_json(sql) if spans else ""
        node_types = tuple(_TOP_LEVEL_NODE.findall(parsed))
        if len(node_types) != len(spans):
            node_types = _decoded_node_types(sql, parsed)
    except ParseError as error:
        location = error.args[1] if len(error.args) > 1 and isinstance(error.args[1], int) else None
        message = str(error.args[0]) if error.args else "syntax error"
        offset = None if location is None else max(0, min(location, len(sql)))  # as sql.parse reports it
        return spans, None, str(SqlSyntaxError(message, offset))
    except SqlSyntaxError as error:
        return spans, None, str(error)
    return spans, node_types, None


def _decoded_node_types(sql: str, parsed: str) -> tuple[str, ...]:
    import json

    try:
        return tuple(next(iter(item["stmt"])) for item in json.loads(parsed)["stmts"])
    except RecursionError:  # nested deeper than json's decoder goes
        return tuple(type(raw.stmt).__name__ for raw in statement_nodes(sql))


SOURCE = Path(__file__)  # a cached answer built on this module's cut of a file depends on its code
_layout = on_disk("script_layout", lambda layout: layout, _stored_layout, sources=(SOURCE,))(_fresh_layout)


@lru_cache(maxsize=256)
def _statement_tree(text: str) -> Any:
    try:
        nodes = statement_nodes(text)
    except SqlSyntaxError:
        return None
    return nodes[0].stmt if len(nodes) == 1 else None
