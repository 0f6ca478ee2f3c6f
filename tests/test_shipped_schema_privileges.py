"""The application's role in the Veza schema (RFC-0108): what it may do, and the audit log it may not forge.

Rights are declared in YAML (``grants:``); the behaviour is checked by acting as ``veza_app`` on real
rows (PostgreSQL 18 and 15, through the shared template copies).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import errors

from tests.factories import RowFactory, shipped_schema
from veza_schema.model import Schema

SCHEMA: Schema = shipped_schema()
APP = "veza_app"
FINANCIAL = sorted(t.name for t in SCHEMA.tables.values() if "financial" in t.tags)


@contextmanager
def acting_as_the_application(conn: psycopg.Connection) -> Iterator[None]:
    """SET ROLE for the block, in a transaction rolled back afterwards (the shared copy stays clean)."""
    with conn.transaction(force_rollback=True):
        conn.execute("SET LOCAL ROLE veza_app")
        yield


def test_the_application_role_is_declared_in_yaml() -> None:
    assert APP in SCHEMA.roles
    assert SCHEMA.roles[APP].login


def test_every_table_grants_the_application_role_some_rights() -> None:
    missing = sorted(t.name for t in SCHEMA.tables.values() if APP not in dict(t.grants))
    assert missing == []


def test_the_application_role_cannot_insert_into_the_audit_log(shared_conn: psycopg.Connection) -> None:
    with pytest.raises(errors.InsufficientPrivilege), acting_as_the_application(shared_conn):
        shared_conn.execute("INSERT INTO audit_logs (table_name, operation) VALUES ('users', 'INSERT')")


@pytest.mark.parametrize("statement", ["UPDATE audit_logs SET table_name = 'x'", "DELETE FROM audit_logs",
                                       "TRUNCATE audit_logs"])
def test_the_application_role_cannot_rewrite_the_audit_log(shared_conn: psycopg.Connection, statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege), acting_as_the_application(shared_conn):
        shared_conn.execute(statement)


def test_a_write_by_the_application_role_is_audited_by_the_trigger(shared_conn: psycopg.Connection) -> None:
    with acting_as_the_application(shared_conn):
        user = RowFactory(shared_conn, SCHEMA).insert("users")
        row = shared_conn.execute("SELECT count(*) FROM audit_logs WHERE table_name = 'users' AND record_id = %s",
                                  (user["id"],)).fetchone()
    assert row == (1,)


@pytest.mark.parametrize("table_name", FINANCIAL)
def test_the_application_role_cannot_delete_money_records(shared_conn: psycopg.Connection, table_name: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege), acting_as_the_application(shared_conn):
        shared_conn.execute(f"DELETE FROM {table_name} WHERE false")  # noqa: S608 - a name of the model


@pytest.mark.parametrize("function_name", ["audit_trigger", "erase_user"])
def test_functions_writing_the_audit_log_run_as_their_owner_with_a_pinned_search_path(
        shared_conn: psycopg.Connection, function_name: str) -> None:
    row = shared_conn.execute("SELECT prosecdef, proconfig FROM pg_proc WHERE proname = %s",
                              (function_name,)).fetchone()
    assert row is not None
    definer, config = row
    assert definer is True
    assert any(setting.startswith("search_path=pg_catalog") and setting.endswith("pg_temp")
               for setting in config or [])


def test_the_application_role_may_erase_a_user(shared_conn: psycopg.Connection) -> None:
    with acting_as_the_application(shared_conn):
        user = RowFactory(shared_conn, SCHEMA).insert("users")
        shared_conn.execute("SELECT erase_user(%s)", (user["id"],))
        row = shared_conn.execute("SELECT email, deleted_at IS NOT NULL FROM users WHERE id = %s",
                                  (user["id"],)).fetchone()
    assert row == (f"erased-{user['id']}@erased.invalid", True)
