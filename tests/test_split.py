"""Splitting a migration file into statements: only a top-level ``;`` ends one, lines are the file's."""

from __future__ import annotations

import re
from pathlib import Path

import pglast
import pytest

from tests.helpers import REPO_ROOT
from veza_schema.sql import split as split_module
from veza_schema.sql.split import parse_script, split_statements


def split(sql: str) -> list[tuple[str, int]]:
    return [(s.text, s.line) for s in split_statements(sql)]


def test_each_statement_keeps_the_line_of_its_first_character() -> None:
    sql = "-- header\n\nCREATE TABLE a (id int);\n\n/* note */ CREATE TABLE b (\n  id int\n);\nSELECT 1"
    assert split(sql) == [("CREATE TABLE a (id int)", 3), ("CREATE TABLE b (\n  id int\n)", 5), ("SELECT 1", 8)]


@pytest.mark.parametrize("inside", [
    "'a;b'", "'it''s; fine'", '"odd;name"', "$$ BEGIN x := 1; END $$", "$body$ ; $x$ ; $body$",
    "/* a; /* nested; */ still; */", "-- a; comment\n",
])
def test_a_semicolon_inside_quotes_dollar_quotes_or_comments_ends_nothing(inside: str) -> None:
    assert split(f"SELECT {inside} 1; SELECT 2;") == [(f"SELECT {inside} 1", 1), ("SELECT 2", 1 + inside.count("\n"))]


def test_a_dollar_inside_an_identifier_or_a_parameter_opens_no_quote() -> None:
    assert split("SELECT a$b$c, $1; SELECT 2") == [("SELECT a$b$c, $1", 1), ("SELECT 2", 1)]


def test_empty_statements_and_trailing_comments_give_nothing() -> None:
    assert split(";;\n  ; -- only a comment\n/* and another */\n") == []


def test_an_unterminated_quote_runs_to_the_end() -> None:
    assert split("SELECT 1; SELECT 'open; SELECT 2") == [("SELECT 1", 1), ("SELECT 'open; SELECT 2", 1)]


def test_the_same_text_split_twice_gives_equal_fresh_lists() -> None:
    first, second = split_statements("SELECT 1; SELECT 2"), split_statements("SELECT 1; SELECT 2")
    assert first == second and first is not second


# -- parse_script: node types from the whole file, trees built per statement on demand ---------------
@pytest.mark.parametrize("path", sorted((REPO_ROOT / "migrations").glob("*.sql")), ids=lambda p: p.name)
def test_each_statement_has_the_node_type_and_tree_the_whole_files_parse_gives(path: Path) -> None:
    text = path.read_text()
    whole = [raw.stmt for raw in pglast.parse_sql(text)]
    script = parse_script(text)
    assert script.node_types == tuple(type(tree).__name__ for tree in whole)
    assert [script.tree(index) for index in range(len(whole))] == whole  # pglast compares without locations


def test_a_file_nested_deeper_than_json_decodes_still_gets_node_types_and_trees() -> None:
    deep = "SELECT 1" + " + 1" * 3000
    script = parse_script(f"SET lock_timeout = '1s';\n{deep};\nDROP TABLE t;\n")
    assert script.node_types == ("VariableSetStmt", "SelectStmt", "DropStmt")
    assert type(script.tree(2)).__name__ == "DropStmt"


@pytest.mark.parametrize("nested", ["1", "1" + " + 1" * 3000], ids=["shallow", "deeper than json decodes"])
def test_node_types_come_from_the_whole_json_when_its_statement_members_do_not_match_the_statements(
        nested: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback for a libpg_query whose JSON nests a "stmt" member: the statements still get their types."""
    monkeypatch.setattr(split_module, "_TOP_LEVEL_NODE", re.compile(r'"(\w+Stmt)"'))  # matches nested nodes too
    split_module.parse_script.cache_clear()
    script = parse_script(f"CREATE VIEW v AS SELECT {nested};\nDROP TABLE t;\n")
    assert script.node_types == ("ViewStmt", "DropStmt")
    split_module.parse_script.cache_clear()


def test_a_file_that_does_not_parse_has_no_node_types_but_each_statement_that_parses_has_its_tree() -> None:
    script = parse_script("DROP TABLE t;\nCREATE TABLEE u (id int);\n")
    assert script.node_types is None and script.error is not None and "TABLEE" in script.error
    assert type(script.tree(0)).__name__ == "DropStmt"
    assert script.tree(1) is None


FITTING = ["-- header\n\nCREATE TABLE a (id int);\n\n/* note */ CREATE TABLE b (\n  id int\n);\nSELECT 1",
           "SELECT 1; SELECT 'open; SELECT 2", ";;\n  ; -- only a comment\n/* and another */\n", "SELECT 1; /* open",
           "SELECT 1 -- trailing\n; SELECT 2 /* x */ ;", "DROP TABLE t;\nCREATE TABLEE u (id int);\n", "",
           *(path.read_text() for path in sorted((REPO_ROOT / "migrations").glob("*.sql")))]


@pytest.mark.parametrize("sql", FITTING, ids=range(len(FITTING)))
def test_the_spans_the_splitter_cuts_pass_the_check_a_cached_layout_must_pass(sql: str) -> None:
    assert split_module._spans_fit(sql, split_module._spans(sql))


@pytest.mark.parametrize("spans", [
    ((0, 8, 1), (10, 18, 1)),  # the second statement cut short: "SELECT 2" of "SELECT 20"
    ((0, 8, 1),),  # a statement missing
    ((0, 8, 1), (9, 19, 1)),  # a statement starting on a blank
    ((0, 8, 2), (10, 19, 1)),  # a wrong line
    ((10, 19, 1), (0, 8, 1)),  # out of order
    ((0, 8, 1), (10, 25, 1)),  # past the end
], ids=["cut short", "missing", "starts on a blank", "wrong line", "out of order", "past the end"])
def test_spans_that_are_not_the_files_statements_fail_the_check(spans: tuple[tuple[int, int, int], ...]) -> None:
    assert split_module._spans(sql := "SELECT 1; SELECT 20;") == ((0, 8, 1), (10, 19, 1))
    assert not split_module._spans_fit(sql, spans)
