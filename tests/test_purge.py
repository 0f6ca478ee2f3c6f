"""`veza-schema purge`: expired rows of plain high-volume tables, deleted in bounded batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import CliResult, TestDatabase, invoke
from veza_schema.errors import SchemaLoadError
from veza_schema.maintenance.purge import job_statement
from veza_schema.model import Purge, Retention
from veza_schema.yaml.loader import load_schema

LOGS_YAML = """\
module: logs
tables:
  deliveries:
    columns:
      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}
      created_at: {type: timestamptz, default: now()}
    indexes:
      idx_deliveries_created_at_btree: {columns: [created_at]}
    purge: {column: created_at, after: 30 days}
  attempts:
    columns:
      id:          {type: uuid, primary_key: true, default: gen_random_uuid()}
      delivery_id: {type: uuid, references: deliveries.id, on_delete: cascade}
"""


@pytest.fixture
def logs(database: TestDatabase, tmp_path: Path) -> tuple[TestDatabase, Path]:
    schema_dir = tmp_path / "schema"
    schema_dir.mkdir()
    (schema_dir / "logs.yaml").write_text(LOGS_YAML)
    assert invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(tmp_path / "m"),
                  "--no-verify").exit_code == 0  # a minimal table: lint's gate is not what this is about
    assert invoke("apply", "--dsn", database.dsn, "--migrations-dir", str(tmp_path / "m")).exit_code == 0
    now = datetime.now(UTC)
    database.execute("INSERT INTO deliveries (created_at) "
                     "SELECT %s - g * interval '1 day' FROM generate_series(0, 49) g", (now,))
    database.execute("INSERT INTO attempts (delivery_id) SELECT id FROM deliveries")
    return database, schema_dir


def _purge(logs: tuple[TestDatabase, Path], *args: str) -> CliResult:
    database, schema_dir = logs
    return invoke("purge", "--dsn", database.dsn, "--schema-dir", str(schema_dir), *args)


def test_purge_deletes_only_expired_rows_in_batches(logs: tuple[TestDatabase, Path]) -> None:
    database, _ = logs
    result = _purge(logs, "--batch-size", "7")
    assert result.exit_code == 0, result.output
    assert "deliveries (created_at older than 30 days): deleted 20 row(s) in 3 batch(es)" in result.stdout
    assert database.query("SELECT count(*), min(created_at) > now() - interval '31 days' FROM deliveries") \
        == [(30, True)]
    assert database.query("SELECT count(*) FROM attempts") == [(30,)]  # a real deletion: ON DELETE CASCADE


def test_purge_dry_run_counts_and_deletes_nothing(logs: tuple[TestDatabase, Path]) -> None:
    database, _ = logs
    result = _purge(logs, "--dry-run", "--as-of", f"{datetime.now(UTC) + timedelta(days=10):%Y-%m-%d}")
    assert result.exit_code == 0, result.output
    assert "would delete 29 row(s)" in result.stdout  # older than 30 days before midnight in 10 days: 21..49
    assert database.query("SELECT count(*) FROM deliveries") == [(50,)]


def test_a_table_without_purge_is_a_usage_error(logs: tuple[TestDatabase, Path]) -> None:
    result = _purge(logs, "attempts")
    assert result.exit_code == 2
    assert "no purge declared for: attempts (tables with one: deliveries)" in result.stderr


def test_the_pg_cron_job_deletes_one_bounded_batch(logs: tuple[TestDatabase, Path]) -> None:
    database, schema_dir = logs
    table = load_schema(schema_dir).tables["deliveries"]
    with database.connect() as conn:
        conn.execute(job_statement(table, 5))
    assert database.query("SELECT count(*) FROM deliveries") == [(45,)]


@pytest.mark.parametrize(("purge", "message"), [
    ("{column: created_at, after: 30 days}", None),
    ("{column: id, after: 30 days}", "column of purge of table deliveries must be a timestamptz or date column"),
    ("{column: created_at, after: soon}", "after of purge of table deliveries must be a count and a unit"),
    ("{after: 30 days}", "purge of table deliveries needs column"),
    ("{column: created_at, after: 30 days, where: \"true\"}", "unknown key 'where' in purge of table deliveries"),
])
def test_purge_is_checked_at_load(tmp_path: Path, purge: str, message: str | None) -> None:
    (tmp_path / "logs.yaml").write_text(LOGS_YAML.replace("{column: created_at, after: 30 days}", purge))
    if message is None:
        assert load_schema(tmp_path).tables["deliveries"].purge == Purge("created_at", Retention(30, "day"))
        return
    with pytest.raises(SchemaLoadError) as raised:
        load_schema(tmp_path)
    assert "logs.yaml:9:" in str(raised.value) and message in str(raised.value)


def test_a_partitioned_table_declares_retention_not_purge(tmp_path: Path) -> None:
    text = LOGS_YAML.replace("      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}\n",
                             "      id:         {type: uuid, default: gen_random_uuid()}\n", 1)
    text = text.replace("    purge:", "    primary_key: [id, created_at]\n    partition_by: {range: [created_at]}\n"
                                     "    purge:")
    (tmp_path / "logs.yaml").write_text(text)
    with pytest.raises(SchemaLoadError) as raised:
        load_schema(tmp_path)
    assert "declare partition_by.retention instead" in str(raised.value)
