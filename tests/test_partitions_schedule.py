"""`veza-schema schedule`: pg_cron jobs for pg_partman maintenance and materialized-view refresh.

On PostgreSQL 15 with pg_cron preloaded (its own throwaway server, see tests/fixtures/partman.py);
pg_cron lives in database ``veza_cron`` and runs the jobs in the test's database.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.partman import CRON_DATABASE
from tests.helpers import CliResult, Server, TestDatabase, invoke
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix

VIEWS_YAML = """\
module: stats
tables:
  page_views:
    columns:
      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}
      created_at: {type: timestamptz, default: now()}
    purge: {column: created_at, after: 30 days}
views:
  room_message_counts:
    materialized: true
    query: >-
      SELECT r.id AS room_id, count(m.id) AS messages
      FROM rooms r LEFT JOIN messages m ON m.room_id = r.id GROUP BY r.id
    indexes:
      idx_room_message_counts_room_id_unique: {columns: [room_id], unique: true}
"""


@pytest.fixture
def life(partman_database: TestDatabase, tmp_path: Path) -> Lifecycle:
    life = apply_scenario(partman_database, tmp_path, "partman", {"stats.yaml": VIEWS_YAML})
    assert life.partitions().exit_code == 0  # pg_partman's settings from schema/
    return life


@pytest.fixture
def cron_dsn(partman_server: Server) -> str:
    return partman_server.dsn_for(CRON_DATABASE)


def _schedule(life: Lifecycle, cron_dsn: str, *args: str) -> CliResult:
    return invoke("schedule", "--dsn", life.db.dsn, "--cron-dsn", cron_dsn, "--schema-dir", str(life.schema_dir),
                  *args)


def _jobs(cron_dsn: str, database: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(cron_dsn) as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(
            "SELECT jobname, schedule, command FROM cron.job WHERE database = %s ORDER BY jobname", (database,))]


def test_schedule_creates_a_job_per_partman_table_purge_and_materialized_view(life: Lifecycle, cron_dsn: str
                                                                             ) -> None:
    result = _schedule(life, cron_dsn)
    assert result.exit_code == 0, result.output
    db = life.db.name
    jobs = _jobs(cron_dsn, db)
    assert [(name, schedule) for name, schedule, _ in jobs] == [
        (f"veza-{db}-partman-events", "5 * * * *"),
        (f"veza-{db}-partman-messages", "5 * * * *"),
        (f"veza-{db}-purge-page_views", "*/10 * * * *"),
        (f"veza-{db}-refresh-room_message_counts", "0 * * * *"),
    ]
    assert jobs[0][2] == ("SET timezone TO 'UTC'; SET lock_timeout TO '2s'; SELECT \"partman\".\"run_maintenance\""
                          "(p_parent_table := 'public.events', p_analyze := false, p_jobmon := false)")
    assert jobs[2][2] == ("SET lock_timeout TO '2s'; DELETE FROM \"public\".\"page_views\" WHERE ctid = "
                          "ANY(ARRAY(SELECT ctid FROM \"public\".\"page_views\" WHERE \"created_at\" < now() - "
                          "'30 days'::interval LIMIT 10000))")
    assert jobs[3][2] == "SET lock_timeout TO '2s'; REFRESH MATERIALIZED VIEW CONCURRENTLY \"room_message_counts\""


def test_each_job_does_its_work_when_run(life: Lifecycle, cron_dsn: str) -> None:
    assert _schedule(life, cron_dsn).exit_code == 0
    life.db.execute("UPDATE partman.part_config SET premake = 5 WHERE parent_table = 'public.events'")
    life.message(life.room(), month(0))
    life.db.execute("INSERT INTO page_views (created_at) VALUES (now() - interval '31 days'), (now())")
    with psycopg.connect(life.db.dsn, autocommit=True) as conn:  # what pg_cron runs, in a session of its own
        for _, _, command in _jobs(cron_dsn, life.db.name):
            conn.execute(command)
    assert f"events{suffix(5)}" in life.partition_names("events")  # named as veza-schema names them
    assert life.db.query("SELECT messages FROM room_message_counts") == [(1,)]
    assert life.count("page_views") == 1


def test_schedule_is_a_sync(life: Lifecycle, cron_dsn: str) -> None:
    assert _schedule(life, cron_dsn).exit_code == 0
    again = _schedule(life, cron_dsn)
    assert "Changed 0 pg_cron job(s)" in again.stdout
    moved = _schedule(life, cron_dsn, "--refresh-at", "*/15 * * * *")
    assert f"~ reschedule veza-{life.db.name}-refresh-room_message_counts (0 * * * * -> */15 * * * *)" \
        in moved.stdout
    dry = _schedule(life, cron_dsn, "--remove", "--dry-run")
    assert "Would change 4 pg_cron job(s)" in dry.stdout
    assert len(_jobs(cron_dsn, life.db.name)) == 4
    assert _schedule(life, cron_dsn, "--remove").exit_code == 0
    assert _jobs(cron_dsn, life.db.name) == []


def test_a_bad_cron_expression_exits_2(tmp_path: Path) -> None:
    result = invoke("schedule", "--dsn", "postgresql://nobody@127.0.0.1:1/none", "--refresh-at", "hourly")
    assert result.exit_code == 2, result.output
    assert "--refresh-at 'hourly': expected a cron expression of 5 fields" in result.stderr


def test_without_pg_cron_it_says_what_to_configure(database: TestDatabase, tmp_path: Path) -> None:
    life = apply_scenario(database, tmp_path, "builtin", {"stats.yaml": VIEWS_YAML})
    result = invoke("schedule", "--dsn", database.dsn, "--schema-dir", str(life.schema_dir))
    assert result.exit_code == 3, result.output
    assert "pg_cron is not loaded by this server: add it to shared_preload_libraries" in result.stderr


@pytest.mark.slow
def test_pg_cron_runs_the_refresh_job(life: Lifecycle, cron_dsn: str) -> None:
    """A real run by pg_cron (a minute at most: pg_cron 1.4 schedules by the minute)."""
    life.message(life.room(), month(0))
    assert _schedule(life, cron_dsn, "--refresh-at", "* * * * *").exit_code == 0
    deadline = time.monotonic() + 150
    with psycopg.connect(cron_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            runs = conn.execute("SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j "
                                "USING (jobid) WHERE j.jobname = %s AND d.status IN ('succeeded', 'failed')",
                                (f"veza-{life.db.name}-refresh-room_message_counts",)).fetchall()
            if runs:
                break
            time.sleep(1)
    assert runs and runs[0][0] == "succeeded", runs
    assert life.db.query("SELECT messages FROM room_message_counts") == [(1,)]
