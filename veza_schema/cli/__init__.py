"""The ``veza-schema`` command line: a thin layer over the library.

Each command module exposes ``register(app)``, called here in ``--help`` order; heavy imports
(psycopg, jinja2, pglast) happen inside command functions so ``veza-schema --help`` stays fast. Every expected
failure is a :class:`~veza_schema.errors.VezaSchemaError` printed on one line with its
documented exit code; tracebacks appear only with ``VEZA_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from veza_schema.cli import check, db, diff, docs, lint, maintenance, migrate
from veza_schema.errors import EXIT_CODES, EXIT_INTERNAL, EXIT_INTERRUPTED, VezaSchemaError

COMMAND_MODULES = (migrate, db, lint, maintenance, docs, diff, check)  # the order of `--help`


def _new_app() -> typer.Typer:
    return typer.Typer(
        name="veza-schema",
        help="Veza's PostgreSQL schema as code: lint the YAML, generate and apply migrations, diff live databases."
             "\n\nExit codes: " + "; ".join(f"{code} {text.split(':')[0]}" for code, text in EXIT_CODES.items())
             + ".",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: typer's rich help imports markdown-it, pygments...
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _new_app()
for command_module in COMMAND_MODULES:
    command_module.register(app)


def app_for(argv: Sequence[str]) -> typer.Typer:
    """The app holding only the command ``argv`` names (the whole app for help or an unknown name).

    Why: typer resolves the options of every registered command on each run; for a short
    command that costs more than the command's own work.
    """
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    commands = [c for c in app.registered_commands if c.name == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if name is None or not (commands or groups):
        return app
    narrowed = _new_app()
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    narrowed.callback()(_no_options)  # a group, as the whole app is: `veza-schema NAME ...` keeps its shape
    return narrowed


def _no_options() -> None:
    """The app's own options: none besides --help."""


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: click's for usage errors (2), ours for our errors.

    Every expected failure prints one line; anything else is a bug (exit 4), with a traceback
    only when ``VEZA_DEBUG`` is set.
    """
    from veza_schema.sql import parse_cache

    try:
        parse_cache.enable()  # SQL parse answers kept between runs (see the module)
        args = list(argv) if argv is not None else sys.argv[1:]
        app_for(args)(args=args, prog_name="veza-schema")
    except SystemExit as exc:  # click ends every command this way, typer.Exit included
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except VezaSchemaError as exc:
        _print_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("VEZA_DEBUG"):
            raise
        _print_error(f"internal error: {type(exc).__name__}: {exc} (set VEZA_DEBUG=1 for a traceback)")
        return EXIT_INTERNAL
    finally:
        parse_cache.save_and_disable()
    return 0


def main() -> None:
    """The ``veza-schema`` console script."""
    sys.exit(run())


def _print_error(message: str) -> None:
    from rich.console import Console

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    first, *rest = message.splitlines() or [""]
    console.print(f"[bold red]error:[/] {first}", markup=True)
    for line in rest:
        console.print(line, markup=False)
