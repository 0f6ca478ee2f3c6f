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
