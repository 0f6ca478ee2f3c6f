"""The CLI builds only the command it runs: the commands keep their names, help and errors."""

from __future__ import annotations

import pytest

from tests.helpers import invoke
from veza_schema.cli import WHOLE_APP_COMMANDS, app, app_for

COMMANDS = sorted([c.name for c in app.registered_commands if c.name] +
                  [g.name for g in app.registered_groups if g.name])


def test_the_top_level_help_lists_every_command() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in WHOLE_APP_COMMANDS])
def test_each_command_runs_alone_with_its_own_help(command: str) -> None:
    narrowed = app_for([command, "--help"])
    assert narrowed is not app
    names = [c.name for c in narrowed.registered_commands] + [g.name for g in narrowed.registered_groups]
    assert names == [command]
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: veza-schema {command}" in result.stdout


def test_config_sees_every_command_it_reports_on() -> None:
    assert app_for(["config"]) is app
    result = invoke("config", "--format", "json")
    assert result.exit_code == 0, result.output
    assert '"lint"' in result.stdout and '"apply"' in result.stdout


def test_an_unknown_command_is_answered_by_the_whole_app() -> None:
    assert app_for(["lnt"]) is app
    result = invoke("lnt")
    assert result.exit_code == 2
    assert "Did you mean 'lint'?" in result.stderr


def test_a_bad_option_names_its_command() -> None:
    result = invoke("lint", "--bogus")
    assert result.exit_code == 2
    assert "Usage: veza-schema lint" in result.stderr and "No such option: --bogus" in result.stderr
