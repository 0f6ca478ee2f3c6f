"""The loader's route checks (and lint's reading of constant defaults) answer from the disk cache
exactly as they answer fresh: same texts accepted, same refusals with the same message and position,
same constants, and no parse on a warm run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from veza_schema.lint.rules import catalog
from veza_schema.lint.rules.predicates import Literal
from veza_schema.model import CounterSpec, Meta, SourcePos
from veza_schema.sql import parse, parse_cache, render, routes

CACHED = (routes._type_spelling, routes._is_operator_class, routes._is_exclusion_element, routes._query_problem,
          routes._arguments_problem, routes._returns_problem, routes._called, routes._function_probe)

CHECKS: list[tuple[Callable[[str], str], str]] = [
    (routes.check_type, "numeric(10,2)"), (routes.check_type, "varchar(20) -- x"),
    (routes.check_operator_class, "text_pattern_ops"), (routes.check_operator_class, "text_pattern_ops, d int"),
    (routes.check_exclusion_element, "room_id WITH ="), (routes.check_exclusion_element, "room_id WITH = ) x ("),
    (routes.check_query, "SELECT id FROM users"), (routes.check_query, "SELECT id FROM"),
    (routes.check_query, "SELECT 1; SELECT 2"),
    (routes.check_function_arguments, "a integer, b text DEFAULT 'x'"), (routes.check_function_arguments, "a int)"),
    (routes.check_function_returns, "SETOF text"), (routes.check_function_returns, "TABLE (a int)"),
    (routes.check_function_returns, "trigger LANGUAGE c"),
]


def forget() -> None:
    for function in (*CACHED, parse.tokens, parse.query_node, parse.statement_nodes, parse.expression_node):
        if hasattr(function, "cache_clear"):
            function.cache_clear()


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    forget()
    yield
    parse_cache._active = None
    forget()


def verdict(check: Callable[[str], str], text: str) -> tuple[str, int | None] | str:
    try:
        return check(text)
    except routes.RouteError as error:
        return str(error), error.offset


def test_route_checks_from_disk_equal_fresh_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = [verdict(check, text) for check, text in CHECKS]
    assert any(isinstance(v, tuple) for v in fresh) and any(isinstance(v, str) for v in fresh)
    forget()
    parse_cache.enable(tmp_path, "1.0")
    assert [verdict(check, text) for check, text in CHECKS] == fresh
    parse_cache.save_and_disable()
    forget()

    def no_parse(*_: object) -> None:
        raise AssertionError("parsed although the answer is on disk")

    monkeypatch.setattr(parse, "_parse", no_parse)
    monkeypatch.setattr(parse, "tokens", no_parse)
    parse_cache.enable(tmp_path, "1.0")
    assert [verdict(check, text) for check, text in CHECKS] == fresh
    parse_cache.save_and_disable()


def test_query_calls_from_disk_equal_fresh_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    query = "SELECT random(), now(), lower(name) FROM users WHERE created_at > CURRENT_DATE"
    fresh = routes.refused_calls(query, query=True)
    assert fresh
    forget()
    parse_cache.enable(tmp_path, "1.0")
    assert routes.refused_calls(query, query=True) == fresh
    parse_cache.save_and_disable()
    forget()
    monkeypatch.setattr(parse, "_parse", lambda *_: pytest.fail("parsed although the answer is on disk"))
    parse_cache.enable(tmp_path, "1.0")
    assert routes.refused_calls(query, query=True) == fresh
    parse_cache.save_and_disable()


def test_lint_default_literals_from_disk_equal_fresh_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = ("0", "1.50", "'draft'", "'{}'::jsonb", "true", "'x'::text", "now()", "-3", "not sql (")
    fresh = [catalog._default_literal(text) for text in texts]
    assert Literal(Decimal("1.50"), "numeric") in fresh and None in fresh
    catalog._default_literal.cache_clear()
    parse_cache.enable(tmp_path, "1.0")
    assert [catalog._default_literal(text) for text in texts] == fresh
    parse_cache.save_and_disable()
    catalog._default_literal.cache_clear()
    monkeypatch.setattr(parse, "_parse", lambda *_: pytest.fail("parsed although the answer is on disk"))
    parse_cache.enable(tmp_path, "1.0")
    assert [catalog._default_literal(text) for text in texts] == fresh
    parse_cache.save_and_disable()


def test_counter_bodies_from_disk_equal_fresh_renders_and_need_no_template(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from veza_schema.yaml import loader

    counters = {"tracks": ("play_count", CounterSpec("plays", "track_id")),
                "albums": ("liked_count", CounterSpec("album_likes", "album_id", where="deleted_at IS NULL"))}
    meta = Meta(SourcePos("x.yaml", 1, 1))
    fresh = [loader.counter_function(parent, column, spec, "m", meta) for parent, (column, spec) in counters.items()]
    parse_cache.enable(tmp_path, "1.0")
    assert [loader.counter_function(p, c, s, "m", meta) for p, (c, s) in counters.items()] == fresh
    parse_cache.save_and_disable()
    monkeypatch.setattr(loader, "render_template", lambda *_, **__: pytest.fail("rendered although on disk"))
    parse_cache.enable(tmp_path, "1.0")
    assert [loader.counter_function(p, c, s, "m", meta) for p, (c, s) in counters.items()] == fresh
    parse_cache.save_and_disable()


def test_a_cached_rendering_is_keyed_on_the_template_text_and_the_quoting_code(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    template = "objects/counter_function_body.sql.j2"
    shipped = render.template_digest(template)
    (tmp_path / "objects").mkdir()
    (tmp_path / template).write_text((render.templates_dir() / template).read_text() + "-- edited\n")
    monkeypatch.setattr(render, "templates_dir", lambda: tmp_path)
    render.template_digest.cache_clear()
    try:
        assert render.template_digest(template) != shipped
    finally:
        render.template_digest.cache_clear()
