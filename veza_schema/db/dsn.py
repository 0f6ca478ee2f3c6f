"""Where to connect: ``--dsn``, else ``VEZA_DATABASE_URL``, ``DATABASE_URL``, libpq ``PG*``
variables, else the embedded default server (started on demand)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg
from psycopg import conninfo

from veza_schema.db.servers import EmbeddedServer
from veza_schema.errors import DatabaseError, UsageError

LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGSERVICEFILE")


@dataclass(frozen=True)
class Target:
    """A resolved connection target and where it came from (for messages)."""

    dsn: str
    source: str

    @property
    def display(self) -> str:
        return redact(self.dsn) if self.dsn else "(libpq environment)"


def resolve_dsn(option: str | None, start_embedded: bool = True) -> Target:
    """The target: ``option``, else the variables, else the embedded server of the project root.

    Raises:
        UsageError: an empty ``--dsn`` or DSN variable (exit 2): an empty value never silently
            means the embedded server.
    """
    if option is not None:
        _not_empty(option, "--dsn is empty: give a DSN, or leave the option out")
        return Target(_checked(option, "--dsn"), "--dsn")
    for variable in ("VEZA_DATABASE_URL", "DATABASE_URL"):
        value = os.environ.get(variable)
        if value is not None:
            _not_empty(value, f"{variable} is set but empty: give a DSN, or unset it")
            return Target(_checked(value, variable), variable)
    if any(os.environ.get(variable) for variable in LIBPQ_VARIABLES):
        return Target("", "PG* environment variables")
    if not start_embedded:
        raise UsageError("no database given: use --dsn, VEZA_DATABASE_URL, DATABASE_URL or PG* variables")
    server = EmbeddedServer()
    return Target(server.start(), f"embedded server ({server.data_dir})")


def _not_empty(value: str, message: str) -> None:
    if not value.strip():
        raise UsageError(message)


def _checked(dsn: str, source: str) -> str:
    try:
        conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(f"malformed DSN in {source}: {_first_line(str(exc))}") from exc
    return dsn


def redact(dsn: str) -> str:
    """The DSN with any password removed, for printing."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(malformed DSN)"
    if dsn.startswith(("postgresql://", "postgres://")):
        if "password" not in params and ":@" not in dsn:
            return dsn
        scheme, rest = dsn.split("://", 1)
        if "@" in rest.split("/", 1)[0]:
            userinfo, host = rest.split("@", 1)
            user = userinfo.split(":", 1)[0]
            rest = f"{user}@{host}" if user else host
        return f"{scheme}://{rest}"
    params.pop("password", None)
    return conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})


def connect(target: Target, *, autocommit: bool = False, application_name: str = "veza-schema"
            ) -> psycopg.Connection:
    """Open a connection; failures become one-line :class:`DatabaseError` (exit 3)."""
    try:
        return psycopg.connect(target.dsn, autocommit=autocommit, connect_timeout=10,
                               application_name=application_name)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to {target.display}: {_first_line(str(exc))}") from exc


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text
