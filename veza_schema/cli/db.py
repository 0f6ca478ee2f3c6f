"""``veza-schema db start|stop|status|url``: the embedded default server."""

from __future__ import annotations

import typer

from veza_schema.cli.common import console

db_app = typer.Typer(help="Manage the embedded default PostgreSQL server (data in .veza/pgdata).",
                     no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("start")
def start() -> None:
    """Start the embedded server (creating it on first use) and print its DSN.

    Example:

        veza-schema db start
    """
    from veza_schema.db.dsn import redact
    from veza_schema.db.servers import EmbeddedServer

    server = EmbeddedServer()
    dsn = server.start()
    console().print(f"Embedded server running in {server.data_dir}: {redact(dsn)}", markup=False)


@db_app.command("stop")
def stop(
    timeout: int = typer.Option(60, "--timeout", min=0, help="Seconds to wait for the server to stop (exit 3 after)."),
    immediate: bool = typer.Option(False, "--immediate",
                                   help="Stop without a shutdown checkpoint (the next start replays the WAL)."),
) -> None:
    """Stop the embedded server (its data stays).

    Example:

        veza-schema db stop
    """
    from veza_schema.db.servers import EmbeddedServer

    stopped = EmbeddedServer().stop(timeout=timeout, immediate=immediate)
    console().print("Embedded server stopped." if stopped else "Embedded server was not running.")


@db_app.command("status")
def status() -> None:
    """Say whether the embedded server runs; exit 0 if it does, 1 if not.

    Example:

        veza-schema db status
    """
    from veza_schema.db.dsn import redact
    from veza_schema.db.servers import EmbeddedServer

    state = EmbeddedServer().status()
    if state.running and state.dsn:
        console().print(f"running (pid {state.pid}) in {state.data_dir}: {redact(state.dsn)}", markup=False)
        return
    console().print(f"not running ({state.data_dir})", markup=False)
    raise typer.Exit(1)


@db_app.command("url")
def url() -> None:
    """Print the embedded server's DSN (no password), e.g. for psql "$(veza-schema db url)".

    Exit 1 when the server is not running. Example:

        psql "$(veza-schema db url)"
    """
    from veza_schema.db.dsn import redact
    from veza_schema.db.servers import EmbeddedServer

    state = EmbeddedServer().status()
    if not state.running or not state.dsn:
        console().print("not running: start it with `veza-schema db start`", markup=False)
        raise typer.Exit(1)
    print(redact(state.dsn))
