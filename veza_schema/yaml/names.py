"""Names in the YAML: a bare identifier, or the quoted-name form for one that needs quoting.

Why a quoted-name form: a database may hold names no bare identifier can spell
(``"Order Items"``, ``strange_name(((yo?)))``, a reserved word kept on purpose). The YAML writes
them as PostgreSQL does, between double quotes with ``""`` for a quote (``'"Order Items"'``
in YAML), so such a name is deliberate and visible, never a typo that happens to load.

Qualified names (``audit.events``) name objects outside the home schema; each part is bare or
quoted. A schema or top-level object name never contains a dot: that keeps the model's keys
(:func:`veza_schema.model.split_name`) unambiguous.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_QUOTED = re.compile(r'"((?:[^"]|"")+)"')
_PART = re.compile(r'\s*(?:(?P<bare>[A-Za-z_][A-Za-z0-9_$]*)|"(?P<quoted>(?:[^"]|"")+)")\s*')


def parse_name(text: str) -> str | None:
    """``users`` -> ``users``; ``'"Order Items"'`` -> ``Order Items``; anything else -> None."""
    if _BARE.fullmatch(text):
        return text
    match = _QUOTED.fullmatch(text)
    if match is None:
        return None
    name = match.group(1).replace('""', '"')
    return name if "\x00" not in name else None


def parse_qualified(text: str) -> tuple[str, ...] | None:
    """``audit.events`` -> ``("audit", "events")``; ``'"My Schema".t'`` -> ``("My Schema", "t")``; else None."""
    parts: list[str] = []
    position = 0
    while True:
        match = _PART.match(text, position)
        if match is None:
            return None
        name = match.group("bare") if match.group("bare") is not None else match.group("quoted").replace('""', '"')
        if "\x00" in name:
            return None
        parts.append(name)
        position = match.end()
        if position == len(text):
            return tuple(parts)
        if text[position] != ".":
            return None
        position += 1


def format_name(name: str) -> str:
    """The inverse of :func:`parse_name`: bare when it can be, else the quoted-name form."""
    return name if _BARE.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def format_key(key: str) -> str:
    """A model key (``audit.events`` or ``Order Items``) in the YAML's spelling."""
    schema, dot, name = key.partition(".")
    return f"{format_name(schema)}.{format_name(name)}" if dot else format_name(key)


NAMEDATALEN = 64


def _clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character (pg_mbcliplen)."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def make_object_name(name1: str, name2: str | None, label: str) -> str:
    """The name PostgreSQL gives an implicit object (``makeObjectName``): ``{name1}_{name2}_{label}``,
    the two names shortened in turn, longest first, so the whole fits in 63 bytes.

    >>> make_object_name("orders", "id", "seq")
    'orders_id_seq'
    """
    overhead = len(label.encode()) + 1 + (1 if name2 else 0)
    available = NAMEDATALEN - 1 - overhead
    first, second = len(name1.encode()), len(name2.encode()) if name2 else 0
    while first + second > available:
        if first > second:
            first -= 1
        else:
            second -= 1
    result = _clip(name1, first)
    if name2:
        result += "_" + _clip(name2, second)
    return f"{result}_{label}"


def nextval_default(sequence_key: str) -> str:
    """A column default drawing from a sequence, as ``pg_get_expr`` prints it: ``nextval('t_id_seq'::regclass)``."""
    from veza_schema.sql.text import ident, literal

    schema, dot, name = sequence_key.partition(".")
    regclass = f"{ident(schema)}.{ident(name)}" if dot else ident(sequence_key)
    return f"nextval({literal(regclass)}::regclass)"
