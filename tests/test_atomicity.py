"""A migration file and its history row commit together or not at all; the files that record
what was generated (``veza.sum``, ``veza.snapshot.json``) cannot be edited by hand unnoticed.

How: the history write is made to fail on the real server (a trigger on ``_sqlx_migrations``
that raises, or a deferred one that raises at commit), and the test checks that the file's
DDL went with it, for ``apply`` and ``rollback``. Each test names the mutant of issue 18 it
kills: the history row written after the file's transaction, a snapshot left out of the
sum, down files run oldest first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import TestDatabase, run_cli, write_migrations
from veza_schema.migrations.history import CREATE_HISTORY

CREATE_A = {
    "1_create_a.up.sql": "CREATE TABLE a (id integer PRIMARY KEY);\n\nCREATE INDEX idx_a_id ON a (id);\n",
    "1_create_a.down.sql": "DROP TABLE a;\n",
}
CREATE_B = {
    "2_create_b.up.sql": "CREATE TABLE b (id integer PRIMARY KEY);\n",
    "2_create_b.down.sql": "DROP TABLE b;\n",
}
NO_TRANSACTION_A = {
    "1_create_a.up.sql": "-- no-transaction\nCREATE TABLE a (id integer PRIMARY KEY);\n"
                         "CREATE INDEX CONCURRENTLY idx_a_id ON a (id);\n",
    "1_create_a.down.sql": "-- no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS idx_a_id;\nDROP TABLE IF EXISTS a;\n",
}


def cli(database: TestDatabase, command: str, migrations: Path, *args: str) -> tuple[int, str]:
    result = run_cli(command, "--dsn", database.dsn, "--migrations-dir", str(migrations), *args)
    return result.exit_code, result.output


def tables(database: TestDatabase) -> list[str]:
    return [r[0] for r in database.query(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' "
        "AND relname <> '_sqlx_migrations' ORDER BY 1")]


def indexes(database: TestDatabase) -> list[str]:
    return [r[0] for r in database.query(
        "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass('a') ORDER BY 1")]


def history(database: TestDatabase) -> list[tuple]:
    return database.query("SELECT version, success FROM _sqlx_migrations ORDER BY version")


def refuse_history_writes(database: TestDatabase, event: str, when: str = "true") -> None:
    """A trigger that makes ``event`` (INSERT, UPDATE or DELETE) on the history table fail."""
    database.execute(CREATE_HISTORY)
    database.execute("""
        CREATE OR REPLACE FUNCTION test_refuse_history() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'history write refused by the test (%)', TG_OP; END $$""")
    row = "NEW" if event != "DELETE" else "OLD"
    database.execute(f"CREATE TRIGGER test_refuse_{event.lower()} BEFORE {event} ON _sqlx_migrations FOR EACH ROW "
                     f"WHEN ({when.replace('ROW', row)}) EXECUTE FUNCTION test_refuse_history()")


def allow_history_writes(database: TestDatabase) -> None:
    database.execute("DROP FUNCTION test_refuse_history() CASCADE")


# -- the history row and the file's DDL commit together -------------------------------------------
def test_history_row_failing_rolls_back_the_files_ddl_on_apply(database: TestDatabase, tmp_path: Path) -> None:
    """Kills the mutant "history row recorded after the file's transaction": its DDL would stay, unrecorded."""
    migrations = write_migrations(tmp_path / "m", CREATE_A)
    refuse_history_writes(database, "INSERT")
    code, output = cli(database, "apply", migrations)
    assert code == 3, output
    assert "history write refused by the test" in output
    assert tables(database) == [] and history(database) == []
    allow_history_writes(database)
    assert cli(database, "apply", migrations)[0] == 0
    assert tables(database) == ["a"] and indexes(database) == ["a_pkey", "idx_a_id"]
    assert history(database) == [(1, True)]


def test_history_row_failing_rolls_back_the_down_files_ddl_on_rollback(database: TestDatabase,
                                                                      tmp_path: Path) -> None:
    """Kills the mutant "history row forgotten after the down file's transaction": the table would be gone
    while the history still lists it."""
    migrations = write_migrations(tmp_path / "m", CREATE_A)
    assert cli(database, "apply", migrations)[0] == 0
    refuse_history_writes(database, "DELETE")
    code, output = cli(database, "rollback", migrations)
    assert code == 3, output
    assert "history write refused by the test" in output
    assert tables(database) == ["a"] and indexes(database) == ["a_pkey", "idx_a_id"]
    assert history(database) == [(1, True)]
    allow_history_writes(database)
    assert cli(database, "rollback", migrations)[0] == 0
    assert tables(database) == [] and history(database) == []


def test_history_row_refused_at_commit_rolls_back_the_file(database: TestDatabase, tmp_path: Path) -> None:
    """A failure at COMMIT (a deferred trigger) is a failure of the whole file, named as such."""
    migrations = write_migrations(tmp_path / "m", CREATE_A)
    database.execute(CREATE_HISTORY)
    database.execute("""
        CREATE FUNCTION test_refuse_history() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused at commit by the test'; END $$;
        CREATE CONSTRAINT TRIGGER test_refuse_at_commit AFTER INSERT ON _sqlx_migrations
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_refuse_history()""")
    code, output = cli(database, "apply", migrations)
    assert code == 3, output
    assert "1_create_a: recording it in the history or committing failed" in output
    assert "refused at commit by the test" in output and "Nothing of 1_create_a was applied" in output
    assert tables(database) == [] and history(database) == []


def test_each_file_commits_with_its_own_row(database: TestDatabase, tmp_path: Path) -> None:
    """The second file's row fails: the first file stays applied and recorded, the second leaves nothing."""
    migrations = write_migrations(tmp_path / "m", {**CREATE_A, **CREATE_B})
    refuse_history_writes(database, "INSERT", "ROW.version = 2")
    code, output = cli(database, "apply", migrations)
    assert code == 3, output
    assert tables(database) == ["a"] and history(database) == [(1, True)]


def test_rollback_of_two_files_stops_at_the_one_whose_row_cannot_be_removed(database: TestDatabase,
                                                                           tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {**CREATE_A, **CREATE_B})
    assert cli(database, "apply", migrations)[0] == 0
    refuse_history_writes(database, "DELETE", "ROW.version = 1")
    code, output = cli(database, "rollback", migrations, "--to", "0")
    assert code == 3, output
    assert tables(database) == ["a"] and history(database) == [(1, True)]


# -- outside a transaction: the marker comes first --------------------------------------------------
def test_non_transactional_file_does_not_run_when_its_marker_cannot_be_written(database: TestDatabase,
                                                                              tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", NO_TRANSACTION_A)
    refuse_history_writes(database, "INSERT")
    code, output = cli(database, "apply", migrations)
    assert code == 3, output
    assert tables(database) == [] and history(database) == []


def test_non_transactional_file_whose_completion_cannot_be_recorded_stays_marked_failed(
        database: TestDatabase, tmp_path: Path) -> None:
    """Its DDL took effect; the history says so (a failed row) and status asks for action."""
    migrations = write_migrations(tmp_path / "m", NO_TRANSACTION_A)
    refuse_history_writes(database, "UPDATE")
    code, output = cli(database, "apply", migrations)
    assert code == 3, output
    assert tables(database) == ["a"] and history(database) == [(1, False)]
    code, output = cli(database, "status", migrations)
    assert code == 1 and "failed" in output


def test_non_transactional_down_file_does_not_run_when_its_marker_cannot_be_written(database: TestDatabase,
                                                                                   tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", NO_TRANSACTION_A)
    assert cli(database, "apply", migrations)[0] == 0
    refuse_history_writes(database, "UPDATE")
    code, output = cli(database, "rollback", migrations)
    assert code == 3, output
    assert tables(database) == ["a"] and indexes(database) == ["a_pkey", "idx_a_id"]
    assert history(database) == [(1, True)]


# -- rollback order ---------------------------------------------------------------------------------
DEPENDENT = {
    "1_create_artists.up.sql": "CREATE TABLE artists (id integer PRIMARY KEY);\n",
    "1_create_artists.down.sql": "DROP TABLE artists;\n",
    "2_create_tracks.up.sql": "CREATE TABLE tracks (id integer PRIMARY KEY,\n"
                              "    artist_id integer NOT NULL REFERENCES artists (id));\n",
    "2_create_tracks.down.sql": "DROP TABLE tracks;\n",
    "3_create_track_titles.up.sql": "ALTER TABLE tracks ADD COLUMN title text;\n"
                                    "CREATE VIEW track_titles AS SELECT id, title FROM tracks;\n",
    "3_create_track_titles.down.sql": "DROP VIEW track_titles;\nALTER TABLE tracks DROP COLUMN title;\n",
}


def test_rollback_of_several_dependent_files_runs_newest_first(database: TestDatabase, tmp_path: Path) -> None:
    """Kills the mutant "down files run oldest first": each down file fails while a newer file's objects
    still depend on what it drops."""
    migrations = write_migrations(tmp_path / "m", DEPENDENT)
    assert cli(database, "apply", migrations)[0] == 0
    code, output = cli(database, "rollback", migrations, "--to", "1")
    assert code == 0, output
    assert tables(database) == ["artists"] and history(database) == [(1, True)]
    assert cli(database, "apply", migrations)[0] == 0
    code, output = cli(database, "rollback", migrations, "--to", "0")
    assert code == 0, output
    assert tables(database) == [] and history(database) == []


def test_rollback_dry_run_lists_the_down_files_newest_first(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", DEPENDENT)
    assert cli(database, "apply", migrations)[0] == 0
    code, output = cli(database, "rollback", migrations, "--to", "0", "--dry-run")
    assert code == 0, output
    order = [output.index(f"{name}.down.sql") for name in ("3_create_track_titles", "2_create_tracks",
                                                            "1_create_artists")]
    assert order == sorted(order)


# -- the sum and the snapshot cannot be edited by hand unnoticed -----------------------------------------
SCHEMA_YAML = """\
module: app
tables:
  artists:
    columns:
      id:   {type: uuid, primary_key: true, default: gen_random_uuid()}
      name: {type: text}
"""


def generated(tmp_path: Path) -> tuple[Path, Path]:
    schema_dir, migrations = tmp_path / "schema", tmp_path / "migrations"
    schema_dir.mkdir()
    (schema_dir / "app.yaml").write_text(SCHEMA_YAML)
    # A minimal table (no created_at/updated_at): lint's gate is not what these tests are about.
    result = run_cli("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations), "--no-verify")
    assert result.exit_code == 0, result.output
    return schema_dir, migrations


def edit_snapshot(migrations: Path, column: dict) -> None:
    """What a hand edit looks like: a column added to a table of the JSON snapshot."""
    path = migrations / "veza.snapshot.json"
    document = json.loads(path.read_text())
    document["tables"]["artists"]["columns"].append(column)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")


BIO = {"comment": None, "default": None, "generated": None, "identity": None, "name": "bio", "nullable": True,
       "type": "text"}


def test_hand_edited_snapshot_is_refused_by_apply_generate_lint_and_status(database: TestDatabase,
                                                                          tmp_path: Path) -> None:
    """Kills the mutant "the sum does not cover veza.snapshot.json"."""
    schema_dir, migrations = generated(tmp_path)
    edit_snapshot(migrations, BIO)
    files_before = sorted(p.name for p in migrations.iterdir())

    code, output = cli(database, "apply", migrations)
    assert code == 2 and "veza.snapshot.json (modified)" in output, output
    assert tables(database) == []
    result = run_cli("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations))
    assert result.exit_code == 2 and "veza.snapshot.json (modified)" in result.output, result.output
    result = run_cli("lint", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations))
    assert result.exit_code == 2 and "veza.snapshot.json (modified)" in result.output, result.output
    code, output = cli(database, "status", migrations)
    assert code == 1 and "veza.snapshot.json modified" in output, output
    assert sorted(p.name for p in migrations.iterdir()) == files_before


def test_snapshot_edited_to_hide_a_schema_change_is_refused_by_generate(tmp_path: Path) -> None:
    """A column added to the YAML and, by hand, to the snapshot: generate must not answer "nothing to
    generate" (the column would never reach a database)."""
    schema_dir, migrations = generated(tmp_path)
    (schema_dir / "app.yaml").write_text(SCHEMA_YAML + "      bio:  {type: text, nullable: true}\n")
    edit_snapshot(migrations, BIO)
    result = run_cli("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations))
    assert result.exit_code == 2, result.output
    assert "veza.snapshot.json (modified)" in result.output
    assert "Nothing to generate" not in result.output


def _drop_line(text: str, name: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(name))


@pytest.mark.parametrize(("tamper", "problem"), [
    (lambda text: _drop_line(text, "veza.snapshot.json"), "veza.snapshot.json (added)"),
    (lambda text: text + "20990101000000_ghost.up.sql h1:AAAA\n", "20990101000000_ghost.up.sql (removed)"),
    (lambda text: "h1:" + "A" * 43 + "=\n" + text.split("\n", 1)[1], "cumulative hash or order differs"),
    (lambda text: text.splitlines()[0] + "\n" + "\n".join(reversed(text.splitlines()[1:])) + "\n",
     "cumulative hash or order differs"),
], ids=["line_removed", "line_added", "cumulative_hash_edited", "lines_reordered"])
def test_hand_edited_sum_is_refused_by_apply(tamper, problem: str, database: TestDatabase,  # type: ignore[no-untyped-def]
                                             tmp_path: Path) -> None:
    _, migrations = generated(tmp_path)
    path = migrations / "veza.sum"
    path.write_text(tamper(path.read_text()))
    code, output = cli(database, "apply", migrations)
    assert code == 2, output
    assert problem in output
    assert tables(database) == []
