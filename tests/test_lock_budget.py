"""Plans that fit the server's lock table: the slot counts in the headers bound what PostgreSQL
really locks, a large change is cut into parts of one change, and apply refuses a file the
server cannot hold before running anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.factories import write_synthetic_schema
from tests.fixtures.servers import require_extensions, shipped_extensions
from tests.helpers import REPO_ROOT, Server, TestDatabase, fresh_database, hand_written, mismatches, run_cli
from veza_schema.db.introspect import introspect
from veza_schema.migrations.files import MigrationFile, read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.sql.split import split_statements
from veza_schema.yaml.loader import load_schema

_HELD = """
SELECT count(*) FROM (
    SELECT DISTINCT locktype, database, relation, page, tuple, virtualxid, transactionid, classid, objid, objsubid
    FROM pg_locks WHERE pid = pg_backend_pid()) AS held
"""


def _run_counting(conn: psycopg.Connection, sql: str) -> int:
    """Run a transactional file's statements in one transaction; the distinct locks held before it commits."""
    with conn.transaction():
        for statement in split_statements(sql):
            conn.execute(statement.text.encode("utf-8"), prepare=False)  # type: ignore[call-overload]
        row = conn.execute(_HELD).fetchone()
    assert row is not None
    return int(row[0])


def _held_per_file(database: TestDatabase, files: list[MigrationFile]) -> list[tuple[str, int, int]]:
    """(file, header's slots, locks really held) for every up file in order, then every down file in reverse."""
    found = []
    with database.connect() as conn:
        for file in files:
            assert file.header.locks is not None, file.label
            found.append((file.up_path.name, file.header.locks, _run_counting(conn, file.up_sql)))
        for file in reversed(files):
            assert file.down_header.locks is not None and file.down_sql is not None
            found.append((str(file.down_path), file.down_header.locks, _run_counting(conn, file.down_sql)))
    return found


@pytest.mark.parametrize("source", ["veza", "synthetic"])
def test_header_slots_bound_the_locks_each_file_holds(database_each_server: TestDatabase, tmp_path: Path,
                                                      source: str) -> None:
    """Measured with pg_locks before each commit, up and down, on PostgreSQL 15 and 18: tables, partitions,
    views, triggers (the Veza schema) and foreign keys, checks and indexes (the synthetic one)."""
    if source == "veza":
        require_extensions(database_each_server.server, *shipped_extensions())
    schema_dir = REPO_ROOT / "schema" if source == "veza" else write_synthetic_schema(tmp_path / "schema", 60, 3)
    written = generate_initial(load_schema(schema_dir), tmp_path / "m", "initial", FileSettings(max_locks=300))
    assert len(written) > 2
    held = _held_per_file(database_each_server, read_migrations(tmp_path / "m"))
    assert [(name, header, real) for name, header, real in held if real > header] == []
    assert max(header for _, header, _ in held) <= 300 or len(held) == 2 * len(written)


def test_a_schema_cut_into_parts_builds_the_same_database_as_one_file(database: TestDatabase, tmp_path: Path,
                                                                      pg_server: Server) -> None:
    schema = load_schema(REPO_ROOT / "schema")
    parts = generate_initial(schema, tmp_path / "parts", "initial", FileSettings(max_locks=400))
    whole = generate_initial(schema, tmp_path / "whole", "initial", FileSettings(max_locks=None))
    assert len(whole) == 1 and len(parts) > 3
    assert {w.role.change.label for w in parts if w.role.change} == {f"{parts[0].version}_initial"}
    assert run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(tmp_path / "parts")).exit_code == 0
    other = fresh_database(pg_server)
    reference = next(other)
    try:
        assert run_cli("apply", "--dsn", reference.dsn, "--migrations-dir", str(tmp_path / "whole")).exit_code == 0
        with database.connect() as conn, reference.connect() as ref:
            assert mismatches(introspect(ref), introspect(conn)) == []
    finally:
        next(other, None)


@pytest.fixture
def small_database(pg15_small_server: Server) -> Iterator[TestDatabase]:
    """A fresh database on PostgreSQL 15 with max_locks_per_transaction = 64 and max_connections = 50."""
    yield from fresh_database(pg15_small_server)


def _relations(database: TestDatabase) -> list[str]:
    return [r[0] for r in database.query("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                                         "ORDER BY 1")]


@pytest.mark.slow
def test_a_thousand_tables_lint_generate_apply_and_roll_back_on_a_small_server(small_database: TestDatabase,
                                                                               tmp_path: Path) -> None:
    """The scale issue's case: 1,000 tables (20 modules, a foreign key, a CHECK, four indexes each) on
    PostgreSQL 15 with max_locks_per_transaction = 64 and max_connections = 50, from empty and back."""
    assert small_database.query("SELECT current_setting('max_locks_per_transaction'), "
                                "current_setting('max_connections')") == [("64", "50")]
    write_synthetic_schema(tmp_path / "schema", 1000)
    linted = run_cli("lint", cwd=tmp_path)
    assert linted.exit_code == 0, linted.output
    generated = run_cli("generate", cwd=tmp_path)
    assert generated.exit_code == 0, generated.output
    files = read_migrations(tmp_path / "migrations")
    assert len(files) > 1 and len({f.change.version for f in files}) == 1
    assert f"as {len(files)} files" in generated.stdout and "lock-table slots" in generated.stdout
    applied = run_cli("apply", "--dsn", small_database.dsn, cwd=tmp_path, timeout=900)
    assert applied.exit_code == 0, applied.output[-3000:]
    assert small_database.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(1002,)]
    rolled_back = run_cli("rollback", "--dsn", small_database.dsn, cwd=tmp_path, timeout=900)
    assert rolled_back.exit_code == 0, rolled_back.output[-3000:]
    assert f"Rolled back {len(files)} migration(s) (1 change(s))" in rolled_back.stdout
    assert _relations(small_database) == ["_sqlx_migrations", "_sqlx_migrations_pkey"]
    assert small_database.query("SELECT count(*) FROM _sqlx_migrations") == [(0,)]


def test_apply_refuses_a_file_the_lock_table_cannot_hold_before_running_anything(small_database: TestDatabase,
                                                                                 tmp_path: Path) -> None:
    write_synthetic_schema(tmp_path / "schema", 200, 4)
    generated = run_cli("generate", "--max-locks-per-file", "100000", cwd=tmp_path)
    assert generated.exit_code == 0, generated.output
    [file] = read_migrations(tmp_path / "migrations")
    assert file.header.locks is not None and file.header.locks > 64 * 50
    needed = -(-file.header.locks // 50)
    result = run_cli("apply", "--dsn", small_database.dsn, cwd=tmp_path)
    assert result.exit_code == 3, result.output
    assert f"holds up to {file.header.locks} lock-table slots" in result.stderr
    assert "max_locks_per_transaction (64) x (max_connections (50) + max_prepared_transactions (0))" in result.stderr
    assert f"Set max_locks_per_transaction = {needed} or more" in result.stderr
    assert "Nothing was run" in result.stderr and "↑" not in result.stdout
    assert _relations(small_database) in ([], ["_sqlx_migrations", "_sqlx_migrations_pkey"])


# Each transaction-level advisory lock takes a slot of the shared lock table, as a relation does,
# and the runner cannot count them from the file's text.
OVERFLOW = """CREATE TABLE kept_only_if_committed (id integer);
DO $$
BEGIN
    FOR i IN 1..1000000 LOOP
        PERFORM pg_advisory_xact_lock(i);
    END LOOP;
END
$$;
"""


def test_a_lock_table_overflow_shows_postgresqls_hint(small_database: TestDatabase, tmp_path: Path) -> None:
    """A hand-written file that takes more locks than the lock table holds: the message carries the
    server's HINT and SQLSTATE, and nothing is left applied."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "1_overflow.up.sql").write_text(hand_written(OVERFLOW))
    (migrations / "1_overflow.down.sql").write_text(hand_written("SELECT 1;\n"))
    assert run_cli("hash", "--migrations-dir", str(migrations)).exit_code == 0
    result = run_cli("apply", "--dsn", small_database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 3, result.output
    assert "1_overflow.up.sql:3: out of shared memory [SQLSTATE 53200]" in result.stderr  # line 1: the marker
    assert "HINT: You might need to increase" in result.stderr and "max_locks_per_transaction" in result.stderr
    assert "Nothing of 1_overflow was applied" in result.stderr
    assert " failed\n" in result.stdout  # the progress line is closed before the error
    assert _relations(small_database) == ["_sqlx_migrations", "_sqlx_migrations_pkey"]


def test_the_cli_default_is_the_planners() -> None:
    import inspect

    from veza_schema.cli.migrate import generate
    from veza_schema.diff.locks import DEFAULT_MAX_LOCKS

    assert inspect.signature(generate).parameters["max_locks_per_file"].default == DEFAULT_MAX_LOCKS


def test_the_project_setting_bounds_the_files_generate_writes(tmp_path: Path) -> None:
    """`max-locks-per-file` in [tool.veza-schema] is the flag's default: a small budget cuts the change."""
    from tests.helpers import invoke

    write_synthetic_schema(tmp_path / "schema", 40, 2)
    (tmp_path / "migrations").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.veza-schema]\nmax-locks-per-file = 100\n')
    result = invoke("generate", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    files = read_migrations(tmp_path / "migrations")
    assert len(files) > 1
    assert all(f.header.locks is not None and f.header.locks <= 100 for f in files if not f.no_transaction)
    assert len({f.change.label for f in files}) == 1
