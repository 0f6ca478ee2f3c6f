"""Quoting, decided in one place: every piece of SQL we write from data passes through here.

Names go through :func:`ident` (quoted exactly when PostgreSQL needs it), values through
:func:`literal` (psycopg's escaping), function bodies through :func:`dollar_quote`, free text in
SQL comments through :func:`comment_line`, keyword-like values through :func:`keyword` (a closed
set). Each returns :class:`Sql`, and statements are put together with :func:`compose`, which
accepts nothing else: a plain string reaching a statement is a bug that fails loudly. Which YAML
field takes which route (and which SQL fields are parsed first) is decided in
:mod:`veza_schema.sql.routes`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


class Sql(str):
    """SQL text made by the quoting route (or composed only of such pieces).

    A ``str`` subclass so it prints and compares as text; concatenating it with a plain ``str``
    gives a plain ``str``, which :func:`compose` and the templates refuse.
    """

    __slots__ = ()


def compose(template: str, *parts: Sql | int) -> Sql:
    """``template`` (our own SQL words, ``{}`` placeholders) with each placeholder filled by a :class:`Sql` piece.

    Raises:
        TypeError: a part that did not come through the quoting route (a raw string).
    """
    for part in parts:
        if not isinstance(part, Sql | int) or isinstance(part, bool):
            raise TypeError(f"refusing to put {part!r} into SQL: it did not come through the quoting route")
    return Sql(template.format(*parts))


def join(parts: Iterable[Sql], separator: str = ", ") -> Sql:
    """``a, b, c`` from :class:`Sql` pieces (``separator`` is our own punctuation)."""
    items = list(parts)
    for part in items:
        if not isinstance(part, Sql):
            raise TypeError(f"refusing to put {part!r} into SQL: it did not come through the quoting route")
    return Sql(separator.join(items))


def keyword(value: str, allowed: Iterable[str], *, upper: bool = True) -> Sql:
    """A keyword-like value from a closed set, upper-cased as written in DDL (``set null`` -> ``SET NULL``).

    Raises:
        ValueError: a value outside the set.
    """
    choices = tuple(allowed)
    if value not in choices:
        raise ValueError(f"refusing to write {value!r} as a keyword: not one of {', '.join(choices)}")
    return Sql(value.upper() if upper else value)


# PostgreSQL's reserved keywords (pg_get_keywords() catcode R and T), which cannot be
# used as bare column or table names.
RESERVED_KEYWORDS: frozenset[str] = frozenset("""
all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create
current_catalog current_date current_role current_time current_timestamp current_user default deferrable
desc distinct do else end except false fetch for foreign from grant group having in initially intersect
into lateral leading limit localtime localtimestamp not null offset on only or order placing primary
references returning select session_user some symmetric system_user table then to trailing true union
unique user using variadic when where window with
authorization binary collation concurrently cross current_schema freeze full ilike inner is isnull join
left like natural notnull outer overlaps right similar tablesample verbose
""".split())

_SIMPLE = re.compile(r"^[a-z_][a-z0-9_$]*$")


def needs_quotes(name: str) -> bool:
    return not _SIMPLE.match(name) or name in RESERVED_KEYWORDS


def ident(name: str) -> Sql:
    """``users`` -> ``users``; ``user`` -> ``"user"``; ``Mixed Case`` -> ``"Mixed Case"``."""
    if needs_quotes(name):
        from psycopg import sql  # imported on use: lint needs the keyword list, not psycopg

        return Sql(sql.Identifier(name).as_string(None))
    return Sql(name)


def qualified(*names: str) -> Sql:
    return Sql(".".join(ident(name) for name in names))


def qname(key: str) -> Sql:
    """A model key as SQL: ``audit.events`` -> ``audit.events``, ``Order Items`` -> ``"Order Items"``.

    Keys of the home schema are bare, others ``schema.name``; no schema or object name contains a
    dot (the loader and the introspector refuse them), so the first dot always separates the two.
    """
    schema, dot, name = key.partition(".")
    return Sql(f"{ident(schema)}.{ident(name)}") if dot else ident(key)


def unqualified(key: str) -> Sql:
    """The object name of a model key, quoted when needed: ``audit.events`` -> ``events``."""
    return ident(key.partition(".")[2] or key)


def literal(value: object) -> Sql:
    """A SQL literal, escaped by psycopg: ``it's`` -> ``'it''s'``."""
    from psycopg import sql

    return Sql(sql.Literal(value).as_string(None))


def dollar_quote(body: str) -> Sql:
    """Wrap a function body, verbatim, in a dollar quote the body cannot close.

    PostgreSQL ends a dollar-quoted string at the first occurrence of its tag, so the tag must
    not occur in the body, nor straddle its end (a body ending in ``$`` before ``$$``).
    """
    tag = ""
    counter = 0
    while (body + f"${tag}$").find(f"${tag}$") != len(body):
        counter += 1
        tag = "body" if counter == 1 else f"body{counter}"
    return Sql(f"${tag}${body}${tag}$")


# Everything a line break can be: PostgreSQL ends a -- comment at \n or \r; editors and terminals at more.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def comment_line(text: object) -> Sql:
    """Free text made safe for one ``-- ...`` line: control characters and line breaks become spaces.

    The only route by which free text (RFC references, names, change descriptions) reaches a SQL
    comment: nothing after it can become a statement.
    """
    return Sql(" ".join(_LINE_BREAKS.sub(" ", str(text)).split()))


def wrapped_whole(text: str) -> bool:
    """True for ``(a + b)``, false for ``(a) + (b)``: the first parenthesis closes at the very end.

    Read on PostgreSQL's own tokens (:func:`veza_schema.sql.parse.wrapped_whole`).
    """
    from veza_schema.sql.parse import wrapped_whole as on_tokens  # imported on use: lint needs the keywords only

    return on_tokens(text)
