"""diff keeps the shadow's model per rendered script and server: the same answer, without rebuilding."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import SAMPLE_SCHEMA as SAMPLE
from tests.helpers import TestDatabase, sample_with_drift
from veza_schema.db.introspect import IntrospectionStats, Unmodeled
from veza_schema.db.shadow import ShadowBuild
from veza_schema.drift import shadow_cache
from veza_schema.drift.compare import detect_drift
from veza_schema.drift.report import drift_document
from veza_schema.model import Schema
from veza_schema.yaml.loader import load_schema


@pytest.fixture
def live(database: TestDatabase) -> Iterator[psycopg.Connection]:
    with sample_with_drift(database.dsn) as conn:
        yield conn


def drift(conn: psycopg.Connection, database: TestDatabase, desired: Schema, cache: Path) -> dict:
    report = detect_drift(conn, desired, shadow_dsn=database.server.admin_dsn, shadow_cache=cache)
    return drift_document(report)


def refuse_to_build(*_: object, **__: object) -> None:
    raise AssertionError("the shadow was built again")


def test_a_second_diff_reads_the_shadow_model_from_the_cache(live: psycopg.Connection, database: TestDatabase,
                                                             tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    desired = load_schema(SAMPLE)
    first = drift(live, database, desired, tmp_path)
    assert [c["name"] for c in first["changes"]] == ["nickname"]
    assert len(list(tmp_path.glob("*.json"))) == 1
    monkeypatch.setattr(shadow_cache, "build_in_shadow", refuse_to_build)
    assert drift(live, database, desired, tmp_path) == first


def test_an_edited_schema_is_built_again(live: psycopg.Connection, database: TestDatabase, tmp_path: Path) -> None:
    drift(live, database, load_schema(SAMPLE), tmp_path)
    edited = tmp_path / "schema"
    edited.mkdir()
    for path in SAMPLE.glob("*.yaml"):
        (edited / path.name).write_text(path.read_text())
    accounts = edited / "accounts.yaml"
    text = accounts.read_text()
    anchor = "    checks:\n"  # after the last column, where ADD COLUMN put it
    assert anchor in text
    accounts.write_text(text.replace(anchor, "      nickname: {type: text, nullable: true}\n" + anchor, 1))
    document = drift(live, database, load_schema(edited), tmp_path / "cache")
    assert document["changes"] == []
    assert drift(live, database, load_schema(edited), tmp_path / "cache") == document


def test_a_damaged_cache_file_is_built_again(live: psycopg.Connection, database: TestDatabase,
                                             tmp_path: Path) -> None:
    desired = load_schema(SAMPLE)
    first = drift(live, database, desired, tmp_path)
    (cached,) = tmp_path.glob("*.json")
    cached.write_text("{not json")
    assert drift(live, database, desired, tmp_path) == first


def test_the_key_covers_the_script_the_server_and_its_extensions() -> None:
    server = shadow_cache.server_identity(150018, "pgcrypto=1.3")
    key = shadow_cache.cache_key("CREATE TABLE a ();", server)
    assert key == shadow_cache.cache_key("CREATE TABLE a ();", shadow_cache.server_identity(150018, "pgcrypto=1.3"))
    assert key != shadow_cache.cache_key("CREATE TABLE b ();", server)
    assert key != shadow_cache.cache_key("CREATE TABLE a ();", shadow_cache.server_identity(180001, "pgcrypto=1.3"))
    assert key != shadow_cache.cache_key("CREATE TABLE a ();", shadow_cache.server_identity(150018, "pgcrypto=1.4"))


def test_a_container_shadow_is_keyed_by_its_images_content_id() -> None:
    image = shadow_cache.image_identity("sha256:" + "a" * 64)
    other = shadow_cache.image_identity("sha256:" + "b" * 64)
    assert image is not None and other is not None
    assert shadow_cache.cache_key("CREATE TABLE a ();", image) != shadow_cache.cache_key("CREATE TABLE a ();", other)
    assert shadow_cache.cache_key("CREATE TABLE a ();", image) != shadow_cache.cache_key("CREATE TABLE b ();", image)


@pytest.mark.parametrize("answer", [None, "", "postgres:15", "sha256:" + "a" * 63, "sha256:" + "A" * 64,
                                    "sha256:" + "a" * 64 + "/../x", "sha512:" + "a" * 64])
def test_an_image_id_that_is_not_a_sha256_content_id_is_never_cached(answer: str | None) -> None:
    assert shadow_cache.image_identity(answer) is None


def test_no_cache_variable_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEZA_NO_CACHE", "1")
    assert shadow_cache.cache_directory() is None


def test_a_cached_answer_names_the_server_it_came_from(live: psycopg.Connection, database: TestDatabase,
                                                       tmp_path: Path) -> None:
    desired = load_schema(SAMPLE)
    reports = [detect_drift(live, desired, shadow_dsn=database.server.admin_dsn, shadow_cache=tmp_path)
               for _ in range(2)]
    assert [report.shadow for report in reports] == ["--shadow-dsn", "--shadow-dsn"]


@pytest.mark.parametrize(("server_dsn", "live_version"), [
    pytest.param(None, 150000, id="another major than the embedded server: a same-major container may serve it"),
    pytest.param("docker://postgres:15", 150000, id="a container asked for"),
])
def test_a_container_shadow_without_a_docker_engine_is_built_as_without_a_cache(
        server_dsn: str | None, live_version: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No image ID to key on: build_in_shadow decides (an error, or the embedded server and a note), nothing is kept."""
    calls: list[tuple[object, ...]] = []
    built = ShadowBuild(Schema(), 180000)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.setattr(shadow_cache, "embedded_major", lambda: 18)
    monkeypatch.setattr(shadow_cache, "build_in_shadow", lambda *args: calls.append(args) or built)
    desired = load_schema(SAMPLE)
    assert shadow_cache.build_in_shadow_cached(desired, server_dsn, tmp_path, None, live_version) is built
    assert [(args[0], args[1], args[3]) for args in calls] == [(desired, server_dsn, live_version)]
    assert list(tmp_path.iterdir()) == []


def test_a_cache_hit_gives_back_the_facts_the_shadow_model_cannot_carry(database: TestDatabase, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Unmodeled drift compares the shadow's facts with the live database's: a hit must keep them."""
    desired = load_schema(SAMPLE)
    fact = Unmodeled("rule", "rule accounts.r_keep", "ON DELETE DO INSTEAD NOTHING", "accounts")
    build = shadow_cache.build_in_shadow

    def build_with_fact(*args: object, **kwargs: object) -> object:
        built = build(*args, **kwargs)  # type: ignore[arg-type]
        stats = args[2]
        assert isinstance(stats, IntrospectionStats)
        stats.unmodeled.append(fact)
        return built

    monkeypatch.setattr(shadow_cache, "build_in_shadow", build_with_fact)
    first = IntrospectionStats()
    shadow_cache.build_in_shadow_cached(desired, database.server.admin_dsn, tmp_path, first)
    monkeypatch.setattr(shadow_cache, "build_in_shadow", refuse_to_build)
    second = IntrospectionStats()
    shadow_cache.build_in_shadow_cached(desired, database.server.admin_dsn, tmp_path, second)
    assert fact in first.unmodeled
    assert second.unmodeled == first.unmodeled


@pytest.mark.parametrize("shared", ["cache directory", "shadow directory"])
def test_a_cache_directory_others_may_write_is_not_used(shared: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEZA_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache" / "shadow").mkdir(parents=True, mode=0o700)
    (tmp_path / "cache").chmod(0o700)
    assert shadow_cache.cache_directory() == tmp_path / "cache" / "shadow"
    (tmp_path / "cache" if shared == "cache directory" else tmp_path / "cache" / "shadow").chmod(0o777)
    assert shadow_cache.cache_directory() is None


def test_an_entry_unused_for_30_days_is_removed_when_a_run_writes_one(live: psycopg.Connection,
                                                                      database: TestDatabase, tmp_path: Path) -> None:
    old, recent = tmp_path / ("0" * 32 + ".json"), tmp_path / ("1" * 32 + ".json")
    for path, days in ((old, 31), (recent, 29)):
        path.write_text("{}")
        os.utime(path, (time.time() - days * 86400,) * 2)
    drift(live, database, load_schema(SAMPLE), tmp_path)
    assert not old.exists() and recent.exists() and len(list(tmp_path.glob("*.json"))) == 2


def test_an_old_entry_a_run_reads_is_renewed_so_it_outlives_the_age_rule(live: psycopg.Connection,
                                                                        database: TestDatabase, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    desired = load_schema(SAMPLE)
    first = drift(live, database, desired, tmp_path)
    (entry,) = tmp_path.glob("*.json")
    os.utime(entry, (time.time() - 29 * 86400,) * 2)
    monkeypatch.setattr(shadow_cache, "build_in_shadow", refuse_to_build)
    assert drift(live, database, desired, tmp_path) == first
    assert entry.stat().st_mtime > time.time() - 3600
