"""``veza-schema refresh`` and ``veza-schema partitions``: the recurring jobs a DBA puts in cron.

Both read the model (which views are materialized, which tables are partitioned and how)
from ``schema/`` rather than from the catalog, so they act only on objects the schema
owns, with the same rules the migrations used to create them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from veza_schema.cli.common import DEFAULT_SCHEMA_DIR, DsnOption, SchemaDirOption, console

if TYPE_CHECKING:
    import psycopg

    from veza_schema.db.dsn import Target
    from veza_schema.model import Schema, Table, View

PARTITION_FUNCTION = "veza_ensure_partitions"


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh)
    app.command("partitions")(partitions)


def _target(dsn: str | None) -> Target:
    from veza_schema.db.dsn import resolve_dsn

    target = resolve_dsn(dsn)
    console().print(f"Database: {target.display} [dim]({target.source})[/]")
    return target


def _one_line(exc: Exception) -> str:
    """The primary message of a server error, without psycopg's DETAIL/HINT/CONTEXT lines."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary:
        return str(primary)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _database_error(message: str, exc: Exception) -> Exception:
    from veza_schema.errors import DatabaseError

    return DatabaseError(f"{message}: {_one_line(exc)}", getattr(exc, "sqlstate", None))


# -- refresh ------------------------------------------------------------------------------------
def refresh_order(schema: Schema, names: list[str] | None) -> list[View]:
    """The materialized views to refresh, each after the materialized views it reads.

    No names: every materialized view of the model. An unknown name, or a plain view, is a
    usage error (exit 2) naming it.
    """
    from veza_schema.errors import UsageError

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


def _check_concurrent(views: list[View]) -> None:
    """Refuse before touching anything: CONCURRENTLY fails without a suitable unique index."""
    from veza_schema.docs.generator import refreshable_index
    from veza_schema.errors import UsageError

    lacking = [v for v in views if not any(refreshable_index(ix) for ix in v.indexes.values())]
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


def refresh(
    views: Annotated[list[str] | None, typer.Argument(metavar="VIEW", help="Materialized views to refresh "
                                                           "(default: all of the schema).", show_default=False)] = None,
    dsn: DsnOption = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    no_concurrently: Annotated[bool, typer.Option("--no-concurrently", help="Plain REFRESH: works without a "
                                                  "unique index, but blocks readers.")] = False,
) -> None:
    """Refresh materialized views CONCURRENTLY (readers are not blocked), one statement each.

    Exit 2 for an unknown view or one without the unique index CONCURRENTLY needs, 3 when a
    refresh fails. Example:

        veza-schema refresh trending_tracks user_statistics
    """
    import psycopg
    from psycopg import sql

    from veza_schema.db.dsn import connect
    from veza_schema.yaml.loader import load_schema

    chosen = refresh_order(load_schema(schema_dir), views)
    out = console()
    if not chosen:
        out.print(f"No materialized views in {schema_dir}: nothing to refresh.", markup=False)
        return
    if not no_concurrently:
        _check_concurrent(chosen)
    statement = sql.SQL("REFRESH MATERIALIZED VIEW {}" if no_concurrently
                        else "REFRESH MATERIALIZED VIEW CONCURRENTLY {}")
    conn = connect(_target(dsn), autocommit=True)
    started = time.monotonic()
    try:
        for view in chosen:
            begun = time.monotonic()
            try:
                conn.execute(statement.format(sql.Identifier(view.name)))
            except psycopg.Error as exc:
                raise _database_error(f"refresh of materialized view {view.name} failed", exc) from exc
            out.print(f"  refreshed {view.name}{'' if no_concurrently else ' concurrently'} "
                      f"in {time.monotonic() - begun:.2f}s", markup=False)
    finally:
        conn.close()
    out.print(f"Refreshed {len(chosen)} materialized view(s) in {time.monotonic() - started:.2f}s.", markup=False)


# -- partitions ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedPartition:
    name: str
    start: datetime
    end: datetime


def period_start(moment: datetime, interval: str) -> datetime:
    """``date_trunc(interval, moment)`` in UTC, as ``veza_ensure_partitions`` computes it."""
    utc = moment.astimezone(UTC)
    day = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    if interval == "year":
        return day.replace(month=1, day=1)
    if interval == "month":
        return day.replace(day=1)
    if interval == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday, like date_trunc
    return day


def next_period(start: datetime, interval: str) -> datetime:
    if interval == "year":
        return start.replace(year=start.year + 1)
    if interval == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=7 if interval == "week" else 1)


def planned_partitions(table: str, interval: str, premake: int, now: datetime) -> list[PlannedPartition]:
    """The partitions the function keeps: the current period through ``premake`` periods ahead."""
    suffix = {"year": "%Y", "month": "%Y%m"}.get(interval, "%Y%m%d")
    start = period_start(now, interval)
    planned = []
    for _ in range(premake + 1):
        end = next_period(start, interval)
        planned.append(PlannedPartition(f"{table}_p{start.strftime(suffix)}", start, end))
        start = end
    return planned


def _partitioned_tables(schema: Schema) -> list[Table]:
    return [t for _, t in sorted(schema.tables.items())
            if t.partition is not None and t.partition.strategy == "range" and t.partition.interval]


def _missing_partitions(conn: psycopg.Connection, table: Table, premake: int) -> list[PlannedPartition]:
    from veza_schema.errors import DatabaseError

    assert table.partition is not None and table.partition.interval is not None
    row = conn.execute("SELECT now(), to_regclass(quote_ident(%s)) IS NOT NULL", (table.name,)).fetchone()
    assert row is not None
    if not row[1]:
        raise DatabaseError(f"table {table.name} does not exist in the database: apply the migrations first")
    missing = []
    for planned in planned_partitions(table.name, table.partition.interval, premake, row[0]):
        exists = conn.execute("SELECT to_regclass(quote_ident(%s)) IS NOT NULL", (planned.name,)).fetchone()
        if exists is not None and not exists[0]:
            missing.append(planned)
    return missing


def _ensure(conn: psycopg.Connection, table: Table, premake: int) -> int:
    import psycopg
    from psycopg import sql

    assert table.partition is not None
    query = sql.SQL("SELECT {}(%s, %s, %s)").format(sql.Identifier(PARTITION_FUNCTION))
    try:
        row = conn.execute(query, (table.name, table.partition.interval, premake)).fetchone()
    except psycopg.errors.UndefinedFunction as exc:
        from veza_schema.errors import DatabaseError

        raise DatabaseError(f"function {PARTITION_FUNCTION}() does not exist: apply the migrations first "
                            "(veza-schema apply)", exc.sqlstate) from exc
    except psycopg.Error as exc:
        raise _database_error(f"creating partitions of {table.name} failed", exc) from exc
    assert row is not None
    return int(row[0])


def partitions(
    dsn: DsnOption = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    premake: Annotated[int | None, typer.Option("--premake", min=0, help="Periods to create ahead of the "
                                                "current one (default: each table's premake).",
                                                show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the partitions that would be created; "
                                                            "create nothing.")] = False,
) -> None:
    """Create the upcoming time-range partitions of every partitioned table (run it from cron).

    Calls veza_ensure_partitions(table, interval, premake), which the initial migration
    installed; existing partitions are left alone. Example (daily cron):

        veza-schema partitions --dsn postgresql://veza@db.internal/veza --premake 3
    """
    from veza_schema.db.dsn import connect
    from veza_schema.yaml.loader import load_schema

    tables = _partitioned_tables(load_schema(schema_dir))
    out = console()
    if not tables:
        out.print(f"No range-partitioned tables with an interval in {schema_dir}: nothing to do.", markup=False)
        return
    conn = connect(_target(dsn), autocommit=True)
    total = 0
    try:
        for table in tables:
            assert table.partition is not None
            ahead = table.partition.premake if premake is None else premake
            label = f"{table.name} ({table.partition.interval}, {ahead} ahead)"
            if dry_run:
                missing = _missing_partitions(conn, table, ahead)
                total += len(missing)
                out.print(f"  {label}: would create {len(missing)} partition(s)", markup=False)
                for planned in missing:
                    out.print(f"    {planned.name} FOR VALUES FROM ('{planned.start:%Y-%m-%d}') "
                              f"TO ('{planned.end:%Y-%m-%d}')", markup=False)
                continue
            created = _ensure(conn, table, ahead)
            total += created
            out.print(f"  {label}: {created} partition(s) created" if created else f"  {label}: up to date, "
                      "0 partition(s) created", markup=False)
    finally:
        conn.close()
    verb = "Would create" if dry_run else "Created"
    out.print(f"{verb} {total} partition(s) for {len(tables)} partitioned table(s).", markup=False)
