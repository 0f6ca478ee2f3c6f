"""The JSON form of the model: lossless for what PostgreSQL holds, deterministic, strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, TestDatabase
from veza_schema import model_io
from veza_schema.db.introspect import introspect
from veza_schema.model import (
    CheckConstraint,
    Column,
    CompositeAttribute,
    CompositeType,
    Deprecation,
    EnumType,
    Extension,
    ForeignKey,
    Function,
    Index,
    IndexElement,
    Meta,
    PartitionSpec,
    PrimaryKey,
    Schema,
    SourcePos,
    Table,
    Trigger,
    UniqueConstraint,
    View,
    Waiver,
)
from veza_schema.yaml.loader import load_schema

POS = SourcePos("schema/core.yaml", 3, 5)


def full_schema() -> Schema:
    """One of everything, with YAML-only metadata that must not reach the JSON."""
    users = Table(
        "users",
        (
            Column("id", "uuid", default="gen_random_uuid()", meta=Meta(pos=POS)),
            Column("role", "user_role", default="'user'"),
            Column("seq", "bigint", identity="always"),
            Column("email", "character varying(255)", comment="Login"),
            Column("email_lower", "text", nullable=True, generated="lower((email)::text)"),
        ),
        primary_key=PrimaryKey("pk_users", ("id",)),
        uniques={"uq_users_email": UniqueConstraint("uq_users_email", ("email",))},
        checks={"chk_users_email_format": CheckConstraint("chk_users_email_format", "email ~* '@'")},
        foreign_keys={
            "fk_users_users": ForeignKey(
                "fk_users_users", ("id",), "users", ("id",), on_delete="set null", deferrable=True,
                initially_deferred=True, on_delete_explicit=False,
            )
        },
        indexes={
            "idx_users_email_btree": Index(
                "idx_users_email_btree", "users",
                (IndexElement("email", descending=True, nulls="last", opclass="text_pattern_ops"),
                 IndexElement("lower(email)", is_column=False)),
                unique=True, where="role <> 'admin'", include=("role",),
            )
        },
        triggers={
            "trg_users_updated_at": Trigger("trg_users_updated_at", "users", "set_updated_at", "before",
                                            ("insert", "update"), when="NEW.* IS DISTINCT FROM OLD.*",
                                            template="updated_at")
        },
        comment="Main users table",
        module="users",
        tags=frozenset({"user_facing", "audited"}),
        meta=Meta(pos=POS, waivers=(Waiver("IMM002", "because"),), rfc="RFC-1"),
    )
    events = Table(
        "events",
        (Column("created_at", "timestamp with time zone"),),
        partition=PartitionSpec("range", ("created_at",), "week", premake=5, default_partition=False),
        module="streaming",
    )
    return Schema(
        tables={"users": users, "events": events},
        enums={"user_role": EnumType("user_role", ("user", "admin"), comment="Roles", module="users")},
        composite_types={
            "money_amount": CompositeType(
                "money_amount",
                (
                    CompositeAttribute("amount", "numeric(10,2)"),
                    CompositeAttribute("currency", "character(3)"),
                ),
                module="core",
            )
        },
        functions={
            "set_updated_at": Function("set_updated_at", "", "trigger", "plpgsql",
                                       "BEGIN\n  RETURN NEW;\nEND;\n", security_definer=True, module="core")
        },
        views={
            "trending": View(
                "trending", "SELECT id FROM users", materialized=True,
                indexes={"idx_trending_id_unique": Index("idx_trending_id_unique", "trending",
                                                         (IndexElement("id"),), unique=True)},
                depends_on=("users",), module="streaming",
            )
        },
        extensions={"pg_trgm": Extension("pg_trgm", module="core")},
    )


def test_round_trip_gives_an_equal_schema() -> None:
    schema = full_schema()
    assert model_io.schema_from_dict(model_io.schema_to_dict(schema)) == schema
    assert model_io.loads(model_io.dumps(schema)) == schema


def test_round_trip_keeps_module_but_drops_yaml_only_metadata() -> None:
    back = model_io.loads(model_io.dumps(full_schema()))
    users = back.tables["users"]
    assert users.module == "users"
    assert back.enums["user_role"].module == "users"
    assert back.views["trending"].module == "streaming"
    assert users.tags == frozenset()
    assert users.meta.pos is None
    assert users.triggers["trg_users_updated_at"].template is None
    assert back.views["trending"].depends_on == ()


def test_json_has_only_database_fields_plus_module() -> None:
    data = model_io.schema_to_dict(full_schema())
    users = data["tables"]["users"]
    assert set(users) == {"name", "columns", "primary_key", "uniques", "checks", "foreign_keys", "indexes",
                          "triggers", "partition", "comment", "module", "exclusions", "unlogged", "row_security",
                          "force_row_security", "policies", "grants"}
    assert set(data["tables"]["users"]["foreign_keys"]["fk_users_users"]) == {
        "name", "columns", "ref_table", "ref_columns", "on_delete", "on_update", "deferrable",
        "initially_deferred",
    }
    assert data["format"] == model_io.FORMAT_VERSION
    assert "modules" not in data


def test_dumps_is_deterministic_whatever_the_insertion_order() -> None:
    schema = full_schema()
    reordered = Schema(
        tables=dict(reversed(list(schema.tables.items()))),
        enums=schema.enums,
        composite_types=schema.composite_types,
        functions=schema.functions,
        views=schema.views,
        extensions=schema.extensions,
    )
    text = model_io.dumps(schema)
    assert model_io.dumps(reordered) == text
    assert text.endswith("}\n")
    assert json.loads(text)["tables"]["users"]["columns"][0]["name"] == "id"  # tuples keep their order


def test_unknown_format_version_is_refused() -> None:
    data = model_io.schema_to_dict(Schema())
    data["format"] = 99
    with pytest.raises(model_io.ModelFormatError, match="unsupported model format 99"):
        model_io.schema_from_dict(data)


def test_unknown_key_and_bad_literal_are_refused() -> None:
    data = model_io.schema_to_dict(full_schema())
    data["tables"]["users"]["colour"] = "blue"
    with pytest.raises(model_io.ModelFormatError, match=r"schema\.tables\.users: unknown keys \['colour'\]"):
        model_io.schema_from_dict(data)
    data = model_io.schema_to_dict(full_schema())
    data["tables"]["users"]["triggers"]["trg_users_updated_at"]["timing"] = "during"
    with pytest.raises(model_io.ModelFormatError, match="'during' is not one of"):
        model_io.schema_from_dict(data)


@pytest.mark.parametrize(("path", "bad", "message"), [
    (("columns", 0, "nullable"), "yes", "schema.tables.users.columns[0].nullable: expected bool, got str"),
    (("columns", 0, "statistics"), True, "schema.tables.users.columns[0].statistics: expected an integer, got True"),
    (("columns", 0, "default"), 5, "schema.tables.users.columns[0].default: expected str, got int"),
    (("columns",), {}, "schema.tables.users.columns: expected list, got dict"),
    (("columns", 0), [], "schema.tables.users.columns[0]: expected dict, got list"),
])
def test_a_value_of_the_wrong_type_is_refused_with_its_path(path: tuple[str | int, ...], bad: object,
                                                           message: str) -> None:
    data = model_io.schema_to_dict(full_schema())
    parent = data["tables"]["users"]
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = bad
    with pytest.raises(model_io.ModelFormatError) as refused:
        model_io.schema_from_dict(data)
    assert str(refused.value) == message


def test_round_trip_of_an_introspected_database(database: TestDatabase) -> None:
    database.execute("""
        CREATE TYPE mood AS ENUM ('ok', 'meh');
        CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY, m mood DEFAULT 'ok',
                        at timestamptz NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
        CREATE INDEX idx_t_m ON t (m DESC NULLS LAST) WHERE m IS NOT NULL;
    """)
    with database.connect() as conn:
        schema = introspect(conn)
    assert model_io.loads(model_io.dumps(schema)) == schema


def test_round_trip_of_the_veza_schema() -> None:
    schema = load_schema(REPO_ROOT / "schema")
    text = model_io.dumps(schema)
    back = model_io.loads(text)
    assert back == schema
    assert {name: table.module for name, table in back.tables.items()} == \
        {name: table.module for name, table in schema.tables.items()}
    assert model_io.dumps(back) == text


def test_deprecations_survive_the_snapshot(tmp_path: Path) -> None:
    """The change policy reads them from `--base migrations`: a drop needs an earlier deprecation."""
    (tmp_path / "m.yaml").write_text(
        "module: m\ntables:\n  t:\n    deprecated: {since: 2026-11-01, rfc: RFC-0001}\n    columns:\n"
        "      id: {type: uuid, primary_key: true}\n"
        "      old: {type: text, nullable: true, deprecated: {since: '2026-10-01', note: use new}}\n")
    schema = load_schema(tmp_path / "m.yaml")
    back = model_io.loads(model_io.dumps(schema))
    table = back.tables["t"]
    assert table.meta.deprecated == Deprecation("2026-11-01", "RFC-0001", None)
    column = table.column("old")
    assert column is not None and column.meta.deprecated == Deprecation("2026-10-01", None, "use new")
    assert back == schema
