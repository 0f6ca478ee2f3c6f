"""The on-disk cache of SQL parse answers: right answers first, speed second."""

from __future__ import annotations

import marshal
import stat
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import run_cli
from veza_schema.lint.rules import predicates
from veza_schema.sql import parse, parse_cache, routes

# Every function whose answers the disk cache keeps, behind its in-memory cache.
CACHED = (parse.parse_sql, parse.not_null_columns, parse.view_filters, parse.expression_problem,
          predicates._facts, routes._called, routes._default_in_column)


def forget() -> None:
    for function in CACHED:
        function.cache_clear()
    predicates.release()


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    """Each test starts and ends with empty in-memory caches and the disk cache off."""
    forget()
    yield
    parse_cache._active = None
    forget()


def run(directory: Path, version: str = "1.0", texts: tuple[str, ...] = ("price >= 0",)) -> parse_cache.DiskCache:
    """One process's worth of work: enable, parse, save."""
    cache = parse_cache.enable(directory, version)
    assert cache is not None
    for text in texts:
        parse.parse_sql(text)
    parse.parse_sql.cache_clear()
    parse_cache.save_and_disable()
    return cache


def test_a_second_run_answers_from_disk(tmp_path: Path) -> None:
    first = run(tmp_path)
    assert (first.hits, first.misses) == (0, 1)
    second = run(tmp_path)
    assert (second.hits, second.misses) == (1, 0)


def test_answers_come_from_the_file(tmp_path: Path) -> None:
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    planted = (None, frozenset({"planted"}), frozenset(), False)
    cache.path.write_bytes(marshal.dumps({parse_cache.DiskCache.key("parse_sql", "a > 0"): marshal.dumps(planted)}))
    assert parse.parse_sql("a > 0").columns == {"planted"}


def test_a_changed_expression_is_parsed_again(tmp_path: Path) -> None:
    run(tmp_path, texts=("price >= 0",))
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    changed = parse.parse_sql("prize >= 0")
    assert changed.columns == {"prize"}
    assert (cache.hits, cache.misses) == (0, 1)


def test_a_changed_tool_version_invalidates_the_cache(tmp_path: Path) -> None:
    old = run(tmp_path, version="1.0")
    new = run(tmp_path, version="1.1")
    assert (new.hits, new.misses) == (0, 1)
    assert old.path != new.path


def test_the_fingerprint_covers_the_parse_module_and_pglast() -> None:
    # Same version string, different code: a developer's edit to parse.py must not reuse old answers.
    assert parse_cache.fingerprint("1.0") != parse_cache.fingerprint("1.1")
    assert parse_cache.fingerprint("1.0") == parse_cache.fingerprint("1.0")


def test_two_runs_saving_at_once_keep_both_answers(tmp_path: Path) -> None:
    one = parse_cache.DiskCache(tmp_path, "f")
    two = parse_cache.DiskCache(tmp_path, "f")
    assert one.entries == {} and two.entries == {}  # both loaded before either saved
    one.put(b"k1", "one")
    two.put(b"k2", "two")
    one.save()
    two.save()
    reader = parse_cache.DiskCache(tmp_path, "f")
    assert (reader.get(b"k1"), reader.get(b"k2")) == ("one", "two")


def test_a_damaged_file_counts_as_empty(tmp_path: Path) -> None:
    cache = parse_cache.DiskCache(tmp_path, "f")
    cache.path.write_bytes(b"\x00not marshal")
    assert cache.entries == {}
    cache.put(b"k", "v")
    cache.save()
    assert parse_cache.DiskCache(tmp_path, "f").get(b"k") == "v"


def test_the_cache_is_private_to_its_user(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    run(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    (file,) = directory.glob("parse-*.marshal")
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_no_cache_variable_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parse_cache.NO_CACHE_ENV, "1")
    assert parse_cache.enable(tmp_path) is None
    parse.parse_sql("a > 0")
    parse_cache.save_and_disable()
    assert list(tmp_path.iterdir()) == []


SCHEMA = """\
module: shop
tables:
  products:
    columns:
      id:    {type: uuid, primary_key: true, default: gen_random_uuid()}
      price: {type: "numeric(10,2)"}
    checks:
      chk_products_price_positive: CHECK_TEXT
"""


def test_lint_sees_an_edited_check_through_a_warm_cache(tmp_path: Path) -> None:
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    (tmp_path / "m").mkdir()
    args = ("lint", "--select", "PG", "--schema-dir", str(schema_dir), "--migrations-dir", str(tmp_path / "m"))
    env = {parse_cache.CACHE_DIR_ENV: str(tmp_path / "cache")}
    (schema_dir / "shop.yaml").write_text(SCHEMA.replace("CHECK_TEXT", "price >= 0"))
    first = run_cli(*args, env=env)
    assert first.exit_code == 0, first.output
    assert list((tmp_path / "cache").glob("parse-*.marshal"))
    (schema_dir / "shop.yaml").write_text(SCHEMA.replace("CHECK_TEXT", "prize >= 0"))
    second = run_cli(*args, env=env)
    assert second.exit_code == 1
    assert "PG008" in second.output and "prize" in second.output


PREDICATES = ("a > 10 AND a < 5", "a IS NULL OR a IS NOT NULL", "n BETWEEN 1.5 AND 2.25",
              "status = 'x' AND status = 'y'", "flag = true OR n IN (1, 2)", "a = ANY(b)", "not sql (")


def predicate_answers() -> list[object]:
    """Every question lint asks of these texts, alone and in pairs."""
    answers: list[object] = []
    for text in PREDICATES:
        answers += [predicates.can_be_true(text), predicates.can_be_false(text, frozenset({"a"})),
                    list(predicates.comparisons(text))]
        answers += [predicates.both_true(text, other) for other in PREDICATES]
    return answers


def test_predicate_answers_from_disk_equal_fresh_ones(tmp_path: Path) -> None:
    fresh = predicate_answers()
    forget()
    parse_cache.enable(tmp_path, "1.0")
    assert predicate_answers() == fresh
    parse_cache.save_and_disable()
    forget()
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    from_disk = predicate_answers()
    assert cache.misses == 0 and cache.hits >= len(PREDICATES)
    assert from_disk == fresh
    decimals = [atom.values for atom in predicates.comparisons("n BETWEEN 1.5 AND 2.25")]
    assert decimals == [(predicates.Literal(Decimal("1.5"), "numeric"), predicates.Literal(Decimal("2.25"), "numeric"))]


def test_a_damaged_predicate_entry_is_answered_afresh(tmp_path: Path) -> None:
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    damaged = (True, ((("a", ">", (("d", "not a number", "integer"),)),),), None, ())
    cache.path.write_bytes(marshal.dumps({parse_cache.DiskCache.key("predicate_facts", "a > 10"):
                                          marshal.dumps(damaged)}))
    assert [atom.values[0].value for atom in predicates.comparisons("a > 10")] == [Decimal(10)]
    assert cache.misses == 1


def test_a_refused_expression_from_disk_keeps_its_message_and_position(tmp_path: Path) -> None:
    def refusal() -> tuple[str, int | None]:
        with pytest.raises(routes.RouteError) as caught:
            routes.check_expression("a >")
        return str(caught.value), caught.value.offset

    fresh = refusal()
    forget()
    parse_cache.enable(tmp_path, "1.0")
    assert refusal() == fresh
    parse_cache.save_and_disable()
    forget()
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    assert refusal() == fresh
    assert (cache.hits, cache.misses) == (1, 0)


def test_a_damaged_answer_is_answered_afresh(tmp_path: Path) -> None:
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    cache.path.write_bytes(marshal.dumps({parse_cache.DiskCache.key("parse_sql", "a > 0"): b"\xffnot marshal"}))
    assert parse.parse_sql("a > 0").columns == {"a"}
    assert (cache.hits, cache.misses) == (0, 1)
