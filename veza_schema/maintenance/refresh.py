"""Refreshing materialized views: which ones, in which order, and whether CONCURRENTLY can work.

The model (from ``schema/``) says which views are materialized and what they read, so a
refresh acts only on views the schema owns, each after the materialized views it reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from veza_schema.db.errors import database_error
from veza_schema.errors import UsageError
from veza_schema.model import Schema, View


def refresh_order(schema: Schema, names: list[str] | None) -> list[View]:
    """The materialized views to refresh, each after the materialized views it reads.

    No names: every materialized view of the model. An unknown name, or a plain view, is a
    usage error (exit 2) naming it.
    """
    materialized = {name: view for name, view in schema.views.items() if view.materialized}
    if names:
        unknown = sorted({n for n in names if n not in schema.views})
        if unknown:
            known = ", ".join(sorted(materialized)) or "none"
            raise UsageError(f"unknown materialized view: {', '.join(unknown)} (the schema has: {known})")
        plain = sorted({n for n in names if n not in materialized})
        if plain:
            raise UsageError(f"not a materialized view, nothing to refresh: {', '.join(plain)}")
        wanted = set(names)
    else:
        wanted = set(materialized)
    order: list[View] = []
    done: set[str] = set()
    pending = sorted(wanted)
    while pending:
        ready = [n for n in pending
                 if all(dep in done or dep not in wanted for dep in materialized[n].depends_on)]
        # A dependency cycle cannot exist between views PostgreSQL created; take the first anyway.
        name = ready[0] if ready else pending[0]
        order.append(materialized[name])
        done.add(name)
        pending.remove(name)
    return order


def check_concurrent(views: list[View]) -> None:
    """Refuse before touching anything: CONCURRENTLY fails without a suitable unique index."""
    lacking = [v for v in views if not v.refreshable_concurrently]
    if not lacking:
        return
    view = lacking[0]
    where = f" in {view.meta.pos.file}" if view.meta.pos else ""
    names = ", ".join(v.name for v in lacking)
    raise UsageError(
        f"cannot refresh {names} concurrently: REFRESH MATERIALIZED VIEW CONCURRENTLY needs a unique index "
        f"without WHERE on plain columns; add one to the view{where}, e.g. `indexes: "
        f"{{idx_{view.name}_<column>_unique: {{columns: [<column>], unique: true}}}}`, "
        "or pass --no-concurrently (readers are blocked during the refresh)")


def refresh_views(conn: psycopg.Connection, views: list[View], *, concurrently: bool,
                  on_refreshed: Callable[[View, float], None] = lambda view, seconds: None) -> None:
    """One REFRESH statement per view, in order; a failure names its view (exit 3)."""
    statement = sql.SQL("REFRESH MATERIALIZED VIEW CONCURRENTLY {}" if concurrently
                        else "REFRESH MATERIALIZED VIEW {}")
    for view in views:
        begun = time.monotonic()
        try:
            conn.execute(statement.format(sql.Identifier(view.name)))
        except psycopg.Error as exc:
            raise database_error(f"refresh of materialized view {view.name} failed", exc) from exc
        on_refreshed(view, time.monotonic() - begun)
