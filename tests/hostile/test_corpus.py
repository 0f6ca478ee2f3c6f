"""Every payload in every text field is refused at load (at the field's line) or inert.

Inert means: the model lints, the generated migrations (initial, and the change into and out of
the payload) hold exactly the statements the same schema with a neutral value gets, and pass
``apply``'s own check of generated files. ``test_corpus_apply.py`` then runs the inert ones on
PostgreSQL 15 and 18 beside a canary table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import invoke
from tests.hostile.corpus import ALL_PAYLOADS, FIELDS, Field
from veza_schema.diff.changes import Change
from veza_schema.diff.plan import UnsafeChangeError
from veza_schema.errors import SchemaLoadError
from veza_schema.lint import lint
from veza_schema.migrations.generate import FileSettings, initial_migration, render_file
from veza_schema.migrations.incremental import plan_incremental
from veza_schema.migrations.statement_check import check_file
from veza_schema.model import Schema
from veza_schema.sql.routes import Route
from veza_schema.sql.split import split_statements
from veza_schema.yaml.loader import FIELD_ROUTES, load_schema

IDS = [f"{kind}.{key}" for kind, key in FIELDS]


def load(tmp_path: Path, text: str) -> Schema:
    directory = tmp_path / "schema"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.yaml").write_text(text)
    return load_schema(directory)


def generated(before: Schema | None, after: Schema) -> list[str]:
    """Every file `generate` writes for going from ``before`` (None: nothing) to ``after``, up and down."""
    if before is None:
        return list(initial_migration(after, "1_initial", FileSettings()))
    changes: list[Change]
    try:
        changes, plan = plan_incremental(before, after, allow_forbidden=True)
    except UnsafeChangeError:  # no in-place form (a new generated expression): generate refuses, writes nothing
        return []
    return [render_file(planned, "2_change", direction, FileSettings(), ["RFC-0001"])
            for planned in plan.files for direction in ("up", "down")]


def kinds(files: list[str]) -> list[list[str]]:
    """Each file's statements with literals, names and expressions left out: first words only."""
    return [[_first_words(s.text) for s in split_statements(text)] for text in files]


def _first_words(statement: str) -> str:
    """``CREATE TABLE``; a DO block is ``DO`` whatever its dollar-quote tag (chosen to not occur in its body)."""
    words = statement.split()[:2]
    return "DO" if words[:1] == ["DO"] else " ".join(words).upper()


@pytest.mark.parametrize("field", list(FIELDS), ids=IDS)
def test_every_payload_is_refused_at_the_fields_line_or_inert(tmp_path: Path, field: tuple[str, str]) -> None:
    spot: Field = FIELDS[field]
    neutral = load(tmp_path, spot.yaml(spot.neutral))  # the field is where the corpus says: its neutral value loads
    neutral_initial = generated(None, neutral)
    refused = 0
    for payload_class, payload in ALL_PAYLOADS:
        try:
            schema = load(tmp_path, spot.yaml(payload))
        except SchemaLoadError as error:
            refused += 1
            lines = [problem.pos.line for problem in error.problems if problem.pos]
            assert spot.line() in lines, f"{payload_class} {payload!r}: refused elsewhere: {error}"
            continue
        lint(schema)
        initial = generated(None, schema)
        assert kinds(initial) == kinds(neutral_initial), f"{payload_class} {payload!r} changed the statements"
        for files in (initial, generated(neutral, schema), generated(schema, neutral)):
            for text in files:
                assert check_file(text, Path("generated.sql")) == [], f"{payload_class} {payload!r}"
        if FIELD_ROUTES[field] is Route.FREE_TEXT:  # never SQL: not one byte of the migration changes
            assert initial == neutral_initial, f"{payload_class} {payload!r} reached the SQL"
    if FIELD_ROUTES[field] not in (Route.FREE_TEXT, Route.LITERAL, Route.FUNCTION_BODY):
        assert refused, "a SQL or name field accepted every payload"


# One field per route: the commands that read schema/ refuse what the loader refuses, with file:line:col.
SAMPLES = {route: next(field for field, r in FIELD_ROUTES.items() if r is route and field in FIELDS)
           for route in (Route.IDENTIFIER, Route.RFC, Route.TYPE, Route.EXPRESSION, Route.DEFAULT, Route.QUERY,
                         Route.FUNCTION_ARGUMENTS, Route.FUNCTION_RETURNS, Route.OPERATOR_CLASS, Route.KEYWORD)}
COMMANDS = {
    "lint": ("lint", "--schema-dir", "schema"),
    "check": ("check", "--base", "base"),
    "generate": ("generate", "--schema-dir", "schema", "--migrations-dir", "migrations"),
    "diff": ("diff", "--schema-dir", "schema", "--dsn", "postgresql://nobody@127.0.0.1:1/none"),
    "docs": ("docs", "--schema-dir", "schema", "--out", "pages"),
}


@pytest.mark.parametrize("route", list(SAMPLES), ids=lambda r: r.name)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_refuses_what_the_loader_refuses(tmp_path: Path, route: Route, command: str) -> None:
    spot = FIELDS[SAMPLES[route]]
    for directory, value in (("base", spot.neutral), ("schema", "x); DROP TABLE canary; --")):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "app.yaml").write_text(spot.yaml(value))
    result = invoke(*COMMANDS[command], cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert f"schema/app.yaml:{spot.line()}:" in result.stderr
    assert not (tmp_path / "migrations").exists() and not (tmp_path / "pages").exists()
