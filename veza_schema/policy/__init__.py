"""The seed's change policy: which schema changes are allowed, need an RFC, or are forbidden.

Public API: :func:`classify` (a diff -> decisions), :func:`check_generate` (the gate
``generate`` runs), :class:`PolicyViolation`; the rules live in :mod:`.rules` (``POL``
codes in the lint registry), the data-loss guard of ``apply``/``rollback`` in
:mod:`.data_loss`. See ``docs/change-policy.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

from veza_schema.diff.differ import diff_schemas
from veza_schema.errors import EXIT_FINDINGS, UsageError, VezaSchemaError
from veza_schema.model import Schema
from veza_schema.policy.classify import (
    DEFAULT_RFC_PATTERN,
    Decision,
    PolicyReport,
    classify,
    rfc_matches,
)
from veza_schema.policy.rules import CLASSES, POLICY_RULES, PolicyClass, PolicyRule

__all__ = [
    "CLASSES",
    "DEFAULT_RFC_PATTERN",
    "POLICY_RULES",
    "Decision",
    "PolicyClass",
    "PolicyReport",
    "PolicyRule",
    "PolicyViolation",
    "check_generate",
    "classify",
    "rfc_matches",
]


class PolicyViolation(VezaSchemaError):
    """A change the policy refuses (exit 1, like a finding): the message lists each one and the way out."""

    exit_code = EXIT_FINDINGS


def check_rfc_option(rfc: str | None, allow_forbidden: bool, pattern: str = DEFAULT_RFC_PATTERN) -> None:
    """``--rfc`` must match the pattern; ``--allow-forbidden`` needs it.

    Raises:
        UsageError: exit 2.
    """
    if rfc is not None and not rfc_matches(rfc, pattern):
        raise UsageError(f"--rfc {rfc!r} does not match the RFC pattern {pattern}")
    if allow_forbidden and rfc is None:
        raise UsageError("--allow-forbidden needs --rfc RFC-NNNN: the RFC that approves the forbidden change")


def check_generate(snapshot: Schema, schema: Schema, *, allow_forbidden: bool = False, rfc: str | None = None,
                   prior: Sequence[Schema] = (), rfc_pattern: str = DEFAULT_RFC_PATTERN) -> PolicyReport:
    """Classify what ``generate`` is about to write; refuse forbidden changes unless explicitly accepted.

    Args:
        snapshot: the model the existing migrations produce.
        schema: the desired model (schema/).
        allow_forbidden, rfc: ``--allow-forbidden --rfc RFC-NNNN``: accept forbidden changes under that RFC.
        prior: earlier YAML states (the git base), consulted for deprecations besides the snapshot's own.

    Returns:
        The classification; its :attr:`PolicyReport.rfcs` belong in the migration header.

    Raises:
        UsageError: a malformed ``--rfc``, or ``--allow-forbidden`` without one.
        PolicyViolation: forbidden changes and no accepted RFC.
    """
    check_rfc_option(rfc, allow_forbidden, rfc_pattern)
    report = classify(diff_schemas(snapshot, schema), snapshot, schema, prior=prior, rfc_pattern=rfc_pattern,
                      extra_rfc=rfc, allow_forbidden=allow_forbidden)
    if report.forbidden:
        lines = [f"the change policy forbids {len(report.forbidden)} change(s); nothing was written:"]
        for decision in report.forbidden:
            where = f"{decision.pos}: " if decision.pos else ""
            lines.append(f"  {where}{decision.code} {decision.policy.rule.name}: "
                         f"{decision.summary.lstrip('+-~> ')}: {decision.reason}")
            lines.append(f"      fix: {decision.policy.rule.fix}")
        lines.append("To write it anyway, with an approved RFC: veza-schema generate --allow-forbidden --rfc "
                     "RFC-NNNN (see docs/change-policy.md)")
        raise PolicyViolation("\n".join(lines))
    return report
