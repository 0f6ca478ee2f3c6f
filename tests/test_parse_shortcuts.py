"""The parse module's shortcuts (no scan without ``--``, no tree walk without ``with``) change no verdict."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.hostile.corpus import ALL_PAYLOADS, CANARY
from veza_schema.sql import parse
from veza_schema.sql.parse import SqlSyntaxError

# Texts around the two shortcuts: comments and dashes, WITH in every case and place, and plain expressions.
TEXTS = (
    "price >= 0", "score BETWEEN 0 AND 100", "jsonb_typeof(metadata) = 'object'", "deleted_at IS NULL",
    "lower(title)", "now()", "'{}'::jsonb", "a, b", "(a, b)", "(a), (b)", "1 - -1", "1 --", "1 -- x\n", "a -- b",
    "'--' || x", "x /* -- */", "$$--$$", "'a' -- c\n|| 'b'", "1 -- \n; DROP TABLE t",
    f"(WITH gone AS (DELETE FROM {CANARY} RETURNING 1) SELECT count(*) FROM gone)",
    f"(with gone as (delete from {CANARY} returning 1) select count(*) from gone)",
    f"(WiTh gone AS (UPDATE {CANARY} SET a = 1 RETURNING 1) SELECT 1)",
    "(WITH kept AS (SELECT 1) SELECT * FROM kept)", "(SELECT 1 FROM t WITH)", "'with' || x",
    "\"with\" > 0", "without_tz IS NULL", "x @> ARRAY[1] -- with",
    f"WITH gone AS (DELETE FROM {CANARY} RETURNING *) SELECT * FROM gone",
)
QUERIES = (
    "SELECT id FROM users", "SELECT 1 -- c", "SELECT 1 -- c\n",
    f"WITH gone AS (DELETE FROM {CANARY} RETURNING *) SELECT * FROM gone",
    f"with gone as (insert into {CANARY} values (1) returning *) select * from gone",
    "WITH kept AS (SELECT 1) SELECT * FROM kept", "SELECT 'with' AS w",
)
EVERY_TEXT = TEXTS + tuple(payload for _, payload in ALL_PAYLOADS)


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    parse.expression_node.cache_clear()
    parse.query_node.cache_clear()
    yield
    parse.expression_node.cache_clear()
    parse.query_node.cache_clear()


def verdict(function: Any, text: str) -> object:
    try:
        tree = function(text)
    except SqlSyntaxError as error:
        return "refused", error.message, error.offset
    return "accepted", tree


def without_shortcuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks as they were: every text scanned, every tree walked."""
    def ends_in_line_comment(text: str) -> bool:
        found = parse.tokens(text)
        return bool(found) and found[-1].name == "SQL_COMMENT" and not any(
            end in text[found[-1].end + 1:] for end in "\n\r")

    refuse = parse.refuse_data_modifying
    monkeypatch.setattr(parse, "ends_in_line_comment", ends_in_line_comment)
    monkeypatch.setattr(parse, "refuse_data_modifying", lambda tree, what, text=None: refuse(tree, what))


@pytest.mark.parametrize("function", [parse.expression_node, parse.query_node], ids=["expression", "query"])
def test_every_verdict_and_message_is_the_one_without_shortcuts(function: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    texts = EVERY_TEXT + QUERIES
    with_shortcuts = [verdict(function, text) for text in texts]
    function.cache_clear()
    without_shortcuts(monkeypatch)
    assert [verdict(function, text) for text in texts] == with_shortcuts


@pytest.mark.parametrize("text", [f"(WITH gone AS (DELETE FROM {CANARY} RETURNING 1) SELECT 1)",
                                  f"(with gone as (delete from {CANARY} returning 1) select 1)"])
def test_a_data_modifying_with_is_still_refused_in_any_case(text: str) -> None:
    with pytest.raises(SqlSyntaxError, match="data-modifying WITH"):
        parse.expression_node(text)


def test_a_trailing_line_comment_is_still_refused() -> None:
    with pytest.raises(SqlSyntaxError, match="-- comment ends the expression"):
        parse.expression_node("price >= 0 -- positive")


def test_an_expression_does_not_keep_its_tokens() -> None:
    parse.tokens.cache_clear()
    parse.expression_node("score_7 BETWEEN 0 AND 107")
    parse.expression_node("a - 1 -- x\n")
    assert parse.tokens.cache_info().currsize == 0
