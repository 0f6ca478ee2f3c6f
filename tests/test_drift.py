"""`veza-schema diff` against a real server: no drift after apply; each manual change is reported
exactly, alone, and `diff --format sql` reconciles it.

The database is built the way users build it (``generate`` then ``apply`` through the CLI),
so the SQLx history table is there and must not count as drift. The shadow database is
built on the test server (``--shadow-dsn``), so no embedded server is started.

An added enum value cannot be removed in place (PostgreSQL has no DROP VALUE): the planner
rebuilds the type, which rewrites every table using it, so ``--format sql`` prints those
statements last, under a warning that they are not online-safe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, CliResult, Server, TestDatabase, fresh_database, run_cli
from veza_schema.sql.split import split_statements

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"
VEZA = REPO_ROOT / "schema"


@pytest.fixture(scope="module")
def sample_migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sample_migrations")
    result = run_cli("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(directory))
    assert result.exit_code == 0, result.output
    return directory


def apply(database: TestDatabase, migrations: Path) -> None:
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output


def diff(database: TestDatabase, *args: str, schema_dir: Path = SAMPLE) -> CliResult:
    return run_cli("diff", "--dsn", database.dsn, "--schema-dir", str(schema_dir),
                   "--shadow-dsn", database.server.admin_dsn, *args)


def reported(database: TestDatabase, *args: str, schema_dir: Path = SAMPLE
             ) -> tuple[int, list[tuple[str, str, str]], dict]:
    result = diff(database, "--format", "json", *args, schema_dir=schema_dir)
    assert result.exit_code in (0, 1), result.output
    document = json.loads(result.stdout)
    return result.exit_code, [(c["change"], c["drift"], c["name"]) for c in document["changes"]], document


def run_script(database: TestDatabase, script: str) -> None:
    """What psql does with a script: statement by statement, in autocommit."""
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        for statement in split_statements(script):
            conn.execute(statement.text.encode())


@dataclass(frozen=True)
class Case:
    sql: str
    expected: tuple[str, str, str]  # (change, drift, name) as in the JSON document
    online_safe: bool = True


CASES = {
    "drop an index": Case("DROP INDEX idx_accounts_team_id_btree",
                          ("CreateIndex", "missing", "idx_accounts_team_id_btree")),
    "add a column": Case("ALTER TABLE accounts ADD COLUMN nickname text",
                         ("DropColumn", "extra", "nickname")),
    "change a default": Case("ALTER TABLE accounts ALTER COLUMN role SET DEFAULT 'admin'",
                             ("AlterColumnDefault", "different", "role")),
    "drop a CHECK": Case("ALTER TABLE accounts DROP CONSTRAINT chk_accounts_email_format",
                         ("AddCheck", "missing", "chk_accounts_email_format")),
    "add a table": Case("CREATE TABLE scratch (id integer PRIMARY KEY, note text)",
                        ("DropTable", "extra", "scratch")),
    "change an FK's ON DELETE": Case(
        "ALTER TABLE teams DROP CONSTRAINT fk_teams_accounts, ADD CONSTRAINT fk_teams_accounts "
        "FOREIGN KEY (owner_id) REFERENCES accounts (id) ON DELETE CASCADE",
        ("ReplaceForeignKey", "different", "fk_teams_accounts")),
    "add an enum value": Case("ALTER TYPE account_role ADD VALUE 'guest'",
                              ("RecreateEnum", "different", "account_role"), online_safe=False),
}


def test_no_drift_after_apply(database: TestDatabase, sample_migrations: Path) -> None:
    apply(database, sample_migrations)
    result = diff(database)
    assert result.exit_code == 0, result.output
    assert "No drift." in result.stdout
    assert "shadow database" in result.stdout


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_each_manual_change_is_reported_alone_and_reconciled(database: TestDatabase, sample_migrations: Path,
                                                             case: Case) -> None:
    apply(database, sample_migrations)
    database.execute(case.sql)

    code, changes, document = reported(database)
    assert code == 1
    assert changes == [case.expected]
    assert document["drift"] is True and document["version"] == 1

    sql = diff(database, "--format", "sql")
    assert sql.exit_code == 1, sql.output
    run_script(database, sql.stdout)
    after = diff(database, "--format", "json")
    assert after.exit_code == 0, after.stdout
    assert json.loads(after.stdout)["changes"] == []
    assert ("WARNING: included, but not online-safe" in sql.stdout) == (not case.online_safe)


def test_text_output_is_a_tree_grouped_by_table(database: TestDatabase, sample_migrations: Path) -> None:
    apply(database, sample_migrations)
    database.execute("DROP INDEX idx_accounts_team_id_btree; ALTER TABLE teams ADD COLUMN motto text")
    result = diff(database)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any("table accounts (accounts)" in line for line in lines)
    assert any("+ index idx_accounts_team_id_btree on accounts" in line for line in lines)
    assert any("- column teams.motto text" in line for line in lines)
    assert "2 difference(s): 1 missing, 1 extra, 0 different" in result.stdout


def test_managed_and_excluded_objects_are_not_drift(database: TestDatabase, sample_migrations: Path) -> None:
    apply(database, sample_migrations)  # leaves _sqlx_migrations, partitions and veza_ensure_partitions
    database.execute("CREATE FUNCTION veza_local_helper() RETURNS integer LANGUAGE sql AS 'SELECT 1';"
                     "CREATE TABLE legacy_import (id integer); CREATE INDEX idx_accounts_legacy ON accounts (email);"
                     "SELECT veza_ensure_partitions('events', 'month', 2)")
    code, changes, _ = reported(database)
    assert code == 1
    assert sorted(changes) == [("DropIndex", "extra", "idx_accounts_legacy"), ("DropTable", "extra", "legacy_import")]
    code, changes, document = reported(database, "--exclude", "legacy_*", "--exclude", "*_legacy")
    assert (code, changes) == (0, [])
    assert document["excluded"] == ["legacy_*", "*_legacy"]


def test_offline_mode_says_so_and_agrees(database: TestDatabase, sample_migrations: Path) -> None:
    apply(database, sample_migrations)
    clean = diff(database, "--offline")
    assert clean.exit_code == 0, clean.output
    assert "offline" in clean.stdout and "sqlglot" in clean.stdout
    database.execute("ALTER TABLE accounts ALTER COLUMN role SET DEFAULT 'admin'")
    code, changes, document = reported(database, "--offline")
    assert document["mode"] == "offline"
    assert (code, changes) == (1, [("AlterColumnDefault", "different", "role")])


def test_whole_veza_schema_has_no_drift_after_apply(database: TestDatabase, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    generated = run_cli("generate", "--schema-dir", str(VEZA), "--migrations-dir", str(migrations))
    assert generated.exit_code == 0, generated.output
    apply(database, migrations)
    for mode in ((), ("--offline",)):
        code, changes, _ = reported(database, *mode, schema_dir=VEZA)
        assert (code, changes) == (0, []), mode


def test_errors_have_their_exit_codes(database: TestDatabase, pg_server: Server, tmp_path: Path) -> None:
    assert run_cli("diff", "--dsn", database.dsn, "--format", "yaml", "--schema-dir", str(SAMPLE)).exit_code == 2
    assert run_cli("diff", "--dsn", database.dsn, "--schema-dir", str(tmp_path)).exit_code == 2
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    assert run_cli("diff", "--dsn", unreachable, "--schema-dir", str(SAMPLE), "--offline").exit_code == 3
    assert run_cli("diff", "--dsn", database.dsn, "--schema-dir", str(SAMPLE),
                   "--shadow-dsn", unreachable).exit_code == 3


def test_shadow_on_another_major_version_is_flagged(pg15_server: Server, pg_server: Server,
                                                    sample_migrations: Path) -> None:
    """A PostgreSQL 15 database, its shadow on PostgreSQL 18: said in the output; the sample has no drift."""
    for database in fresh_database(pg15_server):
        apply(database, sample_migrations)
        result = run_cli("diff", "--dsn", database.dsn, "--schema-dir", str(SAMPLE), "--shadow-dsn",
                         pg_server.admin_dsn)
        assert "note: the shadow server runs PostgreSQL 18, the database 15" in result.stdout
        assert result.exit_code == 0, result.stdout
        same = run_cli("diff", "--dsn", database.dsn, "--schema-dir", str(SAMPLE), "--shadow-dsn",
                       pg15_server.admin_dsn)
        assert same.exit_code == 0 and "note:" not in same.stdout, same.stdout


def test_partitions_made_ahead_by_maintenance_are_not_drift() -> None:
    from veza_schema.drift.compare import compare
    from veza_schema.model import Column, PartitionSpec, Schema, Table

    def schema(premake: int) -> Schema:
        spec = PartitionSpec("range", ("at",), "month", premake, True)
        return Schema(tables={"log": Table("log", (Column("at", "timestamp with time zone"),), partition=spec)})

    assert compare(schema(6), schema(3)) == []
    assert compare(schema(1), schema(3)) != []
