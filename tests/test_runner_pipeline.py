"""The runner sends a transactional file as one pipeline: errors still name their statement and
line, nothing of a failed file is committed, and only slow statements are announced."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, TestDatabase, cli_env, hand_written, run_cli
from veza_schema.db.dsn import Target
from veza_schema.migrations import runner
from veza_schema.migrations.files import MigrationFile, read_migrations
from veza_schema.sql.split import Statement


@dataclass
class Collecting:
    """A reporter that records every call."""

    started: list[tuple[int, int, int]] = field(default_factory=list)  # (index, total, line)
    slow: list[tuple[int, int, int]] = field(default_factory=list)

    def migration_started(self, migration: MigrationFile, direction: str) -> None:
        pass

    def statement_started(self, migration: MigrationFile, statement: Statement, index: int, total: int) -> None:
        self.started.append((index, total, statement.line))

    def statement_slow(self, migration: MigrationFile, statement: Statement, index: int, total: int,
                       seconds: float) -> None:
        self.slow.append((index, total, statement.line))

    def migration_finished(self, migration: MigrationFile, direction: str, seconds: float) -> None:
        pass

    def retrying(self, migration: MigrationFile, attempt: int, delay: float, reason: str) -> None:
        pass


def migrations_dir(tmp_path: Path, up: str, name: str = "1_work") -> Path:
    """The test's own SQL as a hand-written file: the marker line shifts the lines messages name by one."""
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / f"{name}.up.sql").write_text(hand_written(up))
    (directory / f"{name}.down.sql").write_text(hand_written("SELECT 1;\n"))
    return directory


def apply(database: TestDatabase, directory: Path, **options: object) -> runner.RunResult:
    return runner.apply(Target(database.dsn, "test"), read_migrations(directory),
                        options=runner.RunOptions(**options))  # type: ignore[arg-type]


def user_tables(database: TestDatabase) -> list[str]:
    return [row[0] for row in database.query(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' "
        "AND relname <> '_sqlx_migrations' ORDER BY 1")]


def applied_versions(database: TestDatabase) -> list[int]:
    return [row[0] for row in database.query("SELECT version FROM _sqlx_migrations ORDER BY 1")]


def many_tables(count: int) -> list[str]:
    """One statement per table, each on two lines, so line numbers and indexes differ."""
    return [f"CREATE TABLE t{n} (\n    id integer PRIMARY KEY);\n" for n in range(count)]


def test_a_file_of_many_statements_is_applied_whole(database: TestDatabase, tmp_path: Path) -> None:
    directory = migrations_dir(tmp_path, "".join(many_tables(40)) + "SELECT count(*) FROM t0;\n")
    apply(database, directory)
    assert len(user_tables(database)) == 40
    assert applied_versions(database) == [1]


def test_an_error_in_statement_n_names_its_line_and_commits_nothing(database: TestDatabase,
                                                                    tmp_path: Path) -> None:
    statements = many_tables(30)
    statements.insert(17, "INSERT INTO nowhere\n    VALUES (1);\n")  # statement 18, lines 35-36
    directory = migrations_dir(tmp_path, "".join(statements))
    with pytest.raises(runner.MigrationFailed) as failure:
        apply(database, directory)
    message = str(failure.value)
    assert "1_work.up.sql:36: relation \"nowhere\" does not exist" in message
    assert "Nothing of 1_work was applied" in message
    assert user_tables(database) == []
    assert applied_versions(database) == []


def test_a_runtime_error_without_a_position_names_the_statement_line(database: TestDatabase,
                                                                     tmp_path: Path) -> None:
    statements = many_tables(5)
    statements.insert(3, "INSERT INTO t0 VALUES (1);\n")
    statements.insert(4, "INSERT INTO t0\n  VALUES (1);\n")  # duplicate key: statement 5, lines 8-9
    directory = migrations_dir(tmp_path, "".join(statements))
    with pytest.raises(runner.MigrationFailed) as failure:
        apply(database, directory)
    assert "1_work.up.sql:9: duplicate key value violates unique constraint" in str(failure.value)
    assert user_tables(database) == []


def test_a_syntax_error_names_the_line_inside_its_statement(database: TestDatabase, tmp_path: Path) -> None:
    up = "CREATE TABLE a (id integer);\nCREATE TABLE b (\n    id integer,\n    name txet text\n);\n"
    directory = migrations_dir(tmp_path, up)
    with pytest.raises(runner.MigrationFailed) as failure:
        apply(database, directory)
    assert "1_work.up.sql:5: syntax error at or near \"text\"" in str(failure.value)
    assert user_tables(database) == []


def test_a_failure_at_commit_rolls_back_the_file(database: TestDatabase, tmp_path: Path) -> None:
    up = ("CREATE TABLE parent (id integer PRIMARY KEY);\n"
          "CREATE TABLE child (parent_id integer REFERENCES parent DEFERRABLE INITIALLY DEFERRED);\n"
          "INSERT INTO child VALUES (42);\n")
    directory = migrations_dir(tmp_path, up)
    with pytest.raises(runner.MigrationFailed) as failure:
        apply(database, directory)
    assert "committing failed" in str(failure.value)
    assert user_tables(database) == []
    assert applied_versions(database) == []


def test_a_connection_lost_during_statement_n_names_its_line_and_commits_nothing(database: TestDatabase,
                                                                                 tmp_path: Path) -> None:
    directory = migrations_dir(tmp_path, "CREATE TABLE a (id integer);\nSELECT 1;\nSELECT pg_sleep(60);\n"
                                         "CREATE TABLE b (id integer);\n")
    sleeping = "SELECT pid FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'"

    def terminate() -> None:
        for _ in range(600):
            if pids := database.query(sleeping):
                database.query(f"SELECT pg_terminate_backend({pids[0][0]})")
                return
            time.sleep(0.05)

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        with pytest.raises(runner.MigrationFailed) as failure:
            apply(database, directory)
    finally:
        killer.join()
    assert "1_work.up.sql:4: " in str(failure.value)
    assert "Nothing of 1_work was applied" in str(failure.value)
    assert user_tables(database) == []


def test_copy_from_stdin_is_refused_and_nothing_is_committed(database: TestDatabase, tmp_path: Path) -> None:
    up = "CREATE TABLE a (id integer);\nCOPY a FROM STDIN;\n"
    directory = migrations_dir(tmp_path, up)
    with pytest.raises(runner.MigrationFailed) as failure:
        apply(database, directory)
    assert "1_work.up.sql:3: COPY FROM STDIN / TO STDOUT cannot run from a migration file" in str(failure.value)
    assert user_tables(database) == []


def test_only_a_slow_statement_of_a_transactional_file_is_announced(database: TestDatabase,
                                                                    tmp_path: Path) -> None:
    statements = many_tables(50)  # lines 1-100; their results have not come back when the sleep runs
    statements.append("SELECT pg_sleep(1.5);\n")  # statement 51, line 101
    statements.append("CREATE TABLE last (id integer);\n")
    directory = migrations_dir(tmp_path, "".join(statements))
    reporter = Collecting()
    apply(database, directory, reporter=reporter, slow_after=0.5)
    assert reporter.started == []
    assert reporter.slow == [(51, 52, 102)]


def test_a_slow_statement_longer_than_the_activity_view_keeps_is_named(database: TestDatabase,
                                                                       tmp_path: Path) -> None:
    padding = " ".join(f"{n} AS c{n}," for n in range(400))  # pg_stat_activity keeps the first 1 KiB
    statements = many_tables(3) + [f"SELECT {padding} pg_sleep(1.5);\n", "CREATE TABLE last (id integer);\n"]
    directory = migrations_dir(tmp_path, "".join(statements))
    reporter = Collecting()
    apply(database, directory, reporter=reporter, slow_after=0.5)
    assert reporter.slow == [(4, 5, 8)]


def test_a_non_transactional_file_runs_statement_by_statement(database: TestDatabase, tmp_path: Path) -> None:
    database.query("CREATE TABLE a (id integer, name text)")
    up = ("-- no-transaction\n"
          "CREATE INDEX CONCURRENTLY idx_a_id ON a (id);\n"
          "CREATE INDEX CONCURRENTLY idx_a_name ON a (name);\n")
    directory = migrations_dir(tmp_path, up)
    reporter = Collecting()
    apply(database, directory, reporter=reporter)
    assert reporter.started == [(1, 2, 3), (2, 2, 4)]
    indexes = database.query("SELECT indexname FROM pg_indexes WHERE tablename = 'a' ORDER BY 1")
    assert indexes == [("idx_a_id",), ("idx_a_name",)]
    assert applied_versions(database) == [1]


def test_a_failing_non_transactional_statement_keeps_the_ones_before(database: TestDatabase,
                                                                      tmp_path: Path) -> None:
    database.query("CREATE TABLE a (id integer)")
    up = ("-- no-transaction\n"
          "CREATE INDEX CONCURRENTLY idx_a_id ON a (id);\n"
          "CREATE INDEX CONCURRENTLY idx_a_missing ON a (missing);\n")
    directory = migrations_dir(tmp_path, up)
    with pytest.raises(runner.MigrationFailed) as failure:
        apply(database, directory)
    assert "1_work.up.sql:4: column \"missing\" does not exist" in str(failure.value)
    assert database.query("SELECT indexname FROM pg_indexes WHERE tablename = 'a'") == [("idx_a_id",)]
    assert database.query("SELECT success FROM _sqlx_migrations") == [(False,)]


def test_ctrl_c_stops_the_running_statement_and_commits_nothing(database: TestDatabase, tmp_path: Path) -> None:
    directory = migrations_dir(tmp_path, "CREATE TABLE a (id integer);\nSELECT pg_sleep(60);\n"
                                         "CREATE TABLE b (id integer);\n")
    assert run_cli("hash", "--migrations-dir", str(directory)).exit_code == 0
    # Ctrl-C at a terminal: SIGINT handled as by default. A test run started in the background (CI, `make
    # test &`) inherits SIGINT ignored, which Python then keeps ignoring: the signal would do nothing.
    process = subprocess.Popen([sys.executable, "-m", "veza_schema", "apply", "--dsn", database.dsn,
                                "--migrations-dir", str(directory)], cwd=REPO_ROOT, env=cli_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    sleeping = "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'"
    for _ in range(600):
        if database.query(sleeping)[0][0]:
            break
        time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("the migration never started")
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 130, output
    # Cancelled, not left to sleep its 60 s on with its locks: the server stops running it at once.
    for _ in range(100):
        if database.query(sleeping)[0][0] == 0:
            break
        time.sleep(0.05)
    assert database.query(sleeping)[0][0] == 0
    assert user_tables(database) == []
    assert applied_versions(database) == []
