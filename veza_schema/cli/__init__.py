"""The ``veza-schema`` command line: a thin layer over the library.

Each command module exposes ``register(app)``; heavy imports (psycopg, jinja2, sqlglot)
happen inside command functions so ``veza-schema --help`` stays fast. Every expected
failure is a :class:`~veza_schema.errors.VezaSchemaError` printed on one line with its
documented exit code; tracebacks appear only with ``VEZA_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

app = typer.Typer(
    name="veza-schema",
    help="Veza's PostgreSQL schema as code: lint the YAML, generate and apply migrations, diff live databases.\n\n"
         "Exit codes: 0 ok; 1 findings or drift; 2 bad input or usage; 3 database error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Command modules, each with register(app). Order is the order of `--help`.
COMMAND_MODULES = (
    "veza_schema.cli.migrate",
    "veza_schema.cli.db",
    "veza_schema.cli.lint",
    "veza_schema.cli.maintenance",
    "veza_schema.cli.docs",
    "veza_schema.cli.diff",
    "veza_schema.cli.check",
)


def _register_all() -> None:
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(app)


_register_all()


def main() -> None:
    """Entry point: click handles usage errors (exit 2); our errors print one line."""
    from veza_schema.errors import VezaSchemaError

    try:
        app()
    except VezaSchemaError as exc:
        _print_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _print_error("interrupted")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("VEZA_DEBUG"):
            raise
        _print_error(f"internal error: {type(exc).__name__}: {exc} (set VEZA_DEBUG=1 for a traceback)")
        sys.exit(4)


def _print_error(message: str) -> None:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    first, *rest = message.splitlines() or [""]
    console.print(f"[bold red]error:[/] {first}", markup=True)
    for line in rest:
        console.print(line, markup=False)
