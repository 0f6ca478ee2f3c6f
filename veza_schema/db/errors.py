"""A server error as one of our errors: what PostgreSQL said, all of it, in one place.

Why one formatter: a DBA acting on an error needs the server's whole answer (the primary
message, its DETAIL and HINT, the SQLSTATE to look up), and a lost connection needs saying
in words rather than as ``[SQLSTATE None]``. Every command that shows a database error
(apply, rollback, diff, lint's server verification, partitions, refresh) formats it with
:func:`server_message` or raises :func:`database_error`.
"""

from __future__ import annotations

from veza_schema.errors import DatabaseError

# SQLSTATEs that mean the session is gone, said in words.
_CONNECTION_LOST: dict[str, str] = {
    "57P01": "the server terminated the session (an administrator command, pg_terminate_backend, or a "
             "shutdown)",
    "57P02": "the server crashed (crash shutdown) and dropped the connection",
    "57P03": "the server is not accepting connections (starting up, shutting down or in recovery)",
    "57P05": "the server closed the idle session (idle_session_timeout)",
}


def _diag(exc: BaseException, field: str) -> str | None:
    diag = getattr(exc, "diag", None)
    value = getattr(diag, field, None) if diag is not None else None
    return str(value).strip() if value else None


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a server error, None when there is none (a lost connection, a client-side error)."""
    return getattr(exc, "sqlstate", None) or _diag(exc, "sqlstate")


def primary_message(exc: BaseException) -> str:
    """The server's primary message, without psycopg's DETAIL/HINT/CONTEXT lines."""
    primary = _diag(exc, "message_primary")
    if primary:
        return primary
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def connection_lost(exc: BaseException) -> bool:
    """Whether the error means the session is gone (so nothing more can run on it)."""
    state = sqlstate(exc)
    if state is not None:
        return state in _CONNECTION_LOST or state.startswith("08")
    return type(exc).__name__ in ("OperationalError", "InterfaceError") or "connection" in str(exc).lower()


def server_message(exc: BaseException) -> str:
    """``primary [SQLSTATE X]`` then ``DETAIL:`` and ``HINT:`` lines, each only when the server sent one.

    Without a SQLSTATE (the connection dropped, the server died), it says so in words and
    keeps the driver's own text.
    """
    state = sqlstate(exc)
    primary = primary_message(exc)
    if state is None:
        if connection_lost(exc):
            head = f"the connection to the server was lost ({primary})"
        else:
            head = f"{primary} (no SQLSTATE: the error came from the client, not the server)"
    elif state in _CONNECTION_LOST:
        head = f"{primary} [SQLSTATE {state}]: {_CONNECTION_LOST[state]}"
    elif state.startswith("08"):
        head = f"{primary} [SQLSTATE {state}]: the connection to the server was lost"
    else:
        head = f"{primary} [SQLSTATE {state}]"
    lines = [head]
    detail, hint = _diag(exc, "message_detail"), _diag(exc, "message_hint")
    if detail:
        lines.append(f"  DETAIL: {detail}")
    if hint:
        lines.append(f"  HINT: {hint}")
    return "\n".join(lines)


def database_error(message: str, exc: BaseException) -> DatabaseError:
    """``message: <what the server said>`` (DETAIL, HINT, SQLSTATE), for exit 3."""
    return DatabaseError(f"{message}: {server_message(exc)}", sqlstate(exc))
