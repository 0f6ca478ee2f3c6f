"""The on-disk cache of what each schema file loads to: the same model, positions included, or a miss."""

from __future__ import annotations

import dataclasses
import os
import pickle
import stat
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.factories import write_synthetic_schema
from tests.helpers import REPO_ROOT, run_cli
from veza_schema.errors import SchemaLoadError
from veza_schema.model import Schema
from veza_schema.sql import parse_cache
from veza_schema.yaml import load_cache
from veza_schema.yaml.gitref import load_at_ref
from veza_schema.yaml.loader import display_path, load_schema

SHIPPED = REPO_ROOT / "schema"


@pytest.fixture(autouse=True)
def cache_off_after() -> Iterator[None]:
    yield
    load_cache.disable()


def everything(value: object) -> object:
    """``value`` with every field, ``compare=False`` ones too (positions, waivers, modules), as plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__, tuple((f.name, everything(getattr(value, f.name)))
                                           for f in dataclasses.fields(value))
    if isinstance(value, Mapping):
        return "mapping", tuple((key, everything(item)) for key, item in value.items())
    if isinstance(value, tuple | list):
        return tuple(everything(item) for item in value)
    if isinstance(value, frozenset | set):
        return frozenset(everything(item) for item in value)
    return value


def load(schema: Path, cache_dir: Path, version: str = "1.0") -> tuple[Schema, load_cache.LoadCache]:
    cache = load_cache.enable(cache_dir, version)
    assert cache is not None
    try:
        return load_schema(schema), cache
    finally:
        load_cache.disable()


def problems(schema: Path) -> list[str]:
    with pytest.raises(SchemaLoadError) as raised:
        load_schema(schema)
    return [str(problem) for problem in raised.value.problems]


def module(name: str, table: str) -> str:
    return f"module: {name}\ntables:\n  {table}:\n    columns:\n      id: {{type: bigint, primary_key: true}}\n"


@pytest.mark.parametrize("schema", ["shipped", "synthetic"])
def test_a_warm_load_gives_the_same_model_with_every_position(schema: str, tmp_path: Path) -> None:
    directory = SHIPPED if schema == "shipped" else write_synthetic_schema(tmp_path / "schema", 60, modules=3)
    files = len(list(directory.glob("*.yaml")))
    uncached = load_schema(directory)
    cold, first = load(directory, tmp_path / "cache")
    warm, second = load(directory, tmp_path / "cache")
    assert (first.hits, first.misses) == (0, files)
    assert (second.hits, second.misses) == (files, 0)
    assert everything(warm) == everything(cold) == everything(uncached)
    assert warm == uncached


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.yaml").write_text(module("a", "alpha"))
    (schema / "b.yaml").write_text(module("b", "beta"))
    load(schema, tmp_path / "cache")
    (schema / "b.yaml").write_text(module("b", "gamma"))
    changed, cache = load(schema, tmp_path / "cache")
    assert (cache.hits, cache.misses) == (1, 1)
    assert sorted(changed.tables) == ["alpha", "gamma"]


def test_a_changed_tool_version_starts_new_entries(tmp_path: Path) -> None:
    load(SHIPPED, tmp_path / "cache", version="1.0")
    _, cache = load(SHIPPED, tmp_path / "cache", version="1.1")
    assert cache.hits == 0
    assert load_cache.fingerprint("1.0") != load_cache.fingerprint("1.1")


def test_the_fingerprint_covers_the_loading_modules_source(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = Path(load_cache.__file__).parent.parent
    for pattern in load_cache._SOURCES:
        for source in package.glob(pattern):
            copy = tmp_path / source.relative_to(package)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(source.read_bytes())
    monkeypatch.setattr(load_cache, "_PACKAGE", tmp_path)
    before = load_cache.fingerprint("1.0")
    loader_source = tmp_path / "yaml" / "loader.py"
    loader_source.write_text(loader_source.read_text() + "\n# a developer's edit\n")
    assert load_cache.fingerprint("1.0") != before


def test_a_damaged_entry_is_read_from_yaml_instead(tmp_path: Path) -> None:
    cold, _ = load(SHIPPED, tmp_path / "cache")
    for entry in (tmp_path / "cache").glob("load-*.pickle"):
        entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    warm, cache = load(SHIPPED, tmp_path / "cache")
    assert cache.hits == 0
    assert everything(warm) == everything(cold)


class _Planted:
    """What an attacker's entry would hold: a call of anything on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return os.mkdir, (str(self.marker),)


def test_an_entry_naming_anything_but_the_model_runs_nothing(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.yaml").write_text(module("a", "alpha"))
    load(schema, tmp_path / "cache")
    (entry,) = (tmp_path / "cache").glob("load-*.pickle")
    marker = tmp_path / "planted"
    entry.write_bytes(pickle.dumps(_Planted(marker)))
    loaded, cache = load(schema, tmp_path / "cache")
    assert not marker.exists()
    assert cache.hits == 0
    assert list(loaded.tables) == ["alpha"]


def test_objects_of_other_classes_are_not_written() -> None:
    with pytest.raises(pickle.PicklingError):
        load_cache.Codec().dumps({"table": _Planted(Path("x"))})


def test_a_file_with_problems_is_not_kept_and_reports_the_same_problems(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.yaml").write_text(module("a", "alpha") + "    colour: red\n")
    expected = problems(schema)
    for _ in range(2):
        load_cache.enable(tmp_path / "cache", "1.0")
        assert problems(schema) == expected
        load_cache.disable()
    assert not list((tmp_path / "cache").glob("load-*.pickle"))


def test_a_name_two_cached_files_declare_is_still_reported(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.yaml").write_text(module("a", "alpha"))
    load(schema, tmp_path / "cache")  # a.yaml alone: kept
    (schema / "a.yaml").rename(tmp_path / "a.yaml")
    (schema / "b.yaml").write_text(module("b", "alpha"))
    load(schema, tmp_path / "cache")  # b.yaml alone: kept
    (tmp_path / "a.yaml").rename(schema / "a.yaml")
    expected = problems(schema)
    assert any("duplicate name 'alpha'" in problem for problem in expected)
    load_cache.enable(tmp_path / "cache", "1.0")
    assert problems(schema) == expected


def test_entries_are_private_to_the_user(tmp_path: Path) -> None:
    load(SHIPPED, tmp_path / "cache")
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    entries = list((tmp_path / "cache").glob("load-*.pickle"))
    assert entries
    assert {stat.S_IMODE(entry.stat().st_mode) for entry in entries} == {0o600}


def test_no_cache_turns_it_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(load_cache.NO_CACHE_ENV, "1")
    assert load_cache.enable(tmp_path) is None
    load_schema(SHIPPED)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_a_directory_others_may_write_is_not_used(tmp_path: Path) -> None:
    """A planted entry is a whole model: a shared directory is refused like the parse cache's."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    assert load_cache.enable(shared) is None
    load_schema(SHIPPED)
    assert list(shared.iterdir()) == []


def test_the_library_alone_keeps_nothing_on_disk() -> None:
    assert load_cache.active() is None


def test_lint_prints_the_same_from_a_warm_cache(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"VEZA_CACHE_DIR": str(tmp_path / "cache")}
    cold = run_cli("lint", "--offline", "--format", "json", env=env)
    warm = run_cli("lint", "--offline", "--format", "json", env=env)
    assert list((tmp_path / "cache").glob("load-*.pickle"))
    assert (warm.exit_code, warm.stdout) == (cold.exit_code, cold.stdout)


def test_a_git_refs_temporary_copy_leaves_no_entries(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    schema = repository / "schema"
    schema.mkdir(parents=True)
    (schema / "a.yaml").write_text(module("a", "alpha"))
    git = ["git", "-C", str(repository), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "schema"], check=True)
    load_cache.enable(tmp_path / "cache", "1.0")
    at_ref = load_at_ref("HEAD", schema)
    assert list(at_ref.schema.tables) == ["alpha"]
    assert load_cache.active() is not None
    assert not list((tmp_path / "cache").glob("load-*.pickle"))


# -- shrinking: entries no run used for 30 days go at the end of a run that wrote one -----------------------
DAY = 86400
OLD = (parse_cache.STALE_AFTER_DAYS + 1) * DAY


def age(entries: list[Path], seconds: float) -> None:
    for entry in entries:
        then = time.time() - seconds
        os.utime(entry, (then, then))


def two_modules(tmp_path: Path) -> Path:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "a.yaml").write_text(module("a", "alpha"))
    (schema / "b.yaml").write_text(module("b", "beta"))
    return schema


def entry_of(cache: load_cache.LoadCache, file: Path) -> Path:
    return cache.path(cache.key(display_path(file), file.stem, file.read_bytes()))


def test_an_entry_no_run_used_for_30_days_is_removed_when_a_run_writes(tmp_path: Path) -> None:
    schema, cache_dir = two_modules(tmp_path), tmp_path / "cache"
    _, first = load(schema, cache_dir)
    old_b = entry_of(first, schema / "b.yaml")
    assert old_b.exists()
    age(list(cache_dir.glob("load-*.pickle")), OLD)
    (schema / "b.yaml").write_text(module("b", "gamma"))
    _, second = load(schema, cache_dir)
    assert (second.hits, second.misses) == (1, 1)
    entries = sorted(cache_dir.glob("load-*.pickle"))
    assert len(entries) == 2 and old_b not in entries  # a.yaml's (read, so renewed) and b.yaml's new one
    assert all(entry.stat().st_mtime > time.time() - DAY for entry in entries)


def test_old_entries_a_warm_run_reads_survive_the_next_writing_run(tmp_path: Path) -> None:
    schema, cache_dir = two_modules(tmp_path), tmp_path / "cache"
    load(schema, cache_dir)
    kept = sorted(cache_dir.glob("load-*.pickle"))
    age(kept, OLD)
    _, warm = load(schema, cache_dir)  # reads both, writes nothing
    assert (warm.hits, warm.misses) == (2, 0)
    (schema / "c.yaml").write_text(module("c", "gamma"))
    load(schema, cache_dir)  # writes c.yaml's entry, then prunes
    assert set(kept) < set(cache_dir.glob("load-*.pickle"))


def test_a_run_that_writes_nothing_removes_nothing(tmp_path: Path) -> None:
    schema, cache_dir = two_modules(tmp_path), tmp_path / "cache"
    load(schema, cache_dir)
    unused = cache_dir / "load-0123-4567.pickle"
    unused.write_bytes(b"")
    age([unused], OLD)
    load(schema, cache_dir)
    assert unused.exists()


def test_a_hit_renews_an_entry_at_most_once_a_day(tmp_path: Path) -> None:
    schema, cache_dir = two_modules(tmp_path), tmp_path / "cache"
    _, first = load(schema, cache_dir)
    a, b = entry_of(first, schema / "a.yaml"), entry_of(first, schema / "b.yaml")
    age([a], DAY - 600)
    age([b], DAY + 600)
    a_before = a.stat().st_mtime
    load(schema, cache_dir)
    assert a.stat().st_mtime == a_before
    assert b.stat().st_mtime > time.time() - 600


def test_entries_of_another_fingerprint_age_out_alike(tmp_path: Path) -> None:
    schema, cache_dir = two_modules(tmp_path), tmp_path / "cache"
    load(schema, cache_dir, version="0.9")
    older_version = sorted(cache_dir.glob("load-*.pickle"))
    age(older_version[:1], OLD)
    age(older_version[1:], (parse_cache.STALE_AFTER_DAYS - 1) * DAY)
    load(schema, cache_dir, version="1.0")
    assert not older_version[0].exists() and older_version[1].exists()


def test_a_run_prunes_once_after_all_its_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schema, cache_dir = write_synthetic_schema(tmp_path / "schema", 30, modules=3), tmp_path / "cache"
    listings: list[int] = []
    listed = os.scandir

    def counted(directory: Path) -> Any:
        if Path(directory) == cache_dir:
            listings.append(sum(name.startswith("load-") for name in os.listdir(cache_dir)))
        return listed(directory)

    monkeypatch.setattr(parse_cache.os, "scandir", counted)
    load(schema, cache_dir)
    assert listings == [len(list(schema.glob("*.yaml")))]  # once, when every entry was written
