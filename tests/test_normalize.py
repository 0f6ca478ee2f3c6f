"""Offline expression normalization: each form PostgreSQL rewrites compares equal, real changes do not."""

from __future__ import annotations

import pytest

from tests.helpers import TestDatabase
from veza_schema.db.introspect import introspect
from veza_schema.model import CheckConstraint, Column, Schema, Table
from veza_schema.sql.normalize import normalize_expression, normalize_schema


@pytest.mark.parametrize(
    ("yaml_text", "postgres_text"),
    [
        pytest.param("'user'", "'user'::user_role", id="enum-literal-cast"),
        pytest.param("'{}'", "'{}'::jsonb", id="jsonb-literal-cast"),
        pytest.param("'-1'::integer", "-1", id="negative-number"),
        pytest.param("price > 0", "price > 0::numeric", id="numeric-literal-cast"),
        pytest.param("upc ~ '^[0-9]+$'", "upc::text ~ '^[0-9]+$'::text", id="varchar-to-text"),
        pytest.param("role IN ('editor', 'viewer')",
                     "role::text = ANY (ARRAY['editor'::character varying, "
                     "'viewer'::character varying]::text[])",
                     id="in-list"),
        pytest.param("x NOT IN (1, 2)", "x <> ALL (ARRAY[1, 2])", id="not-in-list"),
        pytest.param("now() + interval '10 seconds'", "now() + '00:00:10'::interval", id="interval-seconds"),
        pytest.param("now() + interval '2 weeks'", "now() + '14 days'::interval", id="interval-weeks"),
        pytest.param("CURRENT_TIMESTAMP", "now()", id="current-timestamp"),
        pytest.param("to_tsvector('english', title || ' ' || COALESCE(label, ''))",
                     "to_tsvector('english'::regconfig, (title::text || ' '::text) || "
                     "COALESCE(label, ''::character varying)::text)",
                     id="nested-concatenation"),
        pytest.param("LENGTH(content) >= 1 AND LENGTH(content) <= 100",
                     "length(content) >= 1 AND length(content) <= 100", id="function-case"),
        pytest.param("a != b", "a <> b", id="not-equal"),
        pytest.param("name LIKE 'a%'", "name ~~ 'a%'::text", id="like"),
        pytest.param("n BETWEEN 0 AND 100", "n >= 0 AND n <= 100", id="between"),
        pytest.param("position >= 0", '"position" >= 0', id="quoted-keyword"),
        pytest.param("OLD.* IS DISTINCT FROM NEW.*", "old.* IS DISTINCT FROM new.*", id="identifier-case"),
        pytest.param("SELECT id FROM tracks", "SELECT tracks.id FROM tracks", id="single-table-qualifier"),
        pytest.param("SELECT count(*) * 0.4 AS s FROM t ORDER BY s DESC",
                     "SELECT count(*)::numeric * 0.4 AS s FROM t ORDER BY (count(*)::numeric * 0.4) DESC",
                     id="order-by-alias-and-implicit-numeric"),
    ],
)
def test_postgres_rewrites_compare_equal(yaml_text: str, postgres_text: str) -> None:
    assert normalize_expression(yaml_text) == normalize_expression(postgres_text)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("(a + b) * c", "a + b * c", id="grouping"),
        pytest.param("a - (b - c)", "a - b - c", id="associativity"),
        pytest.param("created_at::date", "created_at", id="meaningful-cast"),
        pytest.param("price::numeric(10,2)", "price", id="parameterized-numeric-cast"),
        pytest.param("status IN ('a', 'b')", "status IN ('a', 'c')", id="in-list-values"),
        pytest.param('"Name" = 1', "name = 1", id="case-sensitive-quoted-name"),
        pytest.param("now() + interval '1 day'", "now() + interval '24 hours'", id="day-is-not-24-hours"),
    ],
)
def test_real_changes_stay_different(before: str, after: str) -> None:
    assert normalize_expression(before) != normalize_expression(after)


def test_unparsable_text_falls_back_to_whitespace_normalization() -> None:
    assert normalize_expression("  this is (not  sql") == "this is (not sql"


def test_normalize_schema_makes_an_applied_table_equal_its_declaration(database: TestDatabase) -> None:
    database.execute("""
        CREATE TYPE user_role AS ENUM ('user', 'admin');
        CREATE TABLE users (role user_role NOT NULL DEFAULT 'user', status varchar(20),
            CONSTRAINT chk_users_status CHECK (status IN ('a', 'b')));
    """)
    declared = Table(
        "users",
        (
            Column("role", "user_role", default="'user'"),
            Column("status", "character varying(20)", nullable=True),
        ),
        checks={"chk_users_status": CheckConstraint("chk_users_status", "status IN ('a', 'b')")},
    )
    with database.connect() as conn:
        tables = introspect(conn).tables
    assert tables["users"] != declared
    assert normalize_schema(Schema(tables=tables)).tables == normalize_schema(
        Schema(tables={"users": declared})).tables
