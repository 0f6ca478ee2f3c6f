"""`veza-schema partitions` against a reader holding a lock, with real second connections.

The job waits for a lock at most ``--lock-timeout`` per attempt (the built-in backend does not
wait for the default partition at all: NOWAIT), then gives its place in the lock queue up and
retries later: writers queued behind it wait no longer than that. While it attaches a partition,
writers wait for that short transaction rather than route a row into the default partition with
a stale partition map (their INSERT would fail). Both backends, PostgreSQL 15.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, Server, cli_env, fresh_database, wait_for
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix
from veza_schema.managed import PARTITION_BOUNDS_CHECK


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


def test_a_reader_holding_a_lock_never_makes_writers_wait_longer_than_lock_timeout(life: Lifecycle) -> None:
    assert life.partitions("events").exit_code == 0  # pg_partman: its part_config synced first
    with psycopg.connect(life.db.dsn, autocommit=True) as reader, \
            psycopg.connect(life.db.dsn, autocommit=True) as writer:
        writer.execute("SET statement_timeout = '60s'")  # a safety net for a failing test, not an assertion
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()  # ACCESS SHARE on every partition
        job = subprocess.Popen(
            [sys.executable, "-m", "veza_schema", "partitions", "events", "--premake", "4", "--lock-timeout", "5",
             "--retries", "4", "--dsn", life.db.dsn, "--schema-dir", str(life.schema_dir)],
            cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: list[str] = []
        reading = threading.Thread(target=lambda: lines.extend(job.stdout or []))
        reading.start()
        try:
            wait_for(lambda: any("retry 1 in" in line for line in lines), "the job to give a lock up and retry")

            # Writers to the current month and to the default partition are not held up by the job.
            writer.execute("INSERT INTO events (created_at) VALUES (%s)", (month(0),))
            writer.execute("INSERT INTO events (created_at) VALUES (%s)", (month(4),))
            assert reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
            assert not reader.closed
        finally:
            reader.execute("ROLLBACK")
        job.wait(timeout=120)
        reading.join(timeout=10)
        output = "".join(lines)
    assert job.returncode == 0, output
    assert ("canceling statement due to lock timeout; retry 1 in" in output  # pg_partman waited
            or 'could not obtain lock on relation "public.events_default"; retry 1 in' in output)  # NOWAIT
    assert f"+ created events{suffix(4)}" in output and "moved 1 row(s) out of events_default" in output
    assert life.count("ONLY events_default") == 0 and life.count(f"events{suffix(4)}") == 1


def _insert(conn: psycopg.Connection, at: object, outcome: list[BaseException | None]) -> None:
    try:
        conn.execute("INSERT INTO events (created_at) VALUES (%s)", (at,))
        outcome.append(None)
    except psycopg.Error as exc:
        outcome.append(exc)


def test_a_row_written_for_the_month_being_attached_reaches_its_new_partition(pg15_server: Server,
                                                                               tmp_path: Path) -> None:
    for database in fresh_database(pg15_server):
        life = apply_scenario(database, tmp_path, "builtin")
        assert life.partitions("events").exit_code == 0
        name, start, end = f"events{suffix(4)}", month(4, day=1).date(), month(5, day=1).date()
        with psycopg.connect(life.db.dsn, autocommit=True) as holder, \
                psycopg.connect(life.db.dsn, autocommit=True) as observer, \
                psycopg.connect(life.db.dsn, autocommit=True) as writer:
            # The partition-to-be as an interrupted run left it, held by a reader: the job will
            # attach it while holding its locks, long enough for a writer to arrive.
            holder.execute(f"CREATE TABLE {name} (LIKE events INCLUDING ALL)")  # noqa: S608 - fixed names
            holder.execute(f"ALTER TABLE {name} ADD CONSTRAINT {PARTITION_BOUNDS_CHECK} CHECK (created_at IS NOT NULL "
                           f"AND created_at >= '{start}' AND created_at < '{end}')")  # noqa: S608
            holder.execute("BEGIN")
            holder.execute(f"SELECT count(*) FROM {name}").fetchone()  # noqa: S608
            job = subprocess.Popen(
                [sys.executable, "-m", "veza_schema", "partitions", "events", "--premake", "4", "--lock-timeout",
                 "60", "--dsn", life.db.dsn, "--schema-dir", str(life.schema_dir)],
                cwd=REPO_ROOT, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            writer.execute("SET statement_timeout = '60s'")  # a safety net for a failing test, not an assertion
            written: list[BaseException | None] = []
            try:
                wait_for(lambda: _job_waiting_on_a_lock(observer), "the job to wait while attaching")
                writing = threading.Thread(target=_insert, args=(writer, month(4), written))
                writing.start()
                wait_for(lambda: observer.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                                                   "'Lock' AND query LIKE 'INSERT INTO events%%'").fetchone() == (1,),
                          "the writer to wait for the job")
            finally:
                holder.execute("ROLLBACK")
            output, _ = job.communicate(timeout=120)
            writing.join(timeout=60)
        assert job.returncode == 0, output
        assert written == [None]
        assert life.count(name) == 1 and life.count("ONLY events_default") == 0


def test_a_vacuum_of_another_partition_does_not_hold_the_attach_up(pg15_server: Server, tmp_path: Path) -> None:
    # What (anti-wraparound) autovacuum holds on an old partition, for hours: the attach locks the
    # parent alone (ONLY), so it neither waits for it nor makes writers queue behind it meanwhile.
    for database in fresh_database(pg15_server):
        life = apply_scenario(database, tmp_path, "builtin")
        life.event(month(4), 2)
        with psycopg.connect(life.db.dsn, autocommit=True) as vacuum:
            vacuum.execute("BEGIN")
            vacuum.execute(f"LOCK TABLE events{suffix(0)} IN SHARE UPDATE EXCLUSIVE MODE")
            result = life.partitions("events", "--premake", "4", "--lock-timeout", "0.2", "--retries", "0")
            vacuum.execute("ROLLBACK")
        assert result.exit_code == 0, result.output
        assert life.count(f"events{suffix(4)}") == 2 and life.count("ONLY events_default") == 0


def test_a_vacuum_of_a_partition_of_a_referencing_table_does_not_hold_retention_up(pg15_server: Server,
                                                                                    tmp_path: Path) -> None:
    for database in fresh_database(pg15_server):
        life = apply_scenario(database, tmp_path, "builtin")
        life.db.execute("CREATE TABLE pins (message_id uuid, message_created_at timestamptz, FOREIGN KEY "
                        "(message_id, message_created_at) REFERENCES messages (id, created_at) ON DELETE CASCADE) "
                        "PARTITION BY RANGE (message_created_at)")
        life.db.execute("CREATE TABLE pins_any PARTITION OF pins DEFAULT")
        message = life.message(life.room(), month(0))
        life.db.execute("INSERT INTO pins VALUES (%s, %s)", message)
        with psycopg.connect(life.db.dsn, autocommit=True) as vacuum:
            vacuum.execute("BEGIN")
            vacuum.execute("LOCK TABLE pins_any IN SHARE UPDATE EXCLUSIVE MODE")  # what autovacuum holds
            result = life.partitions("messages", "--as-of", f"{month(27, 1):%Y-%m-%d}", "--lock-timeout", "0.2",
                                     "--retries", "0")
            vacuum.execute("ROLLBACK")
        assert result.exit_code == 0, result.output
        assert f"messages{suffix(0)}" not in life.partition_names("messages")
        assert life.count("pins") == 0  # archived with the month (ON DELETE CASCADE)
