"""Seed rule 6 in the loader itself: a column is NOT NULL unless the YAML says ``nullable: true``."""

from __future__ import annotations

from pathlib import Path

import pytest

from veza_schema.errors import SchemaLoadError
from veza_schema.yaml.loader import load_schema

YAML = """\
module: app
tables:
  things:
    columns:
      id:        {type: uuid, primary_key: true}
      short:     text
      long_form: {type: text}
      declared:  {type: text, nullable: false}
      optional:  {type: text, nullable: true}
      defaulted: {type: integer, default: 0}
      referring: {type: uuid, references: things.id, on_delete: cascade}
"""


def nullability(tmp_path: Path, text: str = YAML) -> dict[str, bool]:
    (tmp_path / "app.yaml").write_text(text)
    table = load_schema(tmp_path).tables["things"]
    return {column.name: column.nullable for column in table.columns}


def test_a_column_in_short_form_is_not_null(tmp_path: Path) -> None:
    assert nullability(tmp_path)["short"] is False


def test_a_column_without_the_nullable_key_is_not_null(tmp_path: Path) -> None:
    found = nullability(tmp_path)
    assert (found["long_form"], found["defaulted"], found["referring"], found["id"]) == (False, False, False, False)


def test_nullable_false_is_not_null_and_nullable_true_is_nullable(tmp_path: Path) -> None:
    found = nullability(tmp_path)
    assert (found["declared"], found["optional"]) == (False, True)


def test_a_nullable_primary_key_column_is_refused_where_it_is_declared(tmp_path: Path) -> None:
    text = YAML.replace("{type: uuid, primary_key: true}", "{type: uuid, primary_key: true, nullable: true}")
    with pytest.raises(SchemaLoadError, match=r"app\.yaml:5:\d+: column things\.id: a primary key column cannot "
                                              r"be nullable"):
        nullability(tmp_path, text)
