"""Is a function volatile? One answer for the planner, the change policy and lint.

Why it matters: a column default calling a VOLATILE function makes ``ADD COLUMN`` rewrite the
table under an ACCESS EXCLUSIVE lock, and a non-IMMUTABLE function is refused in index
expressions and generated columns. The answer comes from :class:`FunctionFacts`: read from
a live server's ``pg_catalog`` when one is at hand (:func:`veza_schema.db.catalog.function_facts`),
else the built-in table generated from PostgreSQL's catalog (:mod:`.builtin_catalog`).
The schema's own functions declare their volatility, an extension's functions count for a
schema that declares the extension; any other unknown function counts as volatile, the
conservative answer. (The other catalog facts, types, operator classes and casts, are
:mod:`.facts`'.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from veza_schema.model import Schema
from veza_schema.sql import builtin_catalog
from veza_schema.sql.parse import parse_sql

Volatility = Literal["immutable", "stable", "volatile"]

# Volatile functions that only produce a value, so a column default may call them (sql/routes.py: a
# default runs for every existing row when its column is added, with the rights of whoever applies it).
VALUE_GENERATORS: frozenset[str] = frozenset(builtin_catalog.VALUE_GENERATORS.split())
_RANK: dict[str, int] = {"immutable": 0, "stable": 1, "volatile": 2}

# SQL value functions (keywords, not pg_proc entries) read the clock or the session: stable.
_SQL_VALUE_FUNCTIONS: dict[str, Volatility] = {
    name: "stable" for name in ("current_timestamp", "current_date", "current_time", "localtime", "localtimestamp",
                                "current_user", "current_role", "session_user", "user", "current_catalog",
                                "current_schema", "system_user")
}


Overloads = tuple[Volatility, Volatility]  # (least, most) volatile overload of one name


@dataclass(frozen=True)
class FunctionFacts:
    """Function name -> volatility of its overloads, as some server's catalog knows it.

    Without argument types an overloaded name is ambiguous, so each question says which side
    it needs: "may it be volatile?" (a rewrite risk) takes the most volatile overload, "can it
    be immutable?" (offline lint, before the server's own verdict) the least.
    """

    volatility: Mapping[str, Overloads] = field(default_factory=dict)
    source: str = "built-in table"
    # Extension name -> its functions; they count for a schema declaring the extension.
    extensions: Mapping[str, Mapping[str, Overloads]] = field(default_factory=dict)

    def of(self, name: str, schema: Schema | None = None, *, overload: str = "most") -> Volatility:
        """A function's volatility: the schema's own declaration, the catalog's (pg_catalog, then the
        schema's extensions), else volatile."""
        bare = name.rsplit(".", 1)[-1].lower()
        known = self.volatility.get(bare)
        if schema is not None:
            own = schema.functions.get(bare)
            if own is not None:
                return own.volatility
            if known is None:
                for extension in schema.extensions:
                    known = self.extensions.get(extension, {}).get(bare)
                    if known is not None:
                        break
        if known is not None:
            return known[1] if overload == "most" else known[0]
        return _SQL_VALUE_FUNCTIONS.get(bare, "volatile")


@cache
def offline_facts() -> FunctionFacts:
    """The built-in table: PostgreSQL's own catalog, generated into :mod:`.builtin_catalog`."""
    table: dict[str, Overloads] = {}
    for volatility, names in (("immutable", builtin_catalog.IMMUTABLE), ("stable", builtin_catalog.STABLE),
                              ("volatile", builtin_catalog.VOLATILE)):
        for name in names.split():
            table[name] = (volatility, volatility)  # type: ignore[assignment]
    for entry in builtin_catalog.MIXED.split():
        name, least, most = entry.split(":")
        table[name] = (least, most)  # type: ignore[assignment]
    extensions: dict[str, dict[str, Overloads]] = {}
    for line in builtin_catalog.EXTENSION_FUNCTIONS.strip().splitlines():
        extension, name, least, most = line.split("|")
        extensions.setdefault(extension, {})[name] = (least, most)  # type: ignore[assignment]
    return FunctionFacts(table, source=f"built-in table ({builtin_catalog.SERVER})", extensions=extensions)


def calls_with(expression: str | None, at_least: Volatility, schema: Schema | None = None,
               facts: FunctionFacts | None = None, *, overload: str = "most") -> list[str]:
    """Functions ``expression`` calls whose volatility is ``at_least`` or worse, sorted.

    An expression that does not parse is answered with its own description, so callers
    treat it as the worst case.
    """
    if not expression:
        return []
    parsed = parse_sql(expression)
    if parsed.error:
        return ["(an expression that does not parse)"]
    known = facts or offline_facts()
    return sorted(name for name in parsed.functions
                  if _RANK[known.of(name, schema, overload=overload)] >= _RANK[at_least])


def volatile_calls(expression: str | None, schema: Schema | None = None,
                   facts: FunctionFacts | None = None) -> list[str]:
    """Functions that may make ``expression`` volatile (a default then makes ADD COLUMN rewrite the table)."""
    return calls_with(expression, "volatile", schema, facts, overload="most")


def non_immutable_calls(expression: str | None, schema: Schema | None = None,
                        facts: FunctionFacts | None = None) -> list[str]:
    """Functions with no IMMUTABLE overload: PostgreSQL refuses them in index expressions, index
    predicates and generated columns."""
    return calls_with(expression, "stable", schema, facts, overload="least")


def most_volatile(values: Iterable[Volatility]) -> Volatility:
    return max(values, key=lambda v: _RANK[v], default="immutable")
