"""Quoting, decided in one place: identifiers are quoted exactly when PostgreSQL needs it.

Literals and quoted identifiers go through :mod:`psycopg.sql`, so escaping is psycopg's; function
bodies go through :func:`dollar_quote`, free text in SQL comments through :func:`comment_line`.
Which YAML field takes which of these routes is decided in :mod:`veza_schema.sql.routes`.
"""

from __future__ import annotations

import re

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


def ident(name: str) -> str:
    """``users`` -> ``users``; ``user`` -> ``"user"``; ``Mixed Case`` -> ``"Mixed Case"``."""
    if needs_quotes(name):
        from psycopg import sql  # imported on use: lint needs the keyword list, not psycopg

        return sql.Identifier(name).as_string(None)
    return name


def qualified(*names: str) -> str:
    return ".".join(ident(name) for name in names)


def literal(value: object) -> str:
    """A SQL literal, escaped by psycopg: ``it's`` -> ``'it''s'``."""
    from psycopg import sql

    return sql.Literal(value).as_string(None)


def dollar_quote(body: str) -> str:
    """Wrap a function body, verbatim, in a dollar quote the body cannot close.

    PostgreSQL ends a dollar-quoted string at the first occurrence of its tag, so the tag must
    not occur in the body, nor straddle its end (a body ending in ``$`` before ``$$``).
    """
    tag = ""
    counter = 0
    while (body + f"${tag}$").find(f"${tag}$") != len(body):
        counter += 1
        tag = "body" if counter == 1 else f"body{counter}"
    return f"${tag}${body}${tag}$"


# Everything a line break can be: PostgreSQL ends a -- comment at \n or \r; editors and terminals at more.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def comment_line(text: object) -> str:
    """Free text made safe for one ``-- ...`` line: control characters and line breaks become spaces.

    The only route by which free text (RFC references, names, change descriptions) reaches a SQL
    comment: nothing after it can become a statement.
    """
    return " ".join(_LINE_BREAKS.sub(" ", str(text)).split())


def wrapped_whole(text: str) -> bool:
    """True for ``(a + b)``, false for ``(a) + (b)``: the first parenthesis closes at the very end.

    Read on PostgreSQL's own tokens (:func:`veza_schema.sql.parse.wrapped_whole`).
    """
    from veza_schema.sql.parse import wrapped_whole as on_tokens  # imported on use: lint needs the keywords only

    return on_tokens(text)
