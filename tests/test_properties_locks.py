"""Property (c): the online-safe plan never holds ACCESS EXCLUSIVE on a table that existed before
the migration for longer than a catalog-only change.

For a random schema and a random edit that ``generate`` writes without ``--allow-forbidden``
(the change policy and the planner both accept it), the migration files are replayed on a
database built from the old schema, statement by statement, in the transactions the runner
would use, and after every statement the test reads, for the tables that existed before:

- ``pg_locks`` of its own backend: which of them it now holds in ACCESS EXCLUSIVE mode;
- ``pg_stat_xact_user_tables`` (this transaction's counters): did the statement scan a table
  (a validation, an index build, a rewrite all count a sequential scan) or write rows;
- ``pg_class.relfilenode``: did it rewrite one.

A statement that does such work while the transaction holds ACCESS EXCLUSIVE on a pre-existing
table is a violation (the lock is held for as long as the work takes, which grows with the
table). Catalog-only steps (ADD COLUMN with a constant default, ADD ... NOT VALID, SET NOT NULL
over a validated CHECK, a varchar widening, renames, drops) do no such work. Statements that
PostgreSQL refuses inside a transaction block (CREATE/DROP INDEX CONCURRENTLY) run on their
own: they take SHARE UPDATE EXCLUSIVE, which does not block reads or writes.
"""

from __future__ import annotations

import contextlib
import copy
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings

from tests.helpers import Server, fresh_database
from tests.strategies import ColumnSpec, IndexSpec, Pair, SchemaSpec, TableSpec, pairs, to_yaml
from veza_schema.db.dsn import Target
from veza_schema.diff.plan import UnsafeChangeError
from veza_schema.migrations import runner
from veza_schema.migrations.files import is_no_transaction, read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.migrations.incremental import generate_incremental
from veza_schema.migrations.snapshot import read_snapshot
from veza_schema.policy import PolicyViolation, check_generate
from veza_schema.sql.split import split_statements
from veza_schema.yaml.loader import load_schema

CI_EXAMPLES = 20
_COMMON = {"deadline": None, "database": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much]}
ACTIVE_SQL_TRANSACTION = "25001"

_PRE_EXISTING = """
SELECT c.oid::int, c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> '_sqlx_migrations'
"""
_COUNTERS = """
SELECT s.relid::int, s.seq_scan + coalesce(s.idx_scan, 0), s.n_tup_ins + s.n_tup_upd + s.n_tup_del, c.relfilenode::int
FROM pg_stat_xact_user_tables s JOIN pg_class c ON c.oid = s.relid WHERE s.relid = ANY(%s)
"""
_EXCLUSIVE = """
SELECT relation::int FROM pg_locks
WHERE pid = pg_backend_pid() AND locktype = 'relation' AND mode = 'AccessExclusiveLock' AND granted
  AND relation = ANY(%s)
"""


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    statement: str
    exclusive: tuple[str, ...]  # pre-existing tables held ACCESS EXCLUSIVE after the statement
    work: tuple[str, ...]  # pre-existing tables the statement scanned, wrote or rewrote

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}: holds ACCESS EXCLUSIVE on {', '.join(self.exclusive)} while "
                f"{self.statement.splitlines()[0][:100]!r} scans/writes/rewrites {', '.join(self.work)}")


_NOT_NULL_WITHOUT_DEFAULT = re.compile(r"^ALTER TABLE \S+ ADD COLUMN (?!.*\bDEFAULT\b).*\bNOT NULL\b", re.DOTALL)


def _fails_on_the_first_row(statement: str) -> bool:
    """ADD COLUMN ... NOT NULL without a default scans the table for rows that would be NULL: it fails on
    the first row there is (the plan's header says "fails if the table has rows"), so the lock lasts
    only as long as an empty table takes to scan."""
    return bool(_NOT_NULL_WITHOUT_DEFAULT.match(statement.strip()))


def _counters(conn: psycopg.Connection, oids: list[int]) -> dict[int, tuple[int, int, int]]:
    return {row[0]: (row[1], row[2], row[3]) for row in conn.execute(_COUNTERS, (oids,)).fetchall()}


def replay(conn: psycopg.Connection, files: list[Path]) -> list[Violation]:
    """Run the up files as the runner would (one transaction per transactional file, each statement of a
    no-transaction file on its own) and report every statement that works under a long lock."""
    names = dict(conn.execute(_PRE_EXISTING).fetchall())
    oids = list(names)
    found: list[Violation] = []

    def observed(file: Path, statement_text: str, line: int) -> None:
        before = _counters(conn, oids)
        conn.execute(statement_text.encode("utf-8"), prepare=False)  # type: ignore[call-overload]
        after = _counters(conn, oids)
        worked = sorted(names[oid] for oid in after if after[oid] != before.get(oid, after[oid]))
        exclusive = sorted(names[row[0]] for row in conn.execute(_EXCLUSIVE, (oids,)).fetchall())
        if worked and exclusive and not _fails_on_the_first_row(statement_text):
            found.append(Violation(file.name, line, statement_text, tuple(exclusive), tuple(worked)))

    for file in files:
        text = file.read_text(encoding="utf-8")
        statements = split_statements(text)
        if not is_no_transaction(text):
            with conn.transaction():
                for statement in statements:
                    observed(file, statement.text, statement.line)
            continue
        for statement in statements:
            try:
                with conn.transaction():
                    observed(file, statement.text, statement.line)
            except psycopg.Error as exc:
                if exc.sqlstate != ACTIVE_SQL_TRANSACTION:
                    raise
                conn.execute(statement.text.encode("utf-8"), prepare=False)  # type: ignore[call-overload]
    return found


def online_safe_files(pair: Pair, tmp: Path, server: Server, allow_forbidden: bool = False
                      ) -> list[Violation] | None:
    """The violations of the plan ``generate`` writes for the pair; None when generate refuses it."""
    schema_dir, migrations = tmp / "schema", tmp / "migrations"
    schema_dir.mkdir(parents=True)
    (schema_dir / "app.yaml").write_text(to_yaml(pair.old), encoding="utf-8")
    generate_initial(load_schema(schema_dir), migrations, "initial", FileSettings())
    (schema_dir / "app.yaml").write_text(to_yaml(pair.new), encoding="utf-8")
    new_model = load_schema(schema_dir)
    snapshot = read_snapshot(migrations)
    assert snapshot is not None
    try:
        if not allow_forbidden:
            check_generate(snapshot, new_model)
        written = generate_incremental(snapshot, new_model, migrations, None, FileSettings(),
                                       allow_forbidden=allow_forbidden)
    except (PolicyViolation, UnsafeChangeError):
        return None
    before = {m.version for m in read_migrations(migrations)} - {w.version for w in written}
    with contextlib.contextmanager(fresh_database)(server) as database:
        runner.apply(Target(database.dsn, "test"), [m for m in read_migrations(migrations) if m.version in before])
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            return replay(conn, [w.up_path for w in written])


def check_locks(pair: Pair, server: Server) -> None:
    with tempfile.TemporaryDirectory(prefix="veza-locks-") as tmp:
        violations = online_safe_files(pair, Path(tmp), server)
    assume(violations is not None)
    assert violations == [], "\n".join(str(v) for v in violations or [])


@given(pair=pairs())
@settings(max_examples=CI_EXAMPLES, derandomize=True, **_COMMON)  # type: ignore[arg-type]
def test_online_safe_plan_holds_access_exclusive_only_for_catalog_changes(pair: Pair, pg_server: Server) -> None:
    check_locks(pair, pg_server)


@pytest.mark.slow
@given(pair=pairs())
@settings(max_examples=10 * CI_EXAMPLES, derandomize=False, **_COMMON)  # type: ignore[arg-type]
def test_online_safe_plan_holds_access_exclusive_only_for_catalog_changes_10x(pair: Pair,
                                                                              pg_server: Server) -> None:
    check_locks(pair, pg_server)


# -- the observer itself sees a long lock (a positive control), and no false alarm -----------------------------
def test_replay_reports_a_validated_check_added_under_access_exclusive(database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database.execute("CREATE TABLE t (id integer); INSERT INTO t SELECT generate_series(1, 10)")
    up = tmp_path / "1_check.up.sql"
    up.write_text("ALTER TABLE t ADD CONSTRAINT chk_t_id CHECK (id > 0);\n")
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        [violation] = replay(conn, [up])
    assert violation.exclusive == ("t",) and violation.work == ("t",) and violation.line == 1


def test_replay_reports_a_rewrite_and_a_backfill_after_an_exclusive_lock(database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database.execute("CREATE TABLE t (id integer, note text); INSERT INTO t SELECT generate_series(1, 10)")
    up = tmp_path / "1_retype.up.sql"
    up.write_text("ALTER TABLE t ADD COLUMN flag boolean;\nUPDATE t SET note = 'x';\n"
                  "ALTER TABLE t ALTER COLUMN id TYPE bigint;\n")
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        violations = replay(conn, [up])
    assert [v.line for v in violations] == [2, 3]


def test_replay_accepts_catalog_only_changes_and_concurrent_builds(database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    database.execute("CREATE TABLE t (id integer, note varchar(10)); INSERT INTO t SELECT generate_series(1, 10)")
    main = tmp_path / "1_main.up.sql"
    main.write_text("ALTER TABLE t ADD COLUMN flag boolean DEFAULT false;\n"
                    "ALTER TABLE t ADD CONSTRAINT chk_t_id CHECK (id > 0) NOT VALID;\n"
                    "ALTER TABLE t ALTER COLUMN note TYPE varchar(20);\n")
    concurrent = tmp_path / "2_concurrent.up.sql"
    concurrent.write_text("-- no-transaction\nCREATE INDEX CONCURRENTLY idx_t_id ON t (id);\n"
                          "ALTER TABLE t VALIDATE CONSTRAINT chk_t_id;\n")
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        assert replay(conn, [main, concurrent]) == []
    assert database.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_t_id'::regclass") == [(True,)]


# -- regressions found by the property, shrunk -------------------------------------------------------------
def test_regression_a_rewriting_type_change_is_refused_without_allow_forbidden(pg_server: Server,
                                                                               tmp_path: Path) -> None:
    """Shrunk from a failure of the property: ``integer -> bigint`` was written as an in-place ALTER TYPE,
    which rewrites the table under ACCESS EXCLUSIVE. generate now refuses it; with --allow-forbidden it is
    written, and the observer sees the rewrite."""
    old = SchemaSpec(tables={"plays": TableSpec("plays", [ColumnSpec("id", "bigint"), ColumnSpec("n", "integer")],
                                                ["id"])})
    new = copy.deepcopy(old)
    new.tables["plays"].columns[1].type = "bigint"
    assert online_safe_files(Pair(old, new, ["retype plays.n integer -> bigint"]), tmp_path / "a", pg_server) is None
    violations = online_safe_files(Pair(old, new, []), tmp_path / "b", pg_server, allow_forbidden=True)
    assert violations is not None and [v.work for v in violations] == [("plays",)]


def _widened(table: TableSpec) -> Pair:
    old = SchemaSpec(tables={table.name: table})
    new = copy.deepcopy(old)
    new.tables[table.name].column("name").type = "varchar(255)"
    return Pair(old, new, ["retype name varchar(40) -> varchar(255)"])


@pytest.mark.parametrize("table", [
    TableSpec("plays", [ColumnSpec("id", "bigint"), ColumnSpec("name", "varchar(40)")], ["id"],
              checks={"chk_plays_name": ("length({c}) < 30", "name")}),
    TableSpec("plays", [ColumnSpec("id", "bigint"), ColumnSpec("name", "varchar(40)")], ["id"],
              indexes={"idx_plays_name": IndexSpec([("lower({c})", "name")])}),
    TableSpec("plays", [ColumnSpec("id", "bigint"), ColumnSpec("starts_at", "timestamptz"),
                        ColumnSpec("name", "varchar(40)")], ["id", "starts_at"],
              indexes={"idx_plays_name": IndexSpec([("{c}", "name")])}, partition=("starts_at", 0, True)),
], ids=["check_reads_it", "expression_index_reads_it", "partitioned_index_on_it"])
def test_regression_a_catalog_only_widening_that_rechecks_dependents_is_refused(
        table: TableSpec, pg_server: Server, tmp_path: Path) -> None:
    """Shrunk from a failure of the property: varchar(40) -> varchar(255) is catalog-only, but PostgreSQL
    re-validates a CHECK reading the column and rebuilds an index whose expression reads it (or, on a
    partitioned table, any index on it): a full scan under ACCESS EXCLUSIVE. generate refuses it now."""
    pair = _widened(table)
    assert online_safe_files(pair, tmp_path / "a", pg_server) is None
    violations = online_safe_files(pair, tmp_path / "b", pg_server, allow_forbidden=True)
    assert violations, "the observer must see the re-check"


@pytest.mark.parametrize("premakes", [(0, 3), (3, 0)], ids=["raised", "lowered"])
def test_regression_a_premake_change_on_a_table_with_a_default_partition_takes_no_long_lock(
        premakes: tuple[int, int], pg_server: Server, tmp_path: Path) -> None:
    """Shrunk from a failure of the 10x property: raising premake 0 -> 3 planned ``SELECT
    veza_ensure_partitions(...)``, whose CREATE TABLE ... PARTITION OF scans the DEFAULT partition under
    ACCESS EXCLUSIVE on it and on the parent. premake is maintenance policy now: the migration leaves the
    partitions to `veza-schema partitions`, which moves default rows in batches without blocking writers."""
    old = SchemaSpec(tables={"plays": TableSpec(
        "plays", [ColumnSpec("id", "bigint"), ColumnSpec("played_at", "timestamptz")], ["id", "played_at"],
        partition=("played_at", premakes[0], True))})
    new = copy.deepcopy(old)
    new.tables["plays"].partition = ("played_at", premakes[1], True)
    assert online_safe_files(Pair(old, new, [f"premake {premakes[0]} -> {premakes[1]}"]), tmp_path, pg_server) == []
