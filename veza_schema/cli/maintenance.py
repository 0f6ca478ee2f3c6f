"""``veza-schema refresh`` and ``veza-schema partitions``: the recurring jobs a DBA puts in cron.

Both read the model (which views are materialized, which tables are partitioned and how)
from ``schema/`` rather than from the catalog, so they act only on objects the schema
owns, with the same rules the migrations used to create them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from veza_schema.cli.common import DEFAULT_SCHEMA_DIR, DsnOption, SchemaDirOption, console

if TYPE_CHECKING:
    from veza_schema.db.dsn import Target


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh)
    app.command("partitions")(partitions)
    app.command("purge")(purge)
    app.command("schedule")(schedule)


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
    conn = connect(resolve_target(dsn), autocommit=True)
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
    tables: Annotated[list[str] | None, typer.Argument(metavar="TABLE", help="Partitioned tables to maintain "
                                                        "(default: all of the schema).", show_default=False)] = None,
    dsn: DsnOption = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    premake: Annotated[int | None, typer.Option("--premake", min=0, help="Periods to create ahead of the "
                                                "current one (default: each table's premake).",
                                                show_default=False)] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="DATE", help="Compute everything as if today "
                                              "were DATE (YYYY-MM-DD, UTC): backfills, planning, tests.",
                                              show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print exactly what would be done (partitions to "
                                                            "create, rows to move, partitions to expire); change "
                                                            "nothing.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Monitoring: change nothing; exit 1 when a default "
                                                        "partition holds rows, fewer than premake partitions lie "
                                                        "ahead, or a partition is past retention.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="Output of --check or of a run: text or json (what was "
                                                      "done per table, rows copied under the lock included).")
                   ] = "text",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows moved per transaction (out of a "
                                                                        "default partition, or by retention).")
                          ] = 10_000,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0.001, help="Seconds each statement may wait "
                                                "for a lock (writers queue behind it at most that long).")] = 2.0,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a unit of work that timed out on a "
                                                                  "lock, with exponential backoff.")] = 5,
) -> None:
    """Keep time-range partitions working: create them ahead, empty the default partition into them,
    expire the ones past retention. Safe to rerun at any time; run it from cron.

    Each table is handled on its own: one that fails is reported and the others proceed. Every
    statement runs under --lock-timeout and is retried with backoff. Exit 0 when all is well, 1
    when a table needs attention (rows in a default partition that no partition to be created
    will take, a retention that is blocked), 3 on a database error. Example (daily cron):

        veza-schema partitions --dsn postgresql://veza@db.internal/veza
    """
    import json

    import psycopg

    from veza_schema.cli.common import check_choice
    from veza_schema.db.dsn import connect
    from veza_schema.db.errors import database_error
    from veza_schema.db.retry import LockRetry
    from veza_schema.errors import EXIT_DATABASE, EXIT_FINDINGS, DatabaseError, UsageError
    from veza_schema.maintenance import partition_plan as planning
    from veza_schema.maintenance import partition_report as report
    from veza_schema.maintenance import partitions as maintenance
    from veza_schema.yaml.loader import load_schema

    check_choice(fmt, ("text", "json"), "--format")
    if fmt == "json" and dry_run:
        raise UsageError("--format json goes with --check (the monitoring report) or a run, not --dry-run")
    if check and dry_run:
        raise UsageError("--check and --dry-run both change nothing: pass one of them")
    moment = _as_of(as_of)
    schema = load_schema(schema_dir)
    chosen = maintenance.partitioned_tables(schema, tables)
    unknown = sorted(set(tables or ()) - {t.name for t in chosen})
    if unknown:
        known = ", ".join(t.name for t in maintenance.partitioned_tables(schema)) or "none"
        raise UsageError(f"not a time-partitioned table of the schema: {', '.join(unknown)} (the schema has: {known})")
    out = console()
    if not chosen:
        out.print(f"No range-partitioned tables with an interval in {schema_dir}: nothing to do.", markup=False)
        return
    retry = LockRetry(lock_timeout=lock_timeout, retries=retries)
    options = maintenance.MaintenanceOptions(batch_size=batch_size, retry=retry)
    target = resolve_target(dsn, quiet=fmt == "json")
    conn = connect(target, autocommit=True, application_name="veza-schema partitions")
    errors: dict[str, str] = {}
    text = fmt == "text"

    def progress(message: str) -> None:
        if text:
            out.print(f"    {message}", markup=False)

    plans: list[planning.TablePlan] = []
    results: list[maintenance.TableResult] = []
    try:
        maintenance.prepare_session(conn, retry)
        for table in chosen:
            try:
                plan = planning.plan_table(conn, table, moment, premake)
            except DatabaseError as exc:
                errors[table.name] = str(exc)
                continue
            except psycopg.Error as exc:
                errors[table.name] = str(database_error(f"reading {table.name}", exc))
                continue
            plans.append(plan)
            if check:
                continue
            if dry_run:
                for line in report.plan_lines(plan):
                    out.print(line, markup=False)
                continue
            if text:
                out.print(f"  {report.header(plan)} ...", markup=False)
            result = maintenance.maintain_table(conn, plan, options, progress)
            results.append(result)
            for line in report.result_lines(result) if text else ():
                out.print(line, markup=False)
            if result.error is not None:
                errors[table.name] = str(result.error)
    finally:
        conn.close()
    if check:
        healths = [planning.health(plan) for plan in plans]
        if fmt == "json":
            out.print_json(json.dumps(report.health_json(healths, moment, errors)))
        else:
            for item in healths:
                for line in report.health_lines(item):
                    out.print(line, markup=False)
        failing = not all(h.ok for h in healths)
    elif fmt == "json":
        out.print_json(json.dumps(report.result_json(results, moment, errors)))
        failing = any(p.needs_attention for p in plans)
    else:
        out.print(report.summary(plans if dry_run else results, dry_run=dry_run), markup=False)
        failing = any(p.needs_attention for p in plans)
    for name, message in sorted(errors.items()):
        if fmt != "json":
            out.print(f"  {name}: {message}", markup=False)
    if errors:
        raise typer.Exit(EXIT_DATABASE)
    if failing:
        raise typer.Exit(EXIT_FINDINGS)


def _as_of(text: str | None) -> datetime:
    from veza_schema.errors import UsageError

    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text!r}: expected a date, YYYY-MM-DD (or an ISO timestamp)") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve_target(dsn: str | None, *, quiet: bool = False) -> Target:
    from veza_schema.db.dsn import resolve_dsn

    target = resolve_dsn(dsn)
    if not quiet:
        console().print(f"Database: {escape(target.display)} [dim]({target.source})[/]")
    return target


def purge(
    tables: Annotated[list[str] | None, typer.Argument(metavar="TABLE", help="Tables to purge (default: every "
                                                        "table declaring `purge`).", show_default=False)] = None,
    dsn: DsnOption = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    as_of: Annotated[str | None, typer.Option("--as-of", metavar="DATE", help="Compute cutoffs as if today were "
                                              "DATE (YYYY-MM-DD, UTC).", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the rows that would be deleted; delete "
                                                            "nothing.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows deleted per transaction.")] = 10_000,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0.001, help="Seconds each batch may wait "
                                                                                  "for a lock.")] = 2.0,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries of a batch that timed out on a lock.")
                       ] = 5,
) -> None:
    """Delete the rows of the tables declaring `purge` once their time column is older than
    `purge.after`, in bounded batches (one transaction each). A real deletion: triggers and ON
    DELETE actions fire. Exit 3 on a database error (the other tables still proceed). Example
    (daily cron, or let `veza-schema schedule` run one batch every 10 minutes in pg_cron):

        veza-schema purge --dsn postgresql://veza@db.internal/veza
    """
    from veza_schema.db.dsn import connect
    from veza_schema.db.retry import LockRetry
    from veza_schema.errors import EXIT_DATABASE, UsageError
    from veza_schema.maintenance import purge as purging
    from veza_schema.yaml.loader import load_schema

    moment = _as_of(as_of)
    schema = load_schema(schema_dir)
    chosen = purging.purged_tables(schema, tables)
    unknown = sorted(set(tables or ()) - {t.name for t in chosen})
    if unknown:
        known = ", ".join(t.name for t in purging.purged_tables(schema)) or "none"
        raise UsageError(f"no purge declared for: {', '.join(unknown)} (tables with one: {known})")
    out = console()
    if not chosen:
        out.print(f"No table declares `purge` in {schema_dir}: nothing to do.", markup=False)
        return
    retry = LockRetry(lock_timeout=lock_timeout, retries=retries)
    conn = connect(resolve_target(dsn), autocommit=True, application_name="veza-schema purge")
    failed = False
    try:
        conn.execute("SET timezone TO 'UTC'")
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (retry.lock_timeout_setting,))
        for table in chosen:
            assert table.purge is not None
            label = f"{table.name} ({table.purge.column} older than {table.purge.after}"
            if dry_run:
                out.print(f"  {label}, before {purging.cutoff(table, moment):%Y-%m-%d %H:%M}): would delete "
                          f"{purging.count_expired(conn, table, moment)} row(s)", markup=False)
                continue
            result = purging.purge_table(conn, table, moment, batch_size=batch_size, retry=retry,
                                         progress=lambda message: out.print(f"    {message}", markup=False))
            out.print(f"  {label}): deleted {result.rows} row(s) in {result.batches} batch(es)", markup=False)
            if result.error is not None:
                out.print(f"    ! stopped: {result.error}", markup=False)
                failed = True
    finally:
        conn.close()
    if failed:
        raise typer.Exit(EXIT_DATABASE)


def schedule(
    dsn: DsnOption = None,
    cron_dsn: Annotated[str | None, typer.Option("--cron-dsn", help="The database where pg_cron is installed "
                                                 "(cron.database_name), when it is not --dsn.",
                                                 show_default=False)] = None,
    schema_dir: SchemaDirOption = DEFAULT_SCHEMA_DIR,
    partitions_at: Annotated[str, typer.Option("--partitions-at", help="When pg_partman maintenance runs "
                                                                       "(cron syntax).")] = "5 * * * *",
    refresh_at: Annotated[str, typer.Option("--refresh-at", help="When materialized views are refreshed "
                                                                 "(cron syntax).")] = "0 * * * *",
    purge_at: Annotated[str, typer.Option("--purge-at", help="When each purge job deletes one batch of expired "
                                                             "rows (cron syntax).")] = "*/10 * * * *",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the jobs that would be created, updated and "
                                                            "removed; change nothing.")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove every veza- job of this database.")] = False,
) -> None:
    """Sync pg_cron with schema/: a pg_partman maintenance job per `backend: partman` table, a
    purge job per table declaring `purge`, a refresh job per materialized view; stale veza- jobs
    are removed. Run it after each deploy.

    Jobs run in the --dsn database; pg_cron itself lives in the database named by
    cron.database_name (--cron-dsn when that is another database). Tables with the built-in
    backend are maintained by `veza-schema partitions` from the system cron instead. Example:

        veza-schema schedule --dsn postgresql://veza@db/veza --cron-dsn postgresql://veza@db/postgres
    """
    from veza_schema.db.dsn import connect
    from veza_schema.maintenance import schedule as cron
    from veza_schema.yaml.loader import load_schema

    cron.check_schedule(partitions_at, "--partitions-at")
    cron.check_schedule(refresh_at, "--refresh-at")
    cron.check_schedule(purge_at, "--purge-at")
    schema = load_schema(schema_dir)
    out = console()
    target = connect(resolve_target(dsn), autocommit=True, application_name="veza-schema schedule")
    try:
        cron_conn = connect(resolve_target(cron_dsn), autocommit=True, application_name="veza-schema schedule") \
            if cron_dsn else target
        try:
            plan = cron.plan_schedule(cron_conn, target, schema, partitions_at=partitions_at, refresh_at=refresh_at,
                                      purge_at=purge_at, remove_all=remove)
            if not dry_run:
                cron.apply_schedule(cron_conn, plan)
        finally:
            if cron_conn is not target:
                cron_conn.close()
    finally:
        target.close()
    would = "would " if dry_run else ""
    for job in plan.create:
        out.print(f"  + {would}schedule {job.name} ({job.schedule}): {job.command}", markup=False)
    for old, job in plan.update:
        out.print(f"  ~ {would}reschedule {job.name} ({old.schedule} -> {job.schedule}): {job.command}", markup=False)
    for gone in plan.remove:
        out.print(f"  - {would}unschedule {gone.name} ({gone.schedule})", markup=False)
    for job in plan.unchanged:
        out.print(f"    {job.name} ({job.schedule}): unchanged", markup=False)
    for note in plan.notes:
        out.print(f"  note: {note}", markup=False)
    verb = "Would change" if dry_run else "Changed"
    out.print(f"{verb} {plan.changes} pg_cron job(s) for database {plan.database}.", markup=False)
