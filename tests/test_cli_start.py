"""The CLI builds only the command it runs: the commands keep their names, help and errors.

``--help`` and unknown names are answered by the command directory (``COMMANDS``), which imports
no command module; the tests hold it to the whole app, word for word.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from tests.helpers import REPO_ROOT, cli_env, invoke, run_cli
from veza_schema.cli import COMMANDS, WHOLE_APP_COMMANDS, app_for, whole_app


def _help_text(app: typer.Typer, width: int) -> str:
    group = typer.main.get_command(app)
    with group.make_context("veza-schema", [], resilient_parsing=True, terminal_width=width) as ctx:
        return group.get_help(ctx)


def _registered(app: typer.Typer) -> list[str]:
    return [c.name or "" for c in app.registered_commands] + [g.name or "" for g in app.registered_groups]


def _imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"import sys\n{code}\nprint('modules:', *sys.modules)"
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=120, check=True)
    return set(proc.stdout.rsplit("modules:", 1)[1].split())


def test_the_top_level_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == _registered(whole_app())


@pytest.mark.parametrize("width", [80, 200])
def test_the_directory_help_is_the_whole_apps_help_word_for_word(width: int) -> None:
    assert _help_text(app_for(["--help"]), width) == _help_text(whole_app(), width)


def test_the_directory_table_holds_each_commands_module_and_first_help_paragraph() -> None:
    for command in whole_app().registered_commands:
        module, first_paragraph = COMMANDS[command.name or ""]
        assert command.callback is not None
        assert command.callback.__module__ == f"veza_schema.cli.{module}"
        assert (command.help or inspect.getdoc(command.callback) or "").split("\n\n")[0] == first_paragraph
    for group in whole_app().registered_groups:
        module, first_paragraph = COMMANDS[group.name or ""]
        assert group.typer_instance is not None
        assert group.typer_instance.info.help == first_paragraph


def test_the_top_level_help_imports_no_command_module_and_loads_no_parse_cache() -> None:
    loaded = _imported_after("from veza_schema.cli import run\nassert run(['--help']) == 0")
    assert not {name for name in loaded if name.startswith("veza_schema.cli.")}
    assert "veza_schema.sql.parse_cache" not in loaded


# What lint --offline has no use for: the database driver and what uses it, sqlglot, the layers above lint.
NOT_FOR_OFFLINE_LINT = ("psycopg", "sqlglot", "veza_schema.db.shadow", "veza_schema.db.introspect",
                        "veza_schema.diff", "veza_schema.policy", "veza_schema.drift", "veza_schema.docs",
                        "veza_schema.maintenance")


def _packages(loaded: set[str], packages: tuple[str, ...]) -> set[str]:
    return {name for name in loaded if name.startswith(tuple(f"{p}." for p in packages)) or name in packages}


def test_offline_lint_of_the_shipped_schema_imports_neither_the_driver_nor_the_differ() -> None:
    loaded = _imported_after("from veza_schema.cli import run\nassert run(['lint', '--offline']) == 0")
    assert "veza_schema.lint.engine" in loaded
    assert not _packages(loaded, NOT_FOR_OFFLINE_LINT)


def test_offline_lint_printed_to_a_pipe_imports_no_rich() -> None:
    loaded = _imported_after("from veza_schema.cli import run\nassert run(['lint', '--offline']) == 0")
    assert "veza_schema.lint.engine" in loaded
    assert not _packages(loaded, ("rich",))


def test_offline_lint_of_a_schema_without_generated_functions_imports_no_template_engine(tmp_path: Path) -> None:
    (tmp_path / "core.yaml").write_text(
        "module: core\ntables:\n  users:\n    columns:\n"
        "      id: {type: bigint, primary_key: true, identity: always}\n"
        "      created_at: {type: timestamptz, default: now()}\n", encoding="utf-8")
    run = f"assert run(['lint', '--offline', '--schema-dir', {str(tmp_path)!r}]) in (0, 1)  # linted"
    loaded = _imported_after(f"from veza_schema.cli import run\n{run}")
    assert "veza_schema.lint.engine" in loaded
    assert not _packages(loaded, ("jinja2", *NOT_FOR_OFFLINE_LINT))


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in WHOLE_APP_COMMANDS])
def test_each_command_runs_alone_with_its_own_help(command: str) -> None:
    narrowed = app_for([command, "--help"])
    assert narrowed is not whole_app()
    assert _registered(narrowed) == [command]
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: veza-schema {command}" in result.stdout


def test_config_sees_every_command_it_reports_on() -> None:
    assert app_for(["config"]) is whole_app()
    result = invoke("config", "--format", "json")
    assert result.exit_code == 0, result.output
    assert '"lint"' in result.stdout and '"apply"' in result.stdout


def test_shell_completion_gets_the_whole_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_VEZA_SCHEMA_COMPLETE", "bash_complete")
    assert app_for(["lint"]) is whole_app()


def test_an_unknown_command_is_answered_with_a_suggestion() -> None:
    result = invoke("lnt")
    assert result.exit_code == 2
    assert "Did you mean 'lint'?" in result.stderr


def test_no_command_prints_the_help_and_exits_2() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "Commands:" in result.stdout + result.stderr


def test_a_bad_option_names_its_command() -> None:
    result = invoke("lint", "--bogus")
    assert result.exit_code == 2
    assert "Usage: veza-schema lint" in result.stderr and "No such option: --bogus" in result.stderr


def test_version_prints_the_installed_distributions_version_and_exits_0() -> None:
    import importlib.metadata
    import platform

    result = run_cli("--version")
    assert result.exit_code == 0, result.output
    assert result.stdout == (f"veza-schema {importlib.metadata.version('veza-schema')} "
                             f"(Python {platform.python_version()})\n")


def test_version_is_answered_before_the_project_settings_are_read(tmp_path: Path) -> None:
    """A bug report starts with the version: a broken pyproject.toml must not stand in its way."""
    (tmp_path / "pyproject.toml").write_text("[tool.veza-schema]\nschema-dir = [\n")
    assert invoke("lint", cwd=tmp_path).exit_code == 2  # the same settings stop every command
    result = invoke("--version", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("veza-schema ")
