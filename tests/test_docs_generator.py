"""``veza-schema docs``: pages for the sample schema, Mermaid that parses, and the staleness check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_cli
from veza_schema.docs.generator import md_cell, md_code, mermaid_name, mermaid_type, render_docs, write_docs
from veza_schema.yaml.loader import load_schema

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"

# Cases the sample does not have: pipes in text, arrays, numeric(10,2), deprecation, tags, identity.
EXTRA_MODULE = """\
module: extra
description: "Odd cases for the docs: pipes | in text"
tables:
  ledger:
    comment: "Old ledger | kept for audits"
    tags: [audited, append_only]
    deprecated: {since: "2026-11-01", rfc: RFC-0042, note: replaced by payments}
    columns:
      id:         {type: bigint, identity: always, primary_key: true}
      account_id: {type: uuid, references: accounts.id, on_delete: cascade}
      amount:     {type: "numeric(10,2)"}
      labels:     {type: "varchar(20)[]", nullable: true, deprecated: {since: "2026-10-01", note: use tags}}
      note:       {type: text, nullable: true, comment: "a | b"}
      at:         {type: double precision, default: "0"}
    checks:
      chk_ledger_note: "note IS NULL OR (note || '') <> ''"
    indexes:
      idx_ledger_account_id_btree: {columns: [account_id]}
"""

_ENTITY = r"[A-Za-z_][A-Za-z0-9_]*"
_ATTRIBUTE_LINE = re.compile(rf"^        {_ENTITY} {_ENTITY}(?: (?:PK|FK|UK)(?:, (?:PK|FK|UK))*)?$")
_RELATIONSHIP_LINE = re.compile(rf'^    {_ENTITY} (?:\|o|\}}o)--(?:\|\||o\|) {_ENTITY} : "{_ENTITY}"$')


@pytest.fixture
def extra_schema(tmp_path: Path) -> Path:
    schema_dir = tmp_path / "schema"
    shutil.copytree(SAMPLE, schema_dir)
    (schema_dir / "extra.yaml").write_text(EXTRA_MODULE)
    return schema_dir


def _mermaid_blocks(text: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", text, re.DOTALL)


def _check_er_diagram(block: str) -> None:
    """Every line is something Mermaid's erDiagram grammar accepts, with sanitized names and types."""
    lines = block.splitlines()
    assert lines[0] == "erDiagram"
    inside = False
    for line in lines[1:]:
        if inside:
            if line == "    }":
                inside = False
            else:
                assert _ATTRIBUTE_LINE.match(line), line
        elif line.endswith(" {"):
            assert re.fullmatch(rf"    {_ENTITY} \{{", line), line
            inside = True
        elif not line.strip().startswith("%%"):
            assert _RELATIONSHIP_LINE.match(line), line
    assert not inside


def test_one_page_per_module_plus_an_index() -> None:
    pages = render_docs(load_schema(SAMPLE))
    assert sorted(pages) == ["accounts.md", "core.md", "events.md", "index.md"]
    assert all(text.endswith("\n") and not text.endswith("\n\n") for text in pages.values())


def test_output_is_deterministic(tmp_path: Path) -> None:
    assert render_docs(load_schema(SAMPLE)) == render_docs(load_schema(SAMPLE))
    for out in ("a", "b"):
        result = run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(tmp_path / out))
        assert result.exit_code == 0, result.output
    first = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert first == {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}


def test_module_page_documents_tables_columns_constraints_indexes_triggers_partitioning() -> None:
    pages = render_docs(load_schema(SAMPLE))
    accounts, events = pages["accounts.md"], pages["events.md"]
    assert "Accounts and teams, with a foreign-key cycle on purpose" in accounts
    assert "| `email` | `varchar(255)` | UK | no |  |  |" in accounts
    assert "| `team_id` | `uuid` | FK | yes |  |  |" in accounts
    assert "| `updated_at` | `timestamptz` |  | no | `now()` | Set by trigger |" in accounts
    assert "| `chk_accounts_email_format` | check | `email ~* '^[^@]+@[^@]+$'` |" in accounts
    assert "| `fk_accounts_teams` | `team_id` | [teams](#teams) (`id`) | SET NULL | NO ACTION |" in accounts
    assert "| `idx_accounts_created_at_desc` | btree | no | `created_at DESC` | `team_id IS NOT NULL` |  |" \
        in accounts
    assert "| `idx_teams_owner_id_btree` | btree | no | `owner_id` |  | `name` |" in accounts
    assert "`trg_accounts_updated_at` | BEFORE | UPDATE | row | `set_updated_at()`" in accounts
    assert "| `fk_events_accounts` | `account_id` | [accounts](accounts.md#accounts) (`id`), module accounts " \
           "| CASCADE |" in events
    assert "**Partitioning**: by RANGE (`occurred_at`), one partition per month" in events
    assert "| `idx_events_payload_gin` | gin |" in events
    assert "### account_event_counts" in events and "refresh account_event_counts" in events
    assert "| `account_role` | `member`, `admin` |" in pages["core.md"]


def test_index_lists_modules_with_counts_and_a_module_diagram() -> None:
    index = render_docs(load_schema(SAMPLE))["index.md"]
    assert "| [accounts](accounts.md) | 3 | 0 | 0 | 0 | Accounts and teams" in index
    assert "| [events](events.md) | 1 | 2 | 0 | 0 | A partitioned log and views |" in index
    (block,) = _mermaid_blocks(index)
    assert block.splitlines()[0] == "flowchart LR"
    assert '    m_events -->|"1 FK"| m_accounts' in block
    assert '    m_core["core (0 tables)"]' in block


def test_er_diagrams_are_present_and_sanitized(extra_schema: Path) -> None:
    pages = render_docs(load_schema(extra_schema))
    assert _mermaid_blocks(pages["core.md"]) == []  # no tables, no diagram
    for name in ("accounts.md", "events.md", "extra.md"):
        (block,) = _mermaid_blocks(pages[name])
        _check_er_diagram(block)
    (accounts,) = _mermaid_blocks(pages["accounts.md"])
    assert "        varchar_255 email UK" in accounts
    assert '    accounts }o--o| teams : "fk_accounts_teams"' in accounts
    assert '    teams }o--|| accounts : "fk_teams_accounts"' in accounts
    (extra,) = _mermaid_blocks(pages["extra.md"])
    assert "        numeric_10_2 amount" in extra
    assert "        varchar_20_array labels" in extra
    assert "        double_precision at" in extra
    # A referenced table of another module is drawn with the referenced columns only.
    assert "    accounts {\n        uuid id PK\n    }" in extra
    assert '    ledger }o--|| accounts : "fk_ledger_accounts"' in extra


def test_pipes_are_escaped_in_table_cells_and_deprecations_are_marked(extra_schema: Path) -> None:
    pages = render_docs(load_schema(extra_schema))
    extra = pages["extra.md"]
    assert "| `chk_ledger_note` | check | `note IS NULL OR (note \\|\\| '') <> ''` |" in extra
    assert "| `note` | `text` |  | yes |  | a \\| b |" in extra
    assert "> **Deprecated** since 2026-11-01 (RFC-0042): replaced by payments" in extra
    assert "| `labels` | `varchar(20)[]` |  | yes |  | **Deprecated** since 2026-10-01: use tags. |" in extra
    assert "Tags: `append_only`, `audited`." in extra
    assert "| `id` | `bigint` | PK | no | identity (always) |  |" in extra
    assert "Odd cases for the docs: pipes \\| in text |" in pages["index.md"]
    for line in extra.splitlines():
        if line.startswith("| `"):  # every row has exactly as many cells as its header
            assert len(re.findall(r"(?<!\\)\|", line)) in (4, 6, 7), line


def test_text_helpers() -> None:
    assert md_cell("a | b\n\nc") == "a \\| b<br>c"
    assert md_code("x `y` z") == "``x `y` z``"
    assert mermaid_type("character varying(255)") == "varchar_255"
    assert mermaid_type("timestamp(3) with time zone") == "timestamptz_3"
    assert mermaid_name("end") == "end_" and mermaid_name("user") == "user"


def test_check_fails_on_stale_pages_and_passes_after_regeneration(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    assert run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(out), "--check").exit_code == 1
    result = run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["accounts.md", "core.md", "events.md", "index.md"]
    result = run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(out), "--check")
    assert result.exit_code == 0, result.output

    (out / "events.md").write_text((out / "events.md").read_text() + "hand edit\n")
    (out / "removed_module.md").write_text("# gone\n")
    result = run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(out), "--check")
    assert result.exit_code == 1, result.output
    assert f"{out / 'events.md'}: differs" in result.stdout
    assert f"{out / 'removed_module.md'}: not generated" in result.stdout
    assert "accounts.md" not in result.stdout

    result = run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert not (out / "removed_module.md").exists()
    result = run_cli("docs", "--schema-dir", str(SAMPLE), "--out", str(out), "--check")
    assert result.exit_code == 0, result.output


def test_write_docs_returns_the_pages_and_removes_stale_ones(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("stale\n")
    (tmp_path / "notes.txt").write_text("not a page\n")
    written = write_docs(load_schema(SAMPLE), tmp_path)
    assert [p.name for p in written] == ["accounts.md", "core.md", "events.md", "index.md"]
    assert not (tmp_path / "old.md").exists()
    assert (tmp_path / "notes.txt").exists()


def test_committed_docs_are_fresh_for_the_committed_schema() -> None:
    result = run_cli("docs", "--check")
    assert result.exit_code == 0, f"docs/schema is stale: run `veza-schema docs` and commit\n{result.output}"
