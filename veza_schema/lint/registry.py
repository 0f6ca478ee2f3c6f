"""The rule registry: every rule's stable code, severity and documentation, in one place.

Rules are small functions over the model, ``check(schema) -> Iterable[Finding]``,
registered with :func:`rule`. ``docs/rules.md`` is generated from this registry, so a
rule cannot exist without its documentation. Families are ordered by code prefix; the
``POL`` family (change policy) is reported by ``veza-schema check``, not by ``lint``, and
cannot be waived: the way past a policy rule is an RFC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from veza_schema.lint.findings import Finding, Severity
from veza_schema.model import Schema, SourcePos

Check = Callable[[Schema], Iterable[Finding]]

# Family key -> (title, code prefix). Order is the order of docs/rules.md.
FAMILIES: dict[str, tuple[str, str]] = {
    "naming": ("Naming conventions (seed section 2)", "NAM"),
    "immutable": ("The seed's 10 immutable rules", "IMM"),
    "integrity": ("Schema integrity", "INT"),
    "pitfalls": ("PostgreSQL pitfalls", "PG"),
    "waivers": ("Waivers", "LNT"),
    "policy": ("Change policy (veza-schema check)", "POL"),
}


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule's identity and documentation; ``check`` is None for engine-level rules (LNT)."""

    code: str
    name: str
    severity: Severity
    family: str
    summary: str
    why: str
    fix: str
    check: Check | None = None

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


RULES: dict[str, Rule] = {}


def rule(
    code: str, name: str, severity: Severity, family: str, *, summary: str, why: str, fix: str
) -> Callable[[Check], Check]:
    """Register ``check`` under ``code``; the decorated function gets ``.rule`` for its findings."""
    if family not in FAMILIES:
        raise ValueError(f"unknown rule family {family!r}")

    def decorate(check: Check) -> Check:
        if code in RULES:
            raise ValueError(f"duplicate rule code {code}")
        registered = Rule(code, name, severity, family, summary, why, fix, check)
        RULES[code] = registered
        check.rule = registered  # type: ignore[attr-defined]
        return check

    return decorate


def declare(
    code: str, name: str, severity: Severity, family: str, *, summary: str, why: str, fix: str
) -> Rule:
    """Register a rule the engine itself reports (no check function), e.g. waiver rules."""
    if code in RULES:
        raise ValueError(f"duplicate rule code {code}")
    registered = Rule(code, name, severity, family, summary, why, fix, None)
    RULES[code] = registered
    return registered


def all_rules() -> list[Rule]:
    """Every rule, families in :data:`FAMILIES` order, codes ascending within a family."""
    _load_rule_modules()
    order = {family: i for i, family in enumerate(FAMILIES)}
    return sorted(RULES.values(), key=lambda r: (order[r.family], r.code))


def get_rule(code: str) -> Rule:
    _load_rule_modules()
    return RULES[code]


def _load_rule_modules() -> None:
    """Importing the family modules registers their rules (idempotent)."""
    from veza_schema.lint import waivers  # noqa: F401
    from veza_schema.lint.rules import immutable, integrity, naming, pitfalls  # noqa: F401
    from veza_schema.policy import rules as _policy_rules  # noqa: F401  (POL family: veza-schema check)
