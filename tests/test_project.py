"""The project: its root found like git finds a repository, its settings and their precedence
(flag > VEZA_* environment > [tool.veza-schema] > built-in default), and no silent wrong target."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, Server, invoke, run_cli
from veza_schema.errors import UsageError
from veza_schema.project import discover, find_root

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"

# An index named against NAM002 (idx_{table}_{columns}_{type}): a warning by default.
BADLY_NAMED_INDEX = """\
module: app
tables:
  items:
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      title: {type: text}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
    indexes:
      items_title: {columns: [title]}
"""


def settings(text: str) -> str:
    return "[project]\nname = \"demo\"\n\n[tool.veza-schema]\n" + text


def make_project(root: Path, pyproject: str | None = None, yaml: str = BADLY_NAMED_INDEX,
                 schema_dir: str = "schema") -> Path:
    (root / schema_dir).mkdir(parents=True)
    (root / schema_dir / "app.yaml").write_text(yaml)
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)
    return root


def config_of(cwd: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    result = invoke("config", "--format", "json", *args, cwd=cwd, env=env)
    assert result.exit_code == 0, result.output
    return {row["key"]: row for row in json.loads(result.stdout)["settings"] if "lint" in row["commands"]
            or row["key"] not in ("format",)}


# -- root discovery ---------------------------------------------------------------------------------------

def test_root_is_the_nearest_directory_with_the_settings_table(tmp_path: Path) -> None:
    make_project(tmp_path, settings(""))
    (tmp_path / "schema" / "deep").mkdir()
    found = find_root(tmp_path / "schema" / "deep")
    assert found is not None and found[0] == tmp_path and "[tool.veza-schema]" in found[1]


def test_root_is_the_nearest_directory_with_schema_and_migrations(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "migrations").mkdir()
    found = find_root(tmp_path / "schema")
    assert found is not None and found[0] == tmp_path


def test_a_pyproject_without_the_table_is_not_a_root(tmp_path: Path) -> None:
    make_project(tmp_path, "[project]\nname = \"other\"\n")
    assert find_root(tmp_path / "schema") is None


def test_without_a_root_the_state_directory_is_refused(tmp_path: Path) -> None:
    project = discover(tmp_path, environ={})
    assert project.root is None
    with pytest.raises(UsageError, match="no veza-schema project here"):
        _ = project.state_dir


def test_the_shipped_project_is_found_from_its_schema_directory() -> None:
    project = discover(REPO_ROOT / "schema", environ={})
    assert project.root == REPO_ROOT and project.settings_file == REPO_ROOT / "pyproject.toml"


# -- settings and their precedence -----------------------------------------------------------------------

def test_a_project_with_its_schema_elsewhere_lints_with_no_flag(tmp_path: Path) -> None:
    make_project(tmp_path, settings('schema-dir = "db/schema"\n'), schema_dir="db/schema")
    result = invoke("lint", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert {f["code"] for f in json.loads(result.stdout)["findings"]} == {"NAM002"}


def test_settings_paths_are_relative_to_the_root_from_any_subdirectory(tmp_path: Path) -> None:
    make_project(tmp_path, settings('schema-dir = "db/schema"\n'), schema_dir="db/schema")
    result = invoke("lint", "--format", "json", cwd=tmp_path / "db" / "schema")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["findings"][0]["file"].endswith("app.yaml")


def test_severity_setting_makes_a_family_fail_the_lint(tmp_path: Path) -> None:
    make_project(tmp_path, settings("[tool.veza-schema.lint]\nseverity = { naming = \"error\" }\n"))
    result = invoke("lint", cwd=tmp_path)
    assert result.exit_code == 1, result.output
    assert "NAM002" in result.stdout and "error" in result.stdout


def test_the_most_specific_severity_override_wins(tmp_path: Path) -> None:
    make_project(tmp_path, settings('[tool.veza-schema.lint]\nseverity = { NAM = "error", NAM002 = "warning" }\n'))
    assert invoke("lint", cwd=tmp_path).exit_code == 0


def test_select_and_ignore_settings_choose_the_rules(tmp_path: Path) -> None:
    make_project(tmp_path, settings('[tool.veza-schema.lint]\nignore = ["NAM002"]\nseverity = { NAM = "error" }\n'))
    result = invoke("lint", "--format", "json", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert "NAM002" not in json.loads(result.stdout)["rules_run"]


def test_generate_refuses_what_the_project_made_an_error(tmp_path: Path, pg_server: Server) -> None:
    make_project(tmp_path, settings("[tool.veza-schema.lint]\nseverity = { naming = \"error\" }\n"))
    result = invoke("generate", "--shadow-dsn", pg_server.admin_dsn, cwd=tmp_path)
    assert result.exit_code == 1, result.output
    assert "NAM002" in result.stdout and "generate refuses" in result.stderr
    assert not (tmp_path / "migrations").exists()


def test_generate_skips_the_rules_the_project_ignores(tmp_path: Path, pg_server: Server) -> None:
    without_updated_at = BADLY_NAMED_INDEX.replace("      updated_at: {type: timestamptz, default: now()}\n", "")
    make_project(tmp_path, settings('[tool.veza-schema.lint]\nignore = ["IMM002"]\n'), yaml=without_updated_at)
    result = invoke("generate", "--shadow-dsn", pg_server.admin_dsn, cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "migrations").glob("*.up.sql"))) == 1


def test_environment_overrides_settings_and_a_flag_overrides_both(tmp_path: Path) -> None:
    make_project(tmp_path, settings('[tool.veza-schema.lint]\nseverity = { NAM = "warning" }\n'))
    env = {"VEZA_LINT_SEVERITY": "NAM=error"}
    assert invoke("lint", cwd=tmp_path).exit_code == 0
    assert invoke("lint", cwd=tmp_path, env=env).exit_code == 1
    assert invoke("lint", "--severity", "NAM002=warning", cwd=tmp_path, env=env).exit_code == 0


def test_config_names_the_source_of_each_value(tmp_path: Path) -> None:
    make_project(tmp_path, settings('schema-dir = "schema"\nlock-timeout = "2s"\n'))
    (tmp_path / "migrations").mkdir()
    rows = config_of(tmp_path / "schema", env={"VEZA_STATEMENT_TIMEOUT": "1min"})
    assert rows["schema-dir"]["value"] == "." and "pyproject.toml" in rows["schema-dir"]["source"]
    assert rows["lock-timeout"]["value"] == "2s" and rows["lock-timeout"]["commands"] == ["generate"]
    assert rows["statement-timeout"]["value"] == "1min"
    assert rows["statement-timeout"]["source"] == "environment VEZA_STATEMENT_TIMEOUT"
    assert rows["migrations-dir"]["value"] == "../migrations"
    assert rows["migrations-dir"]["source"].startswith("built-in default, under the project root")
    assert rows["migration-lock-timeout"] == {**rows["migration-lock-timeout"], "value": 60.0,
                                              "source": "built-in default"}


def test_the_shipped_project_makes_naming_findings_errors() -> None:
    rows = config_of(REPO_ROOT)
    assert rows["lint.severity"]["value"] == {"NAM": "error"}
    assert "pyproject.toml" in rows["lint.severity"]["source"]


def test_generate_writes_the_settings_timeouts(tmp_path: Path) -> None:
    yaml = BADLY_NAMED_INDEX.replace("items_title", "idx_items_title")
    make_project(tmp_path, settings('lock-timeout = "2s"\n'), yaml=yaml)
    assert invoke("generate", cwd=tmp_path).exit_code == 0
    # A new column goes last: PostgreSQL appends it (generate refuses an order it cannot reach).
    (tmp_path / "schema" / "app.yaml").write_text(yaml.replace("    indexes:\n",
                                                               "      note: {type: text, nullable: true}\n"
                                                               "    indexes:\n"))
    result = invoke("generate", "--name", "add_note", cwd=tmp_path, env={"VEZA_STATEMENT_TIMEOUT": "3min"})
    assert result.exit_code == 0, result.output
    up = next((tmp_path / "migrations").glob("*_add_note.up.sql")).read_text()
    assert "SET LOCAL lock_timeout = '2s';" in up and "SET LOCAL statement_timeout = '3min';" in up


def test_a_project_wide_format_applies_where_the_command_offers_it(tmp_path: Path) -> None:
    make_project(tmp_path, settings('format = "sarif"\n'))
    result = invoke("lint", cwd=tmp_path)
    assert json.loads(result.stdout)["runs"][0]["results"][0]["ruleId"] == "NAM002"
    rows = json.loads(invoke("config", "--format", "json", cwd=tmp_path).stdout)["settings"]
    formats = {command: row["value"] for row in rows if row["key"] == "format" for command in row["commands"]}
    assert formats["lint"] == formats["check"] == "sarif"
    assert formats["status"] == formats["diff"] == "text"


@pytest.mark.parametrize(("text", "message"), [
    ('schema_dir = "db"\n', "has no setting 'schema_dir' (did you mean 'schema-dir'?)"),
    ('lock-timeout = "soon"\n', "is not a PostgreSQL duration"),
    ('rfc-pattern = "("\n', "is not a regular expression"),
    ('[tool.veza-schema.lint]\nseverity = { NAM = "fatal" }\n', "the severity is error or warning"),
    ('[tool.veza-schema.lint]\nselect = "NAM"\n', "expected a list of rule codes"),
    ('migration-lock-timeout = -1\n', "expected a number of seconds"),
    ('max-locks-per-file = 0\n', "expected a whole number >= 1"),
    ('schema-dir = \n', "pyproject.toml"),
])
def test_an_invalid_setting_is_exit_2_naming_it(tmp_path: Path, text: str, message: str) -> None:
    make_project(tmp_path, settings(text))
    result = invoke("lint", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_an_unknown_rule_in_a_severity_override_is_exit_2(tmp_path: Path) -> None:
    make_project(tmp_path, settings('[tool.veza-schema.lint]\nseverity = { XYZ = "error" }\n'))
    result = invoke("lint", cwd=tmp_path)
    assert result.exit_code == 2 and "XYZ" in result.stderr


def test_an_empty_environment_setting_is_exit_2(tmp_path: Path) -> None:
    make_project(tmp_path, settings(""))
    result = invoke("lint", cwd=tmp_path, env={"VEZA_SCHEMA_DIR": " "})
    assert result.exit_code == 2 and "VEZA_SCHEMA_DIR is set but empty" in result.stderr


# -- no silent wrong target ------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["apply", "rollback", "status", "hash", "lint", "check"])
def test_a_migrations_dir_that_does_not_exist_is_exit_2(tmp_path: Path, command: str) -> None:
    make_project(tmp_path, settings(""))
    result = invoke(command, "--migrations-dir", "migraitons", "--dsn", "postgresql://nobody@127.0.0.1:1/x",
                    cwd=tmp_path) if command in ("apply", "rollback", "status") else \
        invoke(command, "--migrations-dir", "migraitons", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert "--migrations-dir migraitons: directory not found" in result.stderr


def test_a_missing_default_migrations_dir_is_exit_2_for_apply(tmp_path: Path) -> None:
    make_project(tmp_path, settings(""))
    result = invoke("apply", "--dsn", "postgresql://nobody@127.0.0.1:1/x", cwd=tmp_path)
    assert result.exit_code == 2 and "veza-schema generate" in result.stderr


def test_a_migrations_dir_from_the_settings_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    make_project(tmp_path, settings('migrations-dir = "db/migrations"\n'))
    result = invoke("lint", cwd=tmp_path)
    assert result.exit_code == 2 and "pyproject.toml" in result.stderr


def test_a_schema_dir_that_does_not_exist_is_exit_2(tmp_path: Path) -> None:
    make_project(tmp_path, settings(""))
    for command in ("lint", "generate", "docs", "check"):
        result = invoke(command, "--schema-dir", "shcema", cwd=tmp_path)
        assert result.exit_code == 2, (command, result.output)
        assert "schema directory not found" in result.stderr


@pytest.mark.parametrize("env", [{"VEZA_DATABASE_URL": ""}, {"DATABASE_URL": "  "}])
def test_an_empty_dsn_variable_is_exit_2(tmp_path: Path, env: dict[str, str]) -> None:
    make_project(tmp_path, settings(""))
    (tmp_path / "migrations").mkdir()
    result = invoke("status", cwd=tmp_path, env=env)
    assert result.exit_code == 2 and "is set but empty" in result.stderr


def test_an_empty_dsn_flag_is_exit_2(tmp_path: Path) -> None:
    make_project(tmp_path, settings(""))
    (tmp_path / "migrations").mkdir()
    result = invoke("status", "--dsn", "", cwd=tmp_path)
    assert result.exit_code == 2 and "--dsn is empty" in result.stderr
    assert invoke("diff", "--shadow-dsn", "", cwd=tmp_path).exit_code == 2


def test_without_a_project_the_embedded_server_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()  # migrations alone do not make a project root
    for command in (["status"], ["db", "start"], ["db", "status"]):
        result = run_cli(*command, cwd=tmp_path)
        assert result.exit_code == 2, result.output
        assert "no veza-schema project here" in result.stderr
    assert not (tmp_path / ".veza").exists()


# Every command, run from schema/ of a project, with the arguments it needs to do its work.
COMMANDS_FROM_SCHEMA_DIR: list[list[str]] = [
    ["generate"], ["apply"], ["status"], ["rollback", "--dry-run"], ["hash"], ["lint"], ["check", "--base",
                                                                                         "migrations"],
    ["diff"], ["docs", "--check"], ["refresh"], ["partitions", "--dry-run"], ["rules"], ["config"],
    ["db", "status"], ["db", "url"], ["inspect", "--out", "out"], ["baseline", "--version", "1"],
    ["resolve", "1", "--rolled-back"],
]


@pytest.fixture(scope="module")
def sample_project() -> Iterator[Path]:
    """A project with its own embedded server. Outside pytest's temporary root: the embedded server
    runs as another OS user, and a pytest session starting meanwhile closes that root to others."""
    root = Path(tempfile.mkdtemp(prefix="veza-project-"))
    try:
        shutil.copytree(SAMPLE, root / "schema")
        assert run_cli("generate", cwd=root).exit_code == 0
        yield root
        run_cli("db", "stop", cwd=root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("args", COMMANDS_FROM_SCHEMA_DIR, ids=lambda a: "_".join(a[:2]))
def test_every_command_run_from_schema_works_on_the_root_and_never_creates_a_second_state_dir(
        sample_project: Path, args: list[str]) -> None:
    result = run_cli(*args, cwd=sample_project / "schema")
    assert result.exit_code in (0, 1, 2, 3), result.output
    assert "internal error" not in result.output
    assert not (sample_project / "schema" / ".veza").exists()
    assert not (sample_project / "schema" / "migrations").exists()
    assert not (sample_project / "schema" / "docs").exists()


def test_status_from_schema_reads_the_database_apply_wrote_from_the_root(sample_project: Path) -> None:
    assert run_cli("apply", cwd=sample_project).exit_code == 0
    result = run_cli("status", cwd=sample_project / "schema")
    assert result.exit_code == 0, result.output
    assert f"host={sample_project}/.veza/pgdata" in result.stdout or "Up to date." in result.stdout
    assert "Up to date." in result.stdout
