"""Moving rows out of the default partition while a writer keeps writing to it, real connections.

The rows of the month stay in the default partition while they are copied into the partition-to-be;
a trigger logs the key of every row written there meanwhile, catch-up rounds copy those rows again,
and the last step, under the lock, copies only the rows written since the previous round. These tests
check the outcome (every row once, the latest version of each) and what the last step copied, as the
job reports it; none of them measures time (bench/bench_write_stall.py does).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.helpers import TestDatabase
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix
from veza_schema.db.retry import LockRetry
from veza_schema.maintenance.partition_report import result_json, result_lines
from veza_schema.maintenance.partition_state import JOB_LOCK_CLASS
from veza_schema.maintenance.partitions import MaintenanceOptions, TableResult, maintain
from veza_schema.model import Table
from veza_schema.yaml.loader import load_schema


@pytest.fixture
def life(database: TestDatabase, tmp_path: Path) -> Lifecycle:
    return apply_scenario(database, tmp_path, "builtin")


def _events(life: Lifecycle) -> Table:
    return load_schema(life.schema_dir).tables["events"]


def _ids(conn: psycopg.Connection, query: str, *params: object) -> list[str]:
    return [str(r[0]) for r in conn.execute(query, params).fetchall()]  # type: ignore[arg-type]


def _capture_objects(life: Lifecycle) -> list[str]:
    return [r[0] for r in life.db.query(
        "SELECT relname FROM pg_class WHERE relname LIKE 'veza_move%%' UNION ALL "
        "SELECT proname FROM pg_proc WHERE proname LIKE 'veza_move%%' UNION ALL "
        "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'veza_move%%'")]


@dataclass
class Writes:
    """What the writer did while the job waited to take its lock for the last step."""

    updated: str = ""
    deleted: str = ""
    late: list[str] = field(default_factory=list)
    other_month: str = ""


def _move_with_writes_before_the_last_step(life: Lifecycle) -> tuple[TableResult, Writes]:
    """Run the job on events (premake 4: month 4 has 50 rows in the default partition) while a second
    connection holds the parent in ROW EXCLUSIVE mode, as a writer does: copying and catching up go
    on, but the last step cannot take its lock; it gives up after lock_timeout and waits to retry.
    During that wait a third connection writes to the default partition (7 new rows of month 4, one
    copied row updated, one deleted, one row of month 9), then the holder lets go and the retry
    completes the move."""
    life.event(month(4), 50)
    writes = Writes()
    with psycopg.connect(life.db.dsn, autocommit=True) as holder, \
            psycopg.connect(life.db.dsn, autocommit=True) as writer, \
            psycopg.connect(life.db.dsn, autocommit=True) as job:
        writes.updated, writes.deleted = _ids(writer, "SELECT id FROM ONLY events_default ORDER BY id LIMIT 2")

        def between_attempts(delay: float) -> None:
            if holder.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
                return
            writes.late = _ids(writer, "INSERT INTO events (created_at, payload) SELECT %s, 'late' "
                                       "FROM generate_series(1, 7) RETURNING id", month(4, day=20))
            writer.execute("UPDATE events SET payload = 'changed' WHERE id = %s", (writes.updated,))
            writer.execute("DELETE FROM events WHERE id = %s", (writes.deleted,))
            (writes.other_month,) = _ids(writer, "INSERT INTO events (created_at) VALUES (%s) RETURNING id", month(9))
            holder.execute("ROLLBACK")

        holder.execute("BEGIN")
        holder.execute("LOCK TABLE ONLY events IN ROW EXCLUSIVE MODE")
        options = MaintenanceOptions(batch_size=10, retry=LockRetry(lock_timeout=0.2, retries=3, backoff=0.01,
                                                                    sleep=between_attempts))
        result = maintain(job, _events(life), premake=4, options=options)
    assert result.retries == 1, result  # the job did wait for the holder, once
    return result, writes


def test_rows_written_during_the_move_reach_the_new_partition_exactly_once(life: Lifecycle) -> None:
    result, writes = _move_with_writes_before_the_last_step(life)
    assert result.error is None
    partition = f"events{suffix(4)}"
    ids = life.ids(partition)
    assert len(ids) == len(set(ids)) == 50 + 7 - 1
    assert set(writes.late) <= set(ids) and writes.deleted not in ids and writes.updated in ids
    ((payload,),) = life.db.query(f"SELECT payload FROM {partition} WHERE id = %s", (writes.updated,))
    assert payload == "changed"
    assert life.ids("ONLY events_default") == [writes.other_month]  # the other month's row stays
    assert result.moved_rows == 56


def test_the_last_step_copies_only_the_rows_written_since_the_last_round(life: Lifecycle) -> None:
    result, _ = _move_with_writes_before_the_last_step(life)
    assert result.copied_under_lock == 7 + 1  # the new rows and the updated one, not the 50 copied before


def test_the_report_says_how_many_rows_were_copied_under_the_lock(life: Lifecycle) -> None:
    result, _ = _move_with_writes_before_the_last_step(life)
    period = f"FROM ('{month(4, 1):%Y-%m-%d}') TO ('{month(5, 1):%Y-%m-%d}')"
    assert f"    + created events{suffix(4)} FOR VALUES {period}, moved 56 row(s) out of events_default " \
           "(8 of them copied under the lock, 56 deleted under it)" in result_lines(result)  # a row of month 9
    (table,) = result_json([result], month(0), {})["tables"]                                # stays: DELETE
    assert (table["moved_rows"], table["copied_under_lock"], table["deleted_under_lock"]) == (56, 8, 56)
    assert [(c["partition"], c["moved_rows"], c["copied_under_lock"]) for c in table["created"]
            if c["moved_rows"]] == [(f"events{suffix(4)}", 56, 8)]


def test_a_run_reports_in_json_what_it_did(life: Lifecycle) -> None:
    life.event(month(4), 3)
    result = life.partitions("--premake", "4", "--format", "json", "events")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (table,) = report["tables"]
    assert report["ok"] is True and table["table"] == "events" and table["error"] is None
    assert [(c["partition"], c["moved_rows"], c["copied_under_lock"]) for c in table["created"]
            if c["moved_rows"]] == [(f"events{suffix(4)}", 3, 0)]  # nothing written during the move


def test_a_second_run_on_a_table_being_maintained_skips_it_and_check_does_not_flag_the_move(
        life: Lifecycle) -> None:
    life.event(month(4), 3)
    with psycopg.connect(life.db.dsn, autocommit=True) as other, \
            psycopg.connect(life.db.dsn, autocommit=True) as job:
        ((oid,),) = other.execute("SELECT 'events'::regclass::oid::bigint").fetchall()
        other.execute("SELECT pg_advisory_lock(%s)", ((JOB_LOCK_CLASS << 32) | int(oid),))  # as a run does
        other.execute("CREATE TABLE veza_move_log (id int)")  # what a move in progress has on events_default
        other.execute("CREATE TRIGGER veza_move_log AFTER INSERT ON events_default FOR EACH ROW "
                      "EXECUTE FUNCTION suppress_redundant_updates_trigger()")
        result = maintain(job, _events(life), premake=4)
        check = life.partitions("--check", "events")
    assert result.error is not None and "another `veza-schema partitions` is maintaining this table" in str(
        result.error)
    assert result.created == [] and life.count("ONLY events_default") == 3
    assert "interrupted move" not in check.stdout, check.stdout


def test_the_move_leaves_no_trigger_log_or_function_behind(life: Lifecycle) -> None:
    result, _ = _move_with_writes_before_the_last_step(life)
    assert result.error is None
    assert _capture_objects(life) == []


def test_a_writer_running_throughout_the_move_loses_and_duplicates_nothing(life: Lifecycle) -> None:
    life.event(month(4), 200)
    before = set(life.ids("ONLY events_default"))
    stop, written, failures = threading.Event(), [], []

    def write() -> None:
        with psycopg.connect(life.db.dsn, autocommit=True) as writer:
            while not stop.is_set():
                try:
                    written.extend(_ids(writer, "INSERT INTO events (created_at) VALUES (%s) RETURNING id",
                                        month(4, day=25)))
                except psycopg.Error as exc:  # kept, and asserted empty below
                    failures.append(exc)

    writing = threading.Thread(target=write)
    writing.start()
    try:
        with psycopg.connect(life.db.dsn, autocommit=True) as job:
            result = maintain(job, _events(life), premake=4, options=MaintenanceOptions(batch_size=20))
    finally:
        stop.set()
        writing.join(timeout=60)
    assert result.error is None and failures == []
    ids = life.ids(f"events{suffix(4)}")
    assert len(ids) == len(set(ids))
    assert set(ids) == before | set(written)
    assert life.count("ONLY events_default") == 0


def test_an_interrupted_move_is_cleaned_up_and_redone_by_the_next_run(life: Lifecycle) -> None:
    life.event(month(4), 30)

    def interrupted(delay: float) -> None:
        raise KeyboardInterrupt  # as a DBA's Ctrl-C between two attempts at the last step

    with psycopg.connect(life.db.dsn, autocommit=True) as holder, \
            psycopg.connect(life.db.dsn, autocommit=True) as job:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE ONLY events IN ROW EXCLUSIVE MODE")
        with pytest.raises(KeyboardInterrupt):
            maintain(job, _events(life), premake=4,
                     options=MaintenanceOptions(batch_size=10, retry=LockRetry(lock_timeout=0.2, sleep=interrupted)))
        holder.execute("ROLLBACK")
    assert _capture_objects(life) != []  # the log and its trigger stayed
    life.event(month(4, day=3), 2)  # logged, and copied by the next run like any other row
    result = life.partitions("events", "--premake", "4")
    assert result.exit_code == 0, result.output
    assert "moved 32 row(s) out of events_default" in result.stdout
    assert life.count(f"events{suffix(4)}") == 32 and life.count("ONLY events_default") == 0
    assert _capture_objects(life) == []


def test_a_table_without_a_primary_key_moves_its_rows_in_the_last_step(life: Lifecycle) -> None:
    life.event(month(4), 12)
    ((constraint,),) = life.db.query("SELECT conname FROM pg_constraint WHERE conrelid = 'events'::regclass "
                                     "AND contype = 'p'")
    life.db.execute(f"ALTER TABLE events DROP CONSTRAINT {constraint}")
    with psycopg.connect(life.db.dsn, autocommit=True) as job:
        result = maintain(job, _events(life), premake=4, options=MaintenanceOptions(batch_size=5))
    assert result.error is None and result.moved_rows == 12
    assert result.copied_under_lock == 12  # no key to log writes by: all copied under the lock
    assert life.count(f"events{suffix(4)}") == 12 and life.count("ONLY events_default") == 0
