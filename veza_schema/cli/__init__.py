"""The ``veza-schema`` command line: a thin layer over the library.

Each command module exposes ``register(app)``. A run imports and builds only the module of the
command it names (:func:`app_for`); ``--help``, no command or an unknown one get the command
directory (:data:`COMMANDS`: names and first help paragraphs, no module imported), so the
top-level help costs the price of typer alone. Heavy imports (psycopg, jinja2, pglast) happen
inside command functions. Every expected failure is a :class:`~veza_schema.errors.VezaSchemaError`
printed on one line with its documented exit code; tracebacks appear only with ``VEZA_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from functools import cache
from typing import Annotated

import typer

from veza_schema.errors import EXIT_CODES, EXIT_DATABASE, EXIT_INTERNAL, EXIT_INTERRUPTED, VezaSchemaError

# Every command (or group, like `db`) in `--help` order: the module registering it, and the first
# paragraph of its help, which the top-level help shows. tests/test_cli_start.py holds this table
# to the commands' own docstrings and the directory's help to the whole app's, word for word.
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("migrate", "Write the next change (one or more up/down pairs) from the changes in schema/."),
    "apply": ("migrate", "Apply pending migrations in version order, each file with its history row."),
    "rollback": ("migrate", "Undo the last change (all the files one `generate` wrote), newest file first."),
    "status": ("migrate", "Show applied, pending, modified, missing, failed and out-of-order migrations."),
    "baseline": ("migrate", "Mark an existing database as being at VERSION without running anything, once it "
                            "is checked."),
    "resolve": ("migrate", "Clear a failed migration after a human fixed the database."),
    "hash": ("migrate", "Rewrite migrations/veza.sum after a deliberate change to the migration files."),
    "lint": ("lint", "Lint the schema YAML: naming, the seed's 10 immutable rules, integrity, PostgreSQL "
                     "pitfalls,\nand what PostgreSQL itself refuses when the schema is applied (PG1xx)."),
    "rules": ("lint", "List every rule: lint's families and the change policy's POL rules (reported by "
                      "`check`)."),
    "refresh": ("maintenance", "Refresh materialized views CONCURRENTLY (readers are not blocked), one "
                               "statement each."),
    "partitions": ("maintenance", "Keep time-range partitions working: create them ahead, empty the default "
                                  "partition into them,\nexpire the ones past retention. Safe to rerun at any "
                                  "time; run it from cron."),
    "purge": ("maintenance", "Delete the rows of the tables declaring `purge` once their time column is older "
                             "than\n`purge.after`, in bounded batches (one transaction each). A real deletion: "
                             "triggers and ON\nDELETE actions fire. Exit 3 on a database error (the other "
                             "tables still proceed). Example\n(daily cron, or let `veza-schema schedule` run "
                             "one batch every 10 minutes in pg_cron):"),
    "schedule": ("maintenance", "Sync pg_cron with schema/: a pg_partman maintenance job per `backend: partman` "
                                "table, a\npurge job per table declaring `purge`, a refresh job per "
                                "materialized view; stale veza- jobs\nare removed. Run it after each deploy."),
    "docs": ("docs", "Write one Markdown page per module plus index.md, with Mermaid ER diagrams."),
    "diff": ("diff", "Show what the database lacks, has in excess or has differently against schema/."),
    "inspect": ("diff", "Write schema/-style YAML, one file per module, from a live database (every schema "
                        "of it)."),
    "check": ("check", "Classify each change against the base: allowed, RFC-required or forbidden "
                       "(docs/change-policy.md)."),
    "config": ("config", "Show each setting's effective value, the commands it applies to, and where it "
                         "came from."),
    "json-schema": ("config", "Print the JSON Schema of the YAML format, generated from the loader's own "
                              "contract."),
    "db": ("db", "Manage the embedded default PostgreSQL server (data in .veza/pgdata)."),
}
WHOLE_APP_COMMANDS = ("config",)  # it reports the settings of every command, so it needs them all
# They read migration files and the database, never schema/: no load cache, whose import (PyYAML, the
# model) would cost `apply` a fifth of its own CPU.
MIGRATION_COMMANDS = ("apply", "rollback", "status", "baseline", "resolve", "hash")
COMPLETION_VARIABLE = "_VEZA_SCHEMA_COMPLETE"  # click's shell completion completes every command's options


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


def _print_version(asked: bool) -> None:
    """``--version``: what a bug report and a deploy log need, before any project or command is read."""
    if asked:
        import platform

        from veza_schema import __version__

        sys.stdout.write(f"veza-schema {__version__} (Python {platform.python_version()})\n")
        raise typer.Exit()


VersionOption = Annotated[bool, typer.Option("--version", help="Print veza-schema's version and exit.",
                                             is_eager=True, callback=_print_version)]


def _project(ctx: typer.Context, version: VersionOption = False) -> None:
    """Find the project (root and settings) before any command parses its options: the settings
    become the options' defaults (veza_schema.cli.config), so flags still win."""
    import logging

    from veza_schema.cli.config import default_map
    from veza_schema.project import discover

    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its parse fallbacks are not the user's business
    project = discover()
    ctx.obj = project
    ctx.default_map = default_map(ctx.command, project)


def _app_of(names: Sequence[str]) -> typer.Typer:
    """An app holding the commands ``names`` (in ``--help`` order), importing only their modules."""
    made = typer.Typer()
    for module in dict.fromkeys(COMMANDS[name][0] for name in names):
        importlib.import_module(f"veza_schema.cli.{module}").register(made)
    narrowed = _new_app()
    narrowed.registered_commands = sorted((c for c in made.registered_commands if c.name in names),
                                          key=lambda c: list(COMMANDS).index(c.name or ""))
    narrowed.registered_groups = [g for g in made.registered_groups if g.name in names]
    return narrowed


@cache
def whole_app() -> typer.Typer:
    """The app with every command (``config`` and shell completion need them all)."""
    return _app_of(list(COMMANDS))


def _directory() -> typer.Typer:
    """The app ``--help``, no command or an unknown command meet: every name with its help's first
    paragraph from :data:`COMMANDS`, and no command module imported. A listed name is never run
    here: :func:`app_for` gives a named command its real app."""
    made = _new_app()
    for name, (_, first_paragraph) in COMMANDS.items():
        made.command(name, help=first_paragraph, add_help_option=False)(_listed_only)
    return made


def _listed_only() -> None:
    """The callback of a directory entry; never invoked (see :func:`_directory`)."""
    raise AssertionError("a directory entry ran instead of its command")


def app_for(argv: Sequence[str]) -> typer.Typer:
    """The app holding only the command ``argv`` names; the directory for help or an unknown name.

    Why: importing every command module and resolving every command's options costs more than
    a short command's own work. The narrowed app keeps the whole app's shape (a group with the
    same callback), so project settings apply the same way.
    """
    if os.environ.get(COMPLETION_VARIABLE):
        return whole_app()
    name = _command_name(argv)
    if name in WHOLE_APP_COMMANDS:
        return whole_app()
    if name in COMMANDS:
        return _app_of([name])
    return _directory()


def _command_name(argv: Sequence[str]) -> str | None:
    return next((arg for arg in argv if not arg.startswith("-")), None)


def __getattr__(name: str) -> typer.Typer:
    """``veza_schema.cli.app``: the whole app, built on first use (tests drive it with CliRunner)."""
    if name == "app":
        return whole_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: click's for usage errors (2), ours for our errors.

    Every expected failure prints one line; anything else is a bug (exit 4), with a traceback
    only when ``VEZA_DEBUG`` is set. Whatever is printed passes through the DSN redaction first
    (:func:`veza_schema.db.dsn.redact_text`): no password reaches the terminal or a CI log.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    caching = loading = False
    try:
        app = app_for(args)
        caching = _command_name(args) in COMMANDS  # help and unknown names parse no SQL: no cache to load
        loading = caching and _command_name(args) not in MIGRATION_COMMANDS
        if caching:
            from veza_schema.sql import parse_cache

            parse_cache.enable()  # SQL parse answers kept between runs (see the module)
        if loading:
            from veza_schema.yaml import load_cache

            load_cache.enable()  # and what each schema file loads to
        app(args=args, prog_name="veza-schema")
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
        if caching:
            from veza_schema.sql import parse_cache

            parse_cache.save_and_disable()
        if loading:
            from veza_schema.yaml import load_cache

            load_cache.disable()
    return 0


def main() -> None:
    """The ``veza-schema`` console script."""
    sys.exit(run())


def _print_error(message: str, args: Sequence[str]) -> None:
    from rich.console import Console
    from rich.markup import escape

    from veza_schema.db.dsn import redact_text, secrets_from
    from veza_schema.errors import printable

    dsn_variables = [os.environ.get(name, "") for name in ("VEZA_DATABASE_URL", "DATABASE_URL")]
    message = redact_text(message, secrets_from([*args, *dsn_variables]))
    console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    first, *rest = printable(message).splitlines() or [""]
    console.print(f"[bold red]error:[/] {escape(first)}", markup=True)
    for line in rest:
        console.print(line, markup=False)
