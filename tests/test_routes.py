"""Each SQL-bearing YAML field is parsed by PostgreSQL's grammar as exactly what it declares (sql/routes.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from veza_schema.model import Function, Schema
from veza_schema.sql import routes
from veza_schema.sql.routes import RouteError
from veza_schema.sql.text import comment_line, dollar_quote

ACCEPTED: list[tuple[Callable[[str], str], str]] = [
    (routes.check_expression, "now()"),
    (routes.check_expression, "price >= 0 AND price < 1000"),
    (routes.check_expression, "x /* a comment that closes */ + 1"),
    (routes.check_expression, "x\n-- a comment followed by a line break\n+ 1"),
    (routes.check_expression, "(a, b)"),
    (routes.check_default, "'user'"),
    (routes.check_default, "now() + interval '1 day'"),
    (routes.check_default, "('x' COLLATE \"C\")"),
    (routes.check_query, "SELECT id FROM users WHERE deleted_at IS NULL"),
    (routes.check_query, "WITH recent AS (SELECT 1 AS n) SELECT n FROM recent"),
    (routes.check_function_arguments, "parent regclass, months integer DEFAULT 3"),
    (routes.check_function_arguments, "VARIADIC names text[]"),
    (routes.check_function_arguments, "amount numeric(10, 2), label varchar(20)"),
    (routes.check_function_returns, "trigger"),
    (routes.check_function_returns, "SETOF text"),
    (routes.check_function_returns, "TABLE (id uuid, score integer)"),
    (routes.check_operator_class, "gin_trgm_ops"),
    (routes.check_operator_class, "gist_trgm_ops(siglen=32)"),
    (routes.check_rfc, "RFC-0042"),
    (routes.check_language, "PLpgSQL"),
]

REFUSED: list[tuple[Callable[[str], str], str, str]] = [
    (routes.check_expression, "1); DROP TABLE users; --", "syntax error"),
    (routes.check_expression, "1 -- swallows what follows", "-- comment ends the expression"),
    (routes.check_expression, "(WITH gone AS (DELETE FROM users RETURNING 1) SELECT count(*) FROM gone)",
     "data-modifying WITH"),
    (routes.check_expression, "1, 2", "comma-separated list"),
    (routes.check_expression, "1 FROM users", "syntax error"),
    (routes.check_default, "'x' COLLATE \"C\"", "put it in parentheses"),
    (routes.check_query, "SELECT 1; DROP TABLE users", "found 2 statements"),
    (routes.check_query, "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone", "data-modifying WITH"),
    (routes.check_query, "SELECT * INTO copy FROM users", "SELECT INTO"),
    (routes.check_query, "DELETE FROM users", "is a SELECT"),
    (routes.check_query, "SELECT 1 -- swallows the semicolon", "-- comment ends the query"),
    (routes.check_type, "text DEFAULT 1", "not a type"),
    (routes.check_type, "integer GENERATED ALWAYS AS IDENTITY", "not a type"),
    (routes.check_type, "text COLLATE c", "not a type"),
    (routes.check_function_arguments, ") RETURNS int LANGUAGE sql AS 'x'; DROP TABLE t; CREATE FUNCTION g(",
     "adds statements"),
    (routes.check_function_arguments, "a int) SECURITY DEFINER AS 'x' --", "comments are not allowed"),
    (routes.check_function_returns, "int LANGUAGE plpgsql SECURITY DEFINER", "adds clauses"),
    (routes.check_function_returns, "int; DROP TABLE t", "not a function signature"),
    (routes.check_function_returns, "pg_terminate_backend(pg_backend_pid())", "type modifier"),
    (routes.check_function_arguments, "a pg_terminate_backend(pg_backend_pid())", "type modifier"),
    (routes.check_operator_class, "text_ops DESC", "not an operator class"),
    (routes.check_operator_class, "x) WHERE (true", "not an operator class"),
    (routes.check_rfc, "RFC-0042\nDROP TABLE users", "not an RFC reference"),
    (routes.check_language, "c", "not one of sql, plpgsql"),
    (routes.check_identifier, "users; DROP TABLE x", "not a valid name"),
    (routes.check_free_text, "nul\x00byte", "control character"),
]


@pytest.mark.parametrize(("check", "text"), ACCEPTED, ids=lambda v: getattr(v, "__name__", repr(v)[:40]))
def test_a_field_that_is_what_it_declares_is_accepted(check: Callable[[str], str], text: str) -> None:
    check(text)


@pytest.mark.parametrize(("check", "text", "message"), REFUSED, ids=lambda v: getattr(v, "__name__", repr(v)[:40]))
def test_a_field_that_is_more_than_it_declares_is_refused(check: Callable[[str], str], text: str,
                                                          message: str) -> None:
    with pytest.raises(RouteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check(text)


def test_a_type_comes_back_in_the_model_spelling() -> None:
    assert routes.check_type("VARCHAR(255)[]") == "character varying(255)[]"


def test_volatile_calls_are_refused_where_rows_are_evaluated_but_value_generators_allowed_in_defaults() -> None:
    assert routes.refused_calls("pg_terminate_backend(pg_backend_pid()) IS NOT NULL") == ["pg_terminate_backend"]
    assert routes.refused_calls("set_config('role', 'x', false)", default=True) == ["set_config"]
    assert routes.refused_calls("gen_random_uuid()", default=True) == []
    assert routes.refused_calls("gen_random_uuid()") == ["gen_random_uuid"]
    assert routes.refused_calls("length(name) < 100 AND now() > created_at") == []
    assert routes.refused_calls("SELECT pg_sleep(1)", query=True) == ["pg_sleep"]


def test_functions_the_schema_declares_count_with_their_declared_volatility() -> None:
    schema = Schema(functions={"is_slug": Function("is_slug", "t text", "boolean", "sql", "SELECT true",
                                                   volatility="immutable")})
    assert routes.refused_calls("is_slug(name)", schema) == []
    assert routes.refused_calls("unknown_extension_function(name)", schema) == ["unknown_extension_function"]


@pytest.mark.parametrize("body", ["x $$ y", "$body$ $$", "ends with a dollar $", "$", "", "$body", "$body2$ $body$"])
def test_a_dollar_quoted_body_is_one_string_constant_holding_exactly_the_body(body: str) -> None:
    from pglast.parser import scan

    quoted = dollar_quote(body)
    tokens = scan(str(quoted))
    assert len(tokens) == 1 and tokens[0].name == "SCONST" and tokens[0].end == len(quoted) - 1
    tag = quoted[: quoted.index("$", 1) + 1]
    assert quoted[len(tag):-len(tag)] == body


def test_free_text_on_a_comment_line_loses_every_line_break() -> None:
    assert comment_line("RFC-1\nDROP TABLE users;\r\u2028--\x00x") == "RFC-1 DROP TABLE users; -- x"
