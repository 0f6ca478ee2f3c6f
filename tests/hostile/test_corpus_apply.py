"""The payloads the loader accepts are inert on a real database: PostgreSQL 15 and 18, beside a canary.

For each field whose accepted payloads change the generated SQL (the others are proven inert
byte for byte in ``test_corpus.py``), one database holds a canary table with rows. Each payload
then goes through ``apply`` twice, as the initial migration and as a change from the neutral
value, and back through ``rollback``: whether PostgreSQL accepts the SQL or refuses it, the canary
keeps every row and no object appears that the neutral schema would not have (roles, functions,
triggers, rules, grants, settings included).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.servers import require_extensions
from tests.helpers import TestDatabase
from tests.hostile.corpus import ALL_PAYLOADS, CANARY, FIELDS, Field
from tests.hostile.test_corpus import generated, load
from veza_schema.db.dsn import Target
from veza_schema.diff.plan import UnsafeChangeError
from veza_schema.errors import DatabaseError, SchemaLoadError
from veza_schema.migrations import runner
from veza_schema.migrations.files import read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.migrations.incremental import generate_incremental
from veza_schema.model import Schema
from veza_schema.sql.routes import Route
from veza_schema.yaml.loader import FIELD_ROUTES

# Everything a payload could have created or changed, by name (contents differ by design: a comment).
CATALOG = """
SELECT 'namespace', nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'
UNION ALL SELECT 'relation', format('%s.%s %s %s', n.nspname, c.relname, c.relkind, c.relacl)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
UNION ALL SELECT 'function', format('%s.%s(%s) %s %s', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
                                    p.prosecdef, p.proacl)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
UNION ALL SELECT 'trigger', format('%s on %s', tgname, tgrelid::regclass) FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'constraint', format('%s on %s', conname, conrelid::regclass) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'type', typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
UNION ALL SELECT 'extension', extname FROM pg_extension
UNION ALL SELECT 'role', rolname FROM pg_roles
UNION ALL SELECT 'event trigger', evtname FROM pg_event_trigger
UNION ALL SELECT 'rule', rulename FROM pg_rewrite WHERE rulename <> '_RETURN'
UNION ALL SELECT 'policy', polname FROM pg_policy
UNION ALL SELECT 'publication', pubname FROM pg_publication
UNION ALL SELECT 'setting', array_to_string(setconfig, ',') FROM pg_db_role_setting
UNION ALL SELECT 'default acl', defaclrole::regrole::text FROM pg_default_acl
UNION ALL SELECT 'large object', oid::text FROM pg_largeobject_metadata
UNION ALL SELECT 'database', datname FROM pg_database
ORDER BY 1, 2
"""
CANARY_ROWS = f"SELECT count(*), md5(string_agg(id::text || note, ',' ORDER BY id)) FROM {CANARY}"


def _state(database: TestDatabase) -> tuple[set[tuple], list[tuple]]:
    """(the catalog by name, the canary's rows): what a payload must leave as the neutral schema does."""
    return set(database.query(CATALOG)), database.query(CANARY_ROWS)


def _sql_reaching(field: tuple[str, str], tmp_path: Path) -> list[tuple[str, str]]:
    """For each payload class, the first accepted payload whose migrations differ from the neutral value's
    (the others are proven inert without a database in test_corpus.py)."""
    spot = FIELDS[field]
    neutral = load(tmp_path, spot.yaml(spot.neutral))
    reference = generated(None, neutral)
    found: dict[str, str] = {}
    for payload_class, payload in ALL_PAYLOADS:
        if payload_class in found:
            continue
        try:
            schema = load(tmp_path, spot.yaml(payload))
        except SchemaLoadError:
            continue
        if generated(None, schema) != reference or _changes(neutral, schema):
            found[payload_class] = payload
    return list(found.items())


def _changes(before: Schema, after: Schema) -> bool:
    try:
        return bool(generated(before, after))
    except UnsafeChangeError:
        return False


# Fields whose accepted payloads reach the SQL (a literal, an expression, a body); the others never do.
SQL_FIELDS = [field for field, route in FIELD_ROUTES.items() if field in FIELDS and route in (
    Route.LITERAL, Route.FUNCTION_BODY, Route.EXPRESSION, Route.DEFAULT, Route.QUERY, Route.FUNCTION_ARGUMENTS,
    Route.FUNCTION_RETURNS)]


def _apply(database: TestDatabase, directory: Path) -> None:
    """``apply`` as a DBA runs it; PostgreSQL refusing the SQL is an acceptable outcome, not a failure."""
    with contextlib.suppress(DatabaseError):
        runner.apply(Target(database.dsn, "test"), read_migrations(directory))


def _reset(database: TestDatabase, directory: Path) -> None:
    """Back to no migration: a failed no-transaction file resolved as rolled back, then every down file."""
    target, files = Target(database.dsn, "test"), read_migrations(directory)
    failed = database.query("SELECT version FROM _sqlx_migrations WHERE NOT success") \
        if database.query("SELECT to_regclass('_sqlx_migrations')")[0][0] else []
    for (version,) in failed:
        runner.resolve(target, files, version, applied=False)
    runner.rollback(target, files, to=0, options=runner.RunOptions(allow_data_loss=True))


@pytest.mark.parametrize("field", SQL_FIELDS, ids=[f"{k}.{v}" for k, v in SQL_FIELDS])
def test_accepted_payloads_leave_the_canary_and_the_catalog_as_the_neutral_value_does(
        database_each_server: TestDatabase, tmp_path: Path, field: tuple[str, str]) -> None:
    require_extensions(database_each_server.server, "pg_trgm")
    payloads = _sql_reaching(field, tmp_path / "scan")
    database = database_each_server
    database.execute(f"CREATE TABLE {CANARY} (id integer PRIMARY KEY, note text NOT NULL);"
                     f"INSERT INTO {CANARY} SELECT i, 'row ' || i FROM generate_series(1, 100) AS i")
    database.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")  # the operator class the corpus's indexes use
    spot: Field = FIELDS[field]
    neutral = load(tmp_path / "neutral", spot.yaml(spot.neutral))
    first = tmp_path / "m0"
    generate_initial(neutral, first, "initial", FileSettings())
    _apply(database, first)
    expected = _state(database)
    _reset(database, first)
    empty = _state(database)
    assert expected[0] > empty[0], "the neutral schema did not apply"
    allowed = expected[0] | empty[0]
    for number, (payload_class, payload) in enumerate(payloads, 1):
        schema = load(tmp_path / f"p{number}", spot.yaml(payload))
        what = f"{payload_class} {payload!r}"
        # As the initial migration of a project, then as a change of an existing one:
        for path, before in (("initial", None), ("change", neutral)):
            directory = tmp_path / f"m{number}-{path}"
            generate_initial(before or schema, directory, "initial", FileSettings())
            if before is not None:
                with contextlib.suppress(UnsafeChangeError):
                    generate_incremental(before, schema, directory, "change", FileSettings(), allow_forbidden=True)
            _apply(database, directory)
            catalog, canary = _state(database)
            assert canary == expected[1], f"{what} ({path}): the canary changed"
            assert catalog <= allowed, f"{what} ({path}): objects appeared: {sorted(catalog - allowed)}"
            _reset(database, directory)
            assert _state(database) == empty, f"{what} ({path}): the rollback left objects or touched the canary"
    with psycopg.connect(database.dsn) as conn:  # the session a DBA would keep using is not redirected
        assert conn.execute("SHOW search_path").fetchone() == ('"$user", public',)
