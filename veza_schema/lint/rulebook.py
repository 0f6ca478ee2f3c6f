"""The rules ``veza-schema lint`` runs, assembled in one explicit list (no registration on import).

``check`` reports the ``POL`` family instead (:data:`veza_schema.policy.rules.POLICY_RULES`);
the rules reference (``veza-schema rules``, ``docs/rules.md``) joins both.
"""

from __future__ import annotations

from veza_schema.lint import waivers
from veza_schema.lint.registry import Registry
from veza_schema.lint.rules import features, immutable, integrity, naming, pitfalls

LINT_RULES = Registry((*naming.RULES, *immutable.RULES, *integrity.RULES, *pitfalls.RULES, *features.RULES,
                       *waivers.RULES))
