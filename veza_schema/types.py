"""Column type spellings: YAML accepts the usual aliases; the model keeps ``format_type`` text.

Keeping PostgreSQL's own spelling in the model makes a model introspected from the
catalog compare equal to one loaded from YAML without any later normalization.
"""

from __future__ import annotations

import re
from functools import lru_cache

_ALIASES: dict[str, str] = {
    "int": "integer",
    "int4": "integer",
    "integer": "integer",
    "int8": "bigint",
    "bigint": "bigint",
    "int2": "smallint",
    "smallint": "smallint",
    "bool": "boolean",
    "boolean": "boolean",
    "float4": "real",
    "real": "real",
    "float8": "double precision",
    "float": "double precision",
    "double precision": "double precision",
    "decimal": "numeric",
    "numeric": "numeric",
    "varchar": "character varying",
    "character varying": "character varying",
    "char": "character",
    "character": "character",
    "bpchar": "character",
    "timestamptz": "timestamp with time zone",
    "timestamp with time zone": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "timestamp without time zone": "timestamp without time zone",
    "timetz": "time with time zone",
    "time with time zone": "time with time zone",
    "time": "time without time zone",
    "time without time zone": "time without time zone",
}

_SHORT: dict[str, str] = {
    "character varying": "varchar",
    "character": "char",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time with time zone": "timetz",
    "time without time zone": "time",
}

_TYPE_RE = re.compile(
    r"^(?P<base>[a-z_][a-z0-9_ ]*?)\s*(?:\(\s*(?P<mods>[0-9\s,]+)\s*\))?"
    r"(?P<tz>\s+with(?:out)?\s+time\s+zone)?(?P<array>(?:\s*\[\s*\])*)$"
)


_NAME_PART = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
_NAMED_TYPE_RE = re.compile(rf"^(?P<name>{_NAME_PART}(?:\.{_NAME_PART})?)(?P<array>(?:\s*\[\s*\])*)$")
_PLAIN_PART = re.compile(r"^[a-z_][a-z0-9_$]*$")


class TypeSyntaxError(ValueError):
    """The text is not a type spelling we understand."""


def _named_type(text: str) -> str | None:
    """A user type named with quotes or a schema (``audit.mood``, ``"Mood"[]``) as ``format_type`` prints it."""
    match = _NAMED_TYPE_RE.match(text)
    if not match or ('"' not in text and "." not in text):
        return None
    parts = re.findall(_NAME_PART, match.group("name"))
    rendered = []
    for part in parts:
        name = part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()
        rendered.append(name if _PLAIN_PART.match(name) else '"' + name.replace('"', '""') + '"')
    return ".".join(rendered) + "[]" * match.group("array").count("[")


@lru_cache(maxsize=4096)
def normalize_type(text: str) -> str:
    """``VARCHAR(255)`` -> ``character varying(255)``; unknown names (enums) pass through lowercased.

    >>> normalize_type("TIMESTAMPTZ")
    'timestamp with time zone'
    >>> normalize_type("decimal(10, 2)")
    'numeric(10,2)'
    >>> normalize_type("varchar(50)[]")
    'character varying(50)[]'
    """
    named = _named_type(text.strip())
    if named is not None:
        return named
    cleaned = " ".join(text.strip().lower().split())
    match = _TYPE_RE.match(cleaned)
    if not match:
        raise TypeSyntaxError(f"not a type: {text!r}")
    base = match.group("base").strip()
    tz = (match.group("tz") or "").strip()
    if tz:
        base = f"{base} {tz}"
    mods = match.group("mods")
    arrays = "[]" * match.group("array").count("[")
    canonical = _ALIASES.get(base, base)
    if canonical == "character" and mods is None:
        mods = "1"
    modifier = "(" + ",".join(part.strip() for part in mods.split(",")) + ")" if mods else ""
    if canonical.startswith(("timestamp ", "time ")) and modifier:
        word, rest = canonical.split(" ", 1)
        return f"{word}{modifier} {rest}{arrays}"
    return f"{canonical}{modifier}{arrays}"


def short_type(canonical: str) -> str:
    """The spelling reviewers expect in DDL: ``character varying(255)`` -> ``varchar(255)``."""
    for long_name, short_name in _SHORT.items():
        if canonical == long_name or canonical.startswith((long_name + "(", long_name + "[")):
            return short_name + canonical[len(long_name):]
    match = re.match(r"^(timestamp|time)(\(\d+\)) (with|without) time zone(.*)$", canonical)
    if match:
        word, modifier, kind, rest = match.groups()
        suffix = "tz" if kind == "with" else ""
        return f"{word}{suffix}{modifier}{rest}"
    return canonical


SERIAL_TYPES: dict[str, str] = {"smallserial": "smallint", "serial2": "smallint", "serial": "integer",
                                "serial4": "integer", "bigserial": "bigint", "serial8": "bigint"}


@lru_cache(maxsize=4096)  # lint asks it of every column; a schema has few distinct types
def base_type(canonical: str) -> str:
    """The type without modifiers or array brackets: ``character varying(50)[]`` -> ``character varying``."""
    return _MODIFIERS.sub("", canonical).strip()


_MODIFIERS = re.compile(r"\(.*?\)|\[\]")


def is_array(canonical: str) -> bool:
    return canonical.endswith("[]")
