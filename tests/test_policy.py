"""The change policy: every change kind's class, on `check` and `generate`, and the data-loss guard.

The table runs each (base YAML, new YAML) pair three ways: the classifier itself, the `check`
command against the committed base (a throwaway git repository), and `generate` (a forbidden
change is refused unless `--allow-forbidden --rfc`). The acceptance cases at the end run the
real CLI in a subprocess, on copies of tests/data/sample_schema and on a real PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.helpers import TestDatabase, hand_written, run_cli
from veza_schema.cli import app
from veza_schema.diff.changes import Change
from veza_schema.diff.differ import diff_schemas
from veza_schema.diff.typechange import classify_type_change
from veza_schema.errors import VezaSchemaError
from veza_schema.migrations.files import read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.policy import POLICY_RULES, classify
from veza_schema.policy.classify import _HANDLERS
from veza_schema.policy.rules import POLICY_REGISTRY
from veza_schema.yaml.loader import load_schema

SAMPLE = Path(__file__).parent / "data" / "sample_schema"

CORE = """module: core
functions:
  touch:
    returns: trigger
    language: plpgsql
    body: |
      BEGIN
          NEW.updated_at = now();
          RETURN NEW;
      END;
tables:
  teams:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      name: {type: varchar(100)}
"""


def items(columns: str = "", rest: str = "", head: str = "", more: str = "", tables: str = "",
          team_fk: str = "references: teams.id, on_delete: set null") -> str:
    """A case module: table `items` (id, name varchar(100), team_id -> teams) plus the given YAML lines."""
    return ("module: case\n" + more + "tables:\n  items:\n" + head + "    columns:\n"
            "      id: {type: uuid, primary_key: true, default: gen_random_uuid()}\n"
            "      name: {type: varchar(100)}\n"
            f"      team_id: {{type: uuid, nullable: true, {team_fk}}}\n" + columns + rest + tables)


def events(partition: str) -> str:
    return ("module: case\ntables:\n  events:\n    columns:\n"
            "      id: {type: uuid, default: gen_random_uuid()}\n"
            "      occurred_at: {type: timestamptz, default: now()}\n"
            "      received_at: {type: timestamptz, default: now()}\n"
            "    primary_key: [id, occurred_at, received_at]\n"
            f"    partition_by: {partition}\n")


def col(line: str) -> str:
    return f"      {line}\n"


ENUM = "enums:\n  status: [active, closed]\n"
ENUM3 = "enums:\n  status: [active, closed, archived]\n"
NOTES = "  notes:\n    columns:\n      id: {type: uuid, primary_key: true}\n"
DEPRECATED = "{since: '2026-01-01', rfc: RFC-0007}"
VIEW = "views:\n  item_names:\n    query: SELECT id, name FROM items\n"
PRICE = "types:\n  price:\n    attributes:\n      amount: numeric(10,2)\n"
SEQUENCE = "sequences:\n  invoice_numbers: {start: 1000}\n"
ROLES = "roles:\n  app: {}\n"

# (id, base fragment, new fragment, expected rule, expected class)
CASES: list[tuple[str, str, str, str, str]] = [
    # allowed
    ("add-nullable-column", items(), items(col("bio: {type: text, nullable: true}")), "POL001", "allowed"),
    ("add-nullable-column-constant-default", items(),
     items(col("tier: {type: integer, nullable: true, default: 1}")), "POL001", "allowed"),
    ("create-non-unique-index", items(),
     items(rest="    indexes:\n      idx_items_name_btree: {columns: [name]}\n"), "POL002", "allowed"),
    ("change-table-comment", items(head="    comment: Things\n"), items(head="    comment: Sold things\n"),
     "POL003", "allowed"),
    ("add-column-comment", items(col("bio: {type: text, nullable: true}")),
     items(col("bio: {type: text, nullable: true, comment: About}")), "POL003", "allowed"),
    ("drop-deprecated-column", items(col(f"bio: {{type: text, nullable: true, deprecated: {DEPRECATED}}}")),
     items(), "POL004", "allowed"),
    ("drop-deprecated-table", items(tables=NOTES.replace("    columns:", f"    deprecated: {DEPRECATED}\n"
                                                                      "    columns:")),
     items(), "POL005", "allowed"),
    ("create-enum", items(), items(more=ENUM), "POL006", "allowed"),
    ("index-goes-with-its-deprecated-column",
     items(col(f"bio: {{type: text, nullable: true, deprecated: {DEPRECATED}}}"),
           rest="    indexes:\n      idx_items_bio_btree: {columns: [bio]}\n"), items(), "POL008", "allowed"),
    ("check-goes-with-its-deprecated-column",
     items(col(f"bio: {{type: text, nullable: true, deprecated: {DEPRECATED}}}"),
           rest="    checks:\n      chk_items_bio_length: \"length(bio) < 500\"\n"), items(), "POL008", "allowed"),
    ("deprecation-withdrawn", items(col(f"bio: {{type: text, nullable: true, deprecated: {DEPRECATED}}}")),
     items(col("bio: {type: text, nullable: true}")), "POL009", "allowed"),
    ("create-view", items(), items(more=VIEW), "POL007", "allowed"),
    ("premake-raised", events("{range: [occurred_at], interval: month, premake: 2}"),
     events("{range: [occurred_at], interval: month, premake: 4}"), "POL010", "allowed"),
    ("create-sequence", items(), items(more=SEQUENCE), "POL011", "allowed"),
    ("tune-statistics", items(), items(col("code: {type: text, nullable: true}")).replace(
        "      name: {type: varchar(100)}", "      name: {type: varchar(100), statistics: 1000}"), "POL012", "allowed"),
    # RFC required
    ("grant-select", items(more=ROLES), items(more=ROLES, rest="    grants: {app: [select]}\n"), "POL124",
     "rfc-required"),
    ("enable-row-security", items(), items(head="    row_security: true\n"), "POL124", "rfc-required"),
    ("make-table-unlogged", items(), items(head="    unlogged: true\n"), "POL125", "rfc-required"),
    ("drop-sequence", items(more=SEQUENCE), items(), "POL126", "rfc-required"),
    ("create-table", items(), items(tables=NOTES), "POL101", "rfc-required"),
    ("add-not-null-column-with-default", items(), items(col("score: {type: integer, default: 0}")),
     "POL102", "rfc-required"),
    ("add-not-null-column-without-default", items(), items(col("score: {type: integer}")),
     "POL103", "rfc-required"),
    ("add-column-volatile-default", items(),
     items(col("token: {type: uuid, nullable: true, default: gen_random_uuid()}")), "POL104", "rfc-required"),
    ("add-identity-column", items(), items(col("seq: {type: bigint, identity: always}")),
     "POL104", "rfc-required"),
    ("widen-varchar", items(), items().replace("name: {type: varchar(100)}", "name: {type: varchar(200)}"),
     "POL105", "rfc-required"),
    ("varchar-to-text", items(), items().replace("name: {type: varchar(100)}", "name: {type: text}"),
     "POL105", "rfc-required"),
    ("int-to-bigint", items(col("qty: {type: integer}")), items(col("qty: {type: bigint}")),
     "POL105", "rfc-required"),
    ("alter-default", items(col("qty: {type: integer, default: 0}")),
     items(col("qty: {type: integer, default: 1}")), "POL106", "rfc-required"),
    ("set-not-null", items(col("bio: {type: text, nullable: true}")), items(col("bio: {type: text}")),
     "POL107", "rfc-required"),
    ("alter-identity", items(col("seq: {type: bigint, identity: by default}")),
     items(col("seq: {type: bigint, identity: always}")), "POL108", "rfc-required"),
    ("create-unique-index", items(),
     items(rest="    indexes:\n      idx_items_name_unique: {columns: [name], unique: true}\n"),
     "POL109", "rfc-required"),
    ("add-unique-constraint", items(), items(rest="    unique:\n      uq_items_name: [name]\n"),
     "POL109", "rfc-required"),
    ("add-check", items(), items(rest="    checks:\n      chk_items_name_length: \"length(name) > 0\"\n"),
     "POL110", "rfc-required"),
    ("add-foreign-key", items(team_fk="comment: no key yet"), items(), "POL110", "rfc-required"),
    ("drop-check", items(rest="    checks:\n      chk_items_name_length: \"length(name) > 0\"\n"), items(),
     "POL111", "rfc-required"),
    ("rename-column", items(col("bio: {type: text, nullable: true}")),
     items(col("about: {type: text, nullable: true, renamed_from: bio}")), "POL112", "rfc-required"),
    ("add-enum-value", items(more=ENUM), items(more=ENUM3), "POL113", "rfc-required"),
    ("reorder-enum-values", items(more=ENUM),
     items(more=ENUM.replace("[active, closed]", "[closed, active]")), "POL114", "rfc-required"),
    ("create-function", items(),
     items(more="functions:\n  add_one:\n    arguments: x integer\n    returns: integer\n    language: sql\n"
                "    volatility: immutable\n    body: SELECT x + 1\n"), "POL115", "rfc-required"),
    ("add-trigger", items(),
     items(rest="    triggers:\n      trg_items_touch: {function: touch, timing: before, events: [update]}\n"),
     "POL116", "rfc-required"),
    ("replace-view", items(more=VIEW), items(more=VIEW.replace("SELECT id, name", "SELECT id, name, team_id")),
     "POL117", "rfc-required"),
    ("create-extension", items(), items(more="extensions: [pg_trgm]\n"), "POL118", "rfc-required"),
    ("drop-unused-enum", items(more=ENUM), items(), "POL119", "rfc-required"),
    ("redefine-foreign-key", items(), items(team_fk="references: teams.id, on_delete: cascade"),
     "POL120", "rfc-required"),
    ("deprecate-column", items(col("bio: {type: text, nullable: true}")),
     items(col(f"bio: {{type: text, nullable: true, deprecated: {DEPRECATED}}}")), "POL121", "rfc-required"),
    ("premake-lowered", events("{range: [occurred_at], interval: month, premake: 4}"),
     events("{range: [occurred_at], interval: month, premake: 3}"), "POL122", "rfc-required"),
    ("drop-index", items(rest="    indexes:\n      idx_items_name_btree: {columns: [name]}\n"), items(),
     "POL123", "rfc-required"),
    # forbidden
    ("drop-table", items(tables=NOTES), items(), "POL201", "forbidden"),
    ("drop-column", items(col("bio: {type: text, nullable: true}")), items(), "POL202", "forbidden"),
    ("rename-without-renamed-from", items(col("bio: {type: text, nullable: true}")),
     items(col("about: {type: text, nullable: true}")), "POL202", "forbidden"),
    ("narrow-varchar", items(), items().replace("name: {type: varchar(100)}", "name: {type: varchar(50)}"),
     "POL203", "forbidden"),
    ("incompatible-type", items(col("code: {type: varchar(10)}")), items(col("code: {type: integer}")),
     "POL203", "forbidden"),
    ("bigint-to-int", items(col("qty: {type: bigint}")), items(col("qty: {type: integer}")),
     "POL203", "forbidden"),
    ("drop-foreign-key", items(), items(team_fk="comment: key dropped"), "POL204", "forbidden"),
    ("change-partition-key", events("{range: [occurred_at], interval: month, premake: 2}"),
     events("{range: [received_at], interval: month, premake: 2}"), "POL205", "forbidden"),
    ("change-partition-interval", events("{range: [occurred_at], interval: month, premake: 2}"),
     events("{range: [occurred_at], interval: week, premake: 2}"), "POL205", "forbidden"),
    ("remove-enum-value", items(more=ENUM3), items(more=ENUM), "POL206", "forbidden"),
    ("change-primary-key", items(), items(rest="    primary_key: [id, name]\n").replace(
        "id: {type: uuid, primary_key: true, default: gen_random_uuid()}", "id: {type: uuid, default: "
        "gen_random_uuid()}"), "POL207", "forbidden"),
    ("alter-used-composite-type", items(col("price: {type: price, nullable: true}"), more=PRICE),
     items(col("price: {type: price, nullable: true}"), more=PRICE + "      currency: char(3)\n"),
     "POL208", "forbidden"),
]

ORDER = {"allowed": 0, "rfc-required": 1, "forbidden": 2}


def _write(directory: Path, case_yaml: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "core.yaml").write_text(CORE)
    (directory / "case.yaml").write_text(case_yaml)
    return directory


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                            capture_output=True, text=True, check=True)
    return result.stdout


def invoke(*args: str) -> tuple[int, str]:
    """The CLI in-process (the table has ~50 cases); errors map to their exit codes as in main()."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, VezaSchemaError):
        return result.exception.exit_code, result.output + str(result.exception)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


# -- the table ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("case", "before", "after", "code", "klass"), CASES, ids=[c[0] for c in CASES])
def test_classifier_table(tmp_path: Path, case: str, before: str, after: str, code: str, klass: str) -> None:
    base = load_schema(_write(tmp_path / "base", before))
    desired = load_schema(_write(tmp_path / "new", after))
    report = classify(diff_schemas(base, desired), base, desired)
    found = {(d.code, d.klass) for d in report.decisions}
    assert (code, klass) in found, report.decisions
    assert max(ORDER[d.klass] for d in report.decisions) == ORDER[klass], report.decisions
    assert POLICY_RULES[code].klass == klass


@pytest.mark.parametrize(("case", "before", "after", "code", "klass"), CASES, ids=[c[0] for c in CASES])
def test_check_and_generate_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, before: str,
                                  after: str, code: str, klass: str) -> None:
    repo = tmp_path / "repo"
    schema = _write(repo / "schema", before)
    generate_initial(load_schema(schema), repo / "migrations", "initial_schema", FileSettings())
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (schema / "case.yaml").write_text(after)
    monkeypatch.chdir(repo)

    exit_code, output = invoke("check", "--format", "json")
    document = json.loads(output)
    assert (code, klass) in {(c["code"], c["class"]) for c in document["changes"]}, output
    blocking = klass == "forbidden" or (klass == "rfc-required" and "rfc:" not in after)
    assert exit_code == (1 if blocking else 0), output
    assert document["base"].startswith("HEAD")

    before_files = len(read_migrations(repo / "migrations"))
    # The cases' tables are minimal (no timestamps): generate's lint gate is not what this table tests.
    exit_code, output = invoke("generate", "--name", "change", "--no-verify")
    if klass == "forbidden":
        assert exit_code == 1 and "change policy forbids" in output and code in output, output
        assert len(read_migrations(repo / "migrations")) == before_files
        exit_code, output = invoke("generate", "--name", "change", "--allow-forbidden", "--rfc", "RFC-0042",
                                   "--no-verify")
        assert "change policy forbids" not in output, output
    else:
        assert "change policy forbids" not in output, output


def test_every_change_kind_has_a_policy() -> None:
    kinds = set(typing.get_args(Change))
    assert kinds == set(_HANDLERS), kinds ^ set(_HANDLERS)


def test_every_policy_rule_is_in_the_registry_and_documented() -> None:
    registered = {r.code: r for r in POLICY_REGISTRY}
    assert set(registered) == set(POLICY_RULES)
    for rule in registered.values():
        assert rule.summary and rule.why and rule.fix
    codes_in_table = {c[3] for c in CASES}
    untested = set(POLICY_RULES) - codes_in_table
    assert not untested, f"rules without a case in the table: {sorted(untested)}"


def test_change_policy_doc_lists_every_rule() -> None:
    text = (Path(__file__).parent.parent / "docs" / "change-policy.md").read_text()
    missing = [code for code in POLICY_RULES if f"| {code} |" not in text]
    assert not missing, missing


@pytest.mark.parametrize(("before", "after", "kind"), [
    ("character varying(50)", "character varying(100)", "widening"),
    ("character varying(100)", "character varying(50)", "narrowing"),
    ("character varying(100)", "text", "widening"),
    ("text", "character varying(100)", "narrowing"),
    ("character(3)", "character varying(3)", "widening"),
    ("smallint", "bigint", "widening"),
    ("bigint", "smallint", "narrowing"),
    ("integer", "numeric(12,2)", "widening"),
    ("integer", "numeric(8,2)", "narrowing"),
    ("numeric(10,2)", "numeric(12,2)", "widening"),
    ("numeric(10,2)", "numeric(10,3)", "narrowing"),
    ("numeric(10,2)", "numeric", "widening"),
    ("timestamp(3) with time zone", "timestamp with time zone", "widening"),
    ("timestamp with time zone", "timestamp(3) with time zone", "narrowing"),
    ("timestamp without time zone", "timestamp with time zone", "incompatible"),
    ("character varying(10)[]", "character varying(20)[]", "widening"),
    ("text[]", "text", "incompatible"),
    ("json", "jsonb", "incompatible"),
    ("integer", "text", "incompatible"),
])
def test_type_changes(before: str, after: str, kind: str) -> None:
    assert classify_type_change(before, after).kind == kind


# -- RFC references -----------------------------------------------------------------------------
def _check_in_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str, after: str,
                   *args: str) -> tuple[int, str]:
    repo = tmp_path / "repo"
    schema = _write(repo / "schema", before)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (schema / "case.yaml").write_text(after)
    monkeypatch.chdir(repo)
    return invoke("check", *args)


def test_rfc_on_the_table_covers_its_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    after = items(col("score: {type: integer, default: 0}"), head="    rfc: RFC-0042\n")
    code, output = _check_in_repo(tmp_path, monkeypatch, items(), after)
    assert code == 0 and "RFC: RFC-0042" in output, output


def test_rfc_must_match_the_pattern(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    after = items(col("score: {type: integer, default: 0, rfc: RFC-42}"))
    code, output = _check_in_repo(tmp_path, monkeypatch, items(), after)
    assert code == 1 and "does not match the required pattern" in output, output
    code, output = invoke("check", "--rfc-pattern", r"^RFC-\d+$")
    assert code == 0, output


def test_bad_rfc_pattern_and_bad_base_are_usage_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _check_in_repo(tmp_path, monkeypatch, items(), items())
    assert invoke("check", "--rfc-pattern", "(")[0] == 2
    assert invoke("check", "--base", "no-such-ref")[0] == 2
    assert invoke("check", "--format", "xml")[0] == 2
    assert invoke("check", "--allow-forbidden")[0] == 2


def test_forbidden_accepted_in_check_only_with_allow_forbidden_and_rfc(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    code, output = _check_in_repo(tmp_path, monkeypatch, items(tables=NOTES), items())
    assert code == 1 and "POL201" in output
    code, output = invoke("check", "--allow-forbidden", "--rfc", "RFC-0042")
    assert code == 0 and "accepted under RFC-0042" in output, output


def test_rfc_for_a_change_of_another_diff(tmp_path: Path) -> None:
    """What a migration header needs: the RFC of each change, found on the table when not on the object."""
    base = load_schema(_write(tmp_path / "base", items()))
    desired = load_schema(_write(tmp_path / "new", items(col("score: {type: integer, default: 0}"),
                                                         head="    rfc: RFC-0042\n")))
    report = classify(diff_schemas(base, desired), base, desired)
    assert report.rfcs == ("RFC-0042",)
    [change] = diff_schemas(base, desired)
    assert report.rfc_for(change) == "RFC-0042"


def test_deprecation_must_be_in_the_base_not_in_the_same_change(tmp_path: Path) -> None:
    """Deprecating and dropping in one step has no earlier deprecated state: still forbidden."""
    base = load_schema(_write(tmp_path / "base", items(col("bio: {type: text, nullable: true}"))))
    desired = load_schema(_write(tmp_path / "new", items()))
    report = classify(diff_schemas(base, desired), base, desired)
    assert [d.code for d in report.decisions] == ["POL202"]


def test_deprecation_keeps_the_object_and_changes_nothing_in_the_database(tmp_path: Path) -> None:
    base = load_schema(_write(tmp_path / "base", items(col("bio: {type: text, nullable: true}"))))
    desired = load_schema(_write(tmp_path / "new", items(col(f"bio: {{type: text, nullable: true, "
                                                              f"deprecated: {DEPRECATED}}}"))))
    assert diff_schemas(base, desired) == []
    assert desired == base
    decisions = classify([], base, desired).decisions
    assert [(d.code, d.rfc, d.blocking) for d in decisions] == [("POL121", "RFC-0007", False)]


def test_generate_finds_the_deprecation_in_the_git_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot keeps no YAML metadata: the committed YAML says the column was deprecated."""
    repo = tmp_path / "repo"
    schema = _write(repo / "schema", items(col(f"bio: {{type: text, nullable: true, deprecated: {DEPRECATED}}}")))
    generate_initial(load_schema(schema), repo / "migrations", "initial_schema", FileSettings())
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "deprecate")
    (schema / "case.yaml").write_text(items())
    monkeypatch.chdir(repo)
    code, output = invoke("check", "--base", "migrations")
    assert code == 0 and "POL004" in output, output
    code, output = invoke("generate", "--name", "drop_bio", "--no-verify")  # a minimal table: not lint's case
    assert code == 0 and "Wrote" in output, output


def test_default_base_is_the_merge_base_with_origin_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What landed on main after the branch point must not show up as reverted (a dropped table)."""
    repo = tmp_path / "repo"
    schema = _write(repo / "schema", items())
    git(repo, "init", "-q", "-b", "feature")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "branch point")
    branch_point = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "upstream")
    (schema / "case.yaml").write_text(items(tables=NOTES))
    git(repo, "commit", "-qam", "notes on main")
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(repo, "checkout", "-q", "feature")
    (schema / "case.yaml").write_text(items(col("bio: {type: text, nullable: true}")))
    monkeypatch.chdir(repo)
    code, output = invoke("check")
    assert code == 0, output
    assert f"Base: merge base with origin/main ({branch_point[:12]})" in output and "POL001" in output
    git(repo, "checkout", "-q", "--orphan", "unrelated")
    git(repo, "commit", "-qam", "no common history")
    code, output = invoke("check")
    assert code == 2 and "no merge base" in output, output


# -- output formats ---------------------------------------------------------------------------
def test_sarif_and_github_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _ = _check_in_repo(tmp_path, monkeypatch, items(col("bio: {type: text, nullable: true}")),
                             items(col("about: {type: text, nullable: true}")))
    assert code == 1
    code, output = invoke("check", "--format", "sarif")
    sarif = json.loads(output)
    results = sarif["runs"][0]["results"]
    assert [r["ruleId"] for r in results] == ["POL202"]
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "schema/case.yaml"
    assert "renamed_from: bio" in results[0]["message"]["text"]
    code, output = invoke("check", "--format", "github")
    assert code == 1 and output.startswith("::error file=schema/case.yaml,line=")


# -- acceptance: check against copies of the sample schema (real CLI) ---------------------------
def _sample_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo / "schema")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


BALANCE = "      balance:    {type: money_amount, nullable: true}\n"
TEAM_ID = "      team_id:    {type: uuid, nullable: true, references: teams.id, on_delete: set null}\n"


@pytest.mark.parametrize(("file", "old", "new", "code", "named"), [
    ("accounts.yaml", BALANCE, "", "POL202", "column accounts.balance"),
    ("accounts.yaml", "name:       {type: varchar(100)}", "name:       {type: varchar(50)}", "POL203",
     "column teams.name type character varying(100) -> character varying(50)"),
    ("accounts.yaml", TEAM_ID, "      team_id:    {type: uuid, nullable: true}\n", "POL204",
     "foreign key fk_accounts_teams"),
    ("events.yaml", "partition_by: {range: [occurred_at]", "partition_by: {range: [id]", "POL205",
     "table events partitioning"),
])
def test_check_exits_1_and_names_the_forbidden_change(tmp_path: Path, file: str, old: str, new: str,
                                                      code: str, named: str) -> None:
    repo = _sample_repo(tmp_path)
    _edit(repo / "schema" / file, old, new)
    result = run_cli("check", cwd=repo)
    assert result.exit_code == 1, result.output
    assert code in result.stdout and named in result.stdout and "forbidden" in result.stdout, result.output


@pytest.mark.parametrize(("addition", "expected"), [
    ("      note:       {type: text, nullable: true}\n", 0),
    ("      points:     {type: integer, default: 0}\n", 1),
    ("      points:     {type: integer, default: 0, rfc: RFC-0042}\n", 0),
])
def test_check_new_columns(tmp_path: Path, addition: str, expected: int) -> None:
    repo = _sample_repo(tmp_path)
    _edit(repo / "schema" / "accounts.yaml", BALANCE, BALANCE + addition)
    result = run_cli("check", cwd=repo)
    assert result.exit_code == expected, result.output
    if expected:
        assert "POL102" in result.stdout and "no RFC reference" in result.stdout


def test_check_non_unique_index_exits_0(tmp_path: Path) -> None:
    repo = _sample_repo(tmp_path)
    _edit(repo / "schema" / "accounts.yaml", "      idx_accounts_team_id_btree: {columns: [team_id]}\n",
          "      idx_accounts_team_id_btree: {columns: [team_id]}\n"
          "      idx_accounts_role_btree: {columns: [role]}\n")
    result = run_cli("check", cwd=repo)
    assert result.exit_code == 0 and "POL002" in result.stdout, result.output


def test_check_deprecated_then_dropped_column_is_allowed(tmp_path: Path) -> None:
    repo = _sample_repo(tmp_path)
    accounts = repo / "schema" / "accounts.yaml"
    deprecated = BALANCE.replace("nullable: true}", "nullable: true, deprecated: {since: '2026-11-01', rfc: RFC-0042}}")
    _edit(accounts, BALANCE, deprecated)
    first = run_cli("check", cwd=repo)
    assert first.exit_code == 0 and "POL121" in first.stdout, first.output  # the deprecation, with its RFC
    git(repo, "commit", "-qam", "deprecate balance")
    _edit(accounts, deprecated, "")
    result = run_cli("check", cwd=repo)
    assert result.exit_code == 0, result.output
    assert "POL004" in result.stdout and "deprecated since 2026-11-01 (RFC-0042)" in result.stdout


def test_check_base_directory_and_migrations(tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(SAMPLE, work / "schema")
    assert run_cli("generate", cwd=work).exit_code == 0
    shutil.copytree(SAMPLE, work / "base")
    _edit(work / "schema" / "accounts.yaml", BALANCE, "")
    for base in ("base", "migrations"):
        result = run_cli("check", "--base", base, cwd=work)
        assert result.exit_code == 1 and "POL202" in result.stdout, result.output
    no_git = run_cli("check", cwd=work)
    assert no_git.exit_code == 2 and "--base" in no_git.output


# -- acceptance: the data-loss guard on a real database --------------------------------------------
def _migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(hand_written(text))
    assert run_cli("hash", "--migrations-dir", str(directory)).exit_code == 0
    return directory


CREATE_T = {
    "1_create_t.up.sql": "CREATE TABLE t (id integer PRIMARY KEY, bio text, name varchar(100));\n",
    "1_create_t.down.sql": "DROP TABLE t;\n",
}


def _populate(database: TestDatabase) -> None:
    database.execute("INSERT INTO t VALUES (1, 'a', 'short'), (2, 'b', 'a rather long name'), (3, 'c', NULL), "
                     "(4, NULL, NULL)")


def test_apply_refuses_to_drop_a_populated_column(database: TestDatabase, tmp_path: Path) -> None:
    migrations = _migrations(tmp_path / "m", CREATE_T)
    assert run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations)).exit_code == 0
    _populate(database)
    _migrations(migrations, {"2_drop_bio.up.sql": "ALTER TABLE t DROP COLUMN bio;\n",
                             "2_drop_bio.down.sql": "ALTER TABLE t ADD COLUMN bio text;\n"})
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 3, result.output
    assert "drops column t.bio: 3 row(s) hold data in it" in result.output
    assert "2_drop_bio.up.sql:2" in result.output and "--allow-data-loss" in result.output
    assert database.query("SELECT count(*) FROM t WHERE bio IS NOT NULL") == [(3,)]
    assert database.query("SELECT max(version) FROM _sqlx_migrations") == [(1,)]
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations), "--allow-data-loss")
    assert result.exit_code == 0, result.output
    assert database.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' "
                          "AND column_name = 'bio'") == [(0,)]


def test_apply_allows_dropping_an_empty_column(database: TestDatabase, tmp_path: Path) -> None:
    migrations = _migrations(tmp_path / "m", CREATE_T)
    assert run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations)).exit_code == 0
    database.execute("INSERT INTO t (id) VALUES (1), (2)")
    _migrations(migrations, {"2_drop_bio.up.sql": "ALTER TABLE t DROP COLUMN bio;\n",
                             "2_drop_bio.down.sql": "ALTER TABLE t ADD COLUMN bio text;\n"})
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output


def test_apply_refuses_a_narrowing_that_truncates(database: TestDatabase, tmp_path: Path) -> None:
    migrations = _migrations(tmp_path / "m", CREATE_T)
    assert run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations)).exit_code == 0
    _populate(database)
    _migrations(migrations, {
        "2_narrow.up.sql": "ALTER TABLE t ALTER COLUMN name TYPE varchar(5) USING name::varchar(5);\n",
        "2_narrow.down.sql": "ALTER TABLE t ALTER COLUMN name TYPE varchar(100);\n"})
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 3, result.output
    assert "1 value(s) longer than 5 characters would be truncated" in result.output


def test_rollback_refuses_to_drop_a_created_table_with_rows(database: TestDatabase, tmp_path: Path) -> None:
    migrations = _migrations(tmp_path / "m", CREATE_T)
    assert run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations)).exit_code == 0
    _populate(database)
    result = run_cli("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 3, result.output
    assert "1_create_t.down.sql:2: DROP TABLE t -> drops table t: 4 row(s)" in result.output
    assert database.query("SELECT count(*) FROM t") == [(4,)]
    result = run_cli("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations), "--allow-data-loss")
    assert result.exit_code == 0, result.output
    assert database.query("SELECT to_regclass('t') IS NULL") == [(True,)]


def test_generated_drop_of_a_deprecated_populated_column(database: TestDatabase, tmp_path: Path) -> None:
    """End to end: deprecate (committed), drop, generate, apply refuses, --allow-data-loss applies."""
    repo = _sample_repo(tmp_path)
    accounts = repo / "schema" / "accounts.yaml"
    _edit(accounts, "      order: {type: integer, default: 0}\n",
          "      order: {type: integer, default: 0}\n      nick: {type: text, nullable: true, deprecated: "
          "{since: '2026-11-01', rfc: RFC-0042}}\n")
    assert run_cli("generate", cwd=repo).exit_code == 0
    assert run_cli("apply", "--dsn", database.dsn, cwd=repo).exit_code == 0
    database.execute('INSERT INTO "user" (id, nick) VALUES (gen_random_uuid(), \'x\'), (gen_random_uuid(), NULL)')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "deprecate user.nick")
    _edit(accounts, "      nick: {type: text, nullable: true, deprecated: {since: '2026-11-01', rfc: RFC-0042}}\n",
          "")
    generated = run_cli("generate", "--name", "drop_user_nick", cwd=repo)
    assert generated.exit_code == 0, generated.output
    result = run_cli("apply", "--dsn", database.dsn, cwd=repo)
    assert result.exit_code == 3 and 'drops column user.nick: 1 row(s) hold data in it' in result.output, \
        result.output
    assert run_cli("apply", "--dsn", database.dsn, "--allow-data-loss", cwd=repo).exit_code == 0


def test_migrations_base_knows_deprecations_without_git(tmp_path: Path) -> None:
    """The snapshot keeps deprecations: outside any git checkout, a later drop is still allowed."""
    schema = tmp_path / "schema"
    schema.mkdir()
    yaml_text = ("module: m\ntables:\n  t:\n    columns:\n      id: {type: uuid, primary_key: true}\n"
                 "      bio: {type: text, nullable: true, deprecated: {since: '2026-11-01', rfc: RFC-0007}}\n")
    (schema / "m.yaml").write_text(yaml_text)
    assert run_cli("generate", "--no-verify", cwd=tmp_path).exit_code == 0  # a minimal table: not lint's case
    (schema / "m.yaml").write_text(yaml_text.split("      bio:")[0])
    checked = run_cli("check", "--base", "migrations", cwd=tmp_path)
    assert checked.exit_code == 0, checked.output
    assert "POL004" in checked.stdout
    generated = run_cli("generate", "--name", "drop_bio", "--no-verify", cwd=tmp_path)
    assert generated.exit_code == 0, generated.output
