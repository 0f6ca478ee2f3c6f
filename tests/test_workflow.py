"""The migration workflow as a developer and a DBA follow it (edit YAML -> lint -> check -> generate ->
review -> apply -> rollback), on a real server: a change is the unit, metadata is remembered without
git, one verdict per change, baseline and resolve check what they are told, and the output is clean."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.factories import BASE, IDX, POSTS, USERS, schema, with_
from tests.helpers import REPO_ROOT, CliResult, TestDatabase, cli_env, hand_written, mismatches, run_cli
from veza_schema.db.introspect import introspect
from veza_schema.migrations.files import read_migrations
from veza_schema.migrations.incremental import default_name, plan_incremental
from veza_schema.model import Column, Table

TRACKS = """module: music
tables:
  tracks:
    comment: Tracks
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
      title: {type: varchar(200)}
"""
WITH_ISRC = TRACKS + """      isrc: {type: varchar(12), nullable: true}
    indexes:
      idx_tracks_isrc_btree: {columns: [isrc]}
"""


def write(project: Path, yaml_text: str) -> None:
    (project / "schema").mkdir(parents=True, exist_ok=True)
    (project / "schema" / "music.yaml").write_text(yaml_text)


def ok(project: Path, *args: str) -> CliResult:
    result = run_cli(*args, cwd=project)
    assert result.exit_code == 0, result.output
    return result


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=True).stdout


def versions(database: TestDatabase) -> list[int]:
    return [row[0] for row in database.query("SELECT version FROM _sqlx_migrations ORDER BY version")]


def tracks_with_isrc(database: TestDatabase, project: Path) -> list[int]:
    """TRACKS applied, then the isrc change generated and applied; the versions of the change's files."""
    write(project, TRACKS)
    ok(project, "generate")
    ok(project, "apply", "--dsn", database.dsn)
    write(project, WITH_ISRC)
    ok(project, "generate")
    ok(project, "apply", "--dsn", database.dsn)
    return [m.version for m in read_migrations(project / "migrations")][1:]


# -- 1. a change is the unit ----------------------------------------------------------------------
def test_a_column_and_its_concurrent_index_are_one_change_that_one_rollback_undoes(database: TestDatabase,
                                                                                   tmp_path: Path) -> None:
    write(tmp_path, TRACKS)
    ok(tmp_path, "generate")
    ok(tmp_path, "apply", "--dsn", database.dsn)
    with database.connect() as conn:
        before = introspect(conn)
    write(tmp_path, WITH_ISRC)
    ok(tmp_path, "generate")
    assert [m.name for m in read_migrations(tmp_path / "migrations")][1:] == \
        ["add_tracks_isrc", "add_tracks_isrc_concurrent"]
    ok(tmp_path, "apply", "--dsn", database.dsn)
    with database.connect() as conn:
        assert "idx_tracks_isrc_btree" in introspect(conn).tables["tracks"].indexes

    rolled_back = ok(tmp_path, "rollback", "--dsn", database.dsn)

    assert "Rolled back 2 migration(s) (1 change(s))" in rolled_back.stdout
    with database.connect() as conn:
        assert mismatches(before, introspect(conn)) == []
    assert len(versions(database)) == 1


def test_generate_says_a_change_was_split_and_why(tmp_path: Path) -> None:
    write(tmp_path, TRACKS)
    ok(tmp_path, "generate")
    write(tmp_path, WITH_ISRC)
    output = ok(tmp_path, "generate").stdout
    first, second = read_migrations(tmp_path / "migrations")[1:]
    assert f"Wrote change {first.version}_add_tracks_isrc as 2 files" in output
    assert "`veza-schema rollback` undoes all 2" in output
    assert f"{second.up_path.name} (no transaction): " in output
    assert "CREATE INDEX CONCURRENTLY cannot run in a transaction" in output
    header = second.up_sql.splitlines()[:5]
    assert f"-- Part of change {first.version}_add_tracks_isrc: file 2 of 2 " \
           "(`veza-schema rollback` undoes the whole change)" in header
    assert first.change.label == second.change.label and (second.change.part, second.change.parts) == (2, 2)


def test_default_names_say_what_changed() -> None:
    def name(*tables: Table) -> str:
        return default_name(plan_incremental(BASE, schema(*tables))[0])

    bio = Column("bio", "text", nullable=True)
    assert name(USERS, with_(POSTS, columns=(*POSTS.columns, bio), indexes={IDX.name: IDX})) == "add_posts_bio"
    assert name(USERS, with_(POSTS, indexes={IDX.name: IDX})) == "add_idx_posts_user_id"
    assert name(with_(USERS, columns=USERS.columns[:-1]), POSTS) == "drop_users_role"
    notes = Table("notes", (Column("id", "uuid"),))
    tags = Table("tags", (Column("id", "uuid"),))
    assert name(USERS, POSTS, notes, tags) == "create_notes_tags"
    assert name(with_(USERS, columns=USERS.columns[:-1]), POSTS, notes) == "drop_users_role_and_1_more"
    many = [Table(f"t{i}", (Column("id", "uuid"),)) for i in range(6)]
    assert name(USERS, POSTS, *many) == "create_6_objects"


def test_status_groups_the_files_of_a_change(database: TestDatabase, tmp_path: Path) -> None:
    first, second = tracks_with_isrc(database, tmp_path)
    text = ok(tmp_path, "status", "--dsn", database.dsn).stdout
    lines = text.splitlines()
    change_row = next(i for i, line in enumerate(lines) if "add_tracks_isrc (change of 2 files)" in line)
    assert lines[change_row].split()[0] == str(first) and "applied" in lines[change_row]
    assert lines[change_row + 1].startswith(f"  {first}") and lines[change_row + 2].startswith(f"  {second}")

    ok(tmp_path, "rollback", "--dsn", database.dsn)
    partly = ok(tmp_path, "apply", "--dsn", database.dsn, "--to", str(first))
    assert f"stops inside change {first}_add_tracks_isrc (file 1 of 2)" in partly.stdout
    result = run_cli("status", "--format", "json", "--dsn", database.dsn, cwd=tmp_path)
    document = json.loads(result.stdout)
    assert document["changes"][-1] == {"change": f"{first}_add_tracks_isrc", "state": "partly applied",
                                       "versions": [first, second]}
    assert {m["change"] for m in document["migrations"][1:]} == {f"{first}_add_tracks_isrc"}


def test_rollback_counts_changes_and_by_file_counts_files(database: TestDatabase, tmp_path: Path) -> None:
    first, second = tracks_with_isrc(database, tmp_path)
    initial = versions(database)[0]
    ok(tmp_path, "rollback", "--by-file", "--dsn", database.dsn)
    assert versions(database) == [initial, first]
    ok(tmp_path, "apply", "--dsn", database.dsn)
    ok(tmp_path, "rollback", "--steps", "2", "--dsn", database.dsn)
    assert versions(database) == []
    assert second == first + 1


# -- 2. the migrations remember metadata ------------------------------------------------------------
def test_deprecate_then_drop_works_in_a_one_commit_clone_with_base_migrations(database: TestDatabase,
                                                                              tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    write(origin, TRACKS.replace("      title:", "      legacy_code: {type: text, nullable: true}\n      title:"))
    ok(origin, "generate")
    git(origin, "init", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "tracks")
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{origin}", "clone")
    clone = tmp_path / "clone"
    assert git(clone, "rev-list", "--count", "HEAD").strip() == "1"
    ok(clone, "apply", "--dsn", database.dsn)
    yaml_file = clone / "schema" / "music.yaml"

    # Deprecate: no SQL, recorded in the snapshot.
    yaml_file.write_text(yaml_file.read_text().replace(
        "legacy_code: {type: text, nullable: true}",
        "legacy_code: {type: text, nullable: true, deprecated: {since: 2026-11-01, rfc: RFC-0007}}"))
    deprecated = ok(clone, "generate")
    assert "No SQL needed" in deprecated.stdout and "tracks.legacy_code deprecated since 2026-11-01" in \
        deprecated.stdout
    assert len(read_migrations(clone / "migrations")) == 1
    git(clone, "commit", "-q", "-am", "deprecate legacy_code")

    # Drop: allowed against the migrations, with no git history behind the clone's one commit.
    yaml_file.write_text("\n".join(line for line in yaml_file.read_text().splitlines()
                                   if "legacy_code" not in line) + "\n")
    checked = run_cli("check", "--base", "migrations", cwd=clone)
    assert checked.exit_code == 0, checked.output
    assert "POL004" in checked.stdout and "deprecated since 2026-11-01 (RFC-0007)" in checked.stdout
    dropped = ok(clone, "generate")
    assert "drop_tracks_legacy_code" in dropped.stdout
    ok(clone, "apply", "--dsn", database.dsn)
    assert database.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'tracks' "
                          "AND column_name = 'legacy_code'") == [(0,)]


# -- 3. one verdict per change ------------------------------------------------------------------
def test_a_rename_gets_one_verdict_from_lint_check_and_generate(tmp_path: Path) -> None:
    write(tmp_path, TRACKS)
    ok(tmp_path, "generate")
    write(tmp_path, TRACKS.replace("      title: {type: varchar(200)}",
                                   "      name: {type: varchar(200), renamed_from: title}"))
    assert run_cli("lint", cwd=tmp_path).exit_code == 0  # the model is valid...
    checked = run_cli("check", "--base", "migrations", cwd=tmp_path)
    assert checked.exit_code == 1, checked.output  # ...but the change needs an RFC
    code = next(word for word in checked.stdout.split() if word.startswith("POL"))
    refused = run_cli("generate", cwd=tmp_path)
    assert refused.exit_code == 1, refused.output
    assert code in refused.stderr and "need an RFC" in refused.stderr and "--rfc RFC-NNNN" in refused.stderr
    assert len(read_migrations(tmp_path / "migrations")) == 1
    approved = ok(tmp_path, "generate", "--rfc", "RFC-0042")
    [written] = read_migrations(tmp_path / "migrations")[1:]
    assert written.name == "rename_tracks_title_to_name" and "-- RFC: RFC-0042" in written.up_sql
    assert "Wrote" in approved.stdout


# -- 4. baseline verifies -----------------------------------------------------------------------
def test_baseline_on_an_empty_database_is_refused_with_the_difference(database: TestDatabase,
                                                                      tmp_path: Path) -> None:
    write(tmp_path, TRACKS)
    ok(tmp_path, "generate")
    [initial] = read_migrations(tmp_path / "migrations")
    shadow = ("--shadow-dsn", database.server.admin_dsn)
    refused = run_cli("baseline", "--version", str(initial.version), "--dsn", database.dsn, *shadow, cwd=tmp_path)
    assert refused.exit_code == 3, refused.output
    assert "+ table tracks" in refused.stdout and "baseline refused" in refused.stderr
    assert "--force" in refused.stderr
    assert database.query("SELECT to_regclass('_sqlx_migrations') IS NULL") == [(True,)]  # nothing recorded

    forced = ok(tmp_path, "baseline", "--version", str(initial.version), "--force", "--dsn", database.dsn, *shadow)
    assert "recording anyway" in forced.stdout and versions(database) == [initial.version]


def test_baseline_records_a_database_that_matches(database: TestDatabase, tmp_path: Path) -> None:
    write(tmp_path, TRACKS)
    ok(tmp_path, "generate")
    [initial] = read_migrations(tmp_path / "migrations")
    database.execute(initial.up_sql)  # built by hand, e.g. by an older tool
    result = ok(tmp_path, "baseline", "--version", str(initial.version), "--dsn", database.dsn, "--shadow-dsn",
                database.server.admin_dsn)
    assert "the database matches what they build" in result.stdout
    assert versions(database) == [initial.version]


# -- 5. resolve verifies; an INVALID index is drift ------------------------------------------------
UNIQUE_ISRC = TRACKS + """      isrc: {type: varchar(12), nullable: true}
    indexes:
      idx_tracks_isrc_unique: {columns: [isrc], unique: true}
"""


def test_resolve_applied_refuses_an_invalid_index_and_diff_reports_it(database: TestDatabase,
                                                                      tmp_path: Path) -> None:
    write(tmp_path, TRACKS + "      isrc: {type: varchar(12), nullable: true}\n")
    ok(tmp_path, "generate")
    ok(tmp_path, "apply", "--dsn", database.dsn)
    database.execute("INSERT INTO tracks (title, isrc) VALUES ('a', 'X'), ('b', 'X')")
    write(tmp_path, UNIQUE_ISRC)
    ok(tmp_path, "generate", "--rfc", "RFC-0001")
    [failed] = read_migrations(tmp_path / "migrations")[1:]
    failed_apply = run_cli("apply", "--dsn", database.dsn, cwd=tmp_path)
    assert failed_apply.exit_code == 3
    assert "could not create unique index" in failed_apply.stderr and "[SQLSTATE 23505]" in failed_apply.stderr
    assert "  DETAIL: Key (isrc)=(X) is duplicated." in failed_apply.stderr  # the server's DETAIL, kept
    assert database.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_tracks_isrc_unique'::regclass") \
        == [(False,)]

    refused = run_cli("resolve", str(failed.version), "--applied", "--dsn", database.dsn, cwd=tmp_path)
    assert refused.exit_code == 3, refused.output
    assert "index idx_tracks_isrc_unique is INVALID" in refused.stderr and "--rolled-back" in refused.stderr
    assert database.query("SELECT success FROM _sqlx_migrations WHERE version = %s", (failed.version,)) == [(False,)]

    drift = run_cli("diff", "--dsn", database.dsn, "--shadow-dsn", database.server.admin_dsn, cwd=tmp_path)
    assert drift.exit_code == 1, drift.output
    assert "INVALID" in drift.stdout and "+ index idx_tracks_isrc_unique" in drift.stdout
    sql = run_cli("diff", "--dsn", database.dsn, "--shadow-dsn", database.server.admin_dsn, "--format", "sql",
                  cwd=tmp_path).stdout
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_tracks_isrc_unique" in sql

    # Fixed by hand: resolve now finds it applied.
    database.execute("DROP INDEX idx_tracks_isrc_unique; UPDATE tracks SET isrc = 'Y' WHERE title = 'b'; "
                     "CREATE UNIQUE INDEX idx_tracks_isrc_unique ON tracks (isrc)")
    resolved = ok(tmp_path, "resolve", str(failed.version), "--applied", "--dsn", database.dsn)
    assert "resolved as applied (1 object(s) checked in the database" in resolved.stdout
    assert run_cli("status", "--dsn", database.dsn, cwd=tmp_path).exit_code == 0


# -- 7. output ---------------------------------------------------------------------------------
def test_a_failed_statement_closes_the_progress_line_and_goes_to_stderr(database: TestDatabase,
                                                                        tmp_path: Path) -> None:
    write(tmp_path, TRACKS)
    ok(tmp_path, "generate")
    database.execute("CREATE TABLE tracks (id integer)")
    result = run_cli("apply", "--dsn", database.dsn, cwd=tmp_path)
    assert result.exit_code == 3
    assert result.stdout.splitlines()[-1].endswith("... failed")
    assert "error" not in result.stdout
    assert 'relation "tracks" already exists [SQLSTATE 42P07]' in result.stderr.splitlines()[0]


def test_a_lost_connection_is_said_in_words(database: TestDatabase, tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "1_slow.up.sql").write_text(hand_written("SELECT pg_sleep(30);\n"))
    (migrations / "1_slow.down.sql").write_text(hand_written("SELECT 1;\n"))
    ok(tmp_path, "hash")
    process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn], cwd=tmp_path,
                               env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not database.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND query LIKE 'SELECT pg_sleep%%'")[0][0]:
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the migration never started")
        time.sleep(0.05)
    database.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND query LIKE 'SELECT pg_sleep%%'")
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 3, stdout + stderr
    assert "SQLSTATE None" not in stderr
    assert "terminated the session" in stderr or "connection to the server was lost" in stderr, stderr


def test_status_does_not_wrap_when_piped(database: TestDatabase, tmp_path: Path) -> None:
    tracks_with_isrc(database, tmp_path)
    result = run_cli("status", "--dsn", database.dsn, cwd=tmp_path, env={"COLUMNS": "40"})
    rows = [line for line in result.stdout.splitlines() if line[:1].isdigit() or line.startswith("  2")]
    assert len(rows) == 4  # the initial migration, the change, its two files: one line each
    assert all(":" in row.split("applied", 1)[1] or "change of" in row for row in rows)


def test_apply_prints_no_library_log_noise(database: TestDatabase, tmp_path: Path) -> None:
    """sqlglot warns "Falling back to parsing as a 'Command'" on ALTER TABLE ... VALIDATE CONSTRAINT."""
    write(tmp_path, TRACKS + "      score: {type: integer, nullable: true}\n")
    ok(tmp_path, "generate")
    ok(tmp_path, "apply", "--dsn", database.dsn)
    write(tmp_path, TRACKS + "      score: {type: integer, nullable: true}\n    checks:\n"
                             "      chk_tracks_score_positive: score > 0\n")
    ok(tmp_path, "generate", "--rfc", "RFC-0001")
    result = ok(tmp_path, "apply", "--dsn", database.dsn)
    rolled_back = ok(tmp_path, "rollback", "--dsn", database.dsn)
    assert result.stderr == "" and rolled_back.stderr == ""
    assert "Falling back" not in result.output + rolled_back.output


def test_help_lists_every_exit_code() -> None:
    result = run_cli("--help", cwd=REPO_ROOT)
    for code in ("0 ", "1 ", "2 ", "3 ", "4 "):
        assert code in result.stdout.split("Exit codes:", 1)[1]
