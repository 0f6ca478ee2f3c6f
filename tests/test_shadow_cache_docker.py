"""A container shadow's model is kept by its image's content ID: a warm ``diff`` starts no container.

Containers are counted by the Docker engine's own ``create`` events for a throwaway tag of
``postgres:15`` made per test module: no other run creates containers of that name.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.servers import require_image
from tests.helpers import SAMPLE_SCHEMA as SAMPLE
from tests.helpers import TestDatabase, run_cli, sample_with_drift
from veza_schema.db import servers, shadow
from veza_schema.drift import shadow_cache
from veza_schema.drift.compare import detect_drift
from veza_schema.drift.report import drift_document
from veza_schema.yaml.loader import load_schema

IMAGE = "postgres:15"
OTHER_IMAGE = "postgres:13"


def retag(source: str, tag: str) -> None:
    import docker

    client = docker.from_env()
    try:
        client.images.get(source).tag(tag)
    finally:
        client.close()


def untag(tag: str) -> None:
    import docker

    client = docker.from_env()
    try:
        client.images.remove(tag)  # the image keeps its other tags
    finally:
        client.close()


def containers_created(tag: str, since: float) -> int:
    """How many containers the engine created from ``tag`` since ``since`` (its event log, not a timing)."""
    import docker

    client = docker.from_env()
    try:
        events = client.events(since=f"{since:.6f}", until=f"{time.time():.6f}", decode=True,
                               filters={"type": "container", "event": "create"})
        return sum(1 for event in events if event.get("Actor", {}).get("Attributes", {}).get("image") == tag)
    finally:
        client.close()


@pytest.fixture(scope="module")
def tag() -> Iterator[str]:
    """A throwaway tag of postgres:15, removed after the module."""
    require_image(IMAGE)
    name = f"veza-test-shadow-{secrets.token_hex(4)}:15"
    retag(IMAGE, name)
    yield name
    untag(name)


@pytest.fixture(scope="module")
def warm(tag: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache directory holding the sample schema's model as a container of ``tag`` built it."""
    directory = tmp_path_factory.mktemp("warm")
    shadow_cache.build_in_shadow_cached(load_schema(SAMPLE), f"docker://{tag}", directory)
    assert len(list(directory.glob("*.json"))) == 1
    return directory


@pytest.fixture
def cache(warm: Path, tmp_path: Path) -> Path:
    """This test's copy of the warm cache."""
    return Path(shutil.copytree(warm, tmp_path / "cache"))


@pytest.fixture
def live(database: TestDatabase) -> Iterator[psycopg.Connection]:
    with sample_with_drift(database.dsn) as conn:
        yield conn


def diff_cli(database: TestDatabase, tag: str, cache: Path, **env: str) -> dict:
    result = run_cli("diff", "--dsn", database.dsn, "--schema-dir", str(SAMPLE), "--shadow-dsn", f"docker://{tag}",
                     "--format", "json", env={"VEZA_CACHE_DIR": str(cache), **env})
    assert result.exit_code == 1, result.output  # the extra column
    document: dict = json.loads(result.stdout)
    return document


def test_a_second_diff_through_the_same_image_starts_no_container(live: psycopg.Connection, database: TestDatabase,
                                                                  tag: str, tmp_path: Path) -> None:
    since = time.time()
    first = diff_cli(database, tag, tmp_path)
    assert containers_created(tag, since) == 1
    second = diff_cli(database, tag, tmp_path)
    assert containers_created(tag, since) == 1
    assert second == first
    assert [change["name"] for change in first["changes"]] == ["nickname"]
    assert first["shadow"] == f"a {tag} container"


def test_no_cache_variable_starts_a_container(live: psycopg.Connection, database: TestDatabase, tag: str,
                                              cache: Path) -> None:
    since = time.time()
    diff_cli(database, tag, cache, VEZA_NO_CACHE="1")
    assert containers_created(tag, since) == 1


def test_an_edited_schema_starts_a_container_and_gives_its_own_answer(live: psycopg.Connection, tag: str,
                                                                       cache: Path, tmp_path: Path) -> None:
    edited = tmp_path / "schema"
    shutil.copytree(SAMPLE, edited)
    accounts = edited / "accounts.yaml"
    anchor = "    checks:\n"  # after the last column, where ADD COLUMN put it
    assert anchor in accounts.read_text()
    column = "      nickname: {type: text, nullable: true}\n"
    accounts.write_text(accounts.read_text().replace(anchor, column + anchor, 1))
    since = time.time()
    report = detect_drift(live, load_schema(edited), shadow_dsn=f"docker://{tag}", shadow_cache=cache)
    assert containers_created(tag, since) == 1
    assert drift_document(report)["changes"] == []
    assert len(list(cache.glob("*.json"))) == 2


def test_the_key_is_the_images_content_not_its_name(tag: str, cache: Path) -> None:
    """Another name of the same image hits; the same name re-tagged to another image (a new minor) misses."""
    other = f"veza-test-shadow-{secrets.token_hex(4)}:15"
    retag(IMAGE, other)
    try:
        since = time.time()
        same = shadow_cache.build_in_shadow_cached(load_schema(SAMPLE), f"docker://{other}", cache)
        assert containers_created(other, since) == 0
        assert same.server_version // 10000 == 15
        retag(OTHER_IMAGE, other)
        moved = shadow_cache.build_in_shadow_cached(load_schema(SAMPLE), f"docker://{other}", cache)
        assert containers_created(other, since) == 1
        assert moved.server_version // 10000 == 13
    finally:
        untag(other)


def test_a_foreign_entry_is_built_again(tag: str, cache: Path) -> None:
    """Well-formed JSON of another shape: a miss, not a crash (a damaged file: test_shadow_cache)."""
    (entry,) = cache.glob("*.json")
    before = json.loads(entry.read_text())
    entry.write_text('{"server_version": "15", "schema": [], "unmodeled": 5}')
    since = time.time()
    built = shadow_cache.build_in_shadow_cached(load_schema(SAMPLE), f"docker://{tag}", cache)
    assert containers_created(tag, since) == 1
    assert built.server_version == before["server_version"]
    assert json.loads(entry.read_text()) == before


def test_the_same_major_container_diff_picks_is_cached_too(live: psycopg.Connection, tag: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """No --shadow-dsn, a database of another major than the embedded server's: its postgres:<major>
    container (here the throwaway tag) is started once, then answered from the cache."""
    monkeypatch.setattr(shadow, "embedded_major", lambda: 99)
    monkeypatch.setattr(shadow_cache, "embedded_major", lambda: 99)
    monkeypatch.setattr(shadow, "same_major_image", lambda major: tag)
    monkeypatch.setattr(shadow_cache, "same_major_image", lambda major: tag)
    since = time.time()
    first = drift_document(detect_drift(live, load_schema(SAMPLE), shadow_cache=tmp_path))
    assert containers_created(tag, since) == 1
    second = drift_document(detect_drift(live, load_schema(SAMPLE), shadow_cache=tmp_path))
    assert containers_created(tag, since) == 1
    assert second == first
    assert first["shadow"] == f"a {tag} container"


def test_the_image_id_read_on_the_engines_socket_is_the_sdks(tag: str) -> None:
    import docker

    client = docker.from_env()
    try:
        expected = client.images.get(tag).id
    finally:
        client.close()
    assert servers.docker_image_id(tag) == expected


def test_an_image_the_engine_lacks_has_no_id(tag: str) -> None:
    assert servers.docker_image_id(f"veza-test-absent-{secrets.token_hex(4)}:15") is None


def test_no_engine_on_the_socket_means_no_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    assert servers.docker_image_id(IMAGE) is None


def test_an_engine_elsewhere_is_asked_through_the_sdk_and_its_silence_means_no_id(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")  # nothing listens on port 1
    assert servers.docker_image_id(IMAGE) is None
