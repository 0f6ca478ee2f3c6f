"""Every denormalized counter of the Veza schema is kept exact by a trigger, or says who keeps it.

The counters are read from the model (``counts:`` on a column), so a counter added to the YAML is
tested here without touching this file; the rows come from :class:`tests.factories.RowFactory`.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.factories import RowFactory, shipped_schema
from veza_schema.model import Column, CounterSpec, Schema, Table

SCHEMA: Schema = shipped_schema()
COUNTERS: list[tuple[Table, Column]] = [
    (table, column) for table in sorted(SCHEMA.tables.values(), key=lambda t: t.name)
    for column in table.columns if column.counts is not None
]
INTEGER_TYPES = ("integer", "bigint", "smallint")

# How to make a counted row stop counting, for each `where` the schema uses (a new kind of
# predicate fails test_every_counter_predicate_has_a_way_out until it is listed here).
STOP_COUNTING: dict[str, sql.Composable] = {
    "deleted_at IS NULL": sql.SQL("deleted_at = now()"),
    "status = 'active'": sql.SQL("status = 'banned'"),
    "status NOT IN ('cancelled', 'refunded')": sql.SQL("status = 'cancelled'"),
}
START_COUNTING: dict[str, sql.Composable] = {
    "deleted_at IS NULL": sql.SQL("deleted_at = NULL"),
    "status = 'active'": sql.SQL("status = 'active'"),
    "status NOT IN ('cancelled', 'refunded')": sql.SQL("status = 'active'"),
}


def _id(item: tuple[Table, Column]) -> str:
    return f"{item[0].name}.{item[1].name}"


def test_every_count_column_has_a_trigger_or_says_who_keeps_it() -> None:
    unexplained = [f"{t.name}.{c.name}" for t in SCHEMA.tables.values() for c in t.columns
                   if c.name.endswith("_count") and c.type in INTEGER_TYPES
                   and c.counts is None and not c.maintained_by]
    assert unexplained == []


def test_every_counter_predicate_has_a_way_out() -> None:
    predicates = {c.counts.where for _, c in COUNTERS if c.counts and c.counts.where}
    assert predicates <= set(STOP_COUNTING), predicates - set(STOP_COUNTING)


def test_counters_without_own_triggers_name_triggers_that_exist() -> None:
    for table, column in COUNTERS:
        assert column.counts is not None
        child = SCHEMA.tables[column.counts.rows_of]
        generated = [t for t in child.triggers.values() if t.function == f"count_{table.name}_{column.name}"]
        if column.counts.maintained_by:
            assert set(column.counts.maintained_by) <= set(child.triggers), _id((table, column))
            assert generated == []
        else:
            assert len(generated) == 1, _id((table, column))


class Counter:
    """One counter column of one parent row, read back from the database."""

    def __init__(self, conn: psycopg.Connection, table: Table, column: Column, row: dict[str, Any]) -> None:
        assert column.counts is not None
        self.conn, self.table, self.column, self.spec = conn, table, column, column.counts
        self.key = row[self.spec.key]

    def value(self) -> int:
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
            sql.Identifier(self.column.name), sql.Identifier(self.table.name), sql.Identifier(self.spec.key))
        row = self.conn.execute(query, (self.key,)).fetchone()
        assert row is not None
        return int(row[0])


def _child(factory: RowFactory, spec: CounterSpec, key: Any) -> dict[str, Any]:
    return factory.insert(spec.rows_of, {spec.via: key})


def _update(conn: psycopg.Connection, spec: CounterSpec, row: dict[str, Any], assignment: sql.Composable) -> None:
    child = SCHEMA.tables[spec.rows_of]
    assert child.primary_key is not None
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in child.primary_key.columns)
    conn.execute(sql.SQL("UPDATE {} SET {} WHERE {}").format(sql.Identifier(spec.rows_of), assignment, where),
                 [row[c] for c in child.primary_key.columns])


def _delete(conn: psycopg.Connection, spec: CounterSpec, row: dict[str, Any]) -> None:
    child = SCHEMA.tables[spec.rows_of]
    assert child.primary_key is not None
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in child.primary_key.columns)
    conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(spec.rows_of), where),
                 [row[c] for c in child.primary_key.columns])


@pytest.mark.parametrize(("table", "column"), COUNTERS, ids=list(map(_id, COUNTERS)))
def test_counter_follows_inserts_and_deletes(shared_conn: psycopg.Connection, table: Table, column: Column) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    counter = Counter(shared_conn, table, column, factory.insert(table.name))
    assert column.counts is not None
    assert counter.value() == 0
    first = _child(factory, column.counts, counter.key)
    second = _child(factory, column.counts, counter.key)
    assert counter.value() == 2
    _delete(shared_conn, column.counts, first)
    assert counter.value() == 1
    _delete(shared_conn, column.counts, second)
    assert counter.value() == 0


@pytest.mark.parametrize(("table", "column"), [c for c in COUNTERS if c[1].counts and c[1].counts.where],
                         ids=[_id(c) for c in COUNTERS if c[1].counts and c[1].counts.where])
def test_counter_follows_rows_that_stop_and_start_counting(shared_conn: psycopg.Connection, table: Table,
                                                          column: Column) -> None:
    assert column.counts is not None and column.counts.where is not None
    factory = RowFactory(shared_conn, SCHEMA)
    counter = Counter(shared_conn, table, column, factory.insert(table.name))
    row = _child(factory, column.counts, counter.key)
    assert counter.value() == 1
    _update(shared_conn, column.counts, row, STOP_COUNTING[column.counts.where])
    assert counter.value() == 0
    _update(shared_conn, column.counts, row, STOP_COUNTING[column.counts.where])  # no double decrement
    assert counter.value() == 0
    _update(shared_conn, column.counts, row, START_COUNTING[column.counts.where])
    assert counter.value() == 1


@pytest.mark.parametrize(("table", "column"), [c for c in COUNTERS if c[1].counts and not c[1].counts.maintained_by],
                         ids=[_id(c) for c in COUNTERS if c[1].counts and not c[1].counts.maintained_by])
def test_counter_follows_a_row_moved_to_another_parent(shared_conn: psycopg.Connection, table: Table,
                                                      column: Column) -> None:
    assert column.counts is not None
    factory = RowFactory(shared_conn, SCHEMA)
    old = Counter(shared_conn, table, column, factory.insert(table.name))
    new = Counter(shared_conn, table, column, factory.insert(table.name))
    row = _child(factory, column.counts, old.key)
    _update(shared_conn, column.counts, row,
            sql.SQL("{} = {}").format(sql.Identifier(column.counts.via), sql.Literal(new.key)))
    assert (old.value(), new.value()) == (0, 1)


def test_a_counter_never_goes_below_zero(shared_conn: psycopg.Connection) -> None:
    table, column = next(c for c in COUNTERS if c[1].name == "track_count" and c[0].name == "playlists")
    assert column.counts is not None
    factory = RowFactory(shared_conn, SCHEMA)
    counter = Counter(shared_conn, table, column, factory.insert(table.name))
    row = _child(factory, column.counts, counter.key)
    shared_conn.execute("UPDATE playlists SET track_count = 0 WHERE id = %s", (counter.key,))  # drifted by hand
    _delete(shared_conn, column.counts, row)
    assert counter.value() == 0


def test_deleting_a_parent_cascades_through_its_counted_rows(shared_conn: psycopg.Connection) -> None:
    factory = RowFactory(shared_conn, SCHEMA)
    playlist = factory.insert("playlists")
    factory.insert("playlist_tracks", {"playlist_id": playlist["id"]})
    shared_conn.execute("DELETE FROM playlists WHERE id = %s", (playlist["id"],))
    remaining = shared_conn.execute("SELECT count(*) FROM playlist_tracks WHERE playlist_id = %s",
                                    (playlist["id"],)).fetchone()
    assert remaining == (0,)
