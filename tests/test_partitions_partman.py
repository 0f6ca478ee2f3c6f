"""``backend: partman``: what the migration and `veza-schema partitions` tell pg_partman 4.x.

PostgreSQL 15 with Debian's postgresql-15-partman (see tests/fixtures/partman.py); the
lifecycle shared with the built-in backend is in ``test_partitions_lifecycle.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import Server, TestDatabase, fresh_database, invoke
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix
from veza_schema.managed import ARCHIVE_SCHEMA


@pytest.fixture
def life(partman_database: TestDatabase, tmp_path: Path) -> Lifecycle:
    return apply_scenario(partman_database, tmp_path, "partman")


def _config(life: Lifecycle) -> dict[str, tuple[object, ...]]:
    return {r[0]: r[1:] for r in life.db.query(
        "SELECT parent_table, premake, retention, retention_keep_table, retention_schema, datetime_string, "
        "infinite_time_partitions FROM partman.part_config ORDER BY 1")}


def test_the_migration_registers_each_table_under_veza_schema_names(life: Lifecycle) -> None:
    assert _config(life) == {
        "public.events": (3, None, True, None, "YYYYMM", True),
        "public.messages": (3, None, True, None, "YYYYMM", True),
    }
    assert life.partition_names("events") == sorted([*(f"events{suffix(k)}" for k in range(4)), "events_default"])


def test_partitions_gives_pg_partman_the_retention_it_can_apply(life: Lifecycle) -> None:
    result = life.partitions()
    assert result.exit_code == 0, result.output
    assert _config(life) == {
        "public.events": (3, "3 months", False, None, "YYYYMM", True),
        # messages is referenced by message_reactions: pg_partman cannot move those rows first, so
        # `veza-schema partitions` keeps its retention (24 months, archived) to itself.
        "public.messages": (3, None, True, None, "YYYYMM", True),
    }


def test_check_agrees_with_pg_partman_check_default(life: Lifecycle) -> None:
    life.event(month(9), 3)
    life.message(life.room(), month(10))
    report = json.loads(life.partitions("--check", "--format", "json").stdout)
    ours = {f"public.{t['table']}_default": t["default_rows"] for t in report["tables"] if t["default_rows"]}
    theirs = {r[0]: r[1] for r in life.db.query("SELECT default_table, count FROM partman.check_default(true)")}
    assert ours == theirs == {"public.events_default": 3, "public.messages_default": 1}


def test_pg_partman_retention_archives_to_the_same_schema(life: Lifecycle) -> None:
    life.event(month(0), 2)
    assert life.partitions("events").exit_code == 0
    life.db.execute("UPDATE partman.part_config SET retention_keep_table = true, retention_schema = %s "
                    "WHERE parent_table = 'public.events'", (ARCHIVE_SCHEMA,))
    life.db.execute(f"CREATE SCHEMA {ARCHIVE_SCHEMA}")
    life.db.execute("SET timezone TO 'UTC'")
    life.db.query("SELECT partman.drop_partition_time('public.events', p_reference_timestamp := %s)", (month(5, 1),))
    assert life.count(f"{ARCHIVE_SCHEMA}.events{suffix(0)}") == 2


def test_rollback_removes_the_pg_partman_records(life: Lifecycle, tmp_path: Path) -> None:
    result = invoke("rollback", "--dsn", life.db.dsn, "--migrations-dir", str(tmp_path / "migrations"))
    assert result.exit_code == 0, result.output
    assert _config(life) == {}
    assert life.db.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'partman' AND tablename LIKE 'template%'") \
        == [(0,)]


def test_a_partman_table_without_pg_partman_fails_to_apply_with_the_fix(pg15_server: Server, tmp_path: Path) -> None:
    for database in fresh_database(pg15_server):
        with pytest.raises(AssertionError) as failed:
            apply_scenario(database, tmp_path, "partman")
        assert "declares partition backend partman, but pg_partman 4.x is not installed" in str(failed.value)
        assert database.query("SELECT to_regclass('messages')") == [(None,)]  # nothing half-applied
