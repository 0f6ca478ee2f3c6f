"""Roles, grants, default privileges and SECURITY DEFINER functions with pinned settings, as the
Veza schema declares them for its application role and audit trigger: YAML -> generate -> apply
-> the same model introspected, ``diff`` empty, and the privileges doing what they say."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import TestDatabase, invoke, mismatches
from veza_schema.db.introspect import IntrospectionStats, introspect
from veza_schema.sql.normalize import normalize_schema
from veza_schema.yaml.loader import load_schema

SUFFIX = uuid.uuid4().hex[:8]
APP, WRITER, OWNER = f"app_{SUFFIX}", f"writer_{SUFFIX}", f"owner_{SUFFIX}"

CORE = f"""module: core
roles:
  {APP}: {{login: true, connection_limit: 20, comment: The API reads}}
  {WRITER}: {{member_of: [{APP}]}}
  {OWNER}: {{}}
tables:
  tracks:
    columns:
      id:    {{type: bigint, identity: always, primary_key: true}}
      title: {{type: text}}
    triggers:
      trg_tracks_audit: {{function: audit.record_change, timing: after, events: [insert, update, delete]}}
    grants: {{{APP}: [select], {WRITER}: [select, insert, update]}}
default_privileges:
  - {{for_role: {OWNER}, schema: public, "on": tables, grants: {{{APP}: [select]}}}}
"""

AUDIT = f"""module: audit
schema: {{name: audit, comment: Who changed what, grants: {{{APP}: [usage]}}}}
functions:
  record_change:
    returns: trigger
    language: plpgsql
    security_definer: true
    settings: {{search_path: "pg_catalog, audit"}}
    grants: {{{WRITER}: [execute]}}
    body: |
      BEGIN
          INSERT INTO audit.changes (table_name, operation) VALUES (TG_TABLE_NAME, TG_OP);
          RETURN NULL;
      END;
tables:
  changes:
    columns:
      id:         {{type: bigint, identity: always, primary_key: true}}
      table_name: {{type: text}}
      operation:  {{type: text}}
      changed_at: {{type: timestamptz, default: now()}}
"""


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("privileges_schema")
    (root / "core.yaml").write_text(CORE, encoding="utf-8")
    (root / "audit.yaml").write_text(AUDIT, encoding="utf-8")
    return root


@pytest.fixture
def applied(database_each_server: TestDatabase, schema_dir: Path, tmp_path: Path) -> Iterator[TestDatabase]:
    """The schema generated and applied; its roles dropped afterwards (they are cluster-wide)."""
    migrations = tmp_path / "migrations"
    generated = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations),
                       "--no-verify")  # a minimal schema: lint would ask for uuid keys and timestamps
    assert generated.exit_code == 0, generated.output
    result = invoke("apply", "--dsn", database_each_server.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    try:
        yield database_each_server
    finally:
        with psycopg.connect(database_each_server.dsn, autocommit=True) as conn:
            for role in (APP, WRITER, OWNER):
                conn.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(database_each_server.server.admin_dsn, autocommit=True) as conn:
            for role in (WRITER, APP, OWNER):
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_introspected_model_is_the_yaml_model(applied: TestDatabase, schema_dir: Path) -> None:
    loaded = load_schema(schema_dir)
    stats = IntrospectionStats()
    with applied.connect() as conn:
        introspected = introspect(conn, stats=stats, roles=loaded.roles)
    assert stats.unmodeled == []
    assert mismatches(normalize_schema(loaded), normalize_schema(introspected)) == []
    function = introspected.functions["audit.record_change"]
    assert function.security_definer and dict(function.settings) == {"search_path": "pg_catalog, audit"}
    assert introspected.tables["tracks"].grants == {APP: ("select",), WRITER: ("insert", "select", "update")}


@pytest.mark.parametrize("mode", [(), ("--offline",)], ids=["shadow", "offline"])
def test_diff_finds_nothing_to_do(applied: TestDatabase, schema_dir: Path, mode: tuple[str, ...]) -> None:
    result = invoke("diff", "--dsn", applied.dsn, "--schema-dir", str(schema_dir), "--shadow-dsn",
                    applied.server.admin_dsn, *mode)
    assert result.exit_code == 0, result.output


def test_the_application_role_reads_but_cannot_write(applied: TestDatabase) -> None:
    with applied.connect() as conn:
        conn.execute(f'SET ROLE "{APP}"')
        assert conn.execute("SELECT count(*) FROM tracks").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO tracks (title) VALUES ('x')")


def test_the_security_definer_trigger_audits_what_the_writer_cannot_touch(applied: TestDatabase) -> None:
    with applied.connect() as conn:
        conn.execute(f'SET ROLE "{WRITER}"')
        conn.execute("INSERT INTO tracks (title) VALUES ('Blue in Green')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM audit.changes")
    assert applied.query("SELECT table_name, operation FROM audit.changes") == [("tracks", "INSERT")]


def test_default_privileges_reach_tables_the_owner_creates_later(applied: TestDatabase) -> None:
    with applied.connect() as conn:
        conn.execute(f'GRANT CREATE ON SCHEMA public TO "{OWNER}"')
        conn.execute(f'SET ROLE "{OWNER}"')
        conn.execute("CREATE TABLE later (id int)")
        conn.execute(f'SET ROLE "{APP}"')
        assert conn.execute("SELECT count(*) FROM later").fetchone() == (0,)
