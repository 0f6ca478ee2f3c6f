"""The ``veza-schema`` command line: a thin layer over the library.

Each command module exposes ``register(app)``, called here in ``--help`` order; heavy imports
(psycopg, jinja2, pglast) happen inside command functions so ``veza-schema --help`` stays fast. Every expected
failure is a :class:`~veza_schema.errors.VezaSchemaError` printed on one line with its
documented exit code; tracebacks appear only with ``VEZA_DEBUG=1``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import typer

from veza_schema.cli import check, config, db, diff, docs, lint, maintenance, migrate
from veza_schema.errors import EXIT_CODES, EXIT_DATABASE, EXIT_INTERNAL, EXIT_INTERRUPTED, VezaSchemaError

COMMAND_MODULES = (migrate, db, lint, maintenance, docs, diff, check, config)  # the order of `--help`
WHOLE_APP_COMMANDS = ("config",)  # it reports the settings of every command, so it needs them all


def _new_app() -> typer.Typer:
    made = typer.Typer(
        name="veza-schema",
        help="Veza's PostgreSQL schema as code: lint the YAML, generate and apply migrations, diff live databases."
             "\n\nExit codes: " + "; ".join(f"{code} {text.split(':')[0]}" for code, text in EXIT_CODES.items())
             + ".",
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: typer's rich help imports markdown-it, pygments...
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    made.callback()(_project)
    return made


def _project(ctx: typer.Context) -> None:
    """Find the project (root and settings) before any command parses its options: the settings
    become the options' defaults (veza_schema.cli.config), so flags still win."""
    from veza_schema.cli.config import default_map
    from veza_schema.project import discover

    project = discover()
    ctx.obj = project
    ctx.default_map = default_map(ctx.command, project)


app = _new_app()
for command_module in COMMAND_MODULES:
    command_module.register(app)


def app_for(argv: Sequence[str]) -> typer.Typer:
    """The app holding only the command ``argv`` names (the whole app for help or an unknown name).

    Why: typer resolves the options of every registered command on each run; for a short
    command that costs more than the command's own work. The narrowed app keeps the whole app's
    shape (a group with the same callback), so project settings apply the same way.
    """
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    commands = [c for c in app.registered_commands if c.name == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if name is None or name in WHOLE_APP_COMMANDS or not (commands or groups):
        return app
    narrowed = _new_app()
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    return narrowed


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: click's for usage errors (2), ours for our errors.

    Every expected failure prints one line; anything else is a bug (exit 4), with a traceback
    only when ``VEZA_DEBUG`` is set. Whatever is printed passes through the DSN redaction first
    (:func:`veza_schema.db.dsn.redact_text`): no password reaches the terminal or a CI log.
    """
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its parse fallbacks are not the user's business
    from veza_schema.sql import parse_cache

    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        parse_cache.enable()  # SQL parse answers kept between runs (see the module)
        app_for(args)(args=args, prog_name="veza-schema")
    except SystemExit as exc:  # click ends every command this way, typer.Exit included
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except VezaSchemaError as exc:
        _print_error(str(exc), args)
        return exc.exit_code
    except KeyboardInterrupt:
        _print_error("interrupted", args)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - last resort: one line, not a traceback
        if os.environ.get("VEZA_DEBUG"):
            import traceback

            _print_error("internal error:\n" + "".join(traceback.format_exception(exc)).rstrip(), args)
            return EXIT_INTERNAL
        if type(exc).__module__.startswith("psycopg"):  # a server error no command wrapped: still exit 3
            from veza_schema.db.errors import server_message

            _print_error(f"database error: {server_message(exc)}", args)
            return EXIT_DATABASE
        _print_error(f"internal error: {type(exc).__name__}: {exc} (set VEZA_DEBUG=1 for a traceback)", args)
        return EXIT_INTERNAL
    finally:
        parse_cache.save_and_disable()
    return 0


def main() -> None:
    """The ``veza-schema`` console script."""
    sys.exit(run())


def _print_error(message: str, args: Sequence[str]) -> None:
    from rich.console import Console
    from rich.markup import escape

    from veza_schema.db.dsn import redact_text, secrets_from

    dsn_variables = [os.environ.get(name, "") for name in ("VEZA_DATABASE_URL", "DATABASE_URL")]
    message = redact_text(message, secrets_from([*args, *dsn_variables]))
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    first, *rest = message.splitlines() or [""]
    console.print(f"[bold red]error:[/] {escape(first)}", markup=True)
    for line in rest:
        console.print(line, markup=False)
