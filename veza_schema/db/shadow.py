"""The desired schema, as PostgreSQL itself would hold it: build it in a throwaway database.

Why: YAML texts and the catalog's deparsed texts differ in form (``now()`` vs
``CURRENT_TIMESTAMP``, ``'user'`` vs ``'user'::user_role``, added parentheses). Rather than
guess how PostgreSQL will print an expression, ``diff`` renders the initial SQL of the YAML
model, runs it in an empty ``veza_shadow_<random>`` database, introspects it with the same
code that reads the live database, and drops it. Both sides of the comparison then come
from :func:`veza_schema.db.introspect.introspect`: like is compared with like.

The shadow server is the embedded one by default, or any server given as ``--shadow-dsn``
(its role needs CREATEDB; the database is always dropped, even on failure), or a container
(``docker://IMAGE[:TAG]``) started for the run: :func:`shadow_server`.

Template cache: building a schema costs seconds, copying a database a fraction of that. The
first run that builds a rendered script cleanly keeps the result as ``veza_tpl_<hash of the
script>`` (connections disallowed, so it can always be copied); later runs with the same
script copy it (:func:`shadow_from_template`) or, when they only need to know that it builds
(lint's verification), just find it (:func:`has_template`). A caller that can name its
sources (lint: the YAML files and veza-schema's own code) may label the template with their
hash, and find it again without rendering the script (:func:`find_by_source`). At most :data:`KEEP_TEMPLATES`
templates stay on a server; older ones are dropped when a new one is kept. The cache never
holds a script that failed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import conninfo, sql

from veza_schema.db.errors import database_error
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
from veza_schema.sql.split import split_statements

if TYPE_CHECKING:
    from veza_schema.db.introspect import IntrospectionStats

SHADOW_PREFIX = "veza_shadow_"
TEMPLATE_PREFIX = "veza_tpl_"
KEEP_TEMPLATES = 3
# Bump when what a template holds for the same script changes (how it is built).
_CACHE_FORMAT = "1"
_WITH_DATA = re.compile(r"\nWITH DATA;(?=\n|$)")
# Every statement building a shadow stops after this long (a shadow database is private: no lock waits).
SHADOW_OPTIONS = "-c statement_timeout=120s"


def unpopulated(script: str) -> str:
    """The script with materialized views created ``WITH NO DATA``.

    Why: building the shadow must not run schema/'s queries. YAML is untrusted (a pull request
    may change it, and lint verifies every pull request); DDL on empty tables evaluates no
    default, check or index expression, but a materialized view's query runs at creation and
    may call any function the server offers, with the shadow role's rights. The definition is
    still parsed and analyzed by PostgreSQL, which is what verification needs.
    """
    return _WITH_DATA.sub("\nWITH NO DATA;", script)


def shadow_database_name() -> str:
    """``veza_shadow_<12 hex>``: unique enough that concurrent runs never collide."""
    return SHADOW_PREFIX + secrets.token_hex(6)


def _dsn_for(server_dsn: str, dbname: str) -> str:
    return conninfo.make_conninfo(server_dsn, dbname=dbname)


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def admin_connection(server_dsn: str) -> psycopg.Connection[Any]:
    """An autocommit connection to the shadow server's maintenance database (exit 3 when unreachable)."""
    try:
        return psycopg.connect(server_dsn, autocommit=True, connect_timeout=10, application_name="veza-schema")
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to the shadow server: {_first_line(exc)}",
                            getattr(exc, "sqlstate", None)) from exc


def _create_database(server_dsn: str, name: str, template: str = "template0") -> None:
    with admin_connection(server_dsn) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))


def _drop_database(server_dsn: str, name: str, force: bool = True) -> None:
    try:
        with admin_connection(server_dsn) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(
                sql.Identifier(name), sql.SQL(" WITH (FORCE)" if force else "")))
    except (psycopg.Error, DatabaseError):  # pragma: no cover - best effort; the name says what to clean up
        pass


@contextmanager
def shadow_server(server_dsn: str | None = None) -> Iterator[str]:
    """The server shadow databases are made on, as a DSN: the embedded server (None; started only when
    not running), a container started for the duration (``docker://IMAGE[:TAG]``, removed on exit), or
    ``server_dsn`` itself."""
    if server_dsn is None:
        yield _embedded_dsn()
        return
    image = docker_image(server_dsn)
    if image is None:
        yield server_dsn
        return
    with _container(image) as (server, _):
        yield server


@contextmanager
def _container(image: str) -> Iterator[tuple[str, str | None]]:
    """A container of ``image`` for the duration: its DSN and the content ID of the image it runs."""
    container = DockerServer(image)
    try:
        server = container.start()
        yield server, container.image_id
    finally:
        container.stop()


def _embedded_dsn() -> str:
    """The embedded server's DSN, read from its pid file when it runs (a start() costs a lookup)."""
    server = EmbeddedServer()
    status = server.status()
    if status.running and status.dsn:
        return status.dsn
    return server.start()


@contextmanager
def shadow_database(server_dsn: str | None = None, template: str = "template0") -> Iterator[str]:
    """Create a database on ``server_dsn`` (default: the embedded server; ``docker://IMAGE`` a
    container), yield its DSN, drop it. It is empty, or a copy of ``template``."""
    with shadow_server(server_dsn) as server, _empty_database(server, template) as dsn:
        yield dsn


@contextmanager
def _empty_database(server_dsn: str, template: str = "template0") -> Iterator[str]:
    name = shadow_database_name()
    try:
        _create_database(server_dsn, name, template)
    except psycopg.Error as exc:
        raise database_error("cannot create the shadow database", exc) from exc
    try:
        yield _dsn_for(server_dsn, name)
    finally:
        _drop_database(server_dsn, name)


# -- the template cache ---------------------------------------------------------------------------
def template_name(script: str) -> str:
    """``veza_tpl_<24 hex>``: the cache key of a rendered script (its SHA-256)."""
    digest = hashlib.sha256(f"{_CACHE_FORMAT}\n{script}".encode()).hexdigest()
    return TEMPLATE_PREFIX + digest[:24]


def has_template(admin: psycopg.Connection[Any], script: str) -> bool:
    """Whether this server already holds the template of ``script`` (it built cleanly there before)."""
    row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template_name(script),)).fetchone()
    return row is not None


def find_by_source(admin: psycopg.Connection[Any], source_key: str) -> str | None:
    """The template a previous run labelled with ``source_key`` (the hash of what the script is made from)."""
    row = admin.execute(
        "SELECT d.datname FROM pg_database d JOIN pg_shdescription s "
        "ON s.objoid = d.oid AND s.classoid = 'pg_database'::regclass "
        "WHERE starts_with(d.datname, %s) AND s.description = %s LIMIT 1",
        (TEMPLATE_PREFIX, f"veza-schema sources {source_key}")).fetchone()
    return str(row[0]) if row else None


@dataclass
class TemplateBuild:
    """A scratch database being built from a script; :meth:`keep` turns it into the script's template."""

    server_dsn: str
    name: str
    script: str
    kept: bool = False

    @property
    def dsn(self) -> str:
        return _dsn_for(self.server_dsn, self.name)

    def keep(self, source_key: str | None = None) -> None:
        """Cache the database as the script's template (close every connection to it first).

        ``source_key`` labels it for :func:`find_by_source`. Another run may have kept the same
        template meanwhile: then this copy is simply dropped.
        """
        template = template_name(self.script)
        with admin_connection(self.server_dsn) as admin:
            try:
                admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(self.name), sql.Identifier(template)))
            except psycopg.Error:  # kept by a concurrent run, or still in use: not cached this time
                return
            self.kept = True
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(template)))
            if source_key:
                admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                    sql.Identifier(template), sql.Literal(f"veza-schema sources {source_key}")))
            _prune_templates(admin, keep=template)


def _prune_templates(admin: psycopg.Connection[Any], keep: str) -> None:
    """Drop all but the newest :data:`KEEP_TEMPLATES` templates (one being copied stays: DROP fails)."""
    rows = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s ORDER BY oid DESC",
        (TEMPLATE_PREFIX.replace("_", "\\_") + "%", keep)).fetchall()
    for (name,) in rows[KEEP_TEMPLATES - 1:]:
        try:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(str(name))))
        except psycopg.Error:
            continue


@contextmanager
def template_build(server_dsn: str, script: str) -> Iterator[TemplateBuild]:
    """An empty scratch database to build ``script`` in; dropped on exit unless :meth:`TemplateBuild.keep`."""
    build = TemplateBuild(server_dsn, shadow_database_name(), script)
    try:
        _create_database(server_dsn, build.name)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot create the shadow database: {_first_line(exc)}",
                            getattr(exc, "sqlstate", None)) from exc
    try:
        yield build
    finally:
        if not build.kept:
            _drop_database(server_dsn, build.name)


def ensure_template(server_dsn: str, script: str) -> str:
    """The name of ``script``'s template on the server, building it when missing.

    Raises:
        DatabaseError: the script fails there (nothing is cached then).
    """
    with admin_connection(server_dsn) as admin:
        if has_template(admin, script):
            return template_name(script)
    with template_build(server_dsn, script) as build:
        try:
            # Batches in autocommit, not one transaction (which overflows the lock table at 10,000
            # tables): a failed build is dropped, not kept, so a partial template is never used.
            with psycopg.connect(build.dsn, autocommit=True, connect_timeout=10, options=SHADOW_OPTIONS) as conn:
                for batch in _batches(unpopulated(script)):
                    conn.execute(batch.encode("utf-8"))
        except psycopg.Error as exc:
            raise database_error("schema/ does not build in the shadow database", exc) from exc
        build.keep()
    return template_name(script)


@contextmanager
def shadow_from_template(server_dsn: str | None, script: str) -> Iterator[str]:
    """A fresh database holding ``script`` applied, copied from its cached template; dropped on exit.

    The first call for a script builds the template (as long as building the script takes);
    later ones copy it. ``server_dsn`` None means the embedded server; a ``docker://`` container
    lives as long as the context (its cache with it).

    Raises:
        DatabaseError: the server is unreachable, or the script fails there.
    """
    with shadow_server(server_dsn) as server:
        name = shadow_database_name()
        for attempt in range(2):
            template = ensure_template(server, script)
            try:
                _create_database(server, name, template)
                break
            except psycopg.Error as exc:
                # Pruned by a concurrent run between the check and the copy: build it again, once.
                if attempt or exc.sqlstate != "3D000":
                    raise DatabaseError(f"cannot copy the shadow template: {_first_line(exc)}",
                                        exc.sqlstate) from exc
        try:
            yield _dsn_for(server, name)
        finally:
            _drop_database(server, name)


@dataclass(frozen=True)
class ShadowBuild:
    """The desired schema as built, and the shadow server's ``server_version_num``."""

    schema: Schema
    server_version: int
    server: str = "the embedded server"  # where it was built, for reports
    image_id: str | None = None  # built in a container: its image's content ID (``sha256:...``)


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
    from veza_schema.db.introspect import introspect  # the template cache alone needs neither
    from veza_schema.sql.render import create_schema_sections, sections_to_sql

    script = sections_to_sql(create_schema_sections(desired, privileges=False))
    with _server_for(server_dsn, live_version, stats) as (server_of_shadow, server, image_id), \
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
                for batch in _batches(unpopulated(script)):
                    conn.execute(batch.encode("utf-8"))
            except psycopg.Error as exc:
                raise database_error("schema/ does not build in the shadow database", exc) from exc
            built = introspect(conn, stats=stats)
            version = conn.info.server_version
    return ShadowBuild(graft_metadata(built, desired), version, server, image_id)


def describe_server(server_dsn: str | None) -> str:
    """How reports name a shadow server: the embedded server, a container of an image, --shadow-dsn."""
    if server_dsn is None:
        return "the embedded server"
    image = docker_image(server_dsn)
    return f"a {image} container" if image else "--shadow-dsn"


@contextmanager
def _server_for(server_dsn: str | None, live_version: int | None, stats: IntrospectionStats | None
                ) -> Iterator[tuple[str, str, str | None]]:
    """The shadow server (its DSN, how reports name it, and a container's image ID): the one given;
    else, for a database of another major than the embedded server's, a container of that major (see
    :func:`same_major_server`); else the embedded server, with a note in ``stats`` saying why no
    container was used."""
    if server_dsn is not None or live_version is None:
        image = docker_image(server_dsn or "")
        if image is None:
            with shadow_server(server_dsn) as server:
                yield server, describe_server(server_dsn), None
        else:
            with _container(image) as (server, image_id):
                yield server, describe_server(server_dsn), image_id
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
                yield server, describe_server(f"docker://{image}"), container.image_id
            finally:
                container.stop()
            return
    if note and stats is not None:
        stats.warnings.append(note)
    yield _embedded_dsn(), "the embedded server", None


def same_major_image(major: int) -> str:
    """The image of the container :func:`same_major_server` picks for a database of ``major``."""
    return f"postgres:{major}"


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
        image = same_major_image(major)
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
    """``built`` with the non-compared fields of ``source``'s objects of the same name (pure).

    Also what the shadow database is built without, because it names roles our shadow server does
    not have and must not get (roles are cluster-wide): roles, grants, default privileges and the
    roles of policies are the YAML's own.
    """
    tables = {name: _graft_table(table, source.tables.get(name)) for name, table in built.tables.items()}
    enums = {n: replace(e, module=source.enums[n].module, meta=source.enums[n].meta) if n in source.enums else e
             for n, e in built.enums.items()}
    composites = {n: replace(c, module=source.composite_types[n].module, meta=source.composite_types[n].meta)
                  if n in source.composite_types else c for n, c in built.composite_types.items()}
    functions = {n: replace(f, module=source.functions[n].module, meta=source.functions[n].meta,
                            grants=source.functions[n].grants)
                 if n in source.functions else f for n, f in built.functions.items()}
    views = {}
    for name, view in built.views.items():
        origin = source.views.get(name)
        if origin is not None:
            indexes = {i: replace(ix, meta=origin.indexes[i].meta) if i in origin.indexes else ix
                       for i, ix in view.indexes.items()}
            view = replace(view, module=origin.module, meta=origin.meta, depends_on=origin.depends_on,
                           indexes=indexes, grants=origin.grants)
        views[name] = view
    extensions = {n: replace(x, module=source.extensions[n].module, meta=source.extensions[n].meta)
                  if n in source.extensions else x for n, x in built.extensions.items()}
    # Extensions keep the YAML's order (CREATE EXTENSION order).
    ordered = {n: extensions[n] for n in source.extensions if n in extensions}
    ordered.update({n: x for n, x in extensions.items() if n not in ordered})
    sequences = {n: replace(q, module=source.sequences[n].module, meta=source.sequences[n].meta,
                            grants=source.sequences[n].grants)
                 if n in source.sequences else q for n, q in built.sequences.items()}
    namespaces = {n: replace(x, module=source.namespaces[n].module, meta=source.namespaces[n].meta,
                             grants=source.namespaces[n].grants)
                  if n in source.namespaces else x for n, x in built.namespaces.items()}
    return replace(built, tables=tables, enums=enums, composite_types=composites, functions=functions,
                   views=views, extensions=ordered, modules=source.modules, sequences=sequences,
                   namespaces=namespaces, roles=source.roles, default_privileges=source.default_privileges)


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
    policies = {n: replace(p, meta=origin.policies[n].meta, roles=origin.policies[n].roles)
                if n in origin.policies else p for n, p in table.policies.items()}
    return replace(table, columns=columns, primary_key=primary_key, uniques=same(table.uniques, origin.uniques),
                   checks=same(table.checks, origin.checks), foreign_keys=foreign_keys,
                   indexes=same(table.indexes, origin.indexes), triggers=triggers, module=origin.module,
                   tags=origin.tags, meta=origin.meta, exclusions=same(table.exclusions, origin.exclusions),
                   policies=policies, grants=origin.grants)
