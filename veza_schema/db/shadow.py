"""The desired schema, as PostgreSQL itself would hold it: build it in a throwaway database.

Why: YAML texts and the catalog's deparsed texts differ in form (``now()`` vs
``CURRENT_TIMESTAMP``, ``'user'`` vs ``'user'::user_role``, added parentheses). Rather than
guess how PostgreSQL will print an expression, ``diff`` renders the initial SQL of the YAML
model, runs it in an empty ``veza_shadow_<random>`` database, introspects it with the same
code that reads the live database, and drops it. Both sides of the comparison then come
from :func:`veza_schema.db.introspect.introspect`: like is compared with like.

The shadow server is the embedded one by default, or any server given as ``--shadow-dsn``
(its role needs CREATEDB; the database is always dropped, even on failure).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import conninfo, sql

from veza_schema.db.errors import database_error
from veza_schema.db.introspect import IntrospectionStats, introspect
from veza_schema.db.servers import (
    DockerServer,
    EmbeddedServer,
    docker_image,
    docker_image_present,
    docker_problem,
    docker_pull,
    embedded_major,
)
from veza_schema.errors import DatabaseError
from veza_schema.model import Schema, Table
from veza_schema.sql.render import create_schema_sections, sections_to_sql
from veza_schema.sql.split import split_statements

SHADOW_PREFIX = "veza_shadow_"


def shadow_database_name() -> str:
    """``veza_shadow_<12 hex>``: unique enough that concurrent runs never collide."""
    return SHADOW_PREFIX + secrets.token_hex(6)


def _dsn_for(server_dsn: str, dbname: str) -> str:
    return conninfo.make_conninfo(server_dsn, dbname=dbname)


@contextmanager
def shadow_server(server_dsn: str | None = None) -> Iterator[str]:
    """The server shadow databases are made on, as a DSN: the embedded server (None), a container
    started for the duration (``docker://IMAGE[:TAG]``, removed on exit), or ``server_dsn`` itself."""
    if server_dsn is None:
        yield EmbeddedServer().start()
        return
    image = docker_image(server_dsn)
    if image is None:
        yield server_dsn
        return
    container = DockerServer(image)
    try:
        yield container.start()
    finally:
        container.stop()


@contextmanager
def shadow_database(server_dsn: str | None = None) -> Iterator[str]:
    """Create an empty database on ``server_dsn`` (default: the embedded server; ``docker://IMAGE`` a
    container), yield its DSN, drop it."""
    with shadow_server(server_dsn) as server, _empty_database(server) as dsn:
        yield dsn


@contextmanager
def _empty_database(server_dsn: str) -> Iterator[str]:
    name = shadow_database_name()
    try:
        with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise database_error("cannot create the shadow database", exc) from exc
    try:
        yield _dsn_for(server_dsn, name)
    finally:
        try:
            with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        except psycopg.Error:  # pragma: no cover - best effort; the name says what to clean up
            pass


@dataclass(frozen=True)
class ShadowBuild:
    """The desired schema as built, and the shadow server's ``server_version_num``."""

    schema: Schema
    server_version: int
    server: str = "the embedded server"  # where it was built, for reports


def build_in_shadow(desired: Schema, server_dsn: str | None = None,
                    stats: IntrospectionStats | None = None, live_version: int | None = None) -> ShadowBuild:
    """``desired`` as PostgreSQL holds it once built: rendered, applied to a shadow database, introspected.

    YAML-only metadata (modules, tags, RFCs, declared renames, view dependencies) is copied
    back from ``desired`` by name, so changes computed against the result keep it. When
    ``live_version`` (``server_version_num``) has another major version than the shadow
    server, a warning goes to ``stats`` (deparsed texts differ between versions: the
    caller should compare expression texts as :func:`veza_schema.drift.compare.detect_drift` does).

    Raises:
        DatabaseError: the shadow server is unreachable, or the rendered SQL fails there.
    """
    script = sections_to_sql(create_schema_sections(desired))
    with _server_for(server_dsn, live_version, stats) as (server_of_shadow, server), \
            _empty_database(server_of_shadow) as dsn:
        try:
            conn: psycopg.Connection[Any] = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise database_error("cannot connect to the shadow database", exc) from exc
        with conn:
            shadow_major = conn.info.server_version // 10000
            if live_version is not None and stats is not None and live_version // 10000 != shadow_major:
                stats.warnings.append(f"the shadow server runs PostgreSQL {shadow_major}, the database "
                                      f"{live_version // 10000}: expression texts that differ are compared after "
                                      "sqlglot normalization (--shadow-dsn on a server of the same version is exact)")
            try:
                for batch in _batches(script):
                    conn.execute(batch.encode("utf-8"))
            except psycopg.Error as exc:
                raise database_error("schema/ does not build in the shadow database", exc) from exc
            built = introspect(conn, stats=stats)
            version = conn.info.server_version
    return ShadowBuild(graft_metadata(built, desired), version, server)


def _describe(server_dsn: str) -> str:
    image = docker_image(server_dsn)
    return f"a {image} container" if image else "--shadow-dsn"


@contextmanager
def _server_for(server_dsn: str | None, live_version: int | None, stats: IntrospectionStats | None
                ) -> Iterator[tuple[str, str]]:
    """The shadow server (its DSN, and how reports name it): the one given; else, for a database of
    another major than the embedded server's, a container of that major (see :func:`same_major_server`);
    else the embedded server, with a note in ``stats`` saying why no container was used."""
    if server_dsn is not None or live_version is None:
        with shadow_server(server_dsn) as server:
            yield server, "the embedded server" if server_dsn is None else _describe(server_dsn)
        return
    major = live_version // 10000
    spec, note = same_major_server(major)
    image = docker_image(spec) if spec is not None else None
    if image is not None:
        container = DockerServer(image)
        try:
            server = container.start()
        except DatabaseError as exc:  # not asked for: fall back rather than fail the diff
            note = f"no shadow server of PostgreSQL {major}: {exc}"
        else:
            try:
                yield server, _describe(f"docker://{image}")
            finally:
                container.stop()
            return
    if note and stats is not None:
        stats.warnings.append(note)
    yield EmbeddedServer().start(), "the embedded server"


def same_major_server(major: int) -> tuple[str | None, str | None]:
    """The shadow server for a database of PostgreSQL ``major`` when none is given: the embedded
    server when it runs that major, else a ``postgres:<major>`` container when a Docker engine answers
    and the image is there or can be pulled (the comparison is then exact), else the embedded server.

    Returns the ``docker://`` spec (None: the embedded server) and, when the embedded server is used
    for another major, why no container was.
    """
    embedded = embedded_major()
    if embedded is None or embedded == major:
        return None, None
    problem = docker_problem()
    if problem is None:
        image = f"postgres:{major}"
        if docker_image_present(image) or docker_pull(image):
            return f"docker://{image}", None
        problem = f"the image {image} is not here and cannot be pulled"
    return None, f"no shadow server of PostgreSQL {major}: {problem}"


# Statements per round trip. A multi-statement string is one implicit transaction, and a
# transaction holds a lock-table slot per relation it creates: the whole script of 10,000
# tables in one would overflow the lock table of any server (see diff.locks).
_BATCH = 100


def _batches(script: str) -> list[str]:
    statements = [statement.text for statement in split_statements(script)]
    return ["\n;\n".join(statements[i:i + _BATCH]) for i in range(0, len(statements), _BATCH)]


def graft_metadata(built: Schema, source: Schema) -> Schema:
    """``built`` with the non-compared fields of ``source``'s objects of the same name (pure)."""
    tables = {name: _graft_table(table, source.tables.get(name)) for name, table in built.tables.items()}
    enums = {n: replace(e, module=source.enums[n].module, meta=source.enums[n].meta) if n in source.enums else e
             for n, e in built.enums.items()}
    composites = {n: replace(c, module=source.composite_types[n].module, meta=source.composite_types[n].meta)
                  if n in source.composite_types else c for n, c in built.composite_types.items()}
    functions = {n: replace(f, module=source.functions[n].module, meta=source.functions[n].meta)
                 if n in source.functions else f for n, f in built.functions.items()}
    views = {}
    for name, view in built.views.items():
        origin = source.views.get(name)
        if origin is not None:
            indexes = {i: replace(ix, meta=origin.indexes[i].meta) if i in origin.indexes else ix
                       for i, ix in view.indexes.items()}
            view = replace(view, module=origin.module, meta=origin.meta, depends_on=origin.depends_on,
                           indexes=indexes)
        views[name] = view
    extensions = {n: replace(x, module=source.extensions[n].module, meta=source.extensions[n].meta)
                  if n in source.extensions else x for n, x in built.extensions.items()}
    # Extensions keep the YAML's order (CREATE EXTENSION order).
    ordered = {n: extensions[n] for n in source.extensions if n in extensions}
    ordered.update({n: x for n, x in extensions.items() if n not in ordered})
    return replace(built, tables=tables, enums=enums, composite_types=composites, functions=functions,
                   views=views, extensions=ordered, modules=source.modules)


def _graft_table(table: Table, origin: Table | None) -> Table:
    if origin is None:
        return table
    columns = tuple(replace(c, meta=o.meta) if (o := origin.column(c.name)) is not None else c
                    for c in table.columns)

    def same(found: Any, theirs: Any) -> dict:
        return {n: replace(x, meta=theirs[n].meta) if n in theirs else x for n, x in found.items()}

    foreign_keys = {n: replace(fk, meta=origin.foreign_keys[n].meta,
                               on_delete_explicit=origin.foreign_keys[n].on_delete_explicit)
                    if n in origin.foreign_keys else fk for n, fk in table.foreign_keys.items()}
    triggers = {n: replace(t, meta=origin.triggers[n].meta, template=origin.triggers[n].template)
                if n in origin.triggers else t for n, t in table.triggers.items()}
    primary_key = table.primary_key
    if primary_key is not None and origin.primary_key is not None and origin.primary_key.name == primary_key.name:
        primary_key = replace(primary_key, meta=origin.primary_key.meta)
    return replace(table, columns=columns, primary_key=primary_key, uniques=same(table.uniques, origin.uniques),
                   checks=same(table.checks, origin.checks), foreign_keys=foreign_keys,
                   indexes=same(table.indexes, origin.indexes), triggers=triggers, module=origin.module,
                   tags=origin.tags, meta=origin.meta)
