"""``veza-schema lint``: the seed's rules, schema integrity and PostgreSQL pitfalls over the model.

Public API: :func:`lint` (run the rules), :data:`LINT_RULES` (the rules it runs, a
:class:`Registry`), :class:`Finding` and :class:`LintReport` (results); formats live in
:mod:`.output`.
"""

from veza_schema.lint.engine import lint, select_rules
from veza_schema.lint.findings import Finding, LintReport
from veza_schema.lint.registry import Registry, Rule
from veza_schema.lint.rulebook import LINT_RULES

__all__ = ["LINT_RULES", "Finding", "LintReport", "Registry", "Rule", "lint", "select_rules"]
