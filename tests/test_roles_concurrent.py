"""Roles are cluster-wide: migrations of two databases of one cluster may create the same role at once.

The second ``CREATE ROLE`` waits for the first transaction and then fails with a unique violation;
the generated DO block takes that as "created meanwhile" and goes on, and sets the attributes only
when they differ (two concurrent ``ALTER ROLE`` of one role fail with "tuple concurrently updated").
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import CliResult, Server, TestDatabase, fresh_database, invoke, run_cli, wait_for

ROLE = f"app_{uuid.uuid4().hex[:8]}"
SCHEMA = f"""module: core
roles:
  {ROLE}: {{login: true, connection_limit: 7, comment: The API}}
tables:
  notes:
    columns:
      id: {{type: bigint, identity: always, primary_key: true}}
    grants: {{{ROLE}: [select]}}
"""


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    (schema_dir / "core.yaml").write_text(SCHEMA, encoding="utf-8")
    result = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(tmp_path / "migrations"),
                    "--no-verify")  # a minimal schema: lint would ask for uuid keys and timestamps
    assert result.exit_code == 0, result.output
    return tmp_path / "migrations"


@pytest.fixture
def two_databases(pg_server: Server) -> Iterator[tuple[TestDatabase, TestDatabase]]:
    try:
        for first in fresh_database(pg_server):
            for second in fresh_database(pg_server):
                yield first, second
    finally:  # the databases holding its grants are gone: the cluster-wide role can go too
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")  # noqa: S608 - a generated name


def _waiting_on_a_lock(server: Server, database: str) -> bool:
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
                           (database,)).fetchone()
    return bool(row and row[0])


def test_a_role_created_meanwhile_by_another_database_migration_is_taken_as_is(
        pg_server: Server, two_databases: tuple[TestDatabase, TestDatabase], migrations: Path) -> None:
    first, second = two_databases
    result: list[CliResult] = []
    with psycopg.connect(first.dsn) as other_migration:
        # Another migration has created the role, and not committed yet.
        other_migration.execute(f"CREATE ROLE {ROLE} LOGIN CONNECTION LIMIT 7")  # noqa: S608
        applying = threading.Thread(target=lambda: result.append(
            run_cli("apply", "--dsn", second.dsn, "--migrations-dir", str(migrations))))
        applying.start()
        wait_for(lambda: _waiting_on_a_lock(pg_server, second.name), "the second migration to wait for the first")
        other_migration.commit()
    applying.join(timeout=120)
    assert result and result[0].exit_code == 0, result[0].output if result else "apply did not finish"
    with psycopg.connect(pg_server.admin_dsn) as conn:
        row = conn.execute("SELECT rolcanlogin, rolconnlimit, shobj_description(oid, 'pg_authid') FROM pg_roles "
                           "WHERE rolname = %s", (ROLE,)).fetchone()
    assert row == (True, 7, "The API")


def test_a_role_already_as_declared_is_not_altered_again(
        pg_server: Server, two_databases: tuple[TestDatabase, TestDatabase], migrations: Path) -> None:
    first, second = two_databases
    assert run_cli("apply", "--dsn", first.dsn, "--migrations-dir", str(migrations)).exit_code == 0
    result: list[CliResult] = []
    with psycopg.connect(pg_server.admin_dsn) as holder:
        # Another session is altering the role (uncommitted): a second ALTER ROLE would wait for it,
        # then fail with "tuple concurrently updated".
        holder.execute(f"ALTER ROLE {ROLE} CONNECTION LIMIT 7")  # noqa: S608 - a generated name
        applying = threading.Thread(target=lambda: result.append(
            run_cli("apply", "--dsn", second.dsn, "--migrations-dir", str(migrations))))
        applying.start()
        applying.join(timeout=60)
        finished_while_held = not applying.is_alive()
    applying.join(timeout=120)
    assert finished_while_held, "apply waited for the other session's ALTER ROLE"
    assert result[0].exit_code == 0, result[0].output
