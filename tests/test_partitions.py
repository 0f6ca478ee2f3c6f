"""`veza-schema partitions`: its plan, its options, and how it fails, on a real PostgreSQL.

The lifecycle on both backends is in ``test_partitions_lifecycle.py``; the shipped Veza
schema in ``test_partitions_shipped.py``; locks against a concurrent reader in
``test_partitions_locks.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, TestDatabase, invoke
from tests.partition_scenarios import SCHEMA_YAML, Lifecycle, apply_scenario, month, suffix, write_scenario
from veza_schema.errors import SchemaLoadError
from veza_schema.maintenance.partition_plan import decide
from veza_schema.maintenance.partition_state import IncomingKey, LivePartition, TableState
from veza_schema.managed import PARTITION_BOUNDS_CHECK, planned_partitions
from veza_schema.model import Retention, Table
from veza_schema.sql.render import partition_function
from veza_schema.yaml.loader import load_schema

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


@pytest.fixture
def life(database: TestDatabase, tmp_path: Path) -> Lifecycle:
    return apply_scenario(database, tmp_path, "builtin")


@pytest.fixture
def sample(database: TestDatabase, tmp_path: Path) -> Iterator[Lifecycle]:
    migrations = tmp_path / "migrations"
    assert invoke("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(migrations)).exit_code == 0
    assert invoke("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations)).exit_code == 0
    yield Lifecycle(database, SAMPLE, "builtin")


# -- the command -----------------------------------------------------------------------------------
def test_up_to_date_tables_get_nothing(sample: Lifecycle) -> None:
    before = sample.partition_names("events")
    result = sample.partitions()
    assert result.exit_code == 0, result.output
    assert "  events (month, 2 ahead) ...\n    up to date, 0 partition(s) created\n" in result.stdout
    assert sample.partition_names("events") == before


def test_raising_premake_creates_the_next_period_once(sample: Lifecycle) -> None:
    before = sample.partition_names("events")
    result = sample.partitions("--premake", "3")
    assert result.exit_code == 0, result.output
    assert f"+ created events{suffix(3)} FOR VALUES FROM ('{month(3, 1):%Y-%m-%d}') TO " \
           f"('{month(4, 1):%Y-%m-%d}')" in result.stdout
    assert sorted(set(sample.partition_names("events")) - set(before)) == [f"events{suffix(3)}"]
    assert "up to date, 0 partition(s) created" in sample.partitions("--premake", "3").stdout


def test_dry_run_lists_the_partitions_and_creates_nothing(sample: Lifecycle) -> None:
    before = sample.partition_names("events")
    result = sample.partitions("--dry-run", "--premake", "4")
    assert result.exit_code == 0, result.output
    assert f"+ would create events{suffix(3)} FOR VALUES FROM (" in result.stdout
    assert f"+ would create events{suffix(4)} FOR VALUES FROM (" in result.stdout
    assert f"events{suffix(2)}" not in result.stdout
    assert "Would create 2 partition(s) for 1 partitioned table(s)." in result.stdout
    assert sample.partition_names("events") == before


def test_without_the_migrations_exits_3(database: TestDatabase) -> None:
    result = invoke("partitions", "--dsn", database.dsn, "--schema-dir", str(SAMPLE))
    assert result.exit_code == 3, result.output
    assert "apply the migrations first" in result.stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--as-of", "next tuesday"), "--as-of 'next tuesday': expected a date"),
    (("no_such_table",), "not a time-partitioned table of the schema: no_such_table (the schema has: events, "
                         "messages)"),
    (("--dry-run", "--format", "json"), "--format json goes with --check (the monitoring report) or a run"),
    (("--check", "--dry-run"), "--check and --dry-run both change nothing"),
])
def test_bad_usage_exits_2_before_connecting(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    schema_dir = write_scenario(tmp_path, "builtin")
    result = invoke("partitions", "--dsn", "postgresql://nobody@127.0.0.1:1/none", "--schema-dir", str(schema_dir),
                    *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_one_failing_table_does_not_stop_the_others(life: Lifecycle) -> None:
    life.db.execute(f"CREATE TABLE events{suffix(4)} (squatter int)")  # the name the next partition needs
    result = life.partitions("--premake", "4")
    assert result.exit_code == 3, result.output
    assert f"events: events: a table named events{suffix(4)} already exists and is not a partition this job " \
           "was making" in result.stdout
    assert f"+ created messages{suffix(4)}" in result.stdout
    assert f"messages{suffix(4)}" in life.partition_names("messages")


def test_an_interrupted_creation_is_resumed(life: Lifecycle) -> None:
    life.event(month(4), 3)
    # What a run killed after creating the partition-to-be and copying some rows leaves behind.
    life.db.execute(f"CREATE TABLE events{suffix(4)} (LIKE events INCLUDING ALL)")
    life.db.execute(f"ALTER TABLE events{suffix(4)} ADD CONSTRAINT {PARTITION_BOUNDS_CHECK} CHECK "
                    f"(created_at >= '{month(4, 1).isoformat()}' AND created_at < '{month(5, 1).isoformat()}')")
    life.db.execute(f"INSERT INTO events{suffix(4)} SELECT * FROM events_default LIMIT 2")
    result = life.partitions("events", "--premake", "4")
    assert result.exit_code == 0, result.output
    assert "moved 3 row(s) out of events_default" in result.stdout
    assert life.count(f"events{suffix(4)}") == 3 and life.count("ONLY events_default") == 0


def test_copies_an_interrupted_move_left_are_not_attached_once_their_originals_are_gone(life: Lifecycle) -> None:
    life.event(month(4), 3)
    life.db.execute(f"CREATE TABLE events{suffix(4)} (LIKE events INCLUDING ALL)")
    life.db.execute(f"ALTER TABLE events{suffix(4)} ADD CONSTRAINT {PARTITION_BOUNDS_CHECK} CHECK "
                    f"(created_at >= '{month(4, 1).isoformat()}' AND created_at < '{month(5, 1).isoformat()}')")
    life.db.execute(f"INSERT INTO events{suffix(4)} SELECT * FROM events_default")  # copied, then killed
    life.db.execute("DELETE FROM events")  # the application deletes the rows before the next run
    result = life.partitions("events", "--premake", "4")
    assert result.exit_code == 0, result.output
    assert f"events{suffix(4)}" in life.partition_names("events")
    assert life.count("events") == 0  # no deleted row comes back


def test_moving_rows_fires_no_trigger_and_no_on_delete_action(life: Lifecycle) -> None:
    life.db.execute("CREATE TABLE deletions (at timestamptz)")
    life.db.execute("CREATE FUNCTION log_delete() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN INSERT INTO deletions VALUES (OLD.created_at); RETURN OLD; END$$")
    life.db.execute("CREATE TRIGGER trg_messages_log AFTER DELETE ON messages FOR EACH ROW "
                    "EXECUTE FUNCTION log_delete()")
    room = life.room()
    life.reaction(life.message(room, month(5)))
    result = life.partitions("--premake", "5")
    assert result.exit_code == 0, result.output
    assert life.count(f"messages{suffix(5)}") == 1
    assert life.count("message_reactions") == 1  # ON DELETE CASCADE did not fire
    assert life.count("deletions") == 0


def test_emptying_a_default_partition_with_triggers_but_no_reference_fires_no_trigger(life: Lifecycle) -> None:
    # Nothing references events: the move may TRUNCATE its originals (writers wait for a constant
    # time, not for a DELETE of the month), and neither the DELETE nor the TRUNCATE trigger fires.
    life.db.execute("CREATE TABLE deletions (what text)")
    life.db.execute("CREATE FUNCTION log_deletion() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN INSERT INTO deletions VALUES (TG_OP); RETURN NULL; END$$")
    life.db.execute("CREATE TRIGGER trg_events_deleted AFTER DELETE ON events FOR EACH ROW "
                    "EXECUTE FUNCTION log_deletion()")
    life.db.execute("CREATE TRIGGER trg_events_default_truncated AFTER TRUNCATE ON events_default "
                    "FOR EACH STATEMENT EXECUTE FUNCTION log_deletion()")
    life.event(month(4), 3)
    result = life.partitions("events", "--premake", "4")
    assert result.exit_code == 0, result.output
    assert life.count(f"events{suffix(4)}") == 3 and life.count("ONLY events_default") == 0
    assert life.count("deletions") == 0


def test_the_rows_a_move_deletes_under_the_lock_are_announced_and_reported(life: Lifecycle) -> None:
    # messages is referenced (message_reactions): a few rows are DELETEd under the lock (a month of them
    # would be TRUNCATEd between dropping the foreign key and re-adding it NOT VALID, test_partitions_relink),
    # and its default partition also holds a row of month 9 (no partition to be made): no TRUNCATE either
    # way. events: TRUNCATE.
    room = life.room()
    life.reaction(life.message(room, month(5)))
    life.message(room, month(9))
    life.event(month(5), 2)
    dry = life.partitions("--premake", "5", "--dry-run")
    assert "moving 1 row(s) out of messages_default (deleted there under the lock: fewer than 20000 rows cost " \
           "writers less than re-adding the 1 foreign key(s) referencing the table, and validating them)" in dry.stdout
    # (20,000: the floor; 1 key and 4 partitions would set it at 1,200 x 1 x (4 + 2) = 7,200 rows)
    assert "moving 2 row(s) out of events_default\n" in dry.stdout
    result = life.partitions("--premake", "5", "--format", "json")
    assert result.exit_code == 1, result.output  # the row of month 9 needs a person
    tables = {t["table"]: t for t in json.loads(result.stdout)["tables"]}
    assert (tables["messages"]["moved_rows"], tables["messages"]["deleted_under_lock"]) == (1, 1)
    assert (tables["messages"]["relinked_keys"], tables["messages"]["validated_keys"]) == (0, [])
    assert (tables["events"]["moved_rows"], tables["events"]["deleted_under_lock"]) == (2, 0)
    assert [c["deleted_under_lock"] for c in tables["messages"]["created"] if c["moved_rows"]] == [1]
    assert life.count("message_reactions") == 1 and life.count("ONLY messages_default") == 1


def test_retention_refuses_a_partition_referenced_with_on_delete_restrict(database: TestDatabase,
                                                                         tmp_path: Path) -> None:
    life = apply_scenario(database, tmp_path, "builtin")
    life.db.execute("CREATE TABLE pins (message_id uuid, message_created_at timestamptz, FOREIGN KEY "
                    "(message_id, message_created_at) REFERENCES messages (id, created_at) ON DELETE RESTRICT)")
    message = life.message(life.room(), month(0))
    life.db.execute("INSERT INTO pins VALUES (%s, %s)", message)
    result = life.partitions("messages", "--as-of", f"{month(27, 1):%Y-%m-%d}")
    assert result.exit_code == 1, result.output
    assert f"! 1 row(s) of pins reference messages{suffix(0)} through pins_message_id_message_created_at_fkey " \
           "(ON DELETE RESTRICT): retention keeps the partition" in result.stdout
    assert f"messages{suffix(0)}" in life.partition_names("messages")
    assert f"- messages{suffix(1)}" in result.stdout  # unreferenced months still go


def test_retention_refuses_a_table_referencing_itself(database: TestDatabase, tmp_path: Path) -> None:
    life = apply_scenario(database, tmp_path, "builtin")
    life.db.execute("ALTER TABLE messages ADD FOREIGN KEY (reply_to_id, reply_to_created_at) "
                    "REFERENCES messages (id, created_at) ON DELETE SET NULL")
    result = life.partitions("messages", "--as-of", f"{month(27, 1):%Y-%m-%d}")
    assert result.exit_code == 1, result.output
    assert "references messages itself: PostgreSQL refuses to detach a partition whose rows reference each other" \
        in result.stdout
    assert f"messages{suffix(0)}" in life.partition_names("messages")


@pytest.mark.parametrize("interval", ["day", "week", "month", "year"])
def test_planned_names_and_bounds_match_the_managed_function(database: TestDatabase, interval: str) -> None:
    """The partitions the migrations create (veza_ensure_partitions) are the ones the job plans."""
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


# -- the plan, without a database --------------------------------------------------------------------
TABLE: Table = load_schema(SAMPLE).tables["events"]  # monthly on occurred_at, premake 2


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def _state(partitions: list[tuple[int, int]], default_rows: dict[datetime | None, int] | None = None,
           incoming: tuple[IncomingKey, ...] = ()) -> TableState:
    lives = tuple(LivePartition(f"events_p{y}{m:02d}", _utc(y, m, 1), _utc(y + m // 12, m % 12 + 1, 1))
                  for y, m in partitions)
    return TableState("events", "occurred_at", lives, "events_default", tuple((default_rows or {}).items()),
                      ("id", "occurred_at"), incoming, None)


def _with_retention(retention: Retention) -> Table:
    assert TABLE.partition is not None
    return replace(TABLE, partition=replace(TABLE.partition, retention=retention))


def test_plan_creates_the_missing_periods_and_takes_their_default_rows() -> None:
    state = _state([(2026, 11)], {_utc(2026, 12, 1): 4, _utc(2027, 6, 1): 1, None: 2})
    plan = decide(TABLE, state, _utc(2026, 11, 20), premake=2)
    assert [(n.name, n.default_rows) for n in plan.create] == [("events_p202612", 4), ("events_p202701", 0)]
    assert plan.stray == ((_utc(2027, 6, 1), 1), (None, 2))
    assert plan.needs_attention


def test_plan_expires_partitions_ending_before_the_retention_cutoff() -> None:
    table = _with_retention(Retention(3, "month"))
    state = _state([(2026, 6), (2026, 7), (2026, 8), (2026, 9)])
    plan = decide(table, state, _utc(2026, 11, 1), premake=0)
    # cutoff 2026-08-01: July ends exactly there (not before it), so only June goes, as pg_partman decides.
    assert [e.partition.name for e in plan.expire] == ["events_p202606"]
    assert plan.expire[0].keep_table


def test_plan_reports_a_partition_overlapping_a_planned_period() -> None:
    odd = LivePartition("events_odd", _utc(2026, 11, 15), _utc(2026, 12, 15))
    state = replace(_state([]), partitions=(odd,))
    plan = decide(TABLE, state, _utc(2026, 11, 20), premake=1)
    assert [n.name for n in plan.create] == []
    assert plan.problems[0].startswith("partition events_odd overlaps the period of events_p202611")


# -- the YAML -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("replacement", "message"), [
    ("retention: 24 months", None),
    ("retention: forever", "retention of table messages must be a count and a unit, e.g. '24 months'"),
    ("retention: 0 months", "retention of table messages must be a count and a unit"),
    ("retention: [24, months]", "retention of table messages must be a string"),
    ("backend: pg_pathman", "backend of table messages must be one of builtin, partman"),
    ("retention_keep_table: maybe", "retention_keep_table of table messages must be true or false"),
])
def test_partition_maintenance_keys_are_checked_at_load(tmp_path: Path, replacement: str,
                                                        message: str | None) -> None:
    text = SCHEMA_YAML.replace("retention: 24 months, backend: BACKEND", replacement)
    (tmp_path / "chat.yaml").write_text(text.replace("BACKEND", "builtin"))
    if message is None:
        spec = load_schema(tmp_path).tables["messages"].partition
        assert spec is not None and spec.retention == Retention(24, "month") and spec.backend == "builtin"
        return
    with pytest.raises(SchemaLoadError) as raised:
        load_schema(tmp_path)
    line = text.splitlines().index(next(x for x in text.splitlines() if replacement.split(":")[0] in x)) + 1
    assert f"chat.yaml:{line}:" in str(raised.value) and message in str(raised.value)


def test_keep_table_without_retention_and_partman_without_default_are_refused(tmp_path: Path) -> None:
    text = SCHEMA_YAML.replace("retention: 24 months, backend: BACKEND",
                               "retention_keep_table: false, default_partition: false, backend: partman")
    (tmp_path / "chat.yaml").write_text(text.replace("BACKEND", "builtin"))
    with pytest.raises(SchemaLoadError) as raised:
        load_schema(tmp_path)
    assert "retention_keep_table of table messages needs a retention" in str(raised.value)
    assert "backend partman of table messages needs range partitioning by time with a default partition" \
        in str(raised.value)


def test_moving_referenced_rows_needs_the_documented_privilege(life: Lifecycle) -> None:
    role = f"owner_{life.db.name}"
    life.db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        life.db.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
        for table in ("rooms", "messages", "messages_default", *(f"messages{suffix(k)}" for k in range(4)),
                      "message_reactions"):
            life.db.execute(f"ALTER TABLE {table} OWNER TO {role}")
        life.reaction(life.message(life.room(), month(5)))
        dsn = life.db.dsn.replace("postgres@", f"{role}@", 1)
        args = ("partitions", "messages", "--premake", "5", "--dsn", dsn, "--schema-dir", str(life.schema_dir))

        refused = invoke(*args)
        assert refused.exit_code == 3, refused.output
        assert "permission denied to set parameter \"session_replication_role\"" in refused.stdout
        assert f"messages{suffix(4)}" in life.partition_names("messages")  # no row to move: no privilege needed
        assert life.db.query("SELECT to_regclass(%s)", (f"messages{suffix(5)}",)) == [(None,)]  # nothing left behind

        life.db.execute(f"GRANT SET ON PARAMETER session_replication_role TO {role}")
        granted = invoke(*args)
        assert granted.exit_code == 0, granted.output
        assert life.count(f"messages{suffix(5)}") == 1 and life.count("message_reactions") == 1
    finally:
        life.db.execute(f"REASSIGN OWNED BY {role} TO postgres")
        life.db.execute(f"DROP OWNED BY {role}")
        life.db.execute(f"DROP ROLE {role}")


def test_the_library_entry_point_maintains_one_table(life: Lifecycle) -> None:
    """What bench/bench_write_stall.py calls: one table, session prepared, plan made and carried out."""
    from veza_schema.maintenance.partitions import MaintenanceOptions, maintain

    life.event(month(4), 5)
    table = load_schema(life.schema_dir).tables["events"]
    with psycopg.connect(life.db.dsn, autocommit=True) as conn:
        result = maintain(conn, table, premake=4, options=MaintenanceOptions(batch_size=2))
    assert result.error is None and result.moved_rows == 5
    assert [new.name for new in result.created] == [f"events{suffix(4)}"]
    assert life.count("ONLY events_default") == 0
