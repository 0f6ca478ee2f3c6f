"""The real Veza schema: YAML -> rendered SQL -> PostgreSQL -> introspection -> the same model.

Expression texts come back in PostgreSQL's spelling (``'user'::user_role`` for ``'user'``),
so they are compared through :func:`veza_schema.sql.normalize.normalize_schema`, the offline
comparison ``diff --offline`` relies on; everything else must come back exactly.
"""

from __future__ import annotations

import pytest

from tests.helpers import REPO_ROOT, TestDatabase, mismatches
from veza_schema.db.introspect import IntrospectionStats, introspect
from veza_schema.model import Schema
from veza_schema.sql.normalize import normalize_schema
from veza_schema.sql.render import create_schema_sections, sections_to_sql
from veza_schema.yaml.loader import load_schema

SCHEMA_DIR = REPO_ROOT / "schema"


def applied(database: TestDatabase) -> tuple[Schema, Schema, IntrospectionStats]:
    """(loaded model, introspected model, stats) after applying the rendered schema."""
    loaded = load_schema(SCHEMA_DIR)
    database.execute(sections_to_sql(create_schema_sections(loaded)))
    stats = IntrospectionStats()
    with database.connect() as conn:
        return loaded, introspect(conn, stats=stats), stats


@pytest.fixture(scope="module", autouse=True)
def _require_schema() -> None:
    assert any(SCHEMA_DIR.glob("*.yaml")), "schema/ has no modules"


def test_veza_schema_round_trips_through_the_database(database_each_server: TestDatabase) -> None:
    loaded, introspected, stats = applied(database_each_server)
    assert stats.warnings == []
    assert stats.queries == 15
    assert mismatches(normalize_schema(loaded), normalize_schema(introspected)) == []


def test_everything_but_expression_texts_round_trips_exactly(database: TestDatabase) -> None:
    """Names, types, nullability, keys, actions, partitioning, enums... need no normalization."""
    loaded, introspected, _ = applied(database)
    raw = mismatches(loaded, introspected)
    expression_fields = (".default", ".generated", ".expression", ".where", ".when", ".query")
    assert [m for m in raw if not m.split(":", 1)[0].endswith(expression_fields)] == []


def test_function_bodies_round_trip_byte_for_byte(database: TestDatabase) -> None:
    """The renderer dollar-quotes bodies verbatim, so prosrc is the YAML text."""
    loaded, introspected, _ = applied(database)
    assert {k: f.body for k, f in introspected.functions.items()} == \
        {k: f.body for k, f in loaded.functions.items()}
