"""Rules and the registry that orders them: every rule's stable code, severity and documentation.

A rule is a small function over the model, ``check(schema) -> Iterable[Finding]``, turned
into a :class:`Rule` by :func:`rule`; the module-level name is then the rule itself, so the
check reports its findings through it. A rule that needs more than the model (PostgreSQL's
catalog facts, the schema the migrations already produce) is declared with ``context=True``
and is called as ``check(schema, context)`` with a :class:`LintContext`. Rule families
declare their rules as a ``RULES`` tuple (:mod:`veza_schema.lint.rules`); nothing registers
itself on import. Whoever needs rules assembles a :class:`Registry` from the lists it wants:
``lint`` its own families,
``check`` the ``POL`` family (:mod:`veza_schema.policy.rules`), the rules reference both.
``docs/rules.md`` is generated from such a registry, so a rule cannot exist without its
documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from veza_schema.lint.findings import Finding, Severity
from veza_schema.model import Schema, SourcePos
from veza_schema.sql.facts import CatalogFacts, builtin_facts

Check = Callable[..., Iterable[Finding]]  # (schema) or, with context=True, (schema, context)


class LintContext:
    """What context rules read besides the model.

    ``facts``: PostgreSQL's catalog (the verification server's, else the built-in table);
    ``previous``: the schema the existing migrations produce (their snapshot), None without one;
    given as a function, it is read only when a rule asks. ``previous_columns``: that schema's
    column names per table, from a cheaper reader when one is given, else from ``previous``.
    """

    def __init__(self, facts: CatalogFacts | None = None,
                 previous: Schema | None | Callable[[], Schema | None] = None,
                 previous_columns: Callable[[], Mapping[str, frozenset[str]] | None] | None = None) -> None:
        self.facts = facts or builtin_facts()
        self._previous = previous
        self._previous_columns = previous_columns

    @cached_property
    def previous(self) -> Schema | None:
        return self._previous() if callable(self._previous) else self._previous

    @cached_property
    def previous_columns(self) -> Mapping[str, frozenset[str]] | None:
        if self._previous_columns is not None:
            return self._previous_columns()
        previous = self.previous
        if previous is None:
            return None
        return {name: frozenset(column.name for column in table.columns) for name, table in previous.tables.items()}

# Family key -> (title, code prefix). Order is the order of docs/rules.md.
FAMILIES: dict[str, tuple[str, str]] = {
    "naming": ("Naming conventions (seed section 2)", "NAM"),
    "immutable": ("The seed's 10 immutable rules", "IMM"),
    "integrity": ("Schema integrity", "INT"),
    "pitfalls": ("PostgreSQL pitfalls", "PG"),
    "server": ("Verified by PostgreSQL (lint without --offline)", "PG1"),
    "waivers": ("Waivers", "LNT"),
    "policy": ("Change policy (veza-schema check)", "POL"),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's identity and documentation; ``check`` is None for rules the engine reports (LNT, POL)."""

    code: str
    name: str
    severity: Severity
    family: str
    summary: str
    why: str
    fix: str
    check: Check | None = None
    uses_context: bool = False

    def run(self, schema: Schema, context: LintContext) -> Iterable[Finding]:
        """The rule's findings on ``schema`` (none for a rule without a check)."""
        if self.check is None:
            return ()
        return self.check(schema, context) if self.uses_context else self.check(schema)

    def finding(
        self,
        message: str,
        pos: SourcePos | None,
        obj: str,
        *,
        fix: str | None = None,
        related: tuple[str, ...] = (),
    ) -> Finding:
        """A finding of this rule; the fix hint defaults to the rule's documented fix."""
        return Finding(self.code, self.severity, message, pos, obj, self.fix if fix is None else fix, related)


def rule(
    code: str, name: str, severity: Severity, family: str, *, summary: str, why: str, fix: str,
    context: bool = False,
) -> Callable[[Check], Rule]:
    """Make ``check`` a :class:`Rule`: the decorated name is bound to the rule, check included.

    With ``context`` the check takes ``(schema, context)`` (a :class:`LintContext`).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown rule family {family!r}")

    def decorate(check: Check) -> Rule:
        return Rule(code, name, severity, family, summary, why, fix, check, context)

    return decorate


def declare(
    code: str, name: str, severity: Severity, family: str, *, summary: str, why: str, fix: str
) -> Rule:
    """A rule without a check function: the engine (waivers) or ``check`` (policy) reports it."""
    if family not in FAMILIES:
        raise ValueError(f"unknown rule family {family!r}")
    return Rule(code, name, severity, family, summary, why, fix, None)


class Registry:
    """Rules by code, families in :data:`FAMILIES` order and codes ascending within a family."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        by_code: dict[str, Rule] = {}
        for item in rules:
            if item.code in by_code:
                raise ValueError(f"duplicate rule code {item.code}")
            by_code[item.code] = item
        order = {family: i for i, family in enumerate(FAMILIES)}
        self._rules = tuple(sorted(by_code.values(), key=lambda r: (order[r.family], r.code)))
        self._by_code = {r.code: r for r in self._rules}

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __getitem__(self, code: str) -> Rule:
        return self._by_code[code]

    def get(self, code: str) -> Rule | None:
        return self._by_code.get(code)

    def __add__(self, other: Registry) -> Registry:
        return Registry((*self._rules, *other._rules))
