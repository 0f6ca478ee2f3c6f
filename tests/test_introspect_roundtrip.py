"""The real Veza schema: YAML -> rendered SQL -> PostgreSQL -> introspection -> the same model.

Expression texts come back in PostgreSQL's spelling (``'user'::user_role`` for ``'user'``),
so they are compared through :func:`veza_schema.sql.normalize.normalize_schema`, the offline
comparison ``diff --offline`` relies on; everything else must come back exactly.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.fixtures.servers import missing_extensions, require_extensions, shipped_extensions
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
    require_extensions(database_each_server.server, *shipped_extensions())
    loaded, introspected, stats = applied(database_each_server)
    assert stats.warnings == []
    assert stats.queries == 15
    assert mismatches(normalize_schema(loaded), normalize_schema(introspected)) == []


def _without(schema: Schema, extensions: set[str], database: TestDatabase) -> Schema:
    """``schema`` less ``extensions`` and the indexes whose operator classes only they provide."""
    opclasses = {name for (name,) in database.query("SELECT opcname FROM pg_opclass")}
    tables = {key: replace(table, indexes={name: index for name, index in table.indexes.items()
                                           if all(e.opclass in opclasses for e in index.elements if e.opclass)})
              for key, table in schema.tables.items()}
    kept = {name: extension for name, extension in schema.extensions.items() if name not in extensions}
    return replace(schema, extensions=kept, tables=tables)


def test_veza_schema_less_the_extensions_a_server_lacks_round_trips_there(database_each_server: TestDatabase) -> None:
    """A server without the schema's extensions (the pgserver wheel's PostgreSQL 16 has no pg_trgm)
    still reads every other object of it back: its catalog queries run on that major too."""
    missing = missing_extensions(database_each_server.server, *shipped_extensions())
    if not missing:
        pytest.skip("this server has every extension of the shipped schema: the whole schema round-trips there")
    loaded = _without(load_schema(SCHEMA_DIR), set(missing), database_each_server)
    assert sum(len(t.indexes) for t in loaded.tables.values()) > 200 and loaded.functions and loaded.views
    database_each_server.execute(sections_to_sql(create_schema_sections(loaded)))
    stats = IntrospectionStats()
    with database_each_server.connect() as conn:
        introspected = introspect(conn, stats=stats)
    assert stats.warnings == []
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
