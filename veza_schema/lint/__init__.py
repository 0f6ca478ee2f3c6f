"""``veza-schema lint``: the seed's rules, schema integrity and PostgreSQL pitfalls over the model.

Public API: :func:`lint` (run the rules), :data:`RULES`/:func:`all_rules` (the registry),
:class:`Finding` and :class:`LintReport` (results); formats live in :mod:`.output`.
"""

from veza_schema.lint.engine import lint, select_rules
from veza_schema.lint.findings import Finding, LintReport
from veza_schema.lint.registry import RULES, Rule, all_rules

__all__ = ["RULES", "Finding", "LintReport", "Rule", "all_rules", "lint", "select_rules"]
