"""`veza-schema partitions` against a reader holding a lock, with real second connections.

The job waits for a lock at most ``--lock-timeout`` per attempt, then gives its place in the
lock queue up and retries later: writers queued behind it wait no longer than that, and
writers to other partitions are not held up at all (the parent is only locked SHARE UPDATE
EXCLUSIVE). Both backends, PostgreSQL 15.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, Server, cli_env, fresh_database
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix


@pytest.fixture(params=["builtin", "partman"])
def life(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Lifecycle]:
    if request.param == "partman":
        yield apply_scenario(request.getfixturevalue("partman_database"), tmp_path, "partman")
        return
    server: Server = request.getfixturevalue("pg15_server")
    for database in fresh_database(server):
        yield apply_scenario(database, tmp_path, "builtin")


def _job_waiting_on_a_lock(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'veza-schema partitions' "
                       "AND wait_event_type = 'Lock'").fetchone()
    return bool(row and row[0])


def _wait_for(condition: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_a_reader_holding_a_lock_never_makes_writers_wait_longer_than_lock_timeout(life: Lifecycle) -> None:
    assert life.partitions("events").exit_code == 0  # pg_partman: its part_config synced first
    with psycopg.connect(life.db.dsn, autocommit=True) as reader, \
            psycopg.connect(life.db.dsn, autocommit=True) as observer, \
            psycopg.connect(life.db.dsn, autocommit=True) as writer:
        writer.execute("SET statement_timeout = '60s'")  # a safety net for a failing test, not an assertion
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()  # ACCESS SHARE on every partition
        job = subprocess.Popen(
            [sys.executable, "-m", "veza_schema", "partitions", "events", "--premake", "4", "--lock-timeout", "5",
             "--retries", "4", "--dsn", life.db.dsn, "--schema-dir", str(life.schema_dir)],
            cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for(lambda: _job_waiting_on_a_lock(observer), "the job to wait for its lock")

            # A writer to the current month is not held up by the waiting job at all.
            writer.execute("INSERT INTO events (created_at) VALUES (%s)", (month(0),))
            assert _job_waiting_on_a_lock(observer)  # it was done while the job still waited

            # A writer to the default partition queues behind the job, and gets through once the
            # job gives up waiting: while the reader still holds its lock.
            writer.execute("INSERT INTO events (created_at) VALUES (%s)", (month(4),))
            assert reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            assert not reader.closed
        finally:
            reader.execute("ROLLBACK")
        output, _ = job.communicate(timeout=120)
    assert job.returncode == 0, output
    assert "canceling statement due to lock timeout; retry 1 in" in output
    assert f"+ created events{suffix(4)}" in output and "moved 1 row(s) out of events_default" in output
    assert life.count("ONLY events_default") == 0 and life.count(f"events{suffix(4)}") == 1
