"""The loader's documented defaults and normalizations (docs/yaml-format.md), one behaviour each."""

from __future__ import annotations

from pathlib import Path

from veza_schema.model import Schema
from veza_schema.yaml.loader import load_schema


def loaded(tmp_path: Path, tables: str) -> Schema:
    (tmp_path / "app.yaml").write_text("module: app\ntables:\n" + tables)
    return load_schema(tmp_path)


EVENTS = """\
  events:
    columns:
      id:          {type: bigint}
      occurred_at: {type: timestamptz}
    primary_key: [id, occurred_at]
    partition_by: {range: [occurred_at]}
"""


def test_partition_by_defaults_to_monthly_three_ahead_with_a_default_partition(tmp_path: Path) -> None:
    spec = loaded(tmp_path, EVENTS).tables["events"].partition
    assert spec is not None
    assert (spec.strategy, spec.columns, spec.interval, spec.premake, spec.default_partition) == \
        ("range", ("occurred_at",), "month", 3, True)


INDEXED = """\
  tracks:
    columns:
      id:    {type: bigint, primary_key: true}
      title: {type: text}
    indexes:
      idx_a: {columns: [title desc nulls first]}
      idx_b: {columns: [title nulls last]}
      idx_c: {columns: [title desc nulls last]}
      idx_d: {columns: [title nulls first]}
      idx_e: {columns: [title], where: "  title <> ''  "}
"""


def test_nulls_order_is_kept_only_where_it_differs_from_postgresqls_default(tmp_path: Path) -> None:
    indexes = loaded(tmp_path, INDEXED).tables["tracks"].indexes
    found = {name: (index.elements[0].descending, index.elements[0].nulls) for name, index in indexes.items()}
    assert found["idx_a"] == (True, None) and found["idx_b"] == (False, None)
    assert found["idx_c"] == (True, "last") and found["idx_d"] == (False, "first")


def test_a_partial_index_predicate_is_stored_without_surrounding_blanks(tmp_path: Path) -> None:
    assert loaded(tmp_path, INDEXED).tables["tracks"].indexes["idx_e"].where == "title <> ''"
