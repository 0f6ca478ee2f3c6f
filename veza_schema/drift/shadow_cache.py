"""The desired schema as a shadow server built it, kept on disk per rendered script and server.

Why: building ``schema/`` in a shadow database and reading it back is most of what ``diff``
costs, and for the same rendered SQL on the same server it always reads back the same model.
So the first run stores that model (model_io JSON: data, never code) and later runs read it
instead of touching the shadow server again, beyond one query that identifies it.

The key covers everything the model depends on: the rendered script (the YAML as SQL), the
shadow server's ``server_version_num`` and the versions of the extensions it offers (what
``CREATE EXTENSION`` installs), and the code that reads and serializes the catalog (the tool's
version and the source of the introspector, the model and its serializer, so an edited
checkout never reads an old answer). A container shadow (``docker://IMAGE``, or the
``postgres:<major>`` container picked for a database of another major than the embedded
server's) is keyed by its image's content ID instead, asked of the Docker engine without
starting anything: the ID fixes the server binaries and the extensions the image ships, so a
warm run starts no container, and a re-tagged image (a new minor) misses. Files live beside the parse cache
(:func:`veza_schema.sql.parse_cache.default_directory`), ``0600`` in a ``0700`` directory,
written by atomic rename; ``VEZA_NO_CACHE=1`` turns the cache off, and a directory another user
owns or may write to is not used (a planted model would answer for the shadow build, so for the
drift it reports). Entries no run used for 30 days are removed when a run writes one (the parse
cache's age rule); a hit renews its entry at most once a day.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import psycopg

import veza_schema
from veza_schema import model, model_io
from veza_schema.db import introspect as introspect_module
from veza_schema.db.introspect import IntrospectionStats, Unmodeled
from veza_schema.db.servers import EmbeddedServer, docker_image, docker_image_id, embedded_major, image_content_id
from veza_schema.db.shadow import ShadowBuild, build_in_shadow, describe_server, graft_metadata, same_major_image
from veza_schema.errors import DatabaseError
from veza_schema.model import Schema
from veza_schema.sql.parse_cache import NO_CACHE_ENV, default_directory, read_in_use, remove_unused, untrusted
from veza_schema.sql.render import create_schema_sections, sections_to_sql

_SERVER_FACTS = ("SELECT current_setting('server_version_num')::int, "
                 "coalesce((SELECT string_agg(name || '=' || coalesce(default_version, ''), ',' ORDER BY name) "
                 "FROM pg_available_extensions), '')")


def cache_directory() -> Path | None:
    """Where shadow models are kept, or None when caching is off or the directory is not private to
    this user (:func:`veza_schema.sql.parse_cache.enable` warns about the cache directory)."""
    if os.environ.get(NO_CACHE_ENV):
        return None
    base = default_directory()
    directory = base / "shadow"
    return None if untrusted(base) or untrusted(directory) else directory


def _code_fingerprint() -> bytes:
    digest = hashlib.sha256(veza_schema.__version__.encode())
    for module in (introspect_module, model, model_io):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.digest()


def server_identity(server_version: int, extensions: str) -> str:
    """What a running server's answer depends on: its ``server_version_num`` and offered extensions."""
    return f"{server_version}\0{extensions}"


def image_identity(image_id: str | None) -> str | None:
    """What a container's answer depends on: its image's content ID; None (no caching) unless it is one."""
    valid = image_content_id(image_id)
    return None if valid is None else f"image\0{valid}"


def _server_facts(server_dsn: str) -> str:
    try:
        with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(_SERVER_FACTS).fetchone()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(f"cannot connect to the shadow server: {first}", getattr(exc, "sqlstate", None)) from exc
    assert row is not None
    return server_identity(int(row[0]), str(row[1]))


def cache_key(script: str, server: str) -> str:
    """The entry of ``script`` built on ``server`` (:func:`server_identity` or :func:`image_identity`)."""
    digest = hashlib.sha256(_code_fingerprint())
    digest.update(f"\0{server}\0".encode())
    digest.update(script.encode("utf-8"))
    return digest.hexdigest()[:32]


def _entry(directory: Path, script: str, server: str) -> Path:
    return directory / f"{cache_key(script, server)}.json"


def _read(path: Path) -> tuple[Schema, int, list[Unmodeled]] | None:
    try:
        data = json.loads(read_in_use(path))
        facts = [Unmodeled(str(kind), str(name), str(detail), str(subject))
                 for kind, name, detail, subject in data["unmodeled"]]
        return model_io.schema_from_dict(data["schema"]), int(data["server_version"]), facts
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: build it again


def _write(path: Path, schema: Schema, server_version: int, unmodeled: list[Unmodeled]) -> None:
    """The model and the facts it cannot carry (compared with the live database's: unmodeled drift)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".shadow-", dir=path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"server_version": server_version, "schema": model_io.schema_to_dict(schema),
                           "unmodeled": [[f.kind, f.name, f.detail, f.subject] for f in unmodeled]}, out)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        return  # a cache that cannot be written only costs time
    remove_unused(path.parent, "", ".json")  # the directory is the shadow models' own: every *.json, every .temporary


def build_in_shadow_cached(desired: Schema, server_dsn: str | None, directory: Path | None,
                           stats: IntrospectionStats | None = None, live_version: int | None = None) -> ShadowBuild:
    """:func:`veza_schema.db.shadow.build_in_shadow`, answered from ``directory`` when it already holds
    this script's model for this server (``directory`` None: always build).

    The server is ``--shadow-dsn``, the embedded server when it runs the database's major, or a
    container (``docker://IMAGE``, or the same-major container ``build_in_shadow`` picks for another
    major), whose entry is found by its image's content ID before any container is started.
    """
    if directory is None:
        return build_in_shadow(desired, server_dsn, stats, live_version)
    script = sections_to_sql(create_schema_sections(desired))
    image = docker_image(server_dsn or "")
    if server_dsn is None:
        embedded = embedded_major()
        if live_version is not None and embedded is not None and embedded != live_version // 10000:
            image = same_major_image(live_version // 10000)
    if image is not None:
        return _container_build(desired, server_dsn, image, script, directory, stats, live_version)
    if server_dsn is None:
        server, described = EmbeddedServer().start(), "the embedded server"
    else:
        server, described = server_dsn, "--shadow-dsn"
    path = _entry(directory, script, _server_facts(server))
    found = _read(path)
    if found is None:
        built_stats = stats if stats is not None else IntrospectionStats()
        built = build_in_shadow(desired, server, built_stats, live_version)
        _write(path, built.schema, built.server_version, built_stats.unmodeled)
        return replace(built, server=described)
    return _answer(found, desired, described, stats, live_version)


def _container_build(desired: Schema, server_dsn: str | None, image: str, script: str, directory: Path,
                     stats: IntrospectionStats | None, live_version: int | None) -> ShadowBuild:
    """A container shadow: the entry of the local image's ID, else a build as without a cache (a
    container started, or for the same-major route perhaps the embedded server instead), kept under
    the ID of the image the container ran."""
    image_id = docker_image_id(image)
    identity = image_identity(image_id)
    found = _read(_entry(directory, script, identity)) if identity is not None else None
    if found is not None:
        return _answer(found, desired, describe_server(f"docker://{image}"), stats, live_version, image_id)
    built_stats = stats if stats is not None else IntrospectionStats()
    built = build_in_shadow(desired, server_dsn, built_stats, live_version)
    ran = image_identity(built.image_id)
    if ran is not None:
        _write(_entry(directory, script, ran), built.schema, built.server_version, built_stats.unmodeled)
    return built


def _answer(found: tuple[Schema, int, list[Unmodeled]], desired: Schema, described: str,
            stats: IntrospectionStats | None, live_version: int | None, image_id: str | None = None) -> ShadowBuild:
    """A cache hit as :func:`build_in_shadow` would have answered it, warnings and unmodeled facts included."""
    schema, version, facts = found
    if stats is not None:
        stats.unmodeled.extend(facts)
    if live_version is not None and stats is not None and live_version // 10000 != version // 10000:
        stats.warnings.append(f"the shadow server runs PostgreSQL {version // 10000}, the database "
                              f"{live_version // 10000}: expression texts that differ are compared after "
                              "sqlglot normalization (--shadow-dsn on a server of the same version is exact)")
    return ShadowBuild(graft_metadata(schema, desired), version, described, image_id)
