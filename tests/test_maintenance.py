"""``veza-schema refresh`` on the applied sample schema, real CLI (partitions: tests/test_partitions*.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, TestDatabase, run_cli

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


@pytest.fixture
def applied(database: TestDatabase, tmp_path: Path) -> TestDatabase:
    migrations = tmp_path / "migrations"
    result = run_cli("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    return database


# -- refresh -------------------------------------------------------------------------------------
def test_refresh_is_concurrent_and_sees_new_rows(applied: TestDatabase) -> None:
    ((account,),) = applied.query("INSERT INTO accounts (email) VALUES ('a@example.com') RETURNING id")
    applied.execute("INSERT INTO events (account_id) VALUES (%s), (%s)", (account, account))
    # A reader holding the view open: only CONCURRENTLY (EXCLUSIVE lock) can proceed past it.
    with psycopg.connect(applied.dsn) as reader:
        reader.execute("SELECT count(*) FROM account_event_counts").fetchone()
        result = run_cli("refresh", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE), timeout=60)
        reader.rollback()
    assert result.exit_code == 0, result.output
    assert "refreshed account_event_counts concurrently in " in result.stdout
    assert "Refreshed 1 materialized view(s)" in result.stdout
    assert applied.query("SELECT event_count FROM account_event_counts WHERE account_id = %s",
                         (account,)) == [(2,)]


def test_refresh_a_named_view(applied: TestDatabase) -> None:
    result = run_cli("refresh", "account_event_counts", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "refreshed account_event_counts concurrently" in result.stdout


def test_refresh_of_an_unknown_view_exits_2_naming_it(applied: TestDatabase) -> None:
    result = run_cli("refresh", "no_such_view", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 2, result.output
    assert "no_such_view" in result.stderr
    assert "account_event_counts" in result.stderr  # what the schema does have


def test_refresh_of_a_plain_view_exits_2(applied: TestDatabase) -> None:
    result = run_cli("refresh", "active_accounts", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 2, result.output
    assert "not a materialized view" in result.stderr and "active_accounts" in result.stderr


def test_refresh_without_unique_index_is_refused_unless_no_concurrently(applied: TestDatabase,
                                                                       tmp_path: Path) -> None:
    schema_dir = tmp_path / "schema"
    shutil.copytree(SAMPLE, schema_dir)
    events = schema_dir / "events.yaml"
    text = events.read_text()
    cut = text.index("    indexes:\n      idx_account_event_counts")
    events.write_text(text[:cut])
    result = run_cli("refresh", "--dsn", applied.dsn, "--schema-dir", str(schema_dir))
    assert result.exit_code == 2, result.output
    assert "account_event_counts" in result.stderr and "unique index" in result.stderr
    assert "--no-concurrently" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    result = run_cli("refresh", "--no-concurrently", "--dsn", applied.dsn, "--schema-dir", str(schema_dir))
    assert result.exit_code == 0, result.output
    assert "refreshed account_event_counts in " in result.stdout


def test_refresh_failure_exits_3_with_one_line(database: TestDatabase) -> None:
    result = run_cli("refresh", "--dsn", database.dsn, "--schema-dir", str(SAMPLE))  # nothing applied
    assert result.exit_code == 3, result.output
    assert "account_event_counts" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
