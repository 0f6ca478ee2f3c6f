"""Crash consistency of the maintenance commands at every statement boundary: ``refresh`` and
``partitions`` stopped dead (SIGKILL, or an immediate server stop for a sample), then run again.

What must hold after any crash, and after the re-run:
- ``refresh``: each materialized view holds either its old rows or the fresh ones, never a mix,
  and a second ``refresh`` leaves every view equal to its query, with no leftover object;
- ``partitions`` (creating partitions ahead and moving the rows the default partition holds for
  them, in batches): no row lost or duplicated, and a second ``partitions`` reaches exactly the
  partitions, and puts every row exactly where, a run without a crash does.

The boundaries are found by a counting run of the same command (``tests/crash_driver.py``).
The exhaustive runs are ``slow`` (``make test-slow``); ``make test`` runs a spread sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from tests.crash import Maintained, OwnServer, applied_template, boundaries, middle, own_server_fixture, run_at, sample
from tests.helpers import invoke

SAMPLE = 2

SCHEMA = """\
module: app
tables:
  plays:
    columns:
      id:        {type: bigint, identity: always}
      track:     {type: text}
      played_at: {type: timestamptz, default: now()}
    primary_key: [id, played_at]
    partition_by: {range: [played_at], interval: month, premake: 1}
views:
  plays_per_track:
    materialized: true
    query: SELECT track, count(*) AS plays FROM plays GROUP BY track
    indexes:
      idx_plays_per_track_track_unique: {columns: [track], unique: true}
  top_tracks:
    materialized: true
    depends_on: [plays_per_track]
    query: SELECT track, plays FROM plays_per_track WHERE plays >= 2
    indexes:
      idx_top_tracks_track_unique: {columns: [track], unique: true}
"""
VIEWS = {"plays_per_track": "SELECT track, count(*) AS plays FROM plays GROUP BY track",
         "top_tracks": "SELECT track, plays FROM plays_per_track WHERE plays >= 2"}
# Rows in this month's partition, and rows two and three months ahead that only the default partition can
# take until `partitions` creates their partitions and moves them there (in batches of BATCH rows).
ROWS = """
INSERT INTO plays (track, played_at)
SELECT 'track ' || (i % 7), now() - (i % 3) * interval '1 minute' FROM generate_series(1, 200) AS i;
INSERT INTO plays (track, played_at)
SELECT 'early ' || (i % 2), date_trunc('month', now()) + interval '2 months' + i * interval '1 hour'
FROM generate_series(1, 20) AS i;
INSERT INTO plays (track, played_at)
SELECT 'earlier ' || (i % 2), date_trunc('month', now()) + interval '3 months' + i * interval '1 hour'
FROM generate_series(1, 15) AS i;
"""
BATCH = "7"
NEW_ROWS = "INSERT INTO plays (track) SELECT 'track ' || (i % 11) FROM generate_series(1, 100) AS i"

own_server = own_server_fixture()


@pytest.fixture(scope="module")
def maintained(own_server: OwnServer, tmp_path_factory: pytest.TempPathFactory) -> Maintained:
    schema_dir, template = applied_template(own_server, tmp_path_factory.mktemp("maintenance"), SCHEMA, "maint_")
    with psycopg.connect(own_server.server.dsn_for(template), autocommit=True) as conn:
        conn.execute(ROWS)
        conn.execute("REFRESH MATERIALIZED VIEW plays_per_track; REFRESH MATERIALIZED VIEW top_tracks")
        conn.execute(NEW_ROWS)  # the views are now stale: a refresh has work to do
    return Maintained(own_server, schema_dir, template)


def contents(conn: psycopg.Connection, query: str) -> list[tuple]:
    return sorted(conn.execute(query).fetchall())  # type: ignore[arg-type]


# -- refresh -------------------------------------------------------------------------------------------------
def refresh_problems(maintained: Maintained, boundary: int, tmp: Path, server_stop: bool) -> list[str]:
    where = f"{maintained.own.label} refresh stopped before statement {boundary}"
    problems: list[str] = []
    for dsn in maintained.database():
        with psycopg.connect(dsn, autocommit=True) as conn:
            stale = {name: contents(conn, f"SELECT * FROM {name}") for name in VIEWS}
        run_at(maintained, ["refresh"], boundary, tmp, server_stop, dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            fresh_counts = contents(conn, VIEWS["plays_per_track"])
            for name in VIEWS:
                now = contents(conn, f"SELECT * FROM {name}")
                fresh = fresh_counts if name == "plays_per_track" else \
                    sorted(row for row in fresh_counts if row[1] >= 2)
                if now not in (stale[name], fresh):
                    problems.append(f"{where}: {name} is neither its old nor its fresh contents")
        result = invoke("refresh", "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        if result.exit_code != 0:
            problems.append(f"{where}: refresh again failed:\n{result.output}")
            continue
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name, query in VIEWS.items():
                if contents(conn, f"SELECT * FROM {name}") != contents(conn, query):
                    problems.append(f"{where}: after a second refresh {name} differs from its query")
            leftovers = conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                                     "AND relname LIKE 'pg_temp%'").fetchall()
            if leftovers:
                problems.append(f"{where}: leftovers {leftovers}")
    return problems


def test_refresh_interrupted_at_sampled_boundaries_recovers(maintained: Maintained, tmp_path: Path) -> None:
    total = boundaries(maintained, ["refresh"], tmp_path)
    problems = [p for n in sample(total, SAMPLE) for p in refresh_problems(maintained, n, tmp_path, False)]
    assert problems == [], "\n".join(problems)


def test_refresh_survives_an_immediate_server_stop(maintained: Maintained, tmp_path: Path) -> None:
    total = boundaries(maintained, ["refresh"], tmp_path)
    problems = refresh_problems(maintained, middle(total), tmp_path, True)
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
def test_refresh_interrupted_at_every_boundary_recovers(maintained: Maintained, tmp_path: Path) -> None:
    total = boundaries(maintained, ["refresh"], tmp_path)
    problems = [p for n in range(1, total + 1) for p in refresh_problems(maintained, n, tmp_path, n % 3 == 0)]
    assert problems == [], "\n".join(problems)


# -- partitions ----------------------------------------------------------------------------------------------
PARTITIONS = ["partitions", "--premake", "3", "--batch-size", BATCH]
_LAYOUT = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'plays'::regclass ORDER BY 1
"""
_ROWS = "SELECT tableoid::regclass::text, id, track, played_at FROM plays ORDER BY id"


def partition_problems(maintained: Maintained, boundary: int, tmp: Path, server_stop: bool,
                       reference: tuple[list[tuple], list[tuple]]) -> list[str]:
    where = f"{maintained.own.label} partitions stopped before statement {boundary}"
    problems: list[str] = []
    expected_layout, expected_rows = reference
    for dsn in maintained.database():
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = [row[1:] for row in conn.execute(_ROWS).fetchall()]
        run_at(maintained, PARTITIONS, boundary, tmp, server_stop, dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            if [row[1:] for row in conn.execute(_ROWS).fetchall()] != before:
                problems.append(f"{where}: rows lost, duplicated or changed")
        result = invoke(*PARTITIONS, "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        if result.exit_code != 0:
            problems.append(f"{where}: partitions again failed:\n{result.output}")
            continue
        with psycopg.connect(dsn, autocommit=True) as conn:
            if conn.execute(_LAYOUT).fetchall() != expected_layout:
                problems.append(f"{where}: the partitions differ from a run without a crash")
            if conn.execute(_ROWS).fetchall() != expected_rows:
                problems.append(f"{where}: rows are not where a run without a crash puts them")
    return problems


def clean_run(maintained: Maintained) -> tuple[list[tuple], list[tuple]]:
    for dsn in maintained.database():
        result = invoke(*PARTITIONS, "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        assert result.exit_code == 0, result.output
        with psycopg.connect(dsn, autocommit=True) as conn:
            layout, rows = conn.execute(_LAYOUT).fetchall(), conn.execute(_ROWS).fetchall()
        assert len(layout) == 5, layout  # this month, 3 ahead, the default
        return layout, rows
    raise AssertionError("unreachable")


def test_partitions_interrupted_at_sampled_boundaries_recovers(maintained: Maintained, tmp_path: Path) -> None:
    reference = clean_run(maintained)
    total = boundaries(maintained, PARTITIONS, tmp_path)
    problems = [p for n in sample(total, SAMPLE)
                for p in partition_problems(maintained, n, tmp_path, False, reference)]
    assert problems == [], "\n".join(problems)


def test_partitions_survive_an_immediate_server_stop(maintained: Maintained, tmp_path: Path) -> None:
    reference = clean_run(maintained)
    total = boundaries(maintained, PARTITIONS, tmp_path)
    problems = partition_problems(maintained, middle(total), tmp_path, True, reference)
    assert problems == [], "\n".join(problems)


@pytest.mark.slow
def test_partitions_interrupted_at_every_boundary_recovers(maintained: Maintained, tmp_path: Path) -> None:
    reference = clean_run(maintained)
    total = boundaries(maintained, PARTITIONS, tmp_path)
    problems = [p for n in range(1, total + 1)
                for p in partition_problems(maintained, n, tmp_path, n % 3 == 0, reference)]
    assert problems == [], "\n".join(problems)


_CAPTURE = ("SELECT t.tgname::text FROM pg_trigger t WHERE t.tgrelid = 'plays_default'::regclass "
            "AND t.tgname LIKE 'veza\\_move\\_%' ORDER BY 1")
_CAPTURE_OBJECTS = ("SELECT relname::text FROM pg_class WHERE relname LIKE 'veza\\_move\\_%' UNION ALL "
                    "SELECT proname::text FROM pg_proc WHERE proname LIKE 'veza\\_move\\_%' UNION ALL "
                    "SELECT tgname::text FROM pg_trigger WHERE tgname LIKE 'veza\\_move\\_%'")


@contextmanager
def killed_during_a_move(maintained: Maintained, tmp: Path) -> Iterator[tuple[str, str]]:
    """A database where ``partitions`` was killed during a move of default rows (at the boundary nearest
    the middle of the run that is inside one), and the name of the capture trigger it left there."""
    total = boundaries(maintained, PARTITIONS, tmp)
    for boundary in sorted(range(1, total + 1), key=lambda n: abs(n - middle(total))):
        for dsn in maintained.database():
            run_at(maintained, PARTITIONS, boundary, tmp, False, dsn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                left = [row[0] for row in conn.execute(_CAPTURE).fetchall()]
            if left:
                yield dsn, left[0]
                return
    raise AssertionError("no boundary of the run is inside a move")


def test_check_flags_what_a_killed_move_left_and_names_the_fix(maintained: Maintained, tmp_path: Path) -> None:
    with killed_during_a_move(maintained, tmp_path) as (dsn, trigger):
        result = invoke("partitions", "--check", "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        assert result.exit_code == 1, result.output
        assert f"an interrupted move left {trigger} on plays_default" in result.stdout
        assert "rerun `veza-schema partitions`, which removes it" in result.stdout
        report = json.loads(invoke("partitions", "--check", "--format", "json", "--dsn", dsn, "--schema-dir",
                                   str(maintained.schema_dir)).stdout)
        assert report["ok"] is False and report["tables"][0]["interrupted_moves"] == [trigger]


def test_the_next_run_removes_what_a_killed_move_left_even_without_moving_again(maintained: Maintained,
                                                                                  tmp_path: Path) -> None:
    with killed_during_a_move(maintained, tmp_path) as (dsn, trigger):
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = [row[1:] for row in conn.execute(_ROWS).fetchall()]
        # --premake 0: this run moves nothing (the rows ahead stay, reported), yet removes the leftovers.
        result = invoke("partitions", "--premake", "0", "--dsn", dsn, "--schema-dir", str(maintained.schema_dir))
        assert result.exit_code == 1, result.output  # the rows ahead need attention
        assert f"~ removed {trigger} from plays_default (left by an interrupted move)" in result.stdout
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute(_CAPTURE_OBJECTS).fetchall() == []
            assert [row[1:] for row in conn.execute(_ROWS).fetchall()] == before
        check = invoke("partitions", "--check", "--premake", "0", "--dsn", dsn, "--schema-dir",
                       str(maintained.schema_dir))
        assert "interrupted move" not in check.stdout, check.stdout
