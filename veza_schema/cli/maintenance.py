"""``veza-schema refresh`` and ``veza-schema partitions``: the recurring jobs a DBA puts in cron.

Both read the model (which views are materialized, which tables are partitioned and how)
from ``schema/`` rather than from the catalog, so they act only on objects the schema
owns, with the same rules the migrations used to create them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from veza_schema.cli.common import DEFAULT_SCHEMA_DIR, DsnOption, SchemaDirOption, console

if TYPE_CHECKING:
    from veza_schema.db.dsn import Target


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh)
    app.command("partitions")(partitions)


def _target(dsn: str | None) -> Target:
    from veza_schema.db.dsn import resolve_dsn

    target = resolve_dsn(dsn)
    console().print(f"Database: {escape(target.display)} [dim]({target.source})[/]")
    return target


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
    from veza_schema.db.dsn import connect
    from veza_schema.maintenance.refresh import check_concurrent, refresh_order, refresh_views
    from veza_schema.yaml.loader import load_schema

    chosen = refresh_order(load_schema(schema_dir), views)
    out = console()
    if not chosen:
        out.print(f"No materialized views in {schema_dir}: nothing to refresh.", markup=False)
        return
    if not no_concurrently:
        check_concurrent(chosen)
    conn = connect(_target(dsn), autocommit=True)
    started = time.monotonic()
    suffix = "" if no_concurrently else " concurrently"
    try:
        refresh_views(conn, chosen, concurrently=not no_concurrently,
                      on_refreshed=lambda view, seconds: out.print(
                          f"  refreshed {view.name}{suffix} in {seconds:.2f}s", markup=False))
    finally:
        conn.close()
    out.print(f"Refreshed {len(chosen)} materialized view(s) in {time.monotonic() - started:.2f}s.", markup=False)


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
    from veza_schema.maintenance.partitions import ensure_partitions, missing_partitions, partitioned_tables
    from veza_schema.yaml.loader import load_schema

    tables = partitioned_tables(load_schema(schema_dir))
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
                missing = missing_partitions(conn, table, ahead)
                total += len(missing)
                out.print(f"  {label}: would create {len(missing)} partition(s)", markup=False)
                for planned in missing:
                    out.print(f"    {planned.name} FOR VALUES FROM ('{planned.start:%Y-%m-%d}') "
                              f"TO ('{planned.end:%Y-%m-%d}')", markup=False)
                continue
            created = ensure_partitions(conn, table, ahead)
            total += created
            out.print(f"  {label}: {created} partition(s) created" if created else f"  {label}: up to date, "
                      "0 partition(s) created", markup=False)
    finally:
        conn.close()
    verb = "Would create" if dry_run else "Created"
    out.print(f"{verb} {total} partition(s) for {len(tables)} partitioned table(s).", markup=False)
