"""A server error as one of our errors: the message a person reads, the SQLSTATE kept."""

from __future__ import annotations

from veza_schema.errors import DatabaseError


def primary_message(exc: BaseException) -> str:
    """The server's primary message, without psycopg's DETAIL/HINT/CONTEXT lines."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return str(primary)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def database_error(message: str, exc: BaseException) -> DatabaseError:
    """``message: <server's primary message>`` with the SQLSTATE, for exit 3."""
    return DatabaseError(f"{message}: {primary_message(exc)}", getattr(exc, "sqlstate", None))
