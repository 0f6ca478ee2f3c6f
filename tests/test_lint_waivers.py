"""Waivers: cover findings on their object (and its children), are themselves checked, and
are counted; --no-waivers shows every finding."""

from __future__ import annotations

from pathlib import Path

from veza_schema.lint import lint
from veza_schema.yaml.loader import load_schema

APPEND_ONLY = """\
module: logs
tables:
  audit_entries:
    waive:
      IMM002: {reason}
    columns:
      id: {{type: uuid, primary_key: true, default: gen_random_uuid()}}
      created_at: {{type: timestamptz, default: now()}}
"""


def write(tmp_path: Path, text: str, name: str = "logs") -> Path:
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_waiver_covers_finding_and_is_counted(tmp_path: Path) -> None:
    report = lint(load_schema(write(tmp_path, APPEND_ONLY.format(reason="append-only log"))))
    assert report.active == ()
    assert [f.code for f in report.waived] == ["IMM002"]
    assert report.waived[0].waiver_reason == "append-only log"
    assert report.exit_code() == 0


def test_no_waivers_lists_waived_findings(tmp_path: Path) -> None:
    report = lint(load_schema(write(tmp_path, APPEND_ONLY.format(reason="append-only log"))), use_waivers=False)
    assert [f.code for f in report.active] == ["IMM002"]
    assert report.active[0].waiver_reason == "append-only log"
    assert report.waived == ()
    assert report.exit_code() == 1


def test_waiver_without_reason_is_a_finding(tmp_path: Path) -> None:
    report = lint(load_schema(write(tmp_path, APPEND_ONLY.format(reason='""'))))
    lnt = [f for f in report.active if f.code == "LNT001"]
    assert len(lnt) == 1 and lnt[0].pos is not None and lnt[0].pos.line == 5
    assert report.exit_code() == 1


def test_unused_waiver_is_a_finding(tmp_path: Path) -> None:
    text = APPEND_ONLY.format(reason="append-only").replace(
        "      created_at:", "      updated_at: {type: timestamptz, default: now()}\n      created_at:")
    report = lint(load_schema(write(tmp_path, text)))
    assert [f.code for f in report.active] == ["LNT002"]
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1


def test_unused_waiver_not_reported_when_its_rule_did_not_run(tmp_path: Path) -> None:
    text = APPEND_ONLY.format(reason="append-only").replace(
        "      created_at:", "      updated_at: {type: timestamptz, default: now()}\n      created_at:")
    schema = load_schema(write(tmp_path, text))
    assert lint(schema, ignore=["IMM002"]).findings == ()
    assert lint(schema, select=["LNT"]).findings == ()


def test_column_waiver_reaches_the_fk_its_references_creates(tmp_path: Path) -> None:
    text = """\
module: m
tables:
  users:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
  posts:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      user_id:
        type: uuid
        references: users.id
        on_delete: cascade
        waive:
          IMM005: lookups go through the (user_id, created_at) index of the archive
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
"""
    report = lint(load_schema(write(tmp_path, text, "m")))
    assert report.active == ()
    assert [f.code for f in report.waived] == ["IMM005"]


def test_table_waiver_covers_its_children_and_unknown_codes_are_findings(tmp_path: Path) -> None:
    text = """\
module: m
tables:
  prices:
    waive:
      PG010: ISO 4217 codes are exactly three letters
      IMM02: typo
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      currency: {type: char(3)}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
"""
    report = lint(load_schema(write(tmp_path, text, "m")))
    assert [f.code for f in report.waived] == ["PG010"]
    assert [f.code for f in report.active] == ["LNT003"]
