"""Bad input never gives a traceback: a located one-line message and a documented exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import invoke, run_cli

GOOD_USERS = """\
module: users
tables:
  users:
    columns:
      id: {type: uuid, primary_key: true}
"""

CASES = {
    "unknown key": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid, primary_key: true, nulable: true}\n",
        "users.yaml:5:43: unknown key 'nulable' in column users.id; did you mean 'nullable'?",
    ),
    "wrong type": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid, nullable: maybe}\n",
        "users.yaml:5:34: nullable of column users.id must be true or false, got str 'maybe'",
    ),
    "duplicate key": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid}\n      id: {type: text}\n",
        "users.yaml:6:7: duplicate key 'id' in columns of table users (first declared at line 5)",
    ),
    "missing referenced table": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid, references: teams.id}\n",
        "users.yaml:5:36: foreign key fk_users_teams of table users references missing table 'teams'",
    ),
    "missing referenced column": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid, primary_key: true}\n"
        "      boss: {type: uuid, references: users.nope, on_delete: cascade}\n",
        "users.yaml:6:38: foreign key fk_users_users of table users references missing column users.nope",
    ),
    "index on unknown column": (
        GOOD_USERS + "    indexes:\n      idx_users_x_btree: {columns: [x]}\n",
        "users.yaml:7:7: index idx_users_x_btree on users names unknown column 'x'",
    ),
    "invalid yaml": (
        "module: users\ntables:\n  users: {columns: [\n",
        "users.yaml:4:1: invalid YAML",
    ),
    "not a type": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: 'varchar(('}\n",
        "users.yaml:5:18: type of column users.id is not a type: 'varchar(('",
    ),
    "python tag": (
        "module: users\ntables:\n  users:\n    columns:\n      id: !!python/name:os.system {type: uuid}\n",
        "users.yaml:5:11: unsupported YAML tag '!!python/name:os.system'",
    ),
    "custom tag": (
        "module: users\ntables:\n  users: !include other.yaml\n",
        "users.yaml:3:10: unsupported YAML tag '!include'",
    ),
    "second statement in a default": (
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid, default: 'now(); DROP TABLE x'}\n",
        "users.yaml:5:33: default of column users.id: syntax error at or near \";\" (at character 6)",
    ),
    "module name differs from file": (
        GOOD_USERS.replace("module: users", "module: people"),
        "users.yaml:1:9: module 'people' must be declared in a file named people.yaml",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda c: c.replace(" ", "_"))
def test_bad_yaml_reports_file_line_and_exits_2(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "users.yaml").write_text(text)
    result = invoke("generate", "--schema-dir", str(schema), "--migrations-dir", str(tmp_path / "m"),
                     cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_a_name_declared_in_two_files_is_reported_with_both_places(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "users.yaml").write_text(GOOD_USERS)
    (schema / "more.yaml").write_text(GOOD_USERS.replace("module: users", "module: more"))
    result = invoke("generate", "--schema-dir", str(schema), "--migrations-dir", str(tmp_path / "m"),
                     cwd=tmp_path)
    assert result.exit_code == 2
    assert ("schema/users.yaml:3:3: duplicate name 'users': table here, table already declared at "
            "schema/more.yaml:3:3") in result.stderr


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "users.yaml").write_text(
        "module: users\ntables:\n  users:\n    columns:\n      id: {type: uuid, colour: red}\n"
        "      name: {type: text, nullable: 3}\n")
    result = invoke("generate", "--schema-dir", str(schema), "--migrations-dir", str(tmp_path / "m"),
                     cwd=tmp_path)
    assert result.exit_code == 2
    assert "users.yaml:5:24: unknown key 'colour'" in result.stderr
    assert "users.yaml:6:36: nullable of column users.name must be true or false" in result.stderr


def test_missing_schema_directory_exits_2(tmp_path: Path) -> None:
    result = invoke("generate", "--schema-dir", str(tmp_path / "nope"), "--migrations-dir", str(tmp_path / "m"))
    assert result.exit_code == 2
    assert "schema directory not found" in result.stderr


def test_unreachable_dsn_is_one_line_and_exits_3(tmp_path: Path) -> None:
    result = invoke("apply", "--dsn", "postgresql://nobody@127.0.0.1:1/nowhere", "--migrations-dir",
                     str(tmp_path))
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: cannot connect to postgresql://nobody@127.0.0.1:1/nowhere")


def test_malformed_dsn_is_one_line_and_exits_3(tmp_path: Path) -> None:
    result = invoke("apply", "--dsn", "postgresql://x@[broken", "--migrations-dir", str(tmp_path))
    assert result.exit_code == 3
    assert len(result.stderr.strip().splitlines()) == 1
    assert "malformed DSN in --dsn" in result.stderr


def test_password_never_printed(tmp_path: Path) -> None:
    result = invoke("apply", "--dsn", "postgresql://bob:s3cret@127.0.0.1:1/db", "--migrations-dir", str(tmp_path))
    assert result.exit_code == 3
    assert "s3cret" not in result.output


def test_unknown_option_is_a_usage_error_exit_2() -> None:
    result = invoke("apply", "--no-such-flag")
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_bad_migration_file_name_exits_2(tmp_path: Path) -> None:
    (tmp_path / "create_users.sql").write_text("SELECT 1;")
    result = invoke("apply", "--dsn", "postgresql://x@127.0.0.1:1/db", "--migrations-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "create_users.sql: migration files are named" in result.stderr


def test_the_installed_command_reports_bad_input_with_exit_2_in_a_real_process(tmp_path: Path) -> None:
    """Smoke test of the real console entry point (the tests above run the CLI in process)."""
    result = run_cli("generate", "--schema-dir", str(tmp_path / "nope"), "--migrations-dir", str(tmp_path / "m"))
    assert result.exit_code == 2
    assert "schema directory not found" in result.stderr
    assert "Traceback" not in result.output
