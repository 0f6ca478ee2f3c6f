"""Plans that fit the server's lock table: the slot counts in the headers bound what PostgreSQL
really locks, a large change is cut into parts of one change, and apply refuses a file the
server cannot hold before running anything."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.factories import write_synthetic_schema
from tests.helpers import REPO_ROOT, TestDatabase, mismatches, run_cli
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
    schema_dir = REPO_ROOT / "schema" if source == "veza" else write_synthetic_schema(tmp_path / "schema", 60, 3)
    written = generate_initial(load_schema(schema_dir), tmp_path / "m", "initial", FileSettings(max_locks=300))
    assert len(written) > 2
    held = _held_per_file(database_each_server, read_migrations(tmp_path / "m"))
    assert [(name, header, real) for name, header, real in held if real > header] == []
    assert max(header for _, header, _ in held) <= 300 or len(held) == 2 * len(written)


def test_a_schema_cut_into_parts_builds_the_same_database_as_one_file(database: TestDatabase, tmp_path: Path,
                                                                      pg_server: object) -> None:
    from tests.helpers import fresh_database

    schema = load_schema(REPO_ROOT / "schema")
    parts = generate_initial(schema, tmp_path / "parts", "initial", FileSettings(max_locks=400))
    whole = generate_initial(schema, tmp_path / "whole", "initial", FileSettings(max_locks=None))
    assert len(whole) == 1 and len(parts) > 3
    assert {w.role.change.label for w in parts if w.role.change} == {f"{parts[0].version}_initial"}
    assert run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(tmp_path / "parts")).exit_code == 0
    other = fresh_database(pg_server)  # type: ignore[arg-type]
    reference = next(other)
    try:
        assert run_cli("apply", "--dsn", reference.dsn, "--migrations-dir", str(tmp_path / "whole")).exit_code == 0
        with database.connect() as conn, reference.connect() as ref:
            assert mismatches(introspect(ref), introspect(conn)) == []
    finally:
        next(other, None)
