"""The rules ``veza-schema lint`` runs, assembled in one explicit list (no registration on import).

``server`` (PG1xx) are reported by the verification on a real server (:mod:`veza_schema.lint.verify`).
``check`` reports the ``POL`` family instead (:data:`veza_schema.policy.rules.POLICY_RULES`);
the rules reference (``veza-schema rules``, ``docs/rules.md``) joins both.
"""

from __future__ import annotations

from veza_schema.lint import waivers
from veza_schema.lint.registry import Registry
from veza_schema.lint.rules import catalog, features, immutable, integrity, naming, pitfalls, semantics, server

LINT_RULES = Registry((*naming.RULES, *immutable.RULES, *integrity.RULES, *semantics.RULES, *pitfalls.RULES,
                       *features.RULES, *catalog.RULES, *server.RULES, *waivers.RULES))
