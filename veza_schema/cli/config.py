"""Project settings on the command line: every setting becomes its option's default, and
``veza-schema config`` shows each effective value with where it came from.

Precedence: a flag, else the setting's ``VEZA_*`` environment variable, else ``[tool.veza-schema]``
in the project's ``pyproject.toml``, else the command's built-in default. Click gives flags
precedence over its ``default_map``; the map is filled here, once the project is known, from the
environment and the settings (:mod:`veza_schema.project`). Directory options default to the
project root's directories, so a command run from a subdirectory works on the same files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from veza_schema.cli.common import check_choice, console
from veza_schema.project import SETTINGS, Project, Setting

# Formats each command offers, for a project-wide `format = "json"`: a command that does not offer
# the format keeps its own default. A per-command table (`format = {lint = "github"}`) is taken as given.
COMMAND_FORMATS: dict[str, tuple[str, ...]] = {
    "lint": ("text", "json", "sarif", "github"),
    "check": ("text", "json", "sarif", "github"),
    "rules": ("text", "json", "markdown"),
    "status": ("text", "json"),
    "diff": ("text", "json", "sql"),
    "config": ("text", "json"),
}
ROOT_RELATIVE = ("schema-dir", "migrations-dir", "docs-dir")  # built-in defaults that live under the root


def register(app: typer.Typer) -> None:
    app.command("config")(config_command)
    app.command("json-schema")(json_schema_command)


@dataclass(frozen=True)
class Effective:
    """One setting's value for one command, and where it came from."""

    setting: Setting
    command: str
    value: Any
    source: str  # "flag" is never here: config shows what a command gets without flags


def _display_path(path: Path) -> str:
    try:
        return os.path.relpath(path, Path.cwd())
    except ValueError:  # another drive
        return str(path)


def _option(command: Any, flag: str) -> Any:
    return next((p for p in command.params if flag in getattr(p, "opts", ())), None)


def _applies(setting: Setting, name: str, command: Any) -> bool:
    return (not setting.commands or name in setting.commands) and _option(command, setting.option) is not None


def _format_for(value: Any, name: str) -> str | None:
    if isinstance(value, dict):
        return value.get(name)
    return value if value in COMMAND_FORMATS.get(name, ()) else None


def _builtin(setting: Setting, command: Any) -> Any:
    param = _option(command, setting.option)
    default = None if param is None else param.default
    if setting.key == "rfc-pattern" and default is None:
        from veza_schema.project import DEFAULT_RFC_PATTERN

        return DEFAULT_RFC_PATTERN
    if setting.key == "shadow-dsn" and default is None:
        return "the embedded server (diff: a container of the target's major version when Docker answers)"
    if setting.key == "lint.severity" and not default:
        return "each rule's own (docs/rules.md)"
    if setting.key == "lint.select" and not default:
        return "every rule"
    if setting.key == "lint.ignore" and not default:
        return "none"
    if isinstance(default, Path):
        return default.as_posix()
    return default


def effective(project: Project, name: str, command: Any, setting: Setting) -> Effective:
    """The value ``command`` gets for ``setting`` when no flag is given."""
    given = project.values.get(setting.key)
    if setting.kind == "format" and given is not None:
        chosen = _format_for(given.value, name)
        if chosen is not None:
            return Effective(setting, name, chosen, _source(given.source, given.origin))
        given = None
    if given is not None:
        value: Any = given.value
        if setting.kind == "path":
            path = project.path(setting.key)
            assert path is not None
            value = _display_path(path)
        return Effective(setting, name, value, _source(given.source, given.origin))
    builtin = _builtin(setting, command)
    if setting.key in ROOT_RELATIVE and project.root is not None and isinstance(builtin, str):
        return Effective(setting, name, _display_path(project.root / builtin), f"built-in default, under the "
                                                                             f"project root {project.root}")
    return Effective(setting, name, builtin, "built-in default")


def _source(kind: str, origin: str) -> str:
    return f"environment {origin}" if kind == "environment" else f"settings {origin} [tool.veza-schema]"


def _commands(group: Any) -> dict[str, Any]:
    """The leaf commands of the (typer) group, by name; sub-groups (`db`) take no setting."""
    return {name: command for name, command in group.commands.items() if not hasattr(command, "commands")}


def default_map(group: Any, project: Project) -> dict[str, dict[str, Any]]:
    """Click's ``default_map`` for every command of ``group``: the settings in force, root-relative dirs."""
    found: dict[str, dict[str, Any]] = {}
    for name, command in _commands(group).items():
        for setting in SETTINGS:
            if not _applies(setting, name, command):
                continue
            if setting.key not in project.values and not (setting.key in ROOT_RELATIVE and project.root):
                continue
            if setting.kind == "format" and _format_for(project.values[setting.key].value, name) is None:
                continue
            value = effective(project, name, command, setting).value
            if setting.kind == "severities":
                value = [f"{code}={level}" for code, level in value.items()]
            param = _option(command, setting.option)
            assert param is not None and param.name is not None
            found.setdefault(name, {})[param.name] = value
    return found


def config_command(
    ctx: typer.Context,
    output_format: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Show each setting's effective value, the commands it applies to, and where it came from.

    Precedence: flag > VEZA_* environment variable > [tool.veza-schema] in pyproject.toml >
    built-in default. Example:

        veza-schema config
    """
    from veza_schema.project import discover

    check_choice(output_format, COMMAND_FORMATS["config"], "--format")
    root_ctx = ctx.find_root()
    project = root_ctx.obj if isinstance(root_ctx.obj, Project) else discover()
    group = root_ctx.command
    rows: list[dict[str, Any]] = []
    for setting in SETTINGS:
        per_command = [effective(project, name, command, setting) for name, command in _commands(group).items()
                       if _applies(setting, name, command)]
        groups: dict[str, list[Effective]] = {}
        for item in per_command:
            groups.setdefault(json.dumps([item.value, item.source], default=str), []).append(item)
        for items in groups.values():
            rows.append({"key": setting.key, "value": items[0].value, "source": items[0].source,
                         "environment": setting.env, "option": setting.option,
                         "commands": [item.command for item in items], "help": setting.help})
    if output_format == "json":
        print(json.dumps({"root": str(project.root) if project.root else None, "found_by": project.marker,
                          "settings_file": str(project.settings_file) if project.settings_file else None,
                          "settings": rows}, indent=2, default=str))
        return
    out = console()
    out.print(f"Project root: {project.root}" if project.root else "Project root: none", markup=False)
    out.print(f"  ({project.marker})", markup=False)
    for row in rows:
        value = row["value"]
        shown = json.dumps(value) if isinstance(value, list | dict) else str(value)
        out.print(f"{row['key']} = {shown}", markup=False)
        out.print(f"    from {row['source']}; option {row['option']} of {', '.join(row['commands'])}; "
                  f"environment {row['environment']}", markup=False)


def json_schema_command(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the schema to this file instead of "
                                                "stdout.", show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 when --output's file is not what "
                                                        "would be written (for CI).")] = False,
) -> None:
    """Print the JSON Schema of the YAML format, generated from the loader's own contract.

    Editors (VS Code's YAML extension, any yaml-language-server client) complete and check a module
    file that starts with `# yaml-language-server: $schema=<path to the schema>`. Examples:

        veza-schema json-schema --output docs/yaml-format.schema.json

        veza-schema json-schema --output docs/yaml-format.schema.json --check
    """
    from veza_schema.errors import UsageError
    from veza_schema.yaml.contract import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if check:
        if output is None:
            raise UsageError("--check needs --output (the committed schema file)")
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current != text:
            console().print(f"{output} is stale: run `veza-schema json-schema --output {output}` and commit it.",
                            markup=False)
            raise typer.Exit(1)
        console().print(f"{output} is up to date.", markup=False)
        return
    if output is None:
        print(text, end="")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console().print(f"Wrote {output}.", markup=False)
