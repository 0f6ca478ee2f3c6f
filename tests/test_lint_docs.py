"""docs/rules.md is generated from the registry; this fails when it is stale."""

from __future__ import annotations

from tests.helpers import REPO_ROOT
from veza_schema.lint import LINT_RULES
from veza_schema.lint.docs import render_rules_markdown
from veza_schema.policy.rules import POLICY_REGISTRY

ALL_RULES = LINT_RULES + POLICY_REGISTRY


def test_rules_doc_is_fresh() -> None:
    current = (REPO_ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert current == render_rules_markdown(ALL_RULES), (
        "docs/rules.md is stale: run veza-schema rules --format markdown --output docs/rules.md")


def test_every_rule_is_documented() -> None:
    text = render_rules_markdown(ALL_RULES)
    for rule in ALL_RULES:
        assert f"### {rule.code}" in text
        assert rule.summary and rule.why and rule.fix, rule.code


def test_immutable_rules_are_the_seed_order() -> None:
    codes = [r.code for r in LINT_RULES if r.family == "immutable"]
    assert codes == [f"IMM{n:03d}" for n in range(1, 11)]
