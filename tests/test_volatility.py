"""One answer to "is this function volatile?": the built-in table is PostgreSQL's own catalog."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import Server
from veza_schema.db.catalog import function_facts
from veza_schema.model import Function, Schema
from veza_schema.sql import builtin_catalog
from veza_schema.sql.volatility import non_immutable_calls, offline_facts, volatile_calls

REGENERATE = ("regenerate veza_schema/sql/builtin_catalog.py from this server's catalog "
              "(veza_schema.db.catalog.builtin_catalog_source says how)")


def test_built_in_table_matches_the_servers_catalog(pg_server: Server) -> None:
    with psycopg.connect(pg_server.admin_dsn) as conn:
        live = function_facts(conn)
        major = conn.info.server_version // 10000
    table = offline_facts()
    shared = set(live.volatility) & set(table.volatility)
    differing = sorted(n for n in shared if live.volatility[n] != table.volatility[n])
    assert not differing, f"{differing[:10]}: {REGENERATE}"
    if builtin_catalog.SERVER.startswith(f"PostgreSQL {major}."):
        assert set(live.volatility) == set(table.volatility), REGENERATE


@pytest.mark.parametrize(("expression", "volatile"), [
    ("gen_random_uuid()", ["gen_random_uuid"]),
    ("now()", []),
    ("CURRENT_TIMESTAMP", []),
    ("lower('A')", []),
    ("(random() * 10)::int", ["random"]),
    ("nextval('s'::regclass)", ["nextval"]),
    ("public.uuid_generate_v4()", ["uuid_generate_v4"]),  # an extension's function: unknown, so volatile
])
def test_volatile_calls(expression: str, volatile: list[str]) -> None:
    assert volatile_calls(expression) == volatile


def test_an_overloaded_name_is_immutable_when_one_overload_is() -> None:
    # to_tsvector(regconfig, text) is IMMUTABLE, to_tsvector(text) STABLE: the index may be valid.
    assert non_immutable_calls("to_tsvector('english', title)") == []
    assert non_immutable_calls("now()") == ["now"]


def test_the_schemas_own_declaration_wins() -> None:
    schema = Schema(functions={"next_code": Function("next_code", "", "text", "sql", "SELECT 'x'",
                                                     volatility="stable")})
    assert volatile_calls("next_code()", schema) == []
    assert volatile_calls("next_code()") == ["next_code"]
