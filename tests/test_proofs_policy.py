"""Policy cases the classifier table did not pin (each found by a surviving mutant)."""

from __future__ import annotations

from dataclasses import replace

from tests.factories import EVENTS, MONTHLY, USERS, schema
from veza_schema.diff.differ import diff_schemas
from veza_schema.policy.classify import classify


def test_lowering_premake_by_one_needs_an_rfc() -> None:
    """Dropping even one future partition drops what it holds: RFC-required, like any premake decrease."""
    before = schema(USERS, replace(EVENTS, partition=replace(MONTHLY, premake=3)))
    after = schema(USERS, replace(EVENTS, partition=replace(MONTHLY, premake=2)))
    report = classify(diff_schemas(before, after), before, after)
    assert [(d.code, d.klass) for d in report.decisions] == [("POL122", "rfc-required")]
