"""Targeted behaviours of individual rules, beyond the one fail/pass pair per rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from veza_schema.lint import lint
from veza_schema.yaml.loader import load_schema

USERS = """\
  users:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      email: {type: varchar(255)}
      metadata: {type: jsonb}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
"""


def codes(tmp_path: Path, body: str, *, head: str = "") -> list[str]:
    (tmp_path / "m.yaml").write_text(f"module: m\n{head}tables:\n{USERS}{body}")
    return sorted(f.code for f in lint(load_schema(tmp_path)).active)


def posts(index: str, column: str = "user_id: {type: uuid, nullable: true, references: users.id, "
                                      "on_delete: set null}") -> str:
    return f"""\
  posts:
    columns:
      id: {{type: uuid, primary_key: true, default: gen_random_uuid()}}
      {column}
      created_at: {{type: timestamptz, default: now()}}
      updated_at: {{type: timestamptz, default: now()}}
    indexes:
{index}
"""


@pytest.mark.parametrize(
    ("index", "fires"),
    [
        ("      idx_posts_user_id_btree: {columns: [user_id], where: user_id IS NOT NULL}", False),
        ("      idx_posts_user_id_partial: {columns: [user_id], where: created_at > '2020-01-01'}", True),
        ("      idx_posts_user_id_created_at_btree: {columns: [user_id, created_at]}", False),
        ("      idx_posts_created_at_user_id_btree: {columns: [created_at, user_id]}", True),
        ("      idx_posts_user_id_gin: {columns: [user_id], using: gin}", True),
    ],
)
def test_fk_index_rule_imm005(tmp_path: Path, index: str, fires: bool) -> None:
    assert ("IMM005" in codes(tmp_path, posts(index))) is fires


def test_partitioned_table_pk_may_add_partition_key(tmp_path: Path) -> None:
    body = """\
  events:
    columns:
      id: {type: uuid, default: gen_random_uuid()}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
    primary_key: [id, created_at]
    partition_by: {range: [created_at]}
"""
    assert codes(tmp_path, body) == []


def test_index_name_abbreviations_and_false_claims(tmp_path: Path) -> None:
    body = posts("      idx_posts_user_created_btree: {columns: [user_id, created_at]}\n"
                 "      idx_posts_email_btree: {columns: [created_at]}",
                 column="user_id: {type: uuid, references: users.id, on_delete: cascade}\n      email: {type: text}")
    found = codes(tmp_path, body)
    assert found.count("NAM007") == 1  # email claimed but not covered; user -> user_id is fine


def test_redundant_prefix_and_unique_copy(tmp_path: Path) -> None:
    body = posts("      idx_posts_user_id_btree: {columns: [user_id]}\n"
                 "      idx_posts_user_id_created_at_btree: {columns: [user_id, created_at desc]}\n"
                 "      idx_posts_id_btree: {columns: [id]}",
                 column="user_id: {type: uuid, references: users.id, on_delete: cascade}")
    assert codes(tmp_path, body).count("INT007") == 2


def test_own_stable_function_in_index_expression(tmp_path: Path) -> None:
    head = """functions:
  user_label:
    returns: text
    language: sql
    volatility: stable
    arguments: "e text"
    body: SELECT lower(e)
"""
    body = posts("      idx_posts_title_btree: {expressions: [user_label(title)]}",
                 column="title: {type: text}")
    assert "PG009" in codes(tmp_path, body, head=head)


def test_jsonb_filtered_in_view_needs_gin(tmp_path: Path) -> None:
    view = """views:
  flagged_users:
    query: |
      SELECT u.id FROM users u WHERE u.metadata @> '{"flagged": true}'
"""
    (tmp_path / "m.yaml").write_text(f"module: m\ntables:\n{USERS}{view}")
    report = lint(load_schema(tmp_path))
    assert [f.code for f in report.active] == ["IMM008"]
    assert report.active[0].object == "views.flagged_users"


def test_default_referencing_a_column_and_enum_default_cast(tmp_path: Path) -> None:
    body = """\
  notes:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      kind: {type: varchar(10), default: personal}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: CURRENT_TIMESTAMP}
"""
    assert codes(tmp_path, body) == ["PG008"]
