"""``veza-schema refresh`` and ``veza-schema partitions`` on the applied sample schema, real CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, TestDatabase, run_cli
from veza_schema.managed import planned_partitions
from veza_schema.sql.render import partition_function

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


@pytest.fixture
def applied(database: TestDatabase, tmp_path: Path) -> TestDatabase:
    migrations = tmp_path / "migrations"
    result = run_cli("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    return database


def _partitions(database: TestDatabase) -> list[str]:
    return [r[0] for r in database.query(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass ORDER BY 1")]


def _month(database: TestDatabase, ahead: int) -> str:
    """events_pYYYYMM of the month ``ahead`` months from now, by the database's clock."""
    ((suffix,),) = database.query("SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') "
                                  "+ %s * interval '1 month', 'YYYYMM')", (ahead,))
    return f"events_p{suffix}"


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


# -- partitions ---------------------------------------------------------------------------------
def test_partitions_reports_zero_when_up_to_date(applied: TestDatabase) -> None:
    before = _partitions(applied)
    result = run_cli("partitions", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "events (month, 2 ahead): up to date, 0 partition(s) created" in result.stdout
    assert _partitions(applied) == before


def test_partitions_creates_the_next_period_when_premake_is_raised(applied: TestDatabase) -> None:
    before = _partitions(applied)
    result = run_cli("partitions", "--premake", "3", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "events (month, 3 ahead): 1 partition(s) created" in result.stdout
    assert sorted(set(_partitions(applied)) - set(before)) == [_month(applied, 3)]
    result = run_cli("partitions", "--premake", "3", "--dsn", applied.dsn, "--schema-dir", str(SAMPLE))
    assert "0 partition(s) created" in result.stdout


def test_partitions_dry_run_lists_and_creates_nothing(applied: TestDatabase) -> None:
    before = _partitions(applied)
    result = run_cli("partitions", "--dry-run", "--premake", "4", "--dsn", applied.dsn,
                     "--schema-dir", str(SAMPLE))
    assert result.exit_code == 0, result.output
    assert "events (month, 4 ahead): would create 2 partition(s)" in result.stdout
    assert f"    {_month(applied, 3)} FOR VALUES FROM (" in result.stdout
    assert f"    {_month(applied, 4)} FOR VALUES FROM (" in result.stdout
    assert _month(applied, 2) not in result.stdout
    assert _partitions(applied) == before


def test_partitions_without_the_migrations_exits_3(database: TestDatabase) -> None:
    result = run_cli("partitions", "--dsn", database.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 3, result.output
    assert "apply the migrations first" in result.stderr


@pytest.mark.parametrize("interval", ["day", "week", "month", "year"])
def test_dry_run_rule_matches_the_managed_function(database: TestDatabase, interval: str) -> None:
    """The Python plan (dry run) names exactly the partitions veza_ensure_partitions creates."""
    database.execute(partition_function())
    database.execute(f"CREATE TABLE t_{interval} (at timestamptz NOT NULL) PARTITION BY RANGE (at)")
    ((now, created),) = database.query("SELECT now(), veza_ensure_partitions(%s, %s, 2)",
                                       (f"t_{interval}", interval))
    assert created == 3
    with database.connect() as conn:
        conn.execute("SET timezone TO 'UTC'")  # bounds printed in UTC, as the plan computes them
        made = conn.execute("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass ORDER BY 1""",
                            (f"t_{interval}",)).fetchall()
    planned = planned_partitions(f"t_{interval}", interval, 2, now)
    assert [name for name, _ in made] == [p.name for p in planned]
    for (_, bound), plan in zip(made, planned, strict=True):
        assert f"FROM ('{plan.start:%Y-%m-%d}" in bound and f"TO ('{plan.end:%Y-%m-%d}" in bound
