"""The on-disk cache of SQL parse answers: right answers first, speed second."""

from __future__ import annotations

import contextlib
import marshal
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_cli
from veza_schema.lint.rules import predicates
from veza_schema.migrations import data_loss, statement_check
from veza_schema.sql import parse, parse_cache, routes, split

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


def plant(cache: parse_cache.DiskCache, entries: dict[bytes, bytes], days_ago: int = 0) -> None:
    """Write the cache's file as a run would have, each answer last used ``days_ago``."""
    cache.path.write_bytes(marshal.dumps((entries, ((cache.today - days_ago, len(entries)),))))


def days_unused(cache: parse_cache.DiskCache) -> dict[bytes, int]:
    """For each answer in the cache's file, how many days ago a run last used it."""
    entries, spans = parse_cache._read(cache.path)
    days = [day for day, count in spans for _ in range(count)]
    return {key: cache.today - day for key, day in zip(entries, days, strict=True)}


def test_a_second_run_answers_from_disk(tmp_path: Path) -> None:
    first = run(tmp_path)
    assert (first.hits, first.misses) == (0, 1)
    second = run(tmp_path)
    assert (second.hits, second.misses) == (1, 0)


def test_answers_come_from_the_file(tmp_path: Path) -> None:
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    planted = (None, frozenset({"planted"}), frozenset(), False)
    plant(cache, {parse_cache.DiskCache.key("parse_sql", "a > 0"): marshal.dumps(planted)})
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


@pytest.mark.parametrize("content", [
    b"\x00not marshal", marshal.dumps({b"k": b"format 2: no days"}),
    marshal.dumps(({b"k": b"v"}, ((1, 2),))), marshal.dumps(({b"k": b"v"}, ((1, "1"),)))],
    ids=["not marshal", "format 2", "days of more answers than held", "a day of no count"])
def test_a_damaged_file_counts_as_empty(tmp_path: Path, content: bytes) -> None:
    cache = parse_cache.DiskCache(tmp_path, "f")
    cache.path.write_bytes(content)
    assert cache.entries == {}
    cache.put(b"k", "v")
    cache.save()
    assert parse_cache.DiskCache(tmp_path, "f").get(b"k") == "v"


# -- shrinking: what no run used for STALE_AFTER_DAYS goes when a run writes --------------------------------
PRICE = parse_cache.DiskCache.key("parse_sql", "price >= 0")
QUANTITY = parse_cache.DiskCache.key("parse_sql", "quantity > 0")
OLD = parse_cache.STALE_AFTER_DAYS + 1


def test_an_answer_no_run_used_for_30_days_is_dropped_when_a_run_saves(tmp_path: Path) -> None:
    cache = parse_cache.DiskCache(tmp_path, parse_cache.fingerprint("1.0"))
    plant(cache, {QUANTITY: marshal.dumps("old")}, days_ago=OLD)
    run(tmp_path, texts=("price >= 0",))
    assert days_unused(cache) == {PRICE: 0}


def test_an_answer_unused_for_less_than_30_days_is_kept_with_its_day(tmp_path: Path) -> None:
    cache = parse_cache.DiskCache(tmp_path, parse_cache.fingerprint("1.0"))
    plant(cache, {QUANTITY: marshal.dumps("recent")}, days_ago=parse_cache.STALE_AFTER_DAYS)
    run(tmp_path, texts=("price >= 0",))
    assert days_unused(cache) == {PRICE: 0, QUANTITY: parse_cache.STALE_AFTER_DAYS}


def test_an_old_answer_a_warm_run_reads_is_renewed_and_kept(tmp_path: Path) -> None:
    first = run(tmp_path, texts=("price >= 0", "quantity > 0"))
    entries, _ = parse_cache._read(first.path)
    plant(first, entries, days_ago=OLD)
    warm = run(tmp_path, texts=("price >= 0",))
    assert (warm.hits, warm.misses) == (1, 0)  # learnt nothing, still saved: it renewed an answer
    assert days_unused(warm) == {PRICE: 0}


def test_a_warm_run_rewrites_nothing_when_its_answers_were_used_today(tmp_path: Path) -> None:
    first = run(tmp_path)
    os.utime(first.path, (1_000_000, 1_000_000))
    warm = parse_cache.DiskCache(tmp_path, parse_cache.fingerprint("1.0"))
    warm.today = first.today  # the same day even if the clock passed midnight meanwhile
    assert warm.get(PRICE) is not parse_cache.MISSING
    warm.save()
    assert first.path.stat().st_mtime == 1_000_000


def test_a_loading_worker_hands_its_parent_the_answers_it_renewed(tmp_path: Path) -> None:
    first = run(tmp_path)
    plant(first, parse_cache._read(first.path)[0], days_ago=OLD)
    worker = parse_cache.enable(tmp_path, "1.0")
    assert worker is not None
    parse.parse_sql("price >= 0")
    assert (worker.hits, parse_cache.learnt()) == (1, {PRICE: worker.entries[PRICE]})


def test_another_fingerprints_file_ages_out_when_a_run_saves(tmp_path: Path) -> None:
    now = time.time()
    old, recent, abandoned = tmp_path / "parse-old.marshal", tmp_path / "parse-recent.marshal", tmp_path / ".parse-x"
    for path, days in ((old, OLD), (recent, parse_cache.STALE_AFTER_DAYS - 1), (abandoned, OLD)):
        path.write_bytes(b"")
        os.utime(path, (now - days * 86400, now - days * 86400))
    saved = run(tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([saved.path.name, recent.name])


def test_files_of_other_tools_in_the_directory_are_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    os.utime(other, (0, 0))
    run(tmp_path)
    assert other.exists()


def test_entries_vanishing_while_a_run_prunes_are_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another run removes every old entry between this run's listing and its stat of each."""
    for number in range(4):
        path = tmp_path / f"load-f-{number}.pickle"
        path.write_bytes(b"")
        os.utime(path, (0, 0))
    listed = os.scandir

    def scandir_then_lose_them(directory: Path) -> contextlib.AbstractContextManager[Iterator[os.DirEntry[str]]]:
        entries = list(listed(directory))
        for entry in entries:
            os.unlink(entry.path)
        return contextlib.nullcontext(iter(entries))

    monkeypatch.setattr(parse_cache.os, "scandir", scandir_then_lose_them)
    parse_cache.remove_unused(tmp_path, "load-", ".pickle")
    assert list(tmp_path.iterdir()) == []


def test_entries_this_user_may_not_remove_are_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory not writable by us (as root, chmod would not stop us: the refusal is simulated)."""
    stale = tmp_path / "parse-old.marshal"
    stale.write_bytes(b"")
    os.utime(stale, (0, 0))

    def refuse(path: str) -> None:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(parse_cache.os, "unlink", refuse)
    parse_cache.remove_unused(tmp_path, "parse-", ".marshal")
    parse_cache.remove_unused(tmp_path / "missing", "parse-", ".marshal")
    assert stale.exists()


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


def test_a_cache_directory_others_may_write_is_not_used(tmp_path: Path) -> None:
    """Its answers stand in for checks: one planted there must not make a hostile expression pass."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o777)
    assert parse_cache.enable(directory) is None
    assert "is writable by others (mode 0777)" in (parse_cache.untrusted(directory) or "")


def test_a_private_cache_directory_and_a_missing_one_are_used(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert parse_cache.untrusted(private) is None
    assert parse_cache.untrusted(tmp_path / "not-yet") is None


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root")
def test_a_cache_directory_of_another_user_is_not_used(tmp_path: Path) -> None:
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    os.chown(directory, 65534, 65534)
    assert parse_cache.untrusted(directory) == "belongs to another user (uid 65534)"


def test_lint_warns_and_answers_afresh_when_the_cache_directory_is_shared(tmp_path: Path) -> None:
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    (tmp_path / "m").mkdir()
    (schema_dir / "shop.yaml").write_text(SCHEMA.replace("CHECK_TEXT", "prize >= 0"))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    result = run_cli("lint", "--select", "PG", "--schema-dir", str(schema_dir), "--migrations-dir",
                     str(tmp_path / "m"), env={parse_cache.CACHE_DIR_ENV: str(shared)})
    assert result.exit_code == 1 and "PG008" in result.output
    assert f"not using the cache in {shared}: it is writable by others" in result.stderr
    assert list(shared.iterdir()) == []


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


def answered_from_disk(directory: Path, texts: tuple[str, ...]) -> None:
    """A run that judged ``texts`` saved its answers; a new one starts with them on disk only."""
    parse_cache.enable(directory, "1.0")
    for text in texts:
        predicates.can_be_true(text)
    parse_cache.save_and_disable()
    forget()
    parse_cache.enable(directory, "1.0")


def test_equal_atoms_from_disk_are_one_object_until_lint_releases_them(tmp_path: Path) -> None:
    texts = ("score >= 0 AND score <= 10", "score >= 0 AND score <= 20")
    answered_from_disk(tmp_path, texts)
    first, second = (predicates.comparisons(text) for text in texts)
    shared, mine = next(first), next(first)
    assert next(second) is shared and shared.op == ">=" and next(second) != mine
    predicates.release()
    assert not predicates._ATOMS


def test_atoms_from_disk_that_differ_by_column_share_their_constants_until_lint_releases_them(
        tmp_path: Path) -> None:
    texts = ("score_1 BETWEEN 0 AND 10", "score_2 BETWEEN 0 AND 10")
    answered_from_disk(tmp_path, texts)
    first, second = (list(predicates.comparisons(text)) for text in texts)
    assert [atom.column for atom in first + second] == ["score_1", "score_2"]
    assert second[0].values is first[0].values and second[0].op is first[0].op
    predicates.release()
    assert not predicates._PARTS


def test_a_damaged_predicate_entry_is_answered_afresh(tmp_path: Path) -> None:
    cache = parse_cache.enable(tmp_path, "1.0")
    assert cache is not None
    damaged = (True, ((("a", ">", (("d", "not a number", "integer"),)),),), None, ())
    plant(cache, {parse_cache.DiskCache.key("predicate_facts", "a > 10"): marshal.dumps(damaged)})
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
    plant(cache, {parse_cache.DiskCache.key("parse_sql", "a > 0"): b"\xffnot marshal"})
    assert parse.parse_sql("a > 0").columns == {"a"}
    assert (cache.hits, cache.misses) == (0, 1)


# -- apply's view of a migration file: its statements, their node types and kinds, by the file's bytes ----
INITIAL = sorted((REPO_ROOT / "migrations").glob("*_initial_schema.up.sql"))[0]


def forget_scripts() -> None:
    for function in (split.parse_script, split._split, split._statement_tree):
        function.cache_clear()


def checked(directory: Path, text: str) -> tuple[parse_cache.DiskCache, list[statement_check.Finding],
                                                 split.ParsedScript]:
    """One ``apply``'s worth of work on one file: enable, check and split it, save."""
    forget_scripts()
    cache = parse_cache.enable(directory, "1.0")
    assert cache is not None
    findings, script = statement_check.check_file(text, Path("f.sql")), split.parse_script(text)
    parse_cache.save_and_disable()
    forget_scripts()
    return cache, findings, script


def test_a_migration_files_statements_and_kinds_come_from_disk_on_a_second_apply(tmp_path: Path) -> None:
    text = INITIAL.read_text()
    first, findings, script = checked(tmp_path, text)
    assert (first.hits, first.misses) == (0, 2)  # the file's layout, its statements' kinds
    second, findings_again, script_again = checked(tmp_path, text)
    assert (second.hits, second.misses) == (2, 0)
    assert findings_again == findings == []
    assert script_again == script and len(script.statements) > 800


def test_a_warm_check_of_a_file_without_do_blocks_loads_no_parser(tmp_path: Path) -> None:
    checked(tmp_path, INITIAL.read_text())
    code = (f"from pathlib import Path\nfrom veza_schema.sql import parse_cache, split\n"
            f"from veza_schema.migrations import statement_check\n"
            f"cache = parse_cache.enable(Path({str(tmp_path)!r}), '1.0')\n"
            f"text = Path({str(INITIAL)!r}).read_text()\n"
            f"assert statement_check.check_file(text, Path('f.sql')) == []\n"
            f"assert len(split.parse_script(text).statements) > 800 and cache.misses == 0, cache.misses\n")
    loaded = subprocess.run([sys.executable, "-c", f"import sys\n{code}\nprint(*sys.modules)"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert "veza_schema.migrations.statement_check" in loaded
    assert not [name for name in loaded if name == "pglast" or name.startswith("pglast.")]


def test_an_edited_migration_file_is_split_and_checked_again(tmp_path: Path) -> None:
    text = INITIAL.read_text()
    checked(tmp_path, text)
    edited = text + "\nDELETE FROM users;\n"
    cache, findings, script = checked(tmp_path, edited)
    assert cache.misses == 2
    assert script.statements[-1] == split.Statement("DELETE FROM users", text.count("\n") + 2)
    assert any("a DELETE statement" in finding.message for finding in findings)


SCRIPT = "SET lock_timeout = '1s';\nDELETE FROM t;\n"


def plant_layout(directory: Path, layout: object) -> parse_cache.DiskCache:
    cache = parse_cache.enable(directory, "1.0")
    assert cache is not None
    kind = parse_cache._with_sources("script_layout", (Path(split.__file__),))
    plant(cache, {parse_cache.DiskCache.key(kind, SCRIPT): marshal.dumps(layout)})
    forget_scripts()
    return cache


def test_a_files_layout_comes_from_the_cache_file(tmp_path: Path) -> None:
    plant_layout(tmp_path, (((0, 23, 1), (25, 38, 2)), ("PlantedStmt", "OtherStmt"), None))
    assert split.parse_script(SCRIPT).node_types == ("PlantedStmt", "OtherStmt")
    forget_scripts()


def test_a_cached_layout_that_leaves_out_a_statement_is_not_believed(tmp_path: Path) -> None:
    """Statements a damaged entry lost would silently not run: the file is split afresh instead."""
    plant_layout(tmp_path, (((0, 23, 1),), ("VariableSetStmt",), None))
    script = split.parse_script(SCRIPT)
    assert [s.text for s in script.statements] == ["SET lock_timeout = '1s'", "DELETE FROM t"]
    assert script.node_types == ("VariableSetStmt", "DeleteStmt")
    forget_scripts()


def test_a_damaged_layout_entry_is_answered_afresh(tmp_path: Path) -> None:
    cache = plant_layout(tmp_path, ((("0", 5, 1),), ("VariableSetStmt",), None))  # a span that is not 3 numbers
    script = split.parse_script(SCRIPT)
    assert script.node_types == ("VariableSetStmt", "DeleteStmt")
    assert [s.text for s in script.statements] == ["SET lock_timeout = '1s'", "DELETE FROM t"]
    assert cache.misses == 1
    forget_scripts()


def test_the_source_files_of_an_answer_are_part_of_its_key(tmp_path: Path) -> None:
    source = tmp_path / "checker.py"
    source.write_text("RULES = 1\n")
    before = parse_cache._with_sources("statement_kinds", (source,))
    source.write_text("RULES = 2\n")
    assert parse_cache._with_sources("statement_kinds", (source,)) != before
    assert parse_cache._with_sources("statement_kinds", ()) == "statement_kinds"


def test_every_disk_cached_answer_outside_parse_py_names_the_files_it_is_worked_out_by() -> None:
    """The cache's fingerprint covers parse.py and pglast only: an answer worked out elsewhere (a rule, a
    route) whose module does not name its own file would be served stale after an edit of that module in a
    checkout whose version did not change."""
    import ast as python_ast

    package = Path(parse_cache.__file__).parent.parent
    unnamed = []
    for module in sorted(package.rglob("*.py")):
        if module.name == "parse.py" and module.parent.name == "sql":
            continue
        for node in python_ast.walk(python_ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, python_ast.Call) and getattr(node.func, "id", None) == "on_disk" \
                    and not any(keyword.arg == "sources" for keyword in node.keywords):
                unnamed.append(f"{module.relative_to(package)}:{node.lineno}")
    assert unnamed == []


def test_the_statements_that_can_destroy_data_come_from_disk_as_found_fresh(tmp_path: Path) -> None:
    text = ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id);\nALTER TABLE t DROP COLUMN b;\n"
            "DROP INDEX i;\nDROP TABLE v;\nDELETE FROM w WHERE x > 1;\nALTER TABLE t ALTER COLUMN c TYPE int;\n")
    fresh = data_loss._destructive_statements(text)
    assert fresh == (1, 3, 4, 5)
    for hits in (0, 1):
        forget_scripts()
        cache = parse_cache.enable(tmp_path, "1.0")
        assert cache is not None
        assert data_loss._may_destroy_data(text) == fresh
        assert cache.hits == hits
        parse_cache.save_and_disable()
    forget_scripts()
