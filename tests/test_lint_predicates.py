"""The small solver behind INT011, INT012 and INT015: what a CHECK or an index predicate allows.

Every answer must be sound: "never" only when PostgreSQL would agree for every row; anything the
solver cannot read (functions, two columns, untyped strings next to numbers) is "can be".
"""

from __future__ import annotations

import pytest

from veza_schema.lint.rules.predicates import both_true, can_be_false, can_be_true

NOT_NULL = frozenset({"a"})


@pytest.mark.parametrize(("text", "expected"), [
    ("a > 10 AND a < 5", False),
    ("a BETWEEN 10 AND 5", False),
    ("a BETWEEN 5 AND 10", True),
    ("a >= 5 AND a <= 5", True),
    ("a > 5 AND a <= 5", False),
    ("s = 'x' AND s = 'y'", False),
    ("s IN ('x', 'y') AND s <> 'x' AND s <> 'y'", False),
    ("s IN ('x', 'y') AND s <> 'x'", True),
    ("a = 5 AND a = 6", False),
    ("a = 5 AND a > 7", False),
    ("(a < 0 OR a > 100) AND a BETWEEN 1 AND 99", False),
    ("a < 0 OR a > 100", True),
    ("false", False),
    ("NOT (a > 1) AND a > 1", False),
    ("a NOT BETWEEN 1 AND 10 AND a = 5", False),
    ("a IS NULL", False),  # a is NOT NULL
    ("b IS NULL AND b > 1", False),
    ("a = 5 AND a = '5'", True),  # PostgreSQL casts the string: not judged
    ("length(s) > 3 AND length(s) < 2", True),  # functions are not read
    ("a > b AND a < b", True),  # two columns are not read
])
def test_can_be_true(text: str, expected: bool) -> None:
    assert can_be_true(text, NOT_NULL) is expected


@pytest.mark.parametrize(("text", "expected"), [
    ("b IS NULL OR b IS NOT NULL", False),
    ("a IS NOT NULL", False),  # a is NOT NULL
    ("b IS NOT NULL", True),
    ("a >= 0 OR a < 0", False),
    ("a >= 0 OR a < -1", True),
    ("true", False),
    ("a > 0", True),
    ("length(s) > 0 OR true", False),
])
def test_can_be_false(text: str, expected: bool) -> None:
    assert can_be_false(text, NOT_NULL) is expected


@pytest.mark.parametrize(("first", "second", "expected"), [
    ("price < 0", "price >= 0", False),
    ("price > 1000", "price >= 0", True),
    ("price IS NULL", "price >= 0", True),  # a CHECK lets NULL pass
    ("status = 'x'", "status IN ('a', 'b')", False),
    ("deleted_at IS NULL", "deleted_at IS NULL OR deleted_at > created_at", True),
])
def test_both_true(first: str, second: str, expected: bool) -> None:
    assert both_true(first, second) is expected


def test_a_text_that_does_not_parse_is_not_judged() -> None:
    assert can_be_true("a >") is None
    assert can_be_false("a >") is None


@pytest.mark.parametrize("text", ["a > 'NaN'::numeric", "a = 'NaN'::numeric", "a > 1 AND a < 'NaN'::numeric"])
def test_a_nan_constant_is_not_judged_rather_than_crashing_lint(text: str) -> None:
    """Decimal refuses to order NaN (PostgreSQL puts it above every number): the comparison is left out."""
    assert can_be_true(text) is True
    assert can_be_false(text) is True
