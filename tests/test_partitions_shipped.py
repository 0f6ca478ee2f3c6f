"""The Veza schema's five partitioned tables through `veza-schema partitions`, on PostgreSQL 15.

The committed migrations (initial schema, then the retention redesign of issue 12) are
applied as a DBA would; rows come from the model (``RowFactory``), so every NOT NULL column
and foreign key is satisfied the way the application would.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.helpers import REPO_ROOT, Server, TestDatabase, fresh_database, invoke
from tests.partition_scenarios import month, suffix
from tests.test_shipped_schema_behaviour import SCHEMA, RowFactory
from veza_schema.managed import ARCHIVE_SCHEMA

PARTITIONED = sorted(name for name, table in SCHEMA.tables.items() if table.partition is not None)


@pytest.fixture
def veza(pg15_server: Server) -> Iterator[TestDatabase]:
    for database in fresh_database(pg15_server):
        result = invoke("apply", "--dsn", database.dsn, "--migrations-dir", str(REPO_ROOT / "migrations"))
        assert result.exit_code == 0, result.output
        yield database


def _partitions(conn: psycopg.Connection, *args: str) -> Any:
    return invoke("partitions", "--dsn", conn.info.dsn, "--schema-dir", str(REPO_ROOT / "schema"), *args)


def _count(conn: psycopg.Connection, relation: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(relation))).fetchone()
    return int(row[0]) if row else 0


def _key(table: str) -> str:
    spec = SCHEMA.tables[table].partition
    assert spec is not None
    return spec.columns[0]


def test_the_five_tables_each_retain_as_decided() -> None:
    retention = {name: (str(SCHEMA.tables[name].partition.retention),  # type: ignore[union-attr]
                        SCHEMA.tables[name].partition.retention_keep_table)  # type: ignore[union-attr]
                 for name in PARTITIONED}
    assert retention == {
        "analytics_events": ("13 months", False),
        "audit_logs": ("24 months", True),
        "login_attempts": ("3 months", False),
        "messages": ("24 months", True),
        "playback_history": ("12 months", True),
    }


def test_rows_five_months_ahead_get_their_partitions_and_leave_the_defaults_empty(veza: TestDatabase) -> None:
    with veza.connect() as conn:
        factory = RowFactory(conn)
        for table in PARTITIONED:
            for day in (1, 15, 28):
                factory.insert(table, {_key(table): month(5, day)})
        message = factory.insert("messages", {"created_at": month(5)})
        factory.insert("message_reactions", {"message_id": message["id"], "message_created_at": message["created_at"]})
        before = {t: _count(conn, t) for t in (*PARTITIONED, "message_reactions")}
        assert all(_count(conn, f"ONLY {t}_default") for t in PARTITIONED)

        result = _partitions(conn, "--premake", "6")

        assert result.exit_code == 0, result.output
        for table in PARTITIONED:
            assert f"+ created {table}{suffix(5)}" in result.stdout
            assert f"+ created {table}{suffix(6)}" in result.stdout
            assert _count(conn, f"ONLY {table}_default") == 0, table
        assert {t: _count(conn, t) for t in before} == before
        assert _count(conn, f"messages{suffix(5)}") == 4


def test_a_month_of_messages_with_reactions_and_replies_expires_into_the_archive(veza: TestDatabase) -> None:
    with veza.connect() as conn:
        assert _partitions(conn, "--as-of", f"{month(-1, 1):%Y-%m-%d}").exit_code == 0
        factory = RowFactory(conn)
        room = factory.insert("rooms")["id"]

        def message(offset: int, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
            values: dict[str, Any] = {"room_id": room, "created_at": month(offset)}
            if reply_to:
                values |= {"reply_to_id": reply_to["id"], "reply_to_created_at": reply_to["created_at"]}
            return factory.insert("messages", values)

        older = message(-1)
        current = message(0, reply_to=older)  # a reply out of the month
        message(0, reply_to=current)  # within it
        later = message(1, reply_to=current)  # into it
        for row in (older, current, later):
            factory.insert("message_reactions", {"message_id": row["id"], "message_created_at": row["created_at"]})
        total = _count(conn, "messages")

        result = _partitions(conn, "--as-of", f"{month(27, 1):%Y-%m-%d}")

        assert result.exit_code == 0, result.output
        assert f"- messages{suffix(0)} [{month(0, 1):%Y-%m-%d}, {month(1, 1):%Y-%m-%d}): detached, moved to " \
               f"{ARCHIVE_SCHEMA}.messages{suffix(0)}" in result.stdout
        assert _count(conn, f"{ARCHIVE_SCHEMA}.messages{suffix(0)}") == 2
        assert _count(conn, f"{ARCHIVE_SCHEMA}.message_reactions{suffix(0)}") == 1
        archived = sum(_count(conn, f"{ARCHIVE_SCHEMA}.messages{suffix(k)}") for k in (-1, 0, 1))
        assert _count(conn, "messages") + archived == total
        row = conn.execute(f"SELECT reply_to_id FROM {ARCHIVE_SCHEMA}.messages{suffix(1)}").fetchone()
        assert row is not None and row[0] == current["id"]
        # Shorter retentions went too: login attempts (3 months) and raw analytics (13) are dropped.
        assert f"- login_attempts{suffix(0)}" in result.stdout and "detached and dropped" in result.stdout
        assert conn.execute("SELECT to_regclass(%s)", (f"{ARCHIVE_SCHEMA}.login_attempts{suffix(0)}",)
                            ).fetchone() == (None,)
        # The live schema shows no drift: archived tables live outside `public`.
        drift = invoke("diff", "--dsn", conn.info.dsn, "--schema-dir", str(REPO_ROOT / "schema"))
        assert drift.exit_code == 0, drift.output
