"""Moving rows out of the default partition of a table that foreign keys reference (``messages``).

PostgreSQL refuses to TRUNCATE a referenced table, and a DELETE of the month's originals under the
lock makes writers wait in proportion to them. The last step of the move instead drops the foreign
keys referencing the table, TRUNCATEs the originals, re-adds each key under its own name and
definition, NOT VALID (no scan), with its comment, and attaches; the job then validates the keys
while writers go on. These tests check what must hold for that to be a move and not a loss: every
referencing row kept, no ON DELETE action fired, each key identical before and after and validated at
the end, enforced the whole time; a run interrupted before validating is flagged and repaired; and
where PostgreSQL cannot re-add a key NOT VALID (a partitioned referencing table before 18), the
DELETE stays. None of them measures time (bench/bench_write_stall.py does).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.helpers import TestDatabase
from tests.partition_scenarios import Lifecycle, apply_scenario, month, suffix
from veza_schema.db.retry import LockRetry
from veza_schema.maintenance.partition_report import result_lines
from veza_schema.maintenance.partitions import MaintenanceOptions, TableResult, maintain
from veza_schema.yaml.loader import load_schema

# Every foreign key referencing messages, as PostgreSQL prints it back.
_KEYS = """
    SELECT con.conrelid::regclass::text, con.conname::text, pg_get_constraintdef(con.oid),
           obj_description(con.oid, 'pg_constraint'), con.convalidated
    FROM pg_constraint con WHERE con.contype = 'f' AND con.confrelid = 'messages'::regclass
    AND con.conparentid = 0 ORDER BY 1, 2"""
# Beside the scenario's message_reactions (ON DELETE CASCADE): a SET NULL of one column, deferrable, with
# a comment (the column list from PostgreSQL 15); and a MATCH FULL CASCADE from another schema.
_MORE_KEYS = """
CREATE TABLE pins (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, message_id uuid,
                   message_created_at timestamptz,
                   CONSTRAINT fk_pins_messages FOREIGN KEY (message_id, message_created_at) REFERENCES messages
                   ON DELETE SET NULL (message_id) DEFERRABLE INITIALLY DEFERRED);
COMMENT ON CONSTRAINT fk_pins_messages ON pins IS 'a pin''s message; kept when the message goes';
CREATE SCHEMA other;
CREATE TABLE other.bookmarks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, message_id uuid,
                              message_created_at timestamptz,
                              CONSTRAINT fk_bookmarks_messages FOREIGN KEY (message_id, message_created_at)
                              REFERENCES messages MATCH FULL ON DELETE CASCADE ON UPDATE RESTRICT);
"""


def _keys(db: TestDatabase) -> list[tuple]:
    return db.query(_KEYS)


def _referencing(db: TestDatabase) -> list[tuple]:
    return db.query("""
        SELECT 'reaction', message_id::text, message_created_at FROM message_reactions UNION ALL
        SELECT 'pin', message_id::text, message_created_at FROM pins UNION ALL
        SELECT 'bookmark', message_id::text, message_created_at FROM other.bookmarks ORDER BY 1, 2, 3""")


def _server_version(db: TestDatabase) -> int:
    ((version,),) = db.query("SELECT current_setting('server_version_num')::int")
    return int(version)


def _maintain(life: Lifecycle, premake: int = 5, retry: LockRetry | None = None,
              progress: Callable[[str], None] = lambda message: None, as_of: datetime | None = None,
              relink_from: int = 0) -> TableResult:
    """The job on messages; ``relink_from`` 0: these few rows are moved as a month of them would be."""
    table = load_schema(life.schema_dir).tables["messages"]
    with psycopg.connect(life.db.dsn, autocommit=True) as job:
        return maintain(job, table, premake=premake, progress=progress, as_of=as_of,
                        options=MaintenanceOptions(batch_size=2, retry=retry or LockRetry(), relink_from=relink_from))


@pytest.fixture
def life(database: TestDatabase, tmp_path: Path) -> Lifecycle:
    scenario = apply_scenario(database, tmp_path, "builtin")
    scenario.db.execute(_MORE_KEYS)
    return scenario


@pytest.fixture
def life_each_server(database_each_server: TestDatabase, tmp_path: Path) -> Lifecycle:
    scenario = apply_scenario(database_each_server, tmp_path, "builtin")
    more = _MORE_KEYS if _server_version(scenario.db) >= 150000 else _MORE_KEYS.replace("SET NULL (message_id)",
                                                                                        "SET NULL")
    scenario.db.execute(more)
    return scenario


def _messages_with_references(life: Lifecycle, count: int = 5, offset: int = 5) -> list[tuple[str, object]]:
    """``count`` messages of month ``offset`` (in the default partition), each referenced from the three
    tables."""
    room = life.room()
    messages = [life.message(room, month(offset, day)) for day in range(1, count + 1)]
    for message in messages:
        life.reaction(message)
        life.db.execute("INSERT INTO pins (message_id, message_created_at) VALUES (%s, %s)", message)
        if life.db.query("SELECT to_regclass('other.bookmarks')") != [(None,)]:
            life.db.execute("INSERT INTO other.bookmarks (message_id, message_created_at) VALUES (%s, %s)", message)
    return messages  # type: ignore[return-value]


def test_a_referenced_move_keeps_every_referencing_row_and_each_key_as_it_was(life: Lifecycle) -> None:
    _messages_with_references(life)
    keys, referencing = _keys(life.db), _referencing(life.db)
    assert len(keys) == 3 and all(valid for *_, valid in keys)

    result = _maintain(life)

    assert result.error is None, result.error
    assert life.count(f"messages{suffix(5)}") == 5 and life.count("ONLY messages_default") == 0
    assert _referencing(life.db) == referencing  # no CASCADE deleted, no SET NULL nulled, nothing lost
    assert _keys(life.db) == keys  # name, definition (actions, MATCH, DEFERRABLE, SET NULL columns), comment, valid
    assert (result.relinked_keys, result.deleted_under_lock) == (3, 0)
    assert sorted(result.validated_keys) == ["fk_bookmarks_messages on other.bookmarks",
                                             "fk_message_reactions_messages on message_reactions",
                                             "fk_pins_messages on pins"]
    lines = result_lines(result)
    period = f"FROM ('{month(5, 1):%Y-%m-%d}') TO ('{month(6, 1):%Y-%m-%d}')"
    assert f"    + created messages{suffix(5)} FOR VALUES {period}, moved 5 row(s) out of messages_default " \
           "(0 of them copied under the lock; 3 foreign key(s) re-added NOT VALID under it)" in lines
    assert "    ~ validated foreign key(s) fk_bookmarks_messages on other.bookmarks, fk_message_reactions_messages " \
           "on message_reactions, fk_pins_messages on pins (re-added NOT VALID by this run)" in lines


def test_the_keys_are_enforced_during_the_move_and_before_they_are_validated(life: Lifecycle) -> None:
    """While the job waits to take the last step's locks, and once it has re-added the keys NOT VALID (as it
    starts to validate them), a row referencing a moved message is accepted and one referencing nothing is
    refused."""
    moved = _messages_with_references(life, 2)
    seen: dict[str, object] = {}
    nowhere = ("00000000-0000-0000-0000-000000000000", month(5))
    insert = "INSERT INTO message_reactions (message_id, message_created_at, emoji) VALUES (%s, %s, 'late')"
    with psycopg.connect(life.db.dsn, autocommit=True) as holder, \
            psycopg.connect(life.db.dsn, autocommit=True) as writer:

        def writes(when: str) -> None:
            writer.execute(insert, moved[0])
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                writer.execute(insert, nowhere)
            seen[when] = life.db.query("SELECT bool_and(convalidated) FROM pg_constraint "
                                       "WHERE confrelid = 'messages'::regclass AND conparentid = 0")[0][0]

        def between_attempts(delay: float) -> None:
            if holder.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
                writes("before the last step")
                holder.execute("ROLLBACK")

        def progress(message: str) -> None:
            if message.startswith("validating") and "after the last step" not in seen:
                writes("after the last step")

        holder.execute("BEGIN")
        holder.execute("LOCK TABLE ONLY messages IN ROW EXCLUSIVE MODE")  # as a writer does: the last step waits
        result = _maintain(life, retry=LockRetry(lock_timeout=0.2, retries=3, backoff=0.01, sleep=between_attempts),
                           progress=progress)
    assert result.error is None and result.retries >= 1, result
    assert seen == {"before the last step": True, "after the last step": False}  # NOT VALID, yet enforced
    assert life.count("message_reactions") == 2 + 2 and life.count(f"messages{suffix(5)}") == 2
    assert all(valid for *_, valid in _keys(life.db))


def test_a_run_killed_before_validating_is_flagged_and_the_next_run_validates(life: Lifecycle) -> None:
    _messages_with_references(life, 3)
    keys = _keys(life.db)

    def killed(message: str) -> None:
        if message.startswith("validating"):
            raise KeyboardInterrupt  # as the job killed between the last step's commit and VALIDATE

    with pytest.raises(KeyboardInterrupt):
        _maintain(life, progress=killed)
    assert [valid for *_, valid in _keys(life.db)] == [False, False, False]
    assert life.count(f"messages{suffix(5)}") == 3  # the move itself was committed

    check = life.partitions("messages", "--check", "--premake", "5")
    assert check.exit_code == 1, check.output
    assert "foreign key fk_pins_messages on pins is NOT VALID" in check.stdout
    assert "rerun `veza-schema partitions`, which validates it first, or run ALTER TABLE pins VALIDATE " \
           "CONSTRAINT fk_pins_messages" in check.stdout
    report = json.loads(life.partitions("messages", "--check", "--premake", "5", "--format", "json").stdout)
    assert report["ok"] is False and report["tables"][0]["unvalidated_keys"] == [
        "fk_bookmarks_messages on other.bookmarks", "fk_message_reactions_messages on message_reactions",
        "fk_pins_messages on pins"]
    assert "~ would validate foreign key fk_pins_messages on pins (NOT VALID)" in life.partitions(
        "messages", "--premake", "5", "--dry-run").stdout

    rerun = life.partitions("messages", "--premake", "5")
    assert rerun.exit_code == 0, rerun.output
    assert "~ validated foreign key fk_pins_messages on pins (left NOT VALID by an interrupted move)" in rerun.stdout
    assert _keys(life.db) == [(*key[:4], True) for key in keys] == keys
    again = life.partitions("messages", "--check", "--premake", "5")
    assert again.exit_code == 0 and "NOT VALID" not in again.stdout, again.output


def test_a_failed_validation_leaves_the_moved_rows_and_is_reported(life: Lifecycle) -> None:
    """VALIDATE waits for SHARE UPDATE EXCLUSIVE on the referencing table (an autovacuum, a long
    ANALYZE): past its retries the run stops (exit 3) naming the key, the move stays done. (Month 4: no
    empty month to attach after it, which would wait for the same lock.)"""
    _messages_with_references(life, 2, offset=4)

    def progress(message: str) -> None:
        if message == "validating foreign key fk_pins_messages on pins" \
                and holder.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE pins IN SHARE UPDATE EXCLUSIVE MODE")

    with psycopg.connect(life.db.dsn, autocommit=True) as holder:
        result = _maintain(life, premake=4, progress=progress,
                           retry=LockRetry(lock_timeout=0.1, retries=1, backoff=0.01, sleep=lambda delay: None))
        holder.execute("ROLLBACK")
    assert result.error is not None and "validating foreign key fk_pins_messages on pins failed" in str(result.error)
    assert life.count(f"messages{suffix(4)}") == 2 and life.count("pins") == 2
    assert [name for _, name, _, _, valid in _keys(life.db) if not valid] == ["fk_pins_messages"]
    rerun = life.partitions("messages", "--premake", "4", "--format", "json")
    assert rerun.exit_code == 0, rerun.output
    assert json.loads(rerun.stdout)["tables"][0]["validated_keys"] == ["fk_pins_messages on pins"]


def test_a_reader_of_any_partition_makes_the_last_step_retry_instead_of_queueing(life: Lifecycle) -> None:
    """Dropping a foreign key takes ACCESS EXCLUSIVE on the referenced table and every partition of it:
    the step waits for them only briefly (not the job's lock_timeout, here 60 s), so a reader holding one
    (here of an old month) makes it give up and retry, instead of queueing every reader and writer of
    messages behind the job. (Were it to wait, the reader would let go after 30 s and no retry happen.)"""
    _messages_with_references(life, 2)
    held_at_retry: list[bool] = []
    with psycopg.connect(life.db.dsn, autocommit=True) as reader:
        reader.execute("BEGIN")
        reader.execute(f"SELECT count(*) FROM messages{suffix(1)}")
        fallback = threading.Timer(30, lambda: life.db.query("SELECT pg_terminate_backend(%s)",
                                                             (reader.info.backend_pid,)))
        fallback.start()

        def between_attempts(delay: float) -> None:
            held_at_retry.append(reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS)
            reader.execute("ROLLBACK")

        try:
            result = _maintain(life, retry=LockRetry(lock_timeout=60, retries=3, backoff=0.01,
                                                     sleep=between_attempts))
        finally:
            fallback.cancel()
    assert result.error is None and held_at_retry == [True], result
    assert life.count(f"messages{suffix(5)}") == 2 and life.count("ONLY messages_default") == 0


def test_writers_queued_behind_the_last_step_do_not_make_it_fail(life_each_server: Lifecycle) -> None:
    """The step holds the parent SHARE ROW EXCLUSIVE, so writers queue behind it; its ACCESS EXCLUSIVE on
    the parent goes ahead of them (before PostgreSQL 18 a NOWAIT would be refused because of them: under a
    steady write load the step would never succeed)."""
    life = life_each_server
    _messages_with_references(life, 2)
    room = life.room()
    results: list[TableResult] = []
    with psycopg.connect(life.db.dsn, autocommit=True) as holder, \
            psycopg.connect(life.db.dsn, autocommit=True) as writer, \
            psycopg.connect(life.db.dsn, autocommit=True) as watcher:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE ONLY messages IN ROW EXCLUSIVE MODE")  # a writer in flight
        job = threading.Thread(target=lambda: results.append(_maintain(life, retry=LockRetry(lock_timeout=30))))
        job.start()
        _wait_until_waiting(watcher, "messages", 1)  # the last step waits for the holder
        insert = threading.Thread(target=lambda: writer.execute(
            "INSERT INTO messages (room_id, body, created_at) VALUES (%s, 'queued', %s)", (room, month(1))))
        insert.start()
        _wait_until_waiting(watcher, "messages", 2)  # a writer queued behind the step
        holder.execute("COMMIT")
        job.join(timeout=60)
        insert.join(timeout=60)
    (result,) = results
    assert result.error is None and result.retries == 0 and result.relinked_keys == 3, result
    assert life.count(f"messages{suffix(5)}") == 2 and life.count(f"messages{suffix(1)}") == 1


def _wait_until_waiting(conn: psycopg.Connection, relation: str, sessions: int) -> None:
    """Until ``sessions`` sessions wait for a lock on ``relation`` (polled; a broken job fails the test
    instead of hanging it)."""
    for _ in range(3000):
        if conn.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE relation = %s::regclass AND NOT granted",
                        (relation,)).fetchone() == (sessions,):
            return
        time.sleep(0.01)
    raise AssertionError(f"never {sessions} session(s) waiting for {relation}")


def test_a_partitioned_referencing_table_keeps_the_delete_before_postgresql_18(database_each_server: TestDatabase,
                                                                               tmp_path: Path) -> None:
    """PostgreSQL before 18 cannot add a foreign key of a partitioned table NOT VALID: the move DELETEs the
    originals under the lock there (and says so), and relinks from 18 on."""
    life = apply_scenario(database_each_server, tmp_path, "builtin")
    life.db.execute("""
        CREATE TABLE shares (message_id uuid, message_created_at timestamptz NOT NULL,
                             CONSTRAINT fk_shares_messages FOREIGN KEY (message_id, message_created_at)
                             REFERENCES messages ON DELETE CASCADE) PARTITION BY RANGE (message_created_at);
        CREATE TABLE shares_all PARTITION OF shares DEFAULT""")
    message = life.message(life.room(), month(5))
    life.db.execute("INSERT INTO shares VALUES (%s, %s)", message)
    keys = _keys(life.db)
    before_18 = _server_version(life.db) < 180000

    dry = life.partitions("messages", "--premake", "5", "--dry-run")
    refusal = "shares is partitioned, and PostgreSQL before 18 cannot re-add its foreign key fk_shares_messages " \
              "NOT VALID"
    assert (refusal in dry.stdout) is before_18, dry.stdout
    result = _maintain(life)

    assert result.error is None, result.error
    assert (result.deleted_under_lock, result.relinked_keys) == ((1, 0) if before_18 else (0, 2))
    assert life.count("shares") == 1 and life.count(f"messages{suffix(5)}") == 1
    assert _keys(life.db) == keys


def test_a_few_rows_are_deleted_under_the_lock_rather_than_relinking(life: Lifecycle) -> None:
    """Below ``relink_from`` rows the DELETE costs writers less than re-adding the keys, and it spares
    the validation's scan of every referencing table; --dry-run says which it will be."""
    _messages_with_references(life, 3)
    keys = _keys(life.db)
    dry = life.partitions("messages", "--premake", "5", "--dry-run")
    # 3 keys, 4 partitions: about 1 ms each to drop and re-add, against 0.85 ms per 1,000 rows deleted
    assert "moving 3 row(s) out of messages_default (deleted there under the lock: fewer than 21600 rows cost " \
           "writers less than re-adding the 3 foreign key(s) referencing the table, and validating them)" in dry.stdout
    result = _maintain(life, relink_from=4)
    assert result.error is None and (result.deleted_under_lock, result.relinked_keys) == (3, 0)
    assert result.validated_keys == [] and _keys(life.db) == keys
    assert life.count("message_reactions") == life.count("pins") == life.count("other.bookmarks") == 3


def test_retention_detaches_without_checking_the_referencing_rows_under_its_lock(life: Lifecycle) -> None:
    """The rows referencing the expiring month are archived (CASCADE) or unlinked (SET NULL) first, under
    the same locks; the keys are then dropped around the DETACH (PostgreSQL's own check, a scan under
    the lock, is redundant) and re-added NOT VALID, identical, and validated. (Retention handles the
    referencing tables of the home schema only: the other schema's goes.)"""
    life.db.execute("DROP TABLE other.bookmarks")
    expired = _messages_with_references(life, 2, offset=0)
    kept = _messages_with_references(life, 2, offset=1)
    keys = _keys(life.db)
    dry = life.partitions("messages", "--as-of", f"{month(25):%Y-%m-%d}", "--dry-run")
    assert "then the 2 foreign key(s) referencing messages dropped around the detach" in dry.stdout

    result = _maintain(life, premake=0, as_of=month(25))

    assert result.error is None, result.error
    assert [e.partition.name for e in result.expired] == [f"messages{suffix(0)}"]
    assert result.relinked_keys == 2 and len(result.validated_keys) == 2
    assert _keys(life.db) == keys
    assert sorted(life.db.query(f"SELECT message_id::text FROM veza_archive.message_reactions{suffix(0)}")) == sorted(
        [(message_id,) for message_id, _ in expired])  # CASCADE: archived with the month
    assert sorted(life.db.query("SELECT message_id::text FROM message_reactions")) == sorted(
        [(message_id,) for message_id, _ in kept])
    assert sorted(life.db.query("SELECT message_created_at FROM pins WHERE message_id IS NULL")) == sorted(
        [(at,) for _, at in expired])  # SET NULL (message_id): the other column kept, as PostgreSQL does
    assert sorted(life.db.query("SELECT message_id::text FROM pins WHERE message_id IS NOT NULL")) == sorted(
        [(message_id,) for message_id, _ in kept])


def test_a_key_with_a_security_label_is_not_dropped_so_its_label_is_kept(life: Lifecycle) -> None:
    """Dropping a key loses its SECURITY LABEL (re-adding cannot carry it: the label's provider decides
    what it means): such a table keeps the DELETE under the lock, and --dry-run says why. No label
    provider loads on the test servers, so the label is written into pg_seclabel as the superuser."""
    _messages_with_references(life, 3)
    life.db.execute("""
        INSERT INTO pg_seclabel (objoid, classoid, objsubid, provider, label)
        SELECT oid, 'pg_constraint'::regclass, 0, 'veza_test', 'confidential' FROM pg_constraint
        WHERE conname = 'fk_pins_messages'""")
    keys = _keys(life.db)
    dry = life.partitions("messages", "--premake", "5", "--dry-run")
    assert "foreign key fk_pins_messages of pins carries a security label, which dropping and re-adding the " \
           "key would lose" in dry.stdout

    result = _maintain(life)

    assert result.error is None and (result.deleted_under_lock, result.relinked_keys) == (3, 0)
    assert _keys(life.db) == keys
    assert life.db.query("""SELECT l.label FROM pg_seclabel l JOIN pg_constraint con ON con.oid = l.objoid
                            WHERE con.conname = 'fk_pins_messages'""") == [("confidential",)]
