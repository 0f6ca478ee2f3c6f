"""Options and output helpers shared by every command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
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


# Width when stdout is not a terminal: piped or captured output never wraps, one record per line.
NO_WRAP_WIDTH = 100_000


def console() -> Console:
    """stdout; a terminal wraps at its width, anything else (a pipe, a CI log) never wraps."""
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else NO_WRAP_WIDTH)


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def check_choice(value: str, choices: tuple[str, ...], option: str) -> str:
    from veza_schema.errors import UsageError

    if value not in choices:
        raise UsageError(f"{option} {value!r}: choose one of {', '.join(choices)}")
    return value
