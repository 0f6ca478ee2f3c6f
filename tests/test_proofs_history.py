"""The history table is exactly SQLx's ``_sqlx_migrations``, so a Rust service can share it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import TestDatabase, run_cli

# sqlx-core's CREATE TABLE for PostgreSQL.
SQLX_COLUMNS = [
    ("version", "bigint", "NO", None),
    ("description", "text", "NO", None),
    ("installed_on", "timestamp with time zone", "NO", "now()"),
    ("success", "boolean", "NO", None),
    ("checksum", "bytea", "NO", None),
    ("execution_time", "bigint", "NO", None),
]


def applied(database: TestDatabase, tmp_path: Path, sql: str) -> None:
    migrations = tmp_path / "m"
    migrations.mkdir()
    (migrations / "1_slow.up.sql").write_text(sql)
    assert run_cli("hash", "--migrations-dir", str(migrations)).exit_code == 0
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output


def test_history_table_has_sqlx_columns_and_primary_key(database: TestDatabase, tmp_path: Path) -> None:
    applied(database, tmp_path, "SELECT 1;\n")
    columns = database.query("SELECT column_name, data_type, is_nullable, column_default "
                             "FROM information_schema.columns WHERE table_name = '_sqlx_migrations' "
                             "ORDER BY ordinal_position")
    assert columns == SQLX_COLUMNS
    key = database.query("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                         "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '_sqlx_migrations'::regclass "
                         "AND i.indisprimary")
    assert key == [("version",)]


def test_execution_time_is_in_nanoseconds_like_sqlx(database: TestDatabase, tmp_path: Path) -> None:
    applied(database, tmp_path, "SELECT pg_sleep(0.05);\n")
    [(nanoseconds,)] = database.query("SELECT execution_time FROM _sqlx_migrations")
    assert nanoseconds >= 50_000_000  # at least the 50 ms the file sleeps; in ms it would be ~50


def test_resolve_applied_records_the_checksum_of_the_fixed_file(database: TestDatabase, tmp_path: Path) -> None:
    """A no-transaction file failed; it is fixed and completed by hand: the history must take the fixed file
    for applied (its checksum), or every later status would call it modified."""
    migrations = tmp_path / "m"
    migrations.mkdir()
    up = migrations / "1_two_tables.up.sql"
    up.write_text("-- no-transaction\nCREATE TABLE a (id integer);\nINSERT INTO nowhere VALUES (1);\n")
    assert run_cli("hash", "--migrations-dir", str(migrations)).exit_code == 0
    dirs = ("--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert run_cli("apply", *dirs).exit_code == 3
    up.write_text("-- no-transaction\nCREATE TABLE a (id integer);\nCREATE TABLE b (id integer);\n")
    assert run_cli("hash", "--migrations-dir", str(migrations)).exit_code == 0
    database.execute("CREATE TABLE b (id integer)")
    result = run_cli("resolve", "1", "--applied", *dirs)
    assert result.exit_code == 0, result.output
    status = run_cli("status", *dirs)
    assert status.exit_code == 0, status.output
