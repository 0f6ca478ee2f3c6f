"""Behaviour of the whole Veza schema (schema/*.yaml) on a real PostgreSQL, with real rows.

The schema is generated and applied once per server (embedded PostgreSQL 18, Debian
PostgreSQL 15) into a template database; every test gets its own copy made with
``CREATE DATABASE ... TEMPLATE``. Tables, triggers, tags and foreign keys are read from the
loaded model, never from a hand-written list, so a table added to the YAML is covered by
the parametrized tests without touching this file.

Rows are built generically from the model (:class:`RowFactory`): NOT NULL columns without a
default get a value of their type, required foreign keys get a freshly inserted parent (so
two FKs to ``users`` get two different users), and a small dict of overrides satisfies the
CHECK constraints a generic value cannot (an e-mail format, an https URL...).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from tests.factories import RowFactory, key_filter, shipped_schema, touch
from veza_schema.model import Schema

SCHEMA: Schema = shipped_schema()

UPDATED_AT_TABLES = sorted(t.name for t in SCHEMA.tables.values() if t.column("updated_at") is not None)
AUDITED_TABLES = sorted(t.name for t in SCHEMA.tables.values() if "audited" in t.tags)
PARTITIONED_TABLES = sorted(t.name for t in SCHEMA.tables.values() if t.partition is not None)
ALL_FKS = {fk.name: (table, fk) for table in SCHEMA.tables.values() for fk in table.foreign_keys.values()}

# A sample of foreign keys of each ON DELETE kind, including the composite FKs to the
# partitioned messages table. The expected action is asserted against the model too.
ON_DELETE_SAMPLE: dict[str, str] = {
    "fk_refresh_tokens_users": "cascade",
    "fk_playlist_tracks_playlists": "cascade",
    "fk_message_reactions_messages": "cascade",
    "fk_tracks_files_file_id": "restrict",
    "fk_order_items_products": "restrict",
    "fk_course_enrollments_courses": "restrict",
    "fk_tracks_files_cover_art_file_id": "set null",
    "fk_user_roles_users_verified_by": "set null",
    "fk_transactions_orders": "restrict",
    "fk_orders_users": "restrict",
    "fk_analytics_events_users": "set null",
}

# -- the model ------------------------------------------------------------------------------

def test_schema_has_at_least_100_tables_in_16_modules() -> None:
    assert len(SCHEMA.tables) >= 100
    assert len(SCHEMA.modules) == 16
    assert {t.module for t in SCHEMA.tables.values()} <= set(SCHEMA.modules)


def test_model_drives_the_parametrized_tests() -> None:
    assert "users" in UPDATED_AT_TABLES and "users" in AUDITED_TABLES and "orders" in AUDITED_TABLES
    assert set(PARTITIONED_TABLES) == {"messages", "analytics_events", "audit_logs", "playback_history",
                                       "login_attempts"}
    for name, action in ON_DELETE_SAMPLE.items():
        assert ALL_FKS[name][1].on_delete == action, name


# -- updated_at ---------------------------------------------------------------------------------

@pytest.mark.parametrize("table_name", UPDATED_AT_TABLES)
def test_updated_at_changes_on_update(shared_conn: psycopg.Connection, table_name: str) -> None:
    table = SCHEMA.tables[table_name]
    assert f"trg_{table_name}_updated_at" in table.triggers
    past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    row = RowFactory(shared_conn).insert(table_name, {"updated_at": past})
    assert row["updated_at"] == past
    updated = touch(shared_conn, table, row)
    db_now = shared_conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    assert updated["updated_at"] > past
    assert abs((db_now - updated["updated_at"]).total_seconds()) < 60


# -- follow counters ------------------------------------------------------------------------------

def test_follow_and_unfollow_move_both_counters(conn: psycopg.Connection) -> None:
    factory = RowFactory(conn)
    alice, bob, carol = (factory.insert("users") for _ in range(3))
    for user in (alice, bob, carol):
        factory.insert("user_profiles", {"user_id": user["id"]})

    def counters(user: dict[str, Any]) -> tuple[int, int]:
        row = conn.execute("SELECT follower_count, following_count FROM user_profiles WHERE user_id = %s",
                           (user["id"],)).fetchone()
        assert row is not None
        return row[0], row[1]

    factory.insert("follows", {"follower_id": alice["id"], "following_id": bob["id"]})
    factory.insert("follows", {"follower_id": carol["id"], "following_id": bob["id"]})
    factory.insert("follows", {"follower_id": bob["id"], "following_id": alice["id"]})
    assert counters(alice) == (1, 1)
    assert counters(bob) == (2, 1)
    assert counters(carol) == (0, 1)

    conn.execute("DELETE FROM follows WHERE follower_id = %s AND following_id = %s", (carol["id"], bob["id"]))
    assert counters(bob) == (1, 1)
    assert counters(carol) == (0, 0)

    conn.execute("DELETE FROM follows")
    assert counters(alice) == (0, 0) and counters(bob) == (0, 0)

    with pytest.raises(errors.CheckViolation):
        factory.insert("follows", {"follower_id": alice["id"], "following_id": alice["id"]})


# -- audit trail ----------------------------------------------------------------------------------

@pytest.mark.parametrize("table_name", AUDITED_TABLES)
def test_audit_trigger_records_insert_update_delete(shared_conn: psycopg.Connection, table_name: str) -> None:
    table = SCHEMA.tables[table_name]
    assert f"trg_{table_name}_audit" in table.triggers
    shared_conn.execute("SELECT set_config('veza.actor_id', %s, false)", (str(uuid.uuid4()),))
    row = RowFactory(shared_conn).insert(table_name)
    touch(shared_conn, table, row)
    where, params = key_filter(table, row)
    shared_conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(table_name), where), params)

    entries = shared_conn.execute(
        """SELECT operation, old_data IS NOT NULL, new_data IS NOT NULL, user_id, actor_id
             FROM audit_logs WHERE table_name = %s AND record_id = %s ORDER BY transaction_id""",
        (table_name, row["id"])).fetchall()
    assert [e[0] for e in entries] == ["INSERT", "UPDATE", "DELETE"]
    assert [(e[1], e[2]) for e in entries] == [(False, True), (True, True), (True, False)]
    expected_user = row["id"] if table_name == "users" else row.get("user_id")
    assert all(e[3] == expected_user for e in entries)
    assert all(e[4] is not None for e in entries)


def test_audit_trigger_redacts_secrets(conn: psycopg.Connection) -> None:
    user = RowFactory(conn).insert("users", {"password_hash": "$2b$12$secret"})
    new_data = conn.execute("SELECT new_data FROM audit_logs WHERE record_id = %s", (user["id"],)).fetchone()
    assert new_data is not None
    assert new_data[0]["password_hash"] == "[redacted]"
    assert new_data[0]["email"] == user["email"]


# -- materialized views ---------------------------------------------------------------------------

def test_refresh_materialized_views_concurrently(conn: psycopg.Connection) -> None:
    factory = RowFactory(conn)
    track = factory.insert("tracks", {"like_count": 5})
    for _ in range(3):
        factory.insert("playback_history", {"track_id": track["id"], "completion_percentage": 50})
    quiet = factory.insert("tracks")
    a, b = factory.insert("users"), factory.insert("users")
    factory.insert("follows", {"follower_id": a["id"], "following_id": track["creator_id"]})
    factory.insert("follows", {"follower_id": b["id"], "following_id": track["creator_id"]})
    factory.insert("playlists", {"user_id": track["creator_id"]})

    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY trending_tracks")
    conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY user_statistics")

    trending = conn.execute("SELECT id, unique_listeners_7d, play_count_7d, avg_completion FROM trending_tracks "
                            "ORDER BY trending_score DESC").fetchall()
    assert trending[0] == (track["id"], 3, 3, 50)
    assert (quiet["id"], 0, 0, 0) in trending  # no plays: 0 plays and score not NULL
    stats = conn.execute("SELECT track_count, playlist_count, follower_count, following_count, total_plays "
                         "FROM user_statistics WHERE user_id = %s", (track["creator_id"],)).fetchone()
    assert stats == (1, 1, 2, 0, 0)


# -- partitioning ---------------------------------------------------------------------------------

@pytest.mark.parametrize("table_name", PARTITIONED_TABLES)
def test_rows_land_in_the_partition_of_their_month(shared_conn: psycopg.Connection, table_name: str) -> None:
    table = SCHEMA.tables[table_name]
    assert table.partition is not None and table.partition.interval == "month"
    column = table.partition.columns[0]
    # Partitions are cut on UTC month boundaries (veza_ensure_partitions runs with timezone UTC).
    mid_month, suffix = shared_conn.execute(
        "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '14 days 12 hours') AT TIME ZONE 'UTC',"
        " to_char(now() AT TIME ZONE 'UTC', 'YYYYMM')").fetchone()  # type: ignore[misc]
    factory = RowFactory(shared_conn)
    current = factory.insert(table_name, {column: mid_month})
    ancient = factory.insert(table_name, {column: dt.datetime(2000, 1, 15, tzinfo=dt.UTC)})

    def partition_of(row: dict[str, Any]) -> str:
        where, params = key_filter(table, row)
        found = shared_conn.execute(sql.SQL("SELECT tableoid::regclass::text FROM {} WHERE {}").format(
            sql.Identifier(table_name), where), params).fetchone()
        assert found is not None
        return str(found[0])

    assert partition_of(current) == f"{table_name}_p{suffix}"
    assert partition_of(ancient) == f"{table_name}_default"


def test_composite_fks_to_partitioned_messages(conn: psycopg.Connection) -> None:
    factory = RowFactory(conn)
    parent = factory.insert("messages")
    reply = factory.insert("messages", {"room_id": parent["room_id"], "reply_to_id": parent["id"],
                                        "reply_to_created_at": parent["created_at"]})
    factory.insert("message_reactions", {"message_id": parent["id"], "message_created_at": parent["created_at"]})
    with pytest.raises(errors.ForeignKeyViolation):
        factory.insert("message_reactions", {"message_id": parent["id"],
                                             "message_created_at": dt.datetime(2000, 1, 1, tzinfo=dt.UTC)})
    with pytest.raises(errors.CheckViolation):
        factory.insert("messages", {"reply_to_id": parent["id"]})
    conn.execute("DELETE FROM messages WHERE id = %s", (parent["id"],))
    # Replies are a plain reference (docs/seed-deviations.md): they keep naming a deleted or archived parent.
    assert conn.execute("SELECT reply_to_id, reply_to_created_at FROM messages WHERE id = %s",
                        (reply["id"],)).fetchone() == (parent["id"], parent["created_at"])
    assert conn.execute("SELECT count(*) FROM message_reactions WHERE message_id = %s",
                        (parent["id"],)).fetchone() == (0,)


# -- ON DELETE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fk_name", sorted(ON_DELETE_SAMPLE))
def test_on_delete_behaves_as_declared(shared_conn: psycopg.Connection, fk_name: str) -> None:
    table, fk = ALL_FKS[fk_name]
    child = RowFactory(shared_conn).insert(table.name, fill_fks=(fk.name,))
    parent_key = [child[c] for c in fk.columns]
    assert all(v is not None for v in parent_key)
    delete_parent = sql.SQL("DELETE FROM {} WHERE {}").format(
        sql.Identifier(fk.ref_table),
        sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in fk.ref_columns))
    where, params = key_filter(table, child)
    select_child = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in fk.columns), sql.Identifier(table.name), where)

    if fk.on_delete in ("restrict", "no action"):
        # RESTRICT fails at once (SQLSTATE 23001), NO ACTION at the end of the statement (23503).
        # (PostgreSQL 15 reports both as foreign_key_violation.)
        expected = (errors.RestrictViolation, errors.ForeignKeyViolation)
        with pytest.raises(expected if fk.on_delete == "restrict" else errors.ForeignKeyViolation):
            shared_conn.execute(delete_parent, parent_key)
        assert shared_conn.execute(select_child, params).fetchone() == tuple(parent_key)
        return
    shared_conn.execute(delete_parent, parent_key)
    remaining = shared_conn.execute(select_child, params).fetchone()
    if fk.on_delete == "cascade":
        assert remaining is None
    elif fk.on_delete == "set null":
        assert remaining == tuple(None for _ in fk.columns)
    else:  # pragma: no cover - not in the sample
        pytest.fail(f"unexpected action {fk.on_delete}")
