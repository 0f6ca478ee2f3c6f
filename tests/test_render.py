"""Rendering is deterministic and quotes identifiers exactly when PostgreSQL needs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, run_cli
from veza_schema.migrations.generate import FileSettings, initial_migration
from veza_schema.model import Column, Table
from veza_schema.sql.render import create_table, index_element, order_tables
from veza_schema.sql.text import ident
from veza_schema.yaml.loader import load_schema

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


def test_same_yaml_renders_byte_identical_sql() -> None:
    first = initial_migration(load_schema(SAMPLE), "1_initial", FileSettings())
    second = initial_migration(load_schema(SAMPLE), "1_initial", FileSettings())
    assert first == second


def test_rendering_does_not_depend_on_declaration_order(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    for file in SAMPLE.glob("*.yaml"):
        document = yaml.safe_load(file.read_text())
        for section in ("tables", "views", "enums", "functions"):
            if section in document:
                document[section] = dict(reversed(list(document[section].items())))
        document = dict(reversed(list(document.items())))
        (schema / file.name).write_text(yaml.safe_dump(document, sort_keys=False))
    reference = initial_migration(load_schema(SAMPLE), "1_x", FileSettings())
    shuffled = initial_migration(load_schema(schema), "1_x", FileSettings())
    assert list(load_schema(schema).tables) != list(load_schema(SAMPLE).tables)
    assert reference == shuffled


@pytest.mark.parametrize(("name", "expected"), [
    ("users", "users"), ("user", '"user"'), ("order", '"order"'), ("position", "position"),
    ("CamelCase", '"CamelCase"'), ("has space", '"has space"'), ('quo"te', '"quo""te"'), ("_x1$", "_x1$"),
])
def test_identifiers_are_quoted_exactly_when_needed(name: str, expected: str) -> None:
    assert ident(name) == expected


def test_reserved_table_and_column_names_are_quoted_in_ddl() -> None:
    table = Table("user", (Column("order", "integer"),))
    assert create_table(table) == 'CREATE TABLE "user" (\n    "order" integer NOT NULL\n);\n'


def test_tables_are_created_in_foreign_key_order_and_cycles_are_deferred() -> None:
    order = order_tables(dict(load_schema(SAMPLE).tables))
    assert order.tables.index("accounts") < order.tables.index("events")
    assert [fk.name for fk in order.deferred_fks] == ["fk_accounts_teams"]


def test_generate_twice_writes_nothing_the_second_time(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    first = run_cli("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(migrations))
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in migrations.iterdir()}
    second = run_cli("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(migrations))
    assert second.exit_code == 0, second.output
    assert "Nothing to generate" in second.stdout
    assert {p.name: p.read_bytes() for p in migrations.iterdir()} == before


def test_committed_migrations_match_the_committed_schema(tmp_path: Path) -> None:
    """`veza-schema generate` on a clean checkout changes nothing (CI catches a forgotten generate).

    It runs on a copy of migrations/: when it fails, the files it writes must not land in the checkout."""
    migrations = tmp_path / "migrations"
    shutil.copytree(REPO_ROOT / "migrations", migrations)
    result = run_cli("generate", "--schema-dir", str(REPO_ROOT / "schema"), "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    assert "Nothing to generate" in result.stdout
    assert {p.name for p in migrations.iterdir()} == {p.name for p in (REPO_ROOT / "migrations").iterdir()}


@pytest.mark.parametrize(("expression", "expected"), [
    ("lower(tag)", "(lower(tag))"),
    ("(a + b)", "(a + b)"),
    ("(a) + (b)", "((a) + (b))"),
    ("(')')", "(')')"),
])
def test_index_expressions_are_parenthesized_as_a_whole(expression: str, expected: str) -> None:
    assert index_element(expression, False, False, None, None) == expected
