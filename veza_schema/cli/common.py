"""Options and output helpers shared by every command."""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console


def _migrations_dir(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """A migrations directory that does not exist is a wrong target (exit 2), never "nothing to apply".

    ``generate`` creates it (a project's first migration); ``lint`` and ``check`` read it only when
    there are migrations (the sum, ``--base migrations``), so there the built-in default may be absent.
    """
    if value is None or value.is_dir():
        return value
    from veza_schema.errors import UsageError

    if value.exists():
        raise UsageError(f"--migrations-dir {value}: not a directory")
    source = _source(ctx, param)
    command = ctx.info_name or ""
    if command == "generate":  # it starts a migration set: the directory is made with the first file
        return value
    if command in ("lint", "check") and source == "built-in default":
        return value
    hint = " (run `veza-schema generate` to write the first migration)" if source == "built-in default" else ""
    raise UsageError(f"--migrations-dir {value}: directory not found (from {source}){hint}")


def _source(ctx: typer.Context, param: typer.CallbackParam) -> str:
    """Where an option's value came from, in words: the flag, the project's settings or environment, or
    the built-in default (which is under the project root when there is one)."""
    from veza_schema.project import SETTINGS, Project

    origin = ctx.get_parameter_source(param.name or "")
    if origin is not None and origin.name == "COMMANDLINE":
        return "the command line"
    project = ctx.find_root().obj
    if isinstance(project, Project):
        for setting in SETTINGS:
            given = project.values.get(setting.key)
            if given is not None and setting.option in param.opts and origin is not None \
                    and origin.name == "DEFAULT_MAP":
                return given.origin
    return "built-in default"


def _shadow_dsn(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """Refuse an empty value or a ``docker://`` one that names no image before anything runs (exit 2)."""
    if isinstance(value, str):
        if not value.strip():
            from veza_schema.errors import UsageError

            raise UsageError(f"{param.opts[0]} is empty: give a value, or leave the option out")
        from veza_schema.db.servers import docker_image

        docker_image(value)
    return value


SchemaDirOption = Annotated[Path, typer.Option("--schema-dir", help="Directory of the module YAML files.")]
MigrationsDirOption = Annotated[Path, typer.Option("--migrations-dir", help="Directory of the migration files.",
                                                   callback=_migrations_dir)]
DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", help="PostgreSQL DSN. Default: $VEZA_DATABASE_URL, $DATABASE_URL, PG* variables, "
                               "else the embedded server.", show_default=False),
]
ShadowDsnOption = Annotated[
    str | None,
    typer.Option("--shadow-dsn", help="Server to build shadow databases on: a DSN (its role needs CREATEDB) or "
                                      "docker://IMAGE[:TAG] (a container started and removed, e.g. "
                                      "docker://postgres:15). Default: the embedded server.",
                 show_default=False, callback=_shadow_dsn),
]
FormatOption = Annotated[str, typer.Option("--format", help="Output format.")]

DEFAULT_SCHEMA_DIR = Path("schema")
DEFAULT_MIGRATIONS_DIR = Path("migrations")


# Width when stdout is not a terminal: piped or captured output never wraps, one record per line.
NO_WRAP_WIDTH = 100_000


@cache
def _printable_console() -> type[Console]:
    """A rich Console whose ``print`` shows terminal controls in text as visible escapes
    (:func:`veza_schema.errors.printable`): names, expressions and messages quote untrusted YAML.
    Built on first print, so ``--help`` never imports rich's console."""
    from rich.console import Console

    from veza_schema.errors import printable

    class PrintableConsole(Console):
        def print(self, *objects: Any, **options: Any) -> None:
            super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **options)

    return PrintableConsole


def terminal_colors() -> tuple[bool, int]:
    """Whether stdout gets colours, and its width, as rich decides them (FORCE_COLOR, NO_COLOR, a dumb
    TERM, a pipe), without importing rich when nothing will be coloured: lint's plain report needs none."""
    import os

    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "").lower() in ("dumb", "unknown"):
        return False, 80
    if not (os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1" or sys.stdout.isatty()):
        return False, 80
    from rich.console import Console

    terminal = Console()
    return terminal.is_terminal and not terminal.no_color and terminal.color_system is not None, terminal.width


Part = str | tuple[str, str]  # a text, or (text, rich style) styled only when colours are on


class Output:
    """Lines for people on stdout, as :func:`console` prints them; rich is imported only when colours are on.

    Why: ``apply`` prints a few lines, and rich's import costs more than the rest of its output; without
    colour the text is rich's, character for character (tests/test_cli_apply.py holds it so), flushed at
    each line as rich does (a CI log shows a slow statement when it is named). Every part is shown through
    :func:`veza_schema.errors.printable` and never read as markup: it quotes names from untrusted YAML.
    """

    def __init__(self, rich_console: Console | None) -> None:
        self.rich_console = rich_console

    @classmethod
    def stdout(cls) -> Output:
        return cls(console() if terminal_colors()[0] else None)

    def line(self, *parts: Part, end: str = "\n") -> None:
        from veza_schema.errors import printable

        if self.rich_console is None:
            text = printable("".join(part if isinstance(part, str) else part[0] for part in parts))
            sys.stdout.write(text.expandtabs(8) + end)  # rich's tab stops
            sys.stdout.flush()
            return
        from rich.text import Text

        self.rich_console.print(Text.assemble(*(printable(part) if isinstance(part, str) else
                                                (printable(part[0]), part[1]) for part in parts)), end=end)


def console() -> Console:
    """stdout; a terminal wraps at its width, anything else (a pipe, a CI log) never wraps."""
    return _printable_console()(highlight=False, soft_wrap=True, emoji=False,
                                width=None if sys.stdout.isatty() else NO_WRAP_WIDTH)


def error_console() -> Console:
    return _printable_console()(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    from veza_schema.errors import UsageError

    if value not in choices:
        raise UsageError(f"{option} {value!r}: choose one of {', '.join(choices)}")
    return value
