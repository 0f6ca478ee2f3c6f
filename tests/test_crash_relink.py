"""Crash consistency of ``partitions`` where foreign keys reference the partitioned table: the steps that
drop those keys and re-add them NOT VALID (a move big enough to relink, a retention's DETACH), stopped
dead at every statement boundary (SIGKILL of the CLI, or an immediate server stop), then run again.

What must hold after any crash, and after the rerun:
- no row lost or duplicated, in the partitioned table or in a referencing one (retention: the rows it
  archived count where they went, the rows it unlinked are the same rows);
- every referencing key exists exactly once, with its definition (``pg_get_constraintdef``) and comment;
- a row referencing nothing is refused (the key is enforced even while NOT VALID); ``--check`` names
  each key a crash left NOT VALID (exit 1);
- the rerun succeeds, validates every key, leaves everything as a run without a crash does, and
  ``--check`` then exits 0.

The boundaries are found by a counting run of the same command (``tests/crash_driver.py``), which also
names each one's statement: the default sample (``make test``) takes the relinking step and each
VALIDATE after it; the exhaustive runs are ``slow`` (``make test-slow``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from tests.crash import Maintained, OwnServer, applied_template, own_server_fixture, run_at, statements
from tests.helpers import invoke
from veza_schema.managed import period_start, shift

SCHEMA = """\
module: app
tables:
  plays:
    columns:
      id:        {type: bigint, identity: always}
      track:     {type: text}
      played_at: {type: timestamptz, default: now()}
    primary_key: [id, played_at]
    partition_by: {range: [played_at], interval: month, premake: 1, retention: 2 months, retention_keep_table: true}
  likes:
    columns:
      id:        {type: bigint, identity: always, primary_key: true}
      play_id:   {type: bigint}
      played_at: {type: timestamptz}
    foreign_keys:
      fk_likes_plays:
        columns: [play_id, played_at]
        references: plays(id, played_at)
        on_delete: cascade
    indexes:
      idx_likes_played_at_btree: {columns: [played_at]}
"""
# A second referencing key unlike the first (a SET NULL of one column, deferrable), and a comment on each.
MORE_KEYS = """
CREATE TABLE pins (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, play_id bigint, played_at timestamptz,
                   CONSTRAINT fk_pins_plays FOREIGN KEY (play_id, played_at) REFERENCES plays
                   ON DELETE SET NULL (play_id) DEFERRABLE INITIALLY DEFERRED);
CREATE INDEX idx_pins_played_at_btree ON pins (played_at);
COMMENT ON CONSTRAINT fk_likes_plays ON likes IS 'a like''s play';
COMMENT ON CONSTRAINT fk_pins_plays ON pins IS 'a pin is kept when its play goes';
"""
# A move big enough to relink (partition_state._RELINK_FROM_ROWS, 20,000: there is no knob for it at the
# CLI): that many rows two months ahead, which only the default partition can take until `partitions`
# makes their partition; a quarter of them liked, some pinned; and rows of this month.
MOVE_ROWS = """
SET timezone TO 'UTC';
INSERT INTO plays (track, played_at)
SELECT 'now ' || (i % 7), date_trunc('month', now()) + i * interval '1 minute' FROM generate_series(1, 100) AS i;
INSERT INTO plays (track, played_at)
SELECT 'ahead ' || (i % 5), date_trunc('month', now()) + interval '2 months' + (i % 1000) * interval '1 minute'
FROM generate_series(1, 20000) AS i;
INSERT INTO likes (play_id, played_at) SELECT id, played_at FROM plays WHERE id % 4 = 0;
INSERT INTO pins (play_id, played_at) SELECT id, played_at FROM plays WHERE id % 50 = 0;
ANALYZE plays_default;  -- its row estimate cuts the copy in batches of about --batch-size rows
"""
MOVE = ["partitions", "--premake", "3", "--batch-size", "5000"]
# Retention: plays of this month (expiring three months on: retention 2 months) and of next month (kept),
# liked (CASCADE: archived with the month) and pinned (SET NULL: unlinked); nothing in the default partition.
RETENTION_ROWS = """
SET timezone TO 'UTC';
INSERT INTO plays (track, played_at)
SELECT 'month ' || (i % 2), date_trunc('month', now()) + (i % 2) * interval '1 month' + i * interval '1 minute'
FROM generate_series(1, 300) AS i;
INSERT INTO likes (play_id, played_at) SELECT id, played_at FROM plays WHERE id % 2 = 0;
INSERT INTO pins (play_id, played_at) SELECT id, played_at FROM plays WHERE id % 3 = 0;
"""
AS_OF = shift(period_start(datetime.now(UTC), "month"), 3, "month").replace(day=15)
RETENTION = ["partitions", "--as-of", f"{AS_OF:%Y-%m-%d}", "--premake", "0", "--batch-size", "40"]

REFERENCING = ("likes", "pins")
ARCHIVE = "veza_archive"
# Each key's table, name, definition (which PostgreSQL prints with " NOT VALID" until validated: that is
# the last column), comment and whether it is validated.
_KEYS = """
SELECT con.conrelid::regclass::text, con.conname::text,
       CASE WHEN con.convalidated THEN pg_get_constraintdef(con.oid)
            ELSE left(pg_get_constraintdef(con.oid), -length(' NOT VALID')) END,
       obj_description(con.oid, 'pg_constraint'), con.convalidated
FROM pg_constraint con WHERE con.contype = 'f' AND con.confrelid = 'plays'::regclass AND con.conparentid = 0
ORDER BY 1, 2"""
_LAYOUT = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'plays'::regclass ORDER BY 1"""
_LEFTOVERS = ("SELECT relname::text FROM pg_class WHERE relname LIKE 'veza\\_move\\_%' UNION ALL "
              "SELECT proname::text FROM pg_proc WHERE proname LIKE 'veza\\_move\\_%'")
_COLUMNS = {"plays": "id, track, played_at", "likes": "id, play_id, played_at", "pins": "id, play_id, played_at"}

own_server = own_server_fixture()


@pytest.fixture(scope="module")
def applied(own_server: OwnServer, tmp_path_factory: pytest.TempPathFactory) -> Maintained:
    """The schema applied (and pins' key added by hand) in a template without rows."""
    schema_dir, template = applied_template(own_server, tmp_path_factory.mktemp("relink"), SCHEMA, "relink_")
    with psycopg.connect(own_server.server.dsn_for(template), autocommit=True) as conn:
        conn.execute(MORE_KEYS)
    return Maintained(own_server, schema_dir, template)


def _database(own: OwnServer, template: str) -> str:
    name = "relink_" + uuid.uuid4().hex[:8]
    with psycopg.connect(own.server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _filled(applied: Maintained, rows: str) -> Maintained:
    template = _database(applied.own, applied.template)
    with psycopg.connect(applied.own.server.dsn_for(template), autocommit=True) as conn:
        conn.execute(rows)
    return Maintained(applied.own, applied.schema_dir, template)


@pytest.fixture(scope="module")
def moving(applied: Maintained) -> Maintained:
    return _filled(applied, MOVE_ROWS)


@pytest.fixture(scope="module")
def expiring(applied: Maintained) -> Maintained:
    return _filled(applied, RETENTION_ROWS)


# -- what a database holds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    """The rows of each table, wherever they are (retention archives some in veza_archive), and the keys."""

    rows: dict[str, list[tuple]]
    placed: list[tuple]  # the partition of each row of plays
    archived: list[tuple]  # (table, row) of the tables retention archived
    keys: list[tuple]
    layout: list[tuple]


def snapshot(dsn: str) -> Snapshot:
    with psycopg.connect(dsn, autocommit=True) as conn:
        archives = [name for (name,) in conn.execute(
            "SELECT relname::text FROM pg_class WHERE relnamespace = to_regnamespace(%s) AND relkind = 'r' "
            "ORDER BY 1", (ARCHIVE,)).fetchall()]
        archived = sorted((name, *row) for name in archives for row in conn.execute(
            f"SELECT {_COLUMNS[name.split('_p')[0]]} FROM {ARCHIVE}.{name}").fetchall())
        rows = {}
        for table, columns in _COLUMNS.items():
            live = conn.execute(f"SELECT {columns} FROM {table}").fetchall()
            rows[table] = sorted([*live, *(row[1:] for row in archived if row[0].split("_p")[0] == table)])
        return Snapshot(rows, conn.execute("SELECT tableoid::regclass::text, id FROM plays ORDER BY 2").fetchall(),
                        archived, conn.execute(_KEYS).fetchall(), conn.execute(_LAYOUT).fetchall())


def orphans_accepted(dsn: str) -> list[str]:
    """The referencing tables that accept a row referencing no play (each insert its own transaction)."""
    accepted = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in REFERENCING:
            try:
                conn.execute(f"INSERT INTO {table} (play_id, played_at) VALUES (-1, %s)", (AS_OF,))
            except psycopg.errors.ForeignKeyViolation:
                continue
            accepted.append(table)
    return accepted


def same_rows(before: Snapshot, now: Snapshot, unlinked: Callable[[tuple], bool]) -> list[str]:
    """Rows lost, duplicated or changed; a pin may have lost its play (``unlinked``: retention applies the
    key's ON DELETE SET NULL (play_id), which keeps played_at)."""
    problems = [f"{table}: rows lost, duplicated or changed" for table in ("plays", "likes")
                if now.rows[table] != before.rows[table]]
    pins = dict((row[0], row) for row in before.rows["pins"])
    if sorted(row[0] for row in now.rows["pins"]) != sorted(pins) or any(
            row != pins[row[0]] and not (unlinked(pins[row[0]]) and row == (row[0], None, pins[row[0]][2]))
            for row in now.rows["pins"]):
        problems.append("pins: rows lost, duplicated or changed")
    return problems


# -- one crash point --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    maintained: Maintained
    command: list[str]
    unlinked: Callable[[tuple], bool]  # a pin's row that retention may unlink


def crash_problems(scenario: Scenario, boundary: int, tmp: Path, server_stop: bool, reference: Snapshot) -> list[str]:
    maintained, command = scenario.maintained, scenario.command
    where = f"{maintained.own.label} {command[0]} {' '.join(command[1:])} stopped before statement {boundary}"
    problems: list[str] = []
    for dsn in maintained.database():
        before = snapshot(dsn)
        run_at(maintained, command, boundary, tmp, server_stop, dsn)
        crashed = snapshot(dsn)
        problems += [f"{where}: {p}" for p in same_rows(before, crashed, scenario.unlinked)]
        if [key[:4] for key in crashed.keys] != [key[:4] for key in before.keys]:
            problems.append(f"{where}: the keys differ from before: {crashed.keys}")
        problems += [f"{where}: {table} accepted a row referencing no play" for table in orphans_accepted(dsn)]
        check = invoke(*command, "--check", "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        unvalidated = [f"foreign key {name} on {table} is NOT VALID" for table, name, *_, valid in crashed.keys
                       if not valid]
        if unvalidated and (check.exit_code != 1 or not all(line in check.stdout for line in unvalidated)):
            problems.append(f"{where}: --check does not flag {unvalidated} (exit {check.exit_code}):\n{check.output}")
        rerun = invoke(*command, "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        if rerun.exit_code != 0:
            problems.append(f"{where}: the rerun failed:\n{rerun.output}")
            continue
        after = snapshot(dsn)
        differing = [name for name in ("rows", "placed", "archived", "keys", "layout")
                     if getattr(after, name) != getattr(reference, name)]
        if differing:
            problems.append(f"{where}: after the rerun, {differing} differ from a run without a crash")
        problems += [f"{where}: after the rerun {table} accepted a row referencing no play"
                     for table in orphans_accepted(dsn)]
        with psycopg.connect(dsn, autocommit=True) as conn:
            if conn.execute(_LEFTOVERS).fetchall():
                problems.append(f"{where}: the rerun left {conn.execute(_LEFTOVERS).fetchall()}")
        check = invoke(*command, "--check", "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        if check.exit_code != 0:
            problems.append(f"{where}: --check after the rerun exits {check.exit_code}:\n{check.output}")
    return problems


def clean_run(scenario: Scenario) -> Snapshot:
    """What a run without a crash leaves: every key as before, validated."""
    for dsn in scenario.maintained.database():
        before = snapshot(dsn)
        result = invoke(*scenario.command, "--dsn", dsn, "--schema-dir", str(scenario.maintained.schema_dir))
        assert result.exit_code == 0, result.output
        after = snapshot(dsn)
        assert after.keys == before.keys and all(valid for *_, valid in after.keys), after.keys
        assert same_rows(before, after, scenario.unlinked) == []
        return after
    raise AssertionError("unreachable")


def key_steps(sent: list[str], relinking: str) -> list[int]:
    """The boundaries before the one step that drops and re-adds the keys (its statement says
    ``relinking``), then before each key's VALIDATE (after it): what the crash tests rely on."""
    relinks = [n for n, statement in enumerate(sent, 1) if "veza.relink" in statement]
    assert len(relinks) == 1 and relinking in sent[relinks[0] - 1], relinks
    validates = [n for n, statement in enumerate(sent, 1) if "VALIDATE CONSTRAINT" in statement]
    assert [sent[n - 1].split(" VALIDATE")[0] for n in validates] == [
        'ALTER TABLE "public"."likes"', 'ALTER TABLE "public"."pins"'] and validates[0] > relinks[0]
    return [*relinks, *validates]


def move_scenario(moving: Maintained) -> Scenario:
    return Scenario(moving, MOVE, lambda pin: False)


def retention_scenario(expiring: Maintained) -> Scenario:
    expiring_until = shift(period_start(datetime.now(UTC), "month"), 1, "month")
    return Scenario(expiring, RETENTION, lambda pin: pin[2] is not None and pin[2] < expiring_until)


def sampled(scenario: Scenario, relinking: str, tmp: Path) -> list[str]:
    """Killed before the relinking step, a power cut before the first VALIDATE (the keys NOT VALID), killed
    before the second (one key validated, one not)."""
    reference = clean_run(scenario)
    relink, first, second = key_steps(statements(scenario.maintained, scenario.command, tmp), relinking)
    return [p for n, server_stop in ((relink, False), (first, True), (second, False))
            for p in crash_problems(scenario, n, tmp, server_stop, reference)]


def exhaustive(scenario: Scenario, relinking: str, tmp: Path) -> list[str]:
    reference = clean_run(scenario)
    sent = statements(scenario.maintained, scenario.command, tmp)
    key_steps(sent, relinking)
    return [p for n in range(1, len(sent) + 1) for p in crash_problems(scenario, n, tmp, n % 3 == 0, reference)]


# -- a move that relinks ------------------------------------------------------------------------------------
def test_a_relinking_move_stopped_before_its_key_steps_recovers(moving: Maintained, tmp_path: Path) -> None:
    problems = sampled(move_scenario(moving), "ATTACH PARTITION", tmp_path)
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
def test_a_relinking_move_stopped_at_every_boundary_recovers(moving: Maintained, tmp_path: Path) -> None:
    problems = exhaustive(move_scenario(moving), "ATTACH PARTITION", tmp_path)
    assert problems == [], "\n".join(problems)


# -- retention of a referenced partition --------------------------------------------------------------------
def test_a_relinking_retention_stopped_before_its_key_steps_recovers(expiring: Maintained, tmp_path: Path) -> None:
    problems = sampled(retention_scenario(expiring), "DETACH PARTITION", tmp_path)
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
def test_a_relinking_retention_stopped_at_every_boundary_recovers(expiring: Maintained, tmp_path: Path) -> None:
    problems = exhaustive(retention_scenario(expiring), "DETACH PARTITION", tmp_path)
    assert problems == [], "\n".join(problems)
