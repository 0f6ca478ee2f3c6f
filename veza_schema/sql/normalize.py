"""Offline comparison of SQL expression texts: YAML spelling vs PostgreSQL's deparsed spelling.

Why: PostgreSQL stores expressions as trees and prints them back in its own words, so
the text a YAML file holds and the text the catalog returns differ even when they mean
the same. Without a shadow database (``diff --offline``), both sides are brought to one
canonical text with sqlglot. The forms seen on the Veza schema (round trip
YAML -> SQL -> PostgreSQL -> introspection) and handled here:

- literal casts: YAML ``'user'``, ``0``, ``'english'``; PostgreSQL ``'user'::user_role``,
  ``0::numeric``, ``'english'::regconfig``, ``'{}'::jsonb``;
- text coercions of varchar columns: ``upc ~ '^[0-9]+$'`` / ``upc::text ~ '^[0-9]+$'::text``;
- IN lists: ``role IN ('editor', 'viewer')`` /
  ``role::text = ANY (ARRAY['editor'::character varying, ...]::text[])``;
  ``x NOT IN (...)`` / ``x <> ALL (ARRAY[...])``;
- intervals: ``interval '10 seconds'`` / ``'00:00:10'::interval`` (PostgreSQL rewrites the text);
- redundant parentheses: ``a || b || c`` / ``(a || b) || c``; the outer ``(...)`` of index
  expressions and CHECK constraints is syntax and is already removed by the introspector;
- operator spelling: ``!=`` / ``<>``, ``LIKE`` / ``~~``;
- function name case: ``LENGTH(x)`` / ``length(x)``; ``now()`` and ``CURRENT_TIMESTAMP`` both
  become ``CURRENT_TIMESTAMP`` (they read the same clock);
- identifier case: ``OLD.*`` / ``old.*``;
- negative numbers: ``-1`` / ``'-1'::integer``;
- ``x BETWEEN a AND b`` / ``x >= a AND x <= b``;
- keywords used as names: ``position >= 0`` / ``"position" >= 0`` (lowercase quoted names
  are unquoted; names with capitals keep their quotes, their case matters).

- view queries: implicit numeric promotions ``count(x) * 0.4`` /
  ``count(x)::numeric * 0.4``; ``ORDER BY alias`` / ``ORDER BY <its expression>``;
  ``SELECT id FROM tracks`` / ``SELECT tracks.id FROM tracks`` (PostgreSQL 15, and any
  version inside a subquery of a query reading several tables).

The result is only for comparison (it is not meant to be run): casts of literals, casts
to text types and casts to unparameterized numeric types are dropped on both sides, so
``x::varchar`` and ``x`` compare equal. Other casts (``created_at::date``,
``price::numeric(10,2)``) are kept. Texts sqlglot cannot parse fall
back to whitespace normalization.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from veza_schema.model import Schema

_TEXT_TYPES = frozenset({
    exp.DataType.Type.TEXT,
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.CHAR,
    exp.DataType.Type.NCHAR,
    exp.DataType.Type.NVARCHAR,
    exp.DataType.Type.NAME,
})
_IMPLICIT_NUMERIC_TYPES = frozenset({
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT,
})
_MAX_PASSES = 20
_PLAIN_IDENTIFIER_RE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")

# Interval units -> (months, days, microseconds) per unit.
_INTERVAL_UNITS: dict[str, tuple[int, int, int]] = {}
for _names, _value in (
    (("microsecond", "microseconds", "us", "usec", "usecs"), (0, 0, 1)),
    (("millisecond", "milliseconds", "ms", "msec", "msecs"), (0, 0, 1_000)),
    (("second", "seconds", "s", "sec", "secs"), (0, 0, 1_000_000)),
    (("minute", "minutes", "m", "min", "mins"), (0, 0, 60_000_000)),
    (("hour", "hours", "h", "hr", "hrs"), (0, 0, 3_600_000_000)),
    (("day", "days", "d"), (0, 1, 0)),
    (("week", "weeks", "w"), (0, 7, 0)),
    (("month", "months", "mon", "mons"), (1, 0, 0)),
    (("year", "years", "y", "yr", "yrs"), (12, 0, 0)),
    (("decade", "decades"), (120, 0, 0)),
    (("century", "centuries"), (1200, 0, 0)),
):
    for _name in _names:
        _INTERVAL_UNITS[_name] = _value
_INTERVAL_TOKEN_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*([a-z]+)|([+-]?\d+:\d{2}(?::\d{2}(?:\.\d+)?)?)")


def normalize_expression(text: str) -> str:
    """A canonical text for ``text``: equal results mean PostgreSQL reads the same expression.

    >>> normalize_expression("'user'::user_role") == normalize_expression("'user'")
    True
    >>> a, b = "(title::text || ' '::text) || label", "title || ' ' || label"
    >>> normalize_expression(a) == normalize_expression(b)
    True
    """
    return _normalize_cached(text)


@lru_cache(maxsize=4096)
def _normalize_cached(text: str) -> str:
    try:
        tree = sqlglot.parse_one(text, read="postgres")
    except SqlglotError:
        return " ".join(text.split())
    if tree is None:
        return " ".join(text.split())
    # transform() does not revisit what it replaced: repeat until nothing changes.
    previous = None
    current = tree.sql(dialect="postgres")
    for _ in range(_MAX_PASSES):
        if current == previous:
            break
        tree = tree.transform(_unwrap_parens).transform(_rewrite)
        previous, current = current, tree.sql(dialect="postgres")
    for select in list(tree.find_all(exp.Select)):
        _canonical_select(select)
    return tree.transform(_parenthesize).sql(dialect="postgres")


def _canonical_select(select: exp.Select) -> None:
    """Undo two rewrites PostgreSQL applies to stored queries, in place.

    ``ORDER BY alias`` becomes ``ORDER BY <the aliased expression>`` (in ORDER BY a bare
    name means the output column first, so the expansion is exact); and columns of a
    SELECT reading a single table lose their ``table.`` prefix, which PostgreSQL adds or
    omits depending on its version and on the other relations of the whole query.
    """
    aliases = {
        projection.alias: projection.this
        for projection in select.expressions
        if isinstance(projection, exp.Alias) and projection.alias
    }
    order = select.args.get("order")
    if order is not None:
        for ordered in order.expressions:
            key = ordered.this
            if isinstance(key, exp.Column) and not key.table and key.name in aliases:
                ordered.set("this", aliases[key.name].copy())
    source = select.args.get("from_") or select.args.get("from")
    if source is None or select.args.get("joins") or not isinstance(source.this, exp.Table):
        return
    table = source.this
    qualifier = table.alias_or_name
    for node in select.walk(prune=lambda n: n is not select and isinstance(n, (exp.Select, exp.Subquery))):
        if isinstance(node, exp.Column) and node.table == qualifier and not node.args.get("db"):
            node.set("table", None)


def _unwrap_parens(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Paren) and not isinstance(node.this, (exp.Select, exp.Union)):
        return node.this.copy()
    return node


def _is_literal_like(node: exp.Expression) -> bool:
    if isinstance(node, (exp.Literal, exp.Null, exp.Boolean)):
        return True
    if isinstance(node, exp.Neg):
        return _is_literal_like(node.this)
    if isinstance(node, exp.Array):
        return all(_is_literal_like(item) for item in node.expressions)
    return False


def _is_implicit_numeric(data_type: exp.DataType) -> bool:
    """Targets of PostgreSQL's implicit numeric promotions (``count(*)::numeric * 0.4``)."""
    return data_type.this in _IMPLICIT_NUMERIC_TYPES and not data_type.expressions


def _is_text_type(data_type: exp.DataType) -> bool:
    if data_type.this == exp.DataType.Type.ARRAY and data_type.expressions:
        inner = data_type.expressions[0]
        return isinstance(inner, exp.DataType) and _is_text_type(inner)
    return data_type.this in _TEXT_TYPES


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Cast):
        return _rewrite_cast(node)
    if isinstance(node, exp.Interval):
        return _interval(node.this.name + (" " + node.unit.name if node.unit else ""), node)
    if isinstance(node, (exp.EQ, exp.NEQ)) and _quantifier(node.expression) is not None:
        return _rewrite_quantified(node)
    if isinstance(node, exp.Between) and not node.args.get("symmetric"):
        # PostgreSQL stores BETWEEN as two comparisons.
        return exp.And(
            this=exp.GTE(this=node.this.copy(), expression=node.args["low"].copy()),
            expression=exp.LTE(this=node.this.copy(), expression=node.args["high"].copy()),
        )
    # In place (transform works on a copy): returning the same node lets its children be visited.
    if isinstance(node, exp.Identifier) and node.quoted and _PLAIN_IDENTIFIER_RE.match(node.name):
        node.set("quoted", False)  # PostgreSQL quotes keywords it need not: "position"
    if isinstance(node, (exp.Identifier, exp.Anonymous)) and not node.args.get("quoted"):
        node.set("this", node.name.lower())
    return node


def _rewrite_cast(node: exp.Cast) -> exp.Expression:
    operand, target = node.this, node.to
    while isinstance(operand, exp.Paren):
        operand = operand.this
    if target.this == exp.DataType.Type.INTERVAL and isinstance(operand, exp.Literal) and operand.is_string:
        return _interval(operand.name, node)
    if isinstance(operand, exp.Literal) and operand.is_string and _NUMBER_RE.match(operand.name) and \
            target.is_type(*exp.DataType.NUMERIC_TYPES):
        number = exp.Literal.number(operand.name.lstrip("-"))
        return exp.Neg(this=number) if operand.name.startswith("-") else number
    if _is_literal_like(operand) or _is_text_type(target) or _is_implicit_numeric(target):
        return operand.copy()
    return node


def _quantifier(node: exp.Expression) -> tuple[str, exp.Expression] | None:
    """``ANY (x)`` / ``ALL (x)`` -> ("any" | "all", x); sqlglot reads ALL as a plain function."""
    if isinstance(node, exp.Any):
        return "any", node.this
    if isinstance(node, exp.All):
        return "all", node.this
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("any", "all") and len(node.expressions) == 1:
        return node.name.lower(), node.expressions[0]
    return None


def _rewrite_quantified(node: exp.EQ | exp.NEQ) -> exp.Expression:
    found = _quantifier(node.expression)
    assert found is not None
    kind, array = found
    while isinstance(array, (exp.Paren, exp.Cast)) and (
        isinstance(array, exp.Paren) or _is_text_type(array.to)
    ):
        array = array.this
    if not isinstance(array, exp.Array):
        return node
    items = [item.copy() for item in array.expressions]
    if isinstance(node, exp.EQ) and kind == "any":
        return exp.In(this=node.this.copy(), expressions=items)
    if isinstance(node, exp.NEQ) and kind == "all":
        return exp.Not(this=exp.In(this=node.this.copy(), expressions=items))
    return node


def _interval(text: str, original: exp.Expression) -> exp.Expression:
    """An interval literal in PostgreSQL's output style (``30 days``, ``00:00:10``)."""
    parsed = _parse_interval(text)
    if parsed is None:
        return original
    months, days, micros = parsed
    parts: list[str] = []
    years, months = divmod(months, 12)
    if years:
        parts.append(f"{years} year" + ("s" if years != 1 else ""))
    if months:
        parts.append(f"{months} mon" + ("s" if months != 1 else ""))
    if days:
        parts.append(f"{days} day" + ("s" if days != 1 else ""))
    if micros or not parts:
        sign = "-" if micros < 0 else ""
        seconds, fraction = divmod(abs(micros), 1_000_000)
        hours, rest = divmod(seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        clock = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
        if fraction:
            clock += f".{fraction:06d}".rstrip("0")
        parts.append(clock)
    return exp.Interval(this=exp.Literal.string(" ".join(parts)))


def _parse_interval(text: str) -> tuple[int, int, int] | None:
    cleaned = text.strip().lower().lstrip("@").strip()
    if not cleaned:
        return None
    months = days = micros = 0
    position = 0
    for match in _INTERVAL_TOKEN_RE.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            return None
        position = match.end()
        if match.group(3):
            sign = -1 if match.group(3).startswith("-") else 1
            pieces = match.group(3).lstrip("+-").split(":")
            hours, minutes = int(pieces[0]), int(pieces[1])
            seconds = float(pieces[2]) if len(pieces) > 2 else 0.0
            micros += sign * round((hours * 3600 + minutes * 60 + seconds) * 1_000_000)
            continue
        unit = _INTERVAL_UNITS.get(match.group(2))
        if unit is None:
            return None
        amount = float(match.group(1))
        months += round(amount * unit[0])
        days += round(amount * unit[1])
        micros += round(amount * unit[2])
    if cleaned[position:].strip():
        return None
    return months, days, micros


_GROUPING = (exp.Binary, exp.Not, exp.Predicate, exp.Connector, exp.Neg)


def _parenthesize(node: exp.Expression) -> exp.Expression:
    """Parenthesize every operator operand that is itself an operator: one text per tree."""
    if isinstance(node, (exp.Binary, exp.Not, exp.Neg)):
        # In place, so transform() goes on into the children.
        for key in ("this", "expression"):
            child = node.args.get(key)
            if isinstance(child, _GROUPING) and not isinstance(child, exp.Paren):
                node.set(key, exp.Paren(this=child))
    return node


# ----------------------------------------------------------------------------- whole schemas

def normalize_schema(schema: Schema, normalize: Callable[[str], str] = normalize_expression) -> Schema:
    """The schema with every SQL expression field normalized, for an offline comparison.

    Covers column defaults and generated expressions, CHECK expressions, index expression
    elements and predicates (on tables and materialized views), trigger WHEN clauses and
    view queries. Names, types and function bodies are left alone.
    """

    def opt(text: str | None) -> str | None:
        return None if text is None else normalize(text)

    def indexes(found: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: dataclasses.replace(
                index,
                where=opt(index.where),
                elements=tuple(
                    element if element.is_column else dataclasses.replace(element, expression=normalize(
                        element.expression))
                    for element in index.elements
                ),
            )
            for name, index in found.items()
        }

    tables = {
        name: dataclasses.replace(
            table,
            columns=tuple(
                dataclasses.replace(column, default=opt(column.default), generated=opt(column.generated))
                for column in table.columns
            ),
            checks={
                key: dataclasses.replace(check, expression=normalize(check.expression))
                for key, check in table.checks.items()
            },
            indexes=indexes(table.indexes),
            triggers={
                key: dataclasses.replace(trigger, when=opt(trigger.when))
                for key, trigger in table.triggers.items()
            },
        )
        for name, table in schema.tables.items()
    }
    views = {
        name: dataclasses.replace(view, query=normalize(view.query), indexes=indexes(view.indexes))
        for name, view in schema.views.items()
    }
    return dataclasses.replace(schema, tables=tables, views=views)
