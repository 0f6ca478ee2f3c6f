"""Options and output helpers shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

SchemaDirOption = Annotated[Path, typer.Option("--schema-dir", help="Directory of the module YAML files.")]
MigrationsDirOption = Annotated[Path, typer.Option("--migrations-dir", help="Directory of the migration files.")]
DsnOption = Annotated[
    str | None,
    typer.Option("--dsn", help="PostgreSQL DSN. Default: $VEZA_DATABASE_URL, $DATABASE_URL, PG* variables, "
                               "else the embedded server.", show_default=False),
]
FormatOption = Annotated[str, typer.Option("--format", help="Output format.")]

DEFAULT_SCHEMA_DIR = Path("schema")
DEFAULT_MIGRATIONS_DIR = Path("migrations")


def console() -> Console:
    from rich.console import Console  # imported when a command prints, not for --help

    return Console(highlight=False, soft_wrap=True)


def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    from veza_schema.errors import UsageError

    if value not in choices:
        raise UsageError(f"{option} {value!r}: choose one of {', '.join(choices)}")
    return value
