"""The one quoting route (sql/text.py) on the inputs that break hand-made quoting."""

from __future__ import annotations

import pytest

from tests.helpers import TestDatabase
from veza_schema.sql.text import dollar_quote, ident, literal, wrapped_whole


@pytest.mark.parametrize(("name", "quoted"), [
    ("plays", "plays"), ("user", '"user"'), ("Playlists", '"Playlists"'), ('we"ird', '"we""ird"'),
    ("with space", '"with space"'), ("1st", '"1st"'),
])
def test_identifiers_are_quoted_exactly_when_needed_and_escaped(name: str, quoted: str) -> None:
    assert ident(name) == quoted


def test_literals_escape_their_quotes(database: TestDatabase) -> None:
    text = "it's a \\ backslash and a 'quote'"
    assert database.query(f"SELECT {literal(text)}") == [(text,)]


@pytest.mark.parametrize("body", ["BEGIN RETURN 1; END;", "SELECT '$$'", "$body$ and $$ both", "$body2$ $body$ $$"])
def test_a_dollar_quote_never_ends_inside_its_body(body: str, database: TestDatabase) -> None:
    assert database.query(f"SELECT {dollar_quote(body)}") == [(body,)]


@pytest.mark.parametrize(("text", "whole"), [
    ("(a + b)", True), ("(a) + (b)", False), ("(')')", True), ("('(' || x)", True), ("(\")\" + 1)", True),
    ("(')') || (x)", False),
])
def test_wrapped_whole_skips_parentheses_inside_quotes(text: str, whole: bool) -> None:
    assert wrapped_whole(text) is whole
