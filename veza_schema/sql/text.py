"""Quoting, decided in one place: identifiers are quoted exactly when PostgreSQL needs it.

Literals and quoted identifiers go through :mod:`psycopg.sql`, so escaping is psycopg's.
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


def qname(key: str) -> str:
    """A model key as SQL: ``audit.events`` -> ``audit.events``, ``Order Items`` -> ``"Order Items"``.

    Keys of the home schema are bare, others ``schema.name``; no schema or object name contains a
    dot (the loader and the introspector refuse them), so the first dot always separates the two.
    """
    schema, dot, name = key.partition(".")
    return f"{ident(schema)}.{ident(name)}" if dot else ident(key)


def unqualified(key: str) -> str:
    """The object name of a model key, quoted when needed: ``audit.events`` -> ``events``."""
    return ident(key.partition(".")[2] or key)


def literal(value: object) -> str:
    """A SQL literal, escaped by psycopg: ``it's`` -> ``'it''s'``."""
    from psycopg import sql

    return sql.Literal(value).as_string(None)


def dollar_quote(body: str) -> str:
    """Wrap a function body, verbatim, in a dollar quote whose tag does not occur in the body."""
    tag = ""
    counter = 0
    while f"${tag}$" in body:
        counter += 1
        tag = "body" if counter == 1 else f"body{counter}"
    return f"${tag}${body}${tag}$"


def wrapped_whole(text: str) -> bool:
    """True for ``(a + b)``, false for ``(a) + (b)``: the first parenthesis closes at the very end."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    quote: str | None = None
    for position, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in ("'", '"'):
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and position != len(text) - 1:
                return False
    return True
