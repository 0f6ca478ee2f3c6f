"""The migration runner under the failures real deployments meet, on a real server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, TestDatabase, cli_env, run_cli, write_migrations
from veza_schema.migrations.lock import lock_key

BASIC = {
    "1_create_a.up.sql": "CREATE TABLE a (id integer PRIMARY KEY);\n",
    "1_create_a.down.sql": "DROP TABLE a;\n",
    "2_create_b.up.sql": "CREATE TABLE b (id integer PRIMARY KEY);\n",
    "2_create_b.down.sql": "DROP TABLE b;\n",
}


def cli(database: TestDatabase, *args: str) -> tuple[int, str]:
    result = run_cli(*args, "--dsn", database.dsn)
    return result.exit_code, result.output


def tables(database: TestDatabase) -> list[str]:
    return [r[0] for r in database.query(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' "
        "AND relname <> '_sqlx_migrations' ORDER BY 1")]


def history(database: TestDatabase) -> list[tuple]:
    return database.query("SELECT version, success FROM _sqlx_migrations ORDER BY version")


def test_status_lists_pending_then_applied(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 1 and output.count("pending") == 2
    assert cli(database, "apply", "--migrations-dir", str(migrations))[0] == 0
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 0 and "Up to date." in output


def test_apply_reports_the_tables_and_indexes_it_leaves_and_again_when_nothing_is_left_to_apply(
        database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    code, output = cli(database, "apply", "--migrations-dir", str(migrations), "--to", "1")
    assert code == 0 and "Applied 1 migration(s)" in output and "1 tables, 1 indexes in schema public" in output
    cli(database, "apply", "--migrations-dir", str(migrations))
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 0 and "Nothing to apply" in output and "2 tables, 2 indexes in schema public" in output


def test_status_json_has_the_documented_shape(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    cli(database, "apply", "--migrations-dir", str(migrations), "--to", "1")
    result = run_cli("status", "--format", "json", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert set(document) == {"version", "database", "up_to_date", "counts", "changes", "migrations", "sum_file"}
    assert document["version"] == 1 and document["up_to_date"] is False
    assert document["counts"] == {"applied": 1, "pending": 1, "modified": 0, "missing": 0, "failed": 0,
                                  "out_of_order": 0}
    first = document["migrations"][0]
    assert set(first) == {"version", "name", "change", "state", "installed_on", "execution_time_ms",
                          "checksum_file", "checksum_applied", "detail", "hand_written"}
    assert (first["version"], first["name"], first["change"], first["state"]) == (1, "create_a", "1_create_a",
                                                                                    "applied")
    assert first["hand_written"] is True
    assert document["changes"] == [{"change": "1_create_a", "state": "applied", "versions": [1]},
                                   {"change": "2_create_b", "state": "pending", "versions": [2]}]
    assert first["checksum_file"] == first["checksum_applied"]


def test_apply_to_stops_at_the_given_version(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    assert cli(database, "apply", "--migrations-dir", str(migrations), "--to", "1")[0] == 0
    assert tables(database) == ["a"]


def test_tampered_applied_file_is_reported_by_status_and_refused_by_apply(database: TestDatabase,
                                                                          tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    cli(database, "apply", "--migrations-dir", str(migrations), "--to", "1")
    (migrations / "1_create_a.up.sql").write_text("CREATE TABLE a (id bigint PRIMARY KEY);\n")
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 1 and "modified" in output and "file sha384" in output and "applied sha384" in output
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 2 and "veza.sum does not match" in output and "1_create_a.up.sql (modified)" in output
    run_cli("hash", "--migrations-dir", str(migrations))  # even with a fresh sum, the history disagrees
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 3 and "was applied but its file has changed" in output
    assert tables(database) == ["a"]


def test_line_ending_only_changes_get_a_hint(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    cli(database, "apply", "--migrations-dir", str(migrations))
    path = migrations / "2_create_b.up.sql"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 1 and "only line endings (CRLF vs LF) differ" in output


def test_failed_transactional_migration_leaves_no_trace(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        "1_broken.up.sql": "CREATE TABLE a (id integer);\n\nINSERT INTO nowhere VALUES (1);\n",
        "1_broken.down.sql": "DROP TABLE a;\n",
    })
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 3
    assert "1_broken.up.sql:4: relation \"nowhere\" does not exist" in output
    assert "Nothing of 1_broken was applied" in output
    assert tables(database) == []
    assert history(database) == []


def test_out_of_order_version_is_refused_unless_allowed(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {k: v for k, v in BASIC.items() if k.startswith("2_")})
    cli(database, "apply", "--migrations-dir", str(migrations))
    write_migrations(migrations, {k: v for k, v in BASIC.items() if k.startswith("1_")})
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 3 and "--allow-out-of-order" in output
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert "out_of_order" in output
    assert cli(database, "apply", "--migrations-dir", str(migrations), "--allow-out-of-order")[0] == 0
    assert tables(database) == ["a", "b"]


def test_missing_applied_file_is_reported_and_blocks_apply(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    cli(database, "apply", "--migrations-dir", str(migrations))
    for name in ("2_create_b.up.sql", "2_create_b.down.sql"):
        (migrations / name).unlink()
    run_cli("hash", "--migrations-dir", str(migrations))
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 1 and "missing" in output
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 3 and "its file is missing" in output


def test_rollback_runs_down_files_newest_first(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    cli(database, "apply", "--migrations-dir", str(migrations))
    assert cli(database, "rollback", "--migrations-dir", str(migrations))[0] == 0
    assert tables(database) == ["a"] and history(database) == [(1, True)]
    assert cli(database, "rollback", "--migrations-dir", str(migrations), "--to", "0")[0] == 0
    assert tables(database) == [] and history(database) == []


def test_baseline_records_without_running_and_refuses_a_second_time(database: TestDatabase,
                                                                    tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    database.execute("CREATE TABLE a (id integer PRIMARY KEY)")
    assert cli(database, "baseline", "--version", "1", "--migrations-dir", str(migrations))[0] == 0
    assert history(database) == [(1, True)]
    code, output = cli(database, "baseline", "--version", "1", "--migrations-dir", str(migrations))
    assert code == 3 and "--force" in output
    assert cli(database, "apply", "--migrations-dir", str(migrations))[0] == 0
    assert tables(database) == ["a", "b"]


def test_lock_timeout_names_the_holder(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    with database.connect() as holder:
        holder.execute("SET application_name = 'nightly-deploy'")
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key(database.name),))
        pid = holder.info.backend_pid
        code, output = cli(database, "apply", "--migrations-dir", str(migrations), "--lock-timeout", "1")
    assert code == 3
    assert f"held by pid {pid}, nightly-deploy" in output
    assert tables(database) == []


def test_two_applies_started_together_apply_each_migration_once(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        "1_slow.up.sql": "CREATE TABLE a (id integer);\nSELECT pg_sleep(1);\n",
        "1_slow.down.sql": "DROP TABLE a;\n",
        **{k: v for k, v in BASIC.items() if k.startswith("2_")},
    })
    env = cli_env()
    command = [sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn, "--migrations-dir",
               str(migrations)]
    processes = [subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum("Applied 2 migration(s)" in o for o in outputs) == 1
    assert sum("Nothing to apply" in o for o in outputs) == 1
    assert history(database) == [(1, True), (2, True)]


def test_lock_not_available_is_retried_with_backoff(database: TestDatabase, tmp_path: Path) -> None:
    database.execute("CREATE TABLE busy (id integer)")
    migrations = write_migrations(tmp_path / "m", {
        "1_alter_busy.up.sql": "SET LOCAL lock_timeout = '200ms';\nALTER TABLE busy ADD COLUMN note text;\n",
        "1_alter_busy.down.sql": "ALTER TABLE busy DROP COLUMN note;\n",
    })
    blocker = database.connect()
    blocker.autocommit = False
    blocker.execute("SELECT * FROM busy")  # holds ACCESS SHARE until rollback
    env = cli_env()
    process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn,
                                "--migrations-dir", str(migrations)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = ""
    try:
        for line in process.stdout:  # release the table only once the runner has had to retry
            output += line
            if "lock not available, retry 1" in line:
                blocker.rollback()
        process.wait(timeout=60)
    finally:
        blocker.close()
    assert process.returncode == 0, output
    assert "lock not available, retry 1" in output
    assert database.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' "
                          "AND column_name = 'note'") == [(1,)]


NON_TRANSACTIONAL = {
    "1_two_tables.up.sql": "-- no-transaction\nCREATE TABLE first_half (id integer);\n"
                           "SELECT pg_sleep(CASE WHEN to_regclass('go_fast') IS NULL THEN 30 ELSE 0 END);\n"
                           "CREATE TABLE second_half (id integer);\n",
    "1_two_tables.down.sql": "-- no-transaction\nDROP TABLE IF EXISTS second_half;\nDROP TABLE IF EXISTS first_half;\n",
}


def _kill_mid_migration(database: TestDatabase, migrations: Path) -> None:
    env = cli_env()
    process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn,
                                "--migrations-dir", str(migrations)], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if database.query("SELECT to_regclass('first_half') IS NOT NULL")[0][0]:
            break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the migration never started")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    # The server-side session ends when it notices the client is gone; make it notice now.
    database.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = current_database() AND pid <> pg_backend_pid()")


def test_killed_non_transactional_migration_is_explained_and_recoverable(database: TestDatabase,
                                                                        tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", NON_TRANSACTIONAL)
    _kill_mid_migration(database, migrations)
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 1 and "failed" in output and "did not finish" in output
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 3 and "resolve 1 --applied" in output and "resolve 1 --rolled-back" in output
    # A human undoes the partial work, then lets apply run it again.
    database.execute("DROP TABLE first_half; CREATE TABLE go_fast ()")
    assert cli(database, "resolve", "1", "--rolled-back", "--migrations-dir", str(migrations))[0] == 0
    assert cli(database, "apply", "--migrations-dir", str(migrations))[0] == 0
    assert history(database) == [(1, True)]
    assert tables(database) == ["first_half", "go_fast", "second_half"]


def test_killed_migration_completed_by_hand_is_resolved_as_applied(database: TestDatabase,
                                                                  tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", NON_TRANSACTIONAL)
    _kill_mid_migration(database, migrations)
    database.execute("CREATE TABLE second_half (id integer)")
    assert cli(database, "resolve", "1", "--applied", "--migrations-dir", str(migrations))[0] == 0
    code, output = cli(database, "status", "--migrations-dir", str(migrations))
    assert code == 0, output


def test_resolve_refuses_a_migration_that_did_not_fail(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    cli(database, "apply", "--migrations-dir", str(migrations))
    code, output = cli(database, "resolve", "1", "--applied", "--migrations-dir", str(migrations))
    assert code == 2 and "only a failed migration can be resolved" in output


def test_lint_refuses_a_stale_sum(tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    (migrations / "2_create_b.up.sql").write_text("CREATE TABLE b (id bigint PRIMARY KEY);\n")
    result = run_cli("lint", "--migrations-dir", str(migrations))
    assert result.exit_code == 2
    assert "2_create_b.up.sql (modified)" in result.stderr


def test_each_statement_of_a_no_transaction_file_is_named_as_it_starts(database: TestDatabase,
                                                                         tmp_path: Path) -> None:
    """Each commits on its own: after a failure, the log must say which ones ran."""
    migrations = write_migrations(tmp_path / "m", {
        "1_index.up.sql": "-- no-transaction\nCREATE TABLE a (id integer,\n    note text);\n\n"
                          "CREATE INDEX CONCURRENTLY idx_a_note ON a (note) WHERE note IS NOT NULL AND note <> "
                          "'a long predicate that does not fit on one line of the log';\n",
        "1_index.down.sql": "-- no-transaction\nDROP TABLE a;\n",
    })
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 0, output
    assert "statement 1/2 (line 3): CREATE TABLE a (id integer, note text)\n" in output  # under hand_written's header
    assert ("statement 2/2 (line 6): CREATE INDEX CONCURRENTLY idx_a_note ON a (note) WHERE note IS NOT NULL AND "
            "not…\n") in output


def test_a_long_statement_is_named_while_it_runs(database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        "1_slow.up.sql": "CREATE TABLE a (id integer);\nSELECT pg_sleep(4);\n",
        "1_slow.down.sql": "DROP TABLE a;\n",
    })
    code, output = cli(database, "apply", "--migrations-dir", str(migrations))
    assert code == 0, output
    assert "still running statement 2/2 (line 3): SELECT pg_sleep(4)" in output
