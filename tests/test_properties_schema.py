"""Properties of YAML -> migrations -> database, on random schemas (hypothesis, real PostgreSQL).

(a) A random schema written as YAML, generated and applied, introspects back to the model the
    loader read (expressions compared through the offline normalizer, everything else exactly).
(b) For a random schema and a random edit of it: build the old one, ``generate`` the
    incremental migration, apply it: the database equals a fresh build of the new schema;
    roll the new files back: it equals the old one again; apply once more: the new one again;
    ``generate`` once more: nothing to write. Every no-transaction file, run a second time after
    it finished (what recovery from a crash does), changes nothing.

The strategies are in ``tests/strategies.py``. The default example counts are sized for CI
and derandomized (the same examples every run, so CI does not fail by luck); the ``slow``
variants (``make test-slow``) run ten times as many random ones. A failure hypothesis finds is
shrunk and printed as the edits plus both YAML files; it is then committed below as a
regression case (``REGRESSIONS``), which runs every time.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from tests.helpers import Server, TestDatabase, fresh_database, mismatches
from tests.strategies import ColumnSpec, IndexSpec, Pair, SchemaSpec, TableSpec, pairs, schemas, to_yaml
from veza_schema.db.dsn import Target
from veza_schema.db.introspect import introspect
from veza_schema.diff.plan import UnsafeChangeError
from veza_schema.migrations import runner
from veza_schema.migrations.files import is_no_transaction, read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.migrations.incremental import generate_incremental, plan_incremental
from veza_schema.migrations.snapshot import read_snapshot
from veza_schema.model import Schema
from veza_schema.sql.normalize import normalize_schema
from veza_schema.sql.split import split_statements
from veza_schema.yaml.loader import load_schema

CI_EXAMPLES = {"round_trip": 15, "pairs": 20}
_COMMON = {"deadline": None, "database": None, "print_blob": True,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much]}
# The schemas are empty: the proofs are about schemas, and the data-loss guard would refuse
# nothing anyway; dropping a column or a table is part of the edits.
LOSSY = runner.RunOptions(allow_data_loss=True)
EXPRESSION_FIELDS = (".default", ".generated", ".expression", ".where", ".when", ".query")


def ci(name: str) -> settings:
    return settings(max_examples=CI_EXAMPLES[name], derandomize=True, **_COMMON)  # type: ignore[arg-type]


def ten_times(name: str) -> settings:
    return settings(max_examples=10 * CI_EXAMPLES[name], derandomize=False, **_COMMON)  # type: ignore[arg-type]


database_on = contextlib.contextmanager(fresh_database)


def schema_of(database: TestDatabase) -> Schema:
    with database.connect() as conn:
        return introspect(conn)


def columns_by_name(schema: Schema) -> Schema:
    """PostgreSQL appends a re-added column at the end: a rolled-back DROP COLUMN changes the column
    order, which no migration tool can restore in place (and ``diff`` does not report)."""
    tables = {name: dataclasses.replace(t, columns=tuple(sorted(t.columns, key=lambda c: c.name)))
              for name, t in schema.tables.items()}
    return dataclasses.replace(schema, tables=tables)


def write_schema(directory: Path, spec: SchemaSpec) -> Schema:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.yaml").write_text(to_yaml(spec), encoding="utf-8")
    return load_schema(directory)


def apply_all(database: TestDatabase, migrations: Path) -> None:
    runner.apply(Target(database.dsn, "test"), read_migrations(migrations), options=LOSSY)


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="veza-prop-") as tmp:
        yield Path(tmp)


def rerun_no_transaction_files(database: TestDatabase, files: list[Path]) -> None:
    """Run every no-transaction file once more, statement by statement, as ``resolve --rolled-back`` and
    ``apply`` would after a crash anywhere in it: the plan promises each of their statements is idempotent."""
    with database.connect() as conn:
        for path in files:
            text = path.read_text(encoding="utf-8")
            if is_no_transaction(text):
                for statement in split_statements(text):
                    conn.execute(statement.text.encode("utf-8"), prepare=False)  # type: ignore[call-overload]


# -- (a) YAML -> apply -> introspect equals the model ------------------------------------------------------
def round_trip(spec: SchemaSpec, server: Server) -> None:
    with workspace() as tmp:
        model = write_schema(tmp / "schema", spec)
        assert set(model.tables) == set(spec.tables)
        for table in spec.tables.values():  # the loader read what the spec says
            loaded = model.tables[table.name]
            assert [(c.name, c.nullable) for c in loaded.columns] == [(c.name, c.nullable) for c in table.columns]
            assert set(loaded.indexes) == set(table.indexes) and set(loaded.checks) == set(table.checks)
            assert set(loaded.foreign_keys) == set(table.foreign_keys) and set(loaded.uniques) == set(table.uniques)
        generate_initial(model, tmp / "migrations", "initial", FileSettings())
        with database_on(server) as database:
            apply_all(database, tmp / "migrations")
            found = schema_of(database)
    assert mismatches(normalize_schema(model), normalize_schema(found)) == []
    exact = [m for m in mismatches(model, found) if not m.split(":", 1)[0].endswith(EXPRESSION_FIELDS)]
    assert exact == []


@given(spec=schemas())
@ci("round_trip")
def test_random_schema_applied_introspects_to_its_model(spec: SchemaSpec, pg_server: Server) -> None:
    round_trip(spec, pg_server)


@pytest.mark.slow
@given(spec=schemas())
@ten_times("round_trip")
def test_random_schema_applied_introspects_to_its_model_10x(spec: SchemaSpec, pg_server: Server) -> None:
    round_trip(spec, pg_server)


# -- (b) old -> generate -> apply == fresh new; rollback == old; regenerate empty -----------------------
def migrate_pair(pair: Pair, server: Server) -> None:
    with workspace() as tmp, database_on(server) as database, database_on(server) as reference:
        schema_dir, migrations = tmp / "schema", tmp / "migrations"
        old_model = write_schema(schema_dir, pair.old)
        initial = generate_initial(old_model, migrations, "initial", FileSettings())[-1]  # the last of its files
        apply_all(database, migrations)
        old_schema = schema_of(database)

        new_model = write_schema(schema_dir, pair.new)
        snapshot = read_snapshot(migrations)
        assert snapshot is not None
        written = generate_incremental(snapshot, new_model, migrations, None, FileSettings(), allow_forbidden=True)
        apply_all(database, migrations)
        migrated = schema_of(database)
        rerun_no_transaction_files(database, [w.up_path for w in written])
        assert mismatches(migrated, schema_of(database)) == [], "a no-transaction up file is not idempotent"

        generate_initial(new_model, tmp / "fresh", "initial", FileSettings())
        apply_all(reference, tmp / "fresh")
        fresh = schema_of(reference)
        assert mismatches(columns_by_name(fresh), columns_by_name(migrated)) == [], "migrated != fresh build"

        if written:
            # Newest first, one file at a time: each no-transaction down file runs a second time right after
            # it ran, as recovery from a crash in it would (before the older files' down files run).
            versions = [initial.version] + [w.version for w in written]
            for position in range(len(versions) - 1, 0, -1):
                runner.rollback(Target(database.dsn, "test"), read_migrations(migrations), to=versions[position - 1],
                                options=LOSSY)
                rolled_back = schema_of(database)
                rerun_no_transaction_files(database, [written[position - 1].down_path])
                assert mismatches(rolled_back, schema_of(database)) == [], \
                    f"{written[position - 1].down_path.name} is not idempotent"
            assert mismatches(columns_by_name(old_schema), columns_by_name(schema_of(database))) == [], \
                "rolled back != old"
            apply_all(database, migrations)
            assert mismatches(columns_by_name(fresh), columns_by_name(schema_of(database))) == [], \
                "re-applied after rollback != fresh build"

        after = read_snapshot(migrations)
        assert after is not None
        _, plan = plan_incremental(after, load_schema(schema_dir), allow_forbidden=True)
        assert plan.files == (), "generate after generate is not empty"


@given(pair=pairs())
@ci("pairs")
def test_random_edit_migrates_rolls_back_and_regenerates_nothing(pair: Pair, pg_server: Server) -> None:
    migrate_pair(pair, pg_server)


@pytest.mark.slow
@given(pair=pairs())
@ten_times("pairs")
def test_random_edit_migrates_rolls_back_and_regenerates_nothing_10x(pair: Pair, pg_server: Server) -> None:
    migrate_pair(pair, pg_server)


# -- regressions found by the properties, shrunk ----------------------------------------------------------
def _renamed(new_name: str) -> Pair:
    old = SchemaSpec(tables={"plays": TableSpec(
        "plays", [ColumnSpec("id", "bigint"), ColumnSpec("ref", "bigint", nullable=True)], ["id"],
        checks={"chk_plays": ("{c} <> 13", "ref")},
        indexes={"idx_plays_ref": IndexSpec([("{c}", "id")], where=("{c} > 0", "ref"))})})
    new = copy.deepcopy(old)
    table = new.tables["plays"]
    table.column("ref").name, table.column(new_name).renamed_from = new_name, "ref"
    table.checks["chk_plays"] = ("{c} <> 13", new_name)
    table.indexes["idx_plays_ref"].where = ("{c} > 0", new_name)
    return Pair(old, new, [f"rename column plays.ref to {new_name}"])


@pytest.mark.parametrize("new_name", ["Rank", "order", "score"])
def test_regression_a_renamed_column_is_renamed_inside_checks_and_predicates(new_name: str,
                                                                             pg_server: Server) -> None:
    """Found by (b): renaming ``ref`` to ``Rank`` wrote ``Rank <> 13`` (which means ``rank``) into the renamed
    CHECK, so the down file failed on a column that does not exist; the new name is now quoted as needed."""
    migrate_pair(_renamed(new_name), pg_server)


def test_regression_a_column_dropped_and_added_back_at_the_end_is_a_refused_reorder(tmp_path: Path) -> None:
    """Found by (b) at 10x: rename ``position`` away, add a new ``position`` (appended), drop the renamed one.
    By name that is the old column moved to the end: generate refuses it (PostgreSQL cannot reorder columns)
    and says how to write it instead. The edits no longer reuse a column name they retired."""
    old = SchemaSpec(tables={"artists": TableSpec(
        "artists", [ColumnSpec("id", "integer"), ColumnSpec("position", "numeric(10,2)", nullable=True, default="0"),
                    ColumnSpec("title", "integer", nullable=True)], ["id"])})
    new = copy.deepcopy(old)
    table = new.tables["artists"]
    table.columns = [table.column("id"), table.column("title"), ColumnSpec("position", "integer", default="1")]
    generate_initial(write_schema(tmp_path / "schema", old), tmp_path / "migrations", "initial", FileSettings())
    snapshot = read_snapshot(tmp_path / "migrations")
    assert snapshot is not None
    with pytest.raises(UnsafeChangeError, match=r"cannot reorder them in place: list position, title in the order"):
        generate_incremental(snapshot, write_schema(tmp_path / "schema", new), tmp_path / "migrations", None,
                             FileSettings(), allow_forbidden=True)
