"""`veza-schema diff --from --to`: review a change to schema/ without a database.

Both sides are YAML (directories or git refs); the output lists the model changes grouped
by module and table, and the SQL the next migration would contain.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, run_cli

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


def edited_copy(tmp_path: Path) -> tuple[Path, Path]:
    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(SAMPLE, old)
    shutil.copytree(SAMPLE, new)
    accounts = (new / "accounts.yaml").read_text()
    accounts = accounts.replace(
        "      created_at: {type: timestamptz, default: now()}\n      updated_at: {type: timestamptz, default: now(), "
        "comment: Set by trigger}",
        "      created_at: {type: timestamptz, default: now()}\n      updated_at: {type: timestamptz, default: now(), "
        "comment: Set by trigger}\n      bio:        {type: text, nullable: true}", 1)
    accounts = accounts.replace("      idx_teams_owner_id_btree: {columns: [owner_id], include: [name]}",
                                "      idx_teams_owner_id_btree: {columns: [owner_id], include: [name]}\n"
                                "      idx_teams_name_btree: {columns: [name]}")
    (new / "accounts.yaml").write_text(accounts)
    core = (new / "core.yaml").read_text().replace("account_role: [member, admin]",
                                                   "account_role: [member, admin, guest]")
    (new / "core.yaml").write_text(core)
    return old, new


def test_directories_text(tmp_path: Path) -> None:
    old, new = edited_copy(tmp_path)
    result = run_cli("diff", "--from", str(old), "--to", str(new))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "module accounts" in out and "module core" in out
    assert "+ column accounts.bio text" in out
    assert "+ index idx_teams_name_btree on teams" in out
    assert "+ enum account_role value(s) guest" in out
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_teams_name_btree ON teams (name);" in out
    assert "ALTER TYPE account_role ADD VALUE IF NOT EXISTS 'guest'" in out


def test_github_markdown(tmp_path: Path) -> None:
    old, new = edited_copy(tmp_path)
    result = run_cli("diff", "--from", str(old), "--to", str(new), "--format", "github")
    assert result.exit_code == 0, result.output
    md = result.stdout
    assert md.startswith(f"### veza-schema: `{old}` → `{new}`\n")
    assert "**3 change(s)** in 2 module(s): 3 added, 0 removed, 0 changed." in md
    assert "#### accounts\n\n| | object | change |\n|---|---|---|\n" in md
    assert "| `+` | table accounts | column accounts.bio text |" in md
    assert "| `+` | table teams | index idx_teams_name_btree on teams |" in md
    assert "#### core" in md and "| `+` | enum account_role | enum account_role value(s) guest |" in md
    assert "<details><summary>SQL the migration would contain" in md
    sql = md.split("```sql\n", 1)[1].split("\n```", 1)[0]
    assert "ALTER TABLE accounts ADD COLUMN bio text;" in sql
    assert md.rstrip().endswith("</details>")


def test_json_and_sql(tmp_path: Path) -> None:
    old, new = edited_copy(tmp_path)
    document = json.loads(run_cli("diff", "--from", str(old), "--to", str(new), "--format", "json").stdout)
    assert document["version"] == 1 and document["kind"] == "review" and document["changed"] is True
    assert sorted((c["change"], c["module"], c["name"]) for c in document["changes"]) == [
        ("AddColumn", "accounts", "bio"), ("AddEnumValue", "core", "account_role"),
        ("CreateIndex", "accounts", "idx_teams_name_btree")]
    assert document["sql"] and document["sql_error"] is None
    sql = run_cli("diff", "--from", str(old), "--to", str(new), "--format", "sql")
    assert sql.exit_code == 0
    assert sql.stdout.split("\n", 1)[1] == "".join(statement + "\n" for statement in document["sql"])


def test_no_changes(tmp_path: Path) -> None:
    result = run_cli("diff", "--from", str(SAMPLE), "--to", str(SAMPLE), "--format", "github")
    assert result.exit_code == 0
    assert "No schema changes." in result.stdout


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "README").write_text("x\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "before schema/")
    old, new = edited_copy(tmp_path)
    shutil.copytree(old, root / "db" / "schema")
    git(root, "add", ".")
    git(root, "commit", "-qm", "schema")
    shutil.rmtree(root / "db" / "schema")
    shutil.copytree(new, root / "db" / "schema")
    git(root, "add", ".")
    git(root, "commit", "-qm", "edit")
    return root


def test_git_refs(repo: Path) -> None:
    result = run_cli("diff", "--schema-dir", "db/schema", "--from", "HEAD~1", "--to", "HEAD", "--format", "json",
                     cwd=repo)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["changes"]) == 3
    # --to defaults to the working tree; a ref without the directory is an empty schema.
    whole = run_cli("diff", "--schema-dir", "db/schema", "--from", "HEAD~2", "--format", "json", cwd=repo)
    assert whole.exit_code == 0, whole.output
    kinds = {c["change"] for c in json.loads(whole.stdout)["changes"]}
    assert {"CreateTable", "CreateEnum", "CreateExtension", "CreateView"} <= kinds


def test_bad_refs(repo: Path) -> None:
    assert run_cli("diff", "--schema-dir", "db/schema", "--from", "no-such-ref", cwd=repo).exit_code == 2
    assert run_cli("diff", "--to", "HEAD", cwd=repo).exit_code == 2
