"""Proofs on a real server that incremental migrations do what they claim.

For every row of SCENARIOS: build the database from the old YAML (``generate`` + ``apply``
through the CLI), fill it with rows, change the YAML, ``generate`` and ``apply`` the new
migration(s), and check that the schema equals a database built from scratch from the new
YAML (both read back with :func:`veza_schema.db.introspect.introspect`); then ``rollback`` the
new files and check the schema equals the old one again, with the rows still there; and
``generate`` once more, which must write nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import BASE_YAML, ROWS, SCENARIOS, Scenario, in_table
from tests.helpers import Server, TestDatabase, fresh_database, run_cli
from veza_schema.db.dsn import Target
from veza_schema.db.introspect import introspect
from veza_schema.migrations import runner
from veza_schema.migrations.files import read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.model import Schema
from veza_schema.yaml.loader import load_schema


@pytest.fixture
def reference(pg_server: Server) -> Iterator[TestDatabase]:
    """A second fresh database, built from scratch from the new YAML."""
    yield from fresh_database(pg_server)


def schema_of(database: TestDatabase) -> Schema:
    with database.connect() as conn:
        return introspect(conn)


def cli_ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


def row_count(database: TestDatabase) -> int:
    return int(database.query("SELECT count(*) FROM users")[0][0])


# The proofs are about schemas: dropping a table or rolling back an added column with rows in
# it is the point of some scenarios, so the data-loss guard of the runner is lifted here.
LOSSY = runner.RunOptions(allow_data_loss=True)


def apply(database: TestDatabase, migrations: Path, via_cli: bool) -> None:
    if via_cli:
        cli_ok("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations), "--allow-data-loss")
    else:
        runner.apply(Target(database.dsn, "test"), read_migrations(migrations), options=LOSSY)


def rollback(database: TestDatabase, migrations: Path, via_cli: bool) -> None:
    """One rollback: the last change, every file the scenario's `generate` wrote."""
    if via_cli:
        cli_ok("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations), "--allow-data-loss")
    else:
        runner.rollback(Target(database.dsn, "test"), read_migrations(migrations), options=LOSSY)


def prove(scenario: Scenario, database: TestDatabase, reference: TestDatabase, tmp_path: Path,
          via_cli: bool = False) -> None:
    """The proof of one scenario; ``generate`` always runs through the CLI."""
    schema_dir, migrations = tmp_path / "schema", tmp_path / "migrations"
    schema_dir.mkdir()
    old_yaml = scenario.old(BASE_YAML)
    (schema_dir / "app.yaml").write_text(old_yaml)
    # The scenarios' tables are minimal: generate's lint gate is not what a proof is about.
    dirs = ("--schema-dir", str(schema_dir), "--migrations-dir", str(migrations), "--no-verify")
    cli_ok("generate", *dirs)
    apply(database, migrations, via_cli)
    old_schema = schema_of(database)
    database.execute(scenario.rows)
    rows = row_count(database)

    new_yaml = scenario.change(old_yaml)
    assert new_yaml != old_yaml
    (schema_dir / "app.yaml").write_text(new_yaml)
    before = {m.version for m in read_migrations(migrations)}
    cli_ok("generate", *dirs, "--name", scenario.id, *scenario.flags)
    new_files = [m for m in read_migrations(migrations) if m.version not in before]
    assert len(new_files) == scenario.files, [m.label for m in new_files]
    apply(database, migrations, via_cli)

    generate_initial(load_schema(schema_dir), tmp_path / "reference", "initial", FileSettings())
    runner.apply(Target(reference.dsn, "test"), read_migrations(tmp_path / "reference"))
    assert schema_of(database) == schema_of(reference)
    assert row_count(database) == rows

    rollback(database, migrations, via_cli)
    assert schema_of(database) == old_schema
    assert row_count(database) == rows

    output = cli_ok("generate", *dirs)
    assert "Nothing to generate" in output
    assert {m.version for m in read_migrations(migrations)} == before | {m.version for m in new_files}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(scenario: Scenario, database: TestDatabase, reference: TestDatabase, tmp_path: Path) -> None:
    prove(scenario, database, reference, tmp_path)


def test_scenario_through_the_cli(database: TestDatabase, reference: TestDatabase, tmp_path: Path) -> None:
    """One multi-file scenario with apply and rollback through the CLI too (sum file included)."""
    scenario = next(s for s in SCENARIOS if s.id == "add_foreign_key_to_populated_table")
    prove(scenario, database, reference, tmp_path, via_cli=True)


def test_failed_concurrent_build_is_cleaned_and_retried(database: TestDatabase, tmp_path: Path) -> None:
    """A UNIQUE build that fails (duplicates) leaves an INVALID index; after the data is fixed,
    ``resolve --rolled-back`` + ``apply`` re-runs the file, which drops the leftover and rebuilds."""
    schema_dir, migrations = tmp_path / "schema", tmp_path / "migrations"
    schema_dir.mkdir()
    (schema_dir / "app.yaml").write_text(BASE_YAML)
    # The scenarios' tables are minimal: generate's lint gate is not what a proof is about.
    dirs = ("--schema-dir", str(schema_dir), "--migrations-dir", str(migrations), "--no-verify")
    cli_ok("generate", *dirs)
    target = Target(database.dsn, "test")
    runner.apply(target, read_migrations(migrations))
    database.execute(ROWS + "INSERT INTO users (email) VALUES ('user1@example.com');")
    (schema_dir / "app.yaml").write_text(in_table("users", "unique", "      uq_users_email: [email]\n")(BASE_YAML))
    cli_ok("generate", *dirs, "--name", "unique_email", "--rfc", "RFC-0001")
    [pending] = [m for m in read_migrations(migrations) if m.name == "unique_email"]
    assert pending.no_transaction

    with pytest.raises(runner.MigrationFailed, match="could not create unique index"):
        runner.apply(target, read_migrations(migrations))
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('uq_users_email')"
    assert database.query(valid) == [(False,)]
    assert database.query("SELECT success FROM _sqlx_migrations WHERE version = %s", (pending.version,)) == \
        [(False,)]

    database.execute("DELETE FROM users WHERE ctid = (SELECT max(ctid) FROM users WHERE email = "
                     "'user1@example.com')")
    runner.resolve(target, read_migrations(migrations), pending.version, applied=False)
    runner.apply(target, read_migrations(migrations))
    assert database.query(valid) == [(True,)]
    assert database.query("SELECT contype FROM pg_constraint WHERE conname = 'uq_users_email'") == [("u",)]
