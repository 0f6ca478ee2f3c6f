"""A database in a state a DBA meets in production, through the real CLI: a clear message naming the
object and saying what to do, exit 3, nothing half-applied.

States covered elsewhere are not repeated here: a modified, missing or failed migration and an
out-of-order version (test_runner.py), a history write refused (test_atomicity.py), a lost
connection's words (test_workflow.py, test_runner_pipeline.py), objects changed by hand
(test_hand_changes.py). A history row for a version newer than every file is the "missing"
state of test_runner.py.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.helpers import REPO_ROOT, TestDatabase, cli_env, run_cli, wait_for, write_migrations
from veza_schema.migrations.lock import lock_key

BASIC = {
    "1_create_a.up.sql": "CREATE TABLE a (id integer PRIMARY KEY);\n",
    "1_create_a.down.sql": "DROP TABLE a;\n",
    "2_create_b.up.sql": "CREATE TABLE b (id integer PRIMARY KEY);\n",
    "2_create_b.down.sql": "DROP TABLE b;\n",
}


def as_user(dsn: str, user: str, password: str | None = None) -> str:
    """``dsn`` with another user (and password) in it."""
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    credentials = user + (f":{password}" if password else "")
    return urlunsplit((parts.scheme, f"{credentials}@{host}", parts.path, parts.query, parts.fragment))


def cli(dsn: str, command: str, migrations: Path, *args: str) -> tuple[int, str]:
    result = run_cli(command, "--dsn", dsn, "--migrations-dir", str(migrations), *args)
    assert "Traceback" not in result.output
    return result.exit_code, " ".join(result.output.split())


def tables(database: TestDatabase, schema: str = "public") -> list[str]:
    return [r[0] for r in database.query(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r' "
        "AND relname <> '_sqlx_migrations' ORDER BY 1", (schema,))]


def history(database: TestDatabase) -> list[tuple]:
    return database.query("SELECT version, success FROM public._sqlx_migrations ORDER BY version")


@pytest.fixture
def role(database: TestDatabase) -> Iterator[str]:
    """A LOGIN role of its own, neither superuser nor owner of anything (dropped afterwards)."""
    name = "r_" + uuid.uuid4().hex[:10]
    database.execute(f"CREATE ROLE {name} LOGIN")
    database.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")  # as PostgreSQL 15+ has it, on every major
    try:
        yield name
    finally:
        with psycopg.connect(database.server.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
            conn.execute(f"DROP ROLE IF EXISTS {name}")


@pytest.fixture
def applied_first(database: TestDatabase, tmp_path: Path) -> Path:
    """BASIC's migrations, the first of them applied (by the superuser)."""
    migrations = write_migrations(tmp_path / "m", BASIC)
    assert cli(database.dsn, "apply", migrations, "--to", "1")[0] == 0
    return migrations


# -- the history table altered by hand ---------------------------------------------------------------
@pytest.mark.parametrize("command", ["status", "apply", "rollback"])
def test_a_history_column_dropped_by_hand_is_named_and_nothing_runs(database: TestDatabase, applied_first: Path,
                                                                    command: str) -> None:
    database.execute("ALTER TABLE _sqlx_migrations DROP COLUMN execution_time")
    code, output = cli(database.dsn, command, applied_first)
    assert code == 3, output
    assert ("the history table public._sqlx_migrations is not as SQLx creates it (altered by hand?): column "
            "execution_time is missing (dropped: its values are lost). Nothing was run.") in output
    assert "veza-schema baseline" in output
    assert tables(database) == ["a"]


def test_a_history_column_renamed_by_hand_is_answered_with_the_rename_back(database: TestDatabase,
                                                                            applied_first: Path) -> None:
    database.execute("ALTER TABLE _sqlx_migrations RENAME COLUMN checksum TO sum")
    code, output = cli(database.dsn, "apply", applied_first)
    assert code == 3, output
    assert "(renamed? ALTER TABLE public._sqlx_migrations RENAME COLUMN sum TO checksum)" in output
    database.execute("ALTER TABLE public._sqlx_migrations RENAME COLUMN sum TO checksum")
    assert cli(database.dsn, "apply", applied_first)[0] == 0
    assert tables(database) == ["a", "b"]


def test_a_history_column_of_another_type_is_named_with_both_types(database: TestDatabase,
                                                                    applied_first: Path) -> None:
    database.execute("ALTER TABLE _sqlx_migrations ALTER COLUMN execution_time TYPE integer")
    code, output = cli(database.dsn, "apply", applied_first)
    assert code == 3, output
    assert "column execution_time is integer, not bigint" in output
    assert tables(database) == ["a"]


@pytest.mark.parametrize("command", ["status", "apply", "rollback"])
def test_a_null_checksum_in_the_history_is_a_database_state_not_an_internal_error(database: TestDatabase,
                                                                                  applied_first: Path,
                                                                                  command: str) -> None:
    """Before: ``internal error: TypeError: cannot convert 'NoneType' object to bytes``, exit 4."""
    database.execute("ALTER TABLE _sqlx_migrations ALTER COLUMN checksum DROP NOT NULL; "
                     "UPDATE _sqlx_migrations SET checksum = NULL")
    code, output = cli(database.dsn, command, applied_first)
    assert code == 3, output
    assert ("column checksum allows NULL (ALTER TABLE public._sqlx_migrations ALTER COLUMN checksum SET NOT NULL, "
            "once no row holds a NULL there)") in output
    assert tables(database) == ["a"] and history(database) == [(1, True)]


# -- rights ----------------------------------------------------------------------------------------
def test_a_role_that_may_not_create_in_public_is_told_before_anything_runs(database: TestDatabase, role: str,
                                                                          tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    code, output = cli(as_user(database.dsn, role), "apply", migrations)
    assert code == 3, output
    assert (f"role {role} may not create the history table public._sqlx_migrations (no CREATE on schema public). "
            f"Run as the role that owns the schema (the migrations' role), or GRANT CREATE ON SCHEMA public TO "
            f"{role}. Nothing was run.") in output
    assert database.query("SELECT to_regclass('public._sqlx_migrations')") == [(None,)]


def test_status_as_a_role_that_may_not_read_the_history_names_its_owner(database: TestDatabase, role: str,
                                                                         applied_first: Path) -> None:
    code, output = cli(as_user(database.dsn, role), "status", applied_first)
    assert code == 3, output
    assert (f"role {role} lacks SELECT on the history table public._sqlx_migrations (owned by postgres). Run as "
            f"postgres, or GRANT SELECT ON public._sqlx_migrations TO {role}.") in output


def test_apply_as_a_role_that_may_read_but_not_write_the_history_runs_no_file(database: TestDatabase, role: str,
                                                                              applied_first: Path) -> None:
    """Before: the file ran, then its history row was refused and its transaction rolled back."""
    database.execute(f"GRANT CREATE ON SCHEMA public TO {role}; GRANT SELECT ON _sqlx_migrations TO {role}")
    code, output = cli(as_user(database.dsn, role), "apply", applied_first)
    assert code == 3, output
    assert f"role {role} lacks INSERT, UPDATE, DELETE on the history table public._sqlx_migrations" in output
    assert "2 create b" not in output
    assert tables(database) == ["a"] and history(database) == [(1, True)]


# -- a read-only database ----------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["apply", "rollback"])
def test_a_read_only_database_is_refused_by_name_before_anything_runs(database: TestDatabase, applied_first: Path,
                                                                      command: str) -> None:
    database.execute(f'ALTER DATABASE "{database.name}" SET default_transaction_read_only = on')
    code, output = cli(database.dsn, command, applied_first)
    assert code == 3, output
    assert (f"database {database.name} is read-only: default_transaction_read_only is on for this session") in output
    assert "Nothing was run" in output
    assert tables(database) == ["a"] and history(database) == [(1, True)]


def test_status_still_reads_a_read_only_database(database: TestDatabase, applied_first: Path) -> None:
    database.execute(f'ALTER DATABASE "{database.name}" SET default_transaction_read_only = on')
    code, output = cli(database.dsn, "status", applied_first)
    assert code == 1, output
    assert "create_b (hand-written) pending" in output


def test_a_read_only_database_without_history_is_refused_and_left_without_one(database: TestDatabase,
                                                                              tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", BASIC)
    database.execute(f'ALTER DATABASE "{database.name}" SET default_transaction_read_only = on')
    code, output = cli(database.dsn, "apply", migrations)
    assert code == 3 and "is read-only" in output, output
    assert database.query("SELECT to_regclass('public._sqlx_migrations')") == [(None,)]


# -- settings on the role or database ---------------------------------------------------------------
def test_a_low_statement_timeout_fails_the_file_by_line_and_a_rerun_with_more_completes(
        database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        "1_slow.up.sql": "CREATE TABLE a (id integer);\nSELECT pg_sleep(1);\n",
        "1_slow.down.sql": "DROP TABLE a;\n",
    })
    database.execute(f'ALTER DATABASE "{database.name}" SET statement_timeout = \'200ms\'')
    code, output = cli(database.dsn, "apply", migrations)
    assert code == 3, output
    assert "1_slow.up.sql:3: canceling statement due to statement timeout [SQLSTATE 57014]" in output
    assert "Nothing of 1_slow was applied" in output
    assert tables(database) == [] and history(database) == []
    database.execute(f'ALTER DATABASE "{database.name}" RESET statement_timeout')
    assert cli(database.dsn, "apply", migrations)[0] == 0
    assert tables(database) == ["a"] and history(database) == [(1, True)]


def test_idle_session_timeout_does_not_release_the_migration_lock_while_a_file_runs(database: TestDatabase,
                                                                                   tmp_path: Path) -> None:
    """The lock session idles while the work session runs the file; before, the server ended it after
    idle_session_timeout and the lock went with it: a second apply could have started alongside."""
    if database.server.version() < 14:
        pytest.skip("idle_session_timeout exists from PostgreSQL 14")
    migrations = write_migrations(tmp_path / "m", {
        "1_slow.up.sql": "CREATE TABLE a (id integer);\n"
                         "SELECT pg_sleep(CASE WHEN to_regclass('lock_checked') IS NULL THEN 60 ELSE 0 END);\n",
        "1_slow.down.sql": "DROP TABLE a;\n",
    })
    database.execute(f'ALTER DATABASE "{database.name}" SET idle_session_timeout = \'100ms\'')
    process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn,
                                "--migrations-dir", str(migrations)], cwd=REPO_ROOT, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: bool(database.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
                                             "AND query LIKE 'SELECT pg_sleep(CASE%%' AND state = 'active'")),
                 "the slow statement to start")
        lock_session = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'veza-schema lock'"
        with database.connect() as conn:  # this session must not idle: it asks while the file sleeps
            conn.execute("SET idle_session_timeout = 0")
            conn.execute("SELECT pg_sleep(1)")  # ten times the timeout: a lock session it applied to is gone
            assert conn.execute(lock_session).fetchone() == (1,)
            assert conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(database.name),)).fetchone() == (False,)
            conn.execute("CREATE TABLE lock_checked ()")
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert history(database) == [(1, True)]


# -- search_path -----------------------------------------------------------------------------------------
EVIL = """
CREATE SCHEMA evil;
CREATE TABLE evil._sqlx_migrations (LIKE public._sqlx_migrations INCLUDING ALL);
CREATE FUNCTION evil.label() RETURNS text LANGUAGE sql AS $$SELECT 'evil'$$;
"""
LABELLED = {
    "1_create_label.up.sql": "CREATE FUNCTION label() RETURNS text LANGUAGE sql AS $$SELECT 'ours'$$;\n",
    "1_create_label.down.sql": "DROP FUNCTION label();\n",
    "2_create_c.up.sql": "CREATE TABLE c (id integer PRIMARY KEY, made_by text DEFAULT label());\n"
                         "INSERT INTO c (id) VALUES (1);\n",
    "2_create_c.down.sql": "DROP TABLE c;\n",
}


def test_a_role_search_path_putting_another_schema_first_is_not_followed(database: TestDatabase, role: str,
                                                                         tmp_path: Path) -> None:
    """``ALTER ROLE ... SET search_path = evil, public`` with look-alikes in evil: apply and status read and
    write public's history, create in public, and call public's function, never evil's."""
    migrations = write_migrations(tmp_path / "m", LABELLED)
    assert cli(database.dsn, "apply", migrations, "--to", "1")[0] == 0
    database.execute(EVIL)
    database.execute(f'GRANT CREATE ON SCHEMA public TO {role}; ALTER TABLE _sqlx_migrations OWNER TO {role}; '
                     f'GRANT ALL ON SCHEMA evil TO {role}; ALTER TABLE evil._sqlx_migrations OWNER TO {role}; '
                     f'ALTER ROLE {role} IN DATABASE "{database.name}" SET search_path = evil, public')
    dsn = as_user(database.dsn, role)
    code, output = cli(dsn, "status", migrations)
    assert code == 1 and "create_label (hand-written) applied" in output, output
    code, output = cli(dsn, "apply", migrations)
    assert code == 0, output
    assert tables(database) == ["c"] and tables(database, "evil") == []  # evil holds its look-alike only
    assert history(database) == [(1, True), (2, True)]
    assert database.query("SELECT count(*) FROM evil._sqlx_migrations") == [(0,)]
    assert database.query("SELECT made_by FROM public.c") == [("ours",)]


# -- connecting ------------------------------------------------------------------------------------------
def test_a_database_that_does_not_exist_is_named_in_the_dsn_as_given(database: TestDatabase,
                                                                     tmp_path: Path) -> None:
    """Before: the password-masked DSN was masked a second time and shown as ``user=... dbname=...:``."""
    missing = "no_" + uuid.uuid4().hex[:10]
    dsn = as_user(database.server.dsn_for(missing), "postgres", "s3cret")
    migrations = write_migrations(tmp_path / "m", BASIC)
    for command in ("status", "apply"):
        result = run_cli(command, "--dsn", dsn, "--migrations-dir", str(migrations))
        assert result.exit_code == 3, result.output
        assert f"cannot connect to {as_user(dsn, 'postgres', '***')}: " in result.stderr
        assert f'database "{missing}" does not exist' in result.stderr
        assert "s3cret" not in result.output


# -- the session ended mid-apply ---------------------------------------------------------------------------
def test_a_session_terminated_mid_apply_leaves_nothing_of_the_file_and_a_rerun_completes(
        database: TestDatabase, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {
        **{k: v for k, v in BASIC.items() if k.startswith("1_")},
        "2_slow.up.sql": "CREATE TABLE b (id integer);\n"
                         "SELECT pg_sleep(CASE WHEN to_regclass('go_fast') IS NULL THEN 60 ELSE 0 END);\n"
                         "CREATE TABLE c (id integer);\n",
        "2_slow.down.sql": "DROP TABLE c;\nDROP TABLE b;\n",
    })
    process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn,
                                "--migrations-dir", str(migrations)], cwd=REPO_ROOT, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        sleeping = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND query LIKE 'SELECT pg_sleep(CASE%%' AND state = 'active'")
        wait_for(lambda: bool(database.query(sleeping)), "the slow statement to start")
        database.execute(f"SELECT pg_terminate_backend(pid) FROM ({sleeping}) AS s")
        output = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 3, output
    assert "2_slow.up.sql:3: terminating connection due to administrator command [SQLSTATE 57P01]" in output
    assert "Nothing of 2_slow was applied" in output
    assert tables(database) == ["a"] and history(database) == [(1, True)]
    database.execute("CREATE TABLE go_fast ()")
    code, output = cli(database.dsn, "apply", migrations)
    assert code == 0, output
    assert tables(database) == ["a", "b", "c", "go_fast"] and history(database) == [(1, True), (2, True)]


# -- the lock session ended mid-apply ----------------------------------------------------------------------
def test_a_migration_lock_lost_mid_file_rolls_the_file_back_and_says_so(database: TestDatabase,
                                                                         tmp_path: Path) -> None:
    """Its session ended (pg_terminate_backend here; a pooler or a network cut alike), the lock went with
    it and another apply could start: the file running then is not committed."""
    database.execute("CREATE TABLE gate (id integer)")
    migrations = write_migrations(tmp_path / "m", {
        **{k: v for k, v in BASIC.items() if k.startswith("1_")},
        "2_gated.up.sql": "CREATE TABLE b (id integer);\nLOCK TABLE gate IN SHARE MODE;\n"
                          "CREATE TABLE c (id integer);\n",
        "2_gated.down.sql": "DROP TABLE c;\nDROP TABLE b;\n",
    })
    at_the_gate = ("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                   "AND query LIKE 'LOCK TABLE gate%%'")
    lock_session = ("SELECT {} FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'veza-schema lock'")
    with database.connect() as gatekeeper:
        gatekeeper.execute("BEGIN")
        gatekeeper.execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn,
                                    "--migrations-dir", str(migrations)], cwd=REPO_ROOT, env=cli_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_for(lambda: bool(database.query(at_the_gate)), "2_gated to wait at the gate")
            assert database.query(lock_session.format("pg_terminate_backend(pid)")) == [(True,)]
            wait_for(lambda: not database.query(lock_session.format("pid")), "the lock session to end")
            gatekeeper.execute("COMMIT")
            output = " ".join(process.communicate(timeout=60)[0].split())
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 3, output
    assert "the migration lock was lost: its session (backend pid" in output
    assert "nothing of 2_gated was applied (its transaction was rolled back)" in output
    assert tables(database) == ["a", "gate"] and history(database) == [(1, True)]
    code, output = cli(database.dsn, "apply", migrations)
    assert code == 0, output
    assert tables(database) == ["a", "b", "c", "gate"] and history(database) == [(1, True), (2, True)]
