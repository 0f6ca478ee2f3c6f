"""pg_cron jobs for the recurring work the schema declares: pg_partman maintenance of each table
with ``backend: partman``, a purge batch for each table declaring ``purge``, and the refresh of
each materialized view.

The jobs are derived from the model, named ``veza-...`` and synced: `veza-schema schedule`
creates or updates the ones the schema needs and removes the ``veza-`` jobs it no longer
does, so running it after every deploy keeps pg_cron in step with ``schema/``.

One pg_partman job per table, not ``run_maintenance_proc()`` for all: a table that fails
(rows in its default partition, a lock not granted) then fails alone, visibly in
``cron.job_run_details``, instead of stopping the maintenance of every table after it. Each
job runs in UTC (veza-schema cuts periods in UTC; pg_partman computes in the session's time
zone) under a ``lock_timeout``. Tables with the built-in backend are not pg_cron jobs: their
maintenance is `veza-schema partitions`, run from the system cron (see README).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
from psycopg import sql

from veza_schema.db.errors import database_error
from veza_schema.errors import DatabaseError, UsageError
from veza_schema.maintenance.purge import job_statement, purged_tables
from veza_schema.maintenance.refresh import refresh_order
from veza_schema.model import Schema

JOB_PREFIX = "veza-"
DEFAULT_PARTITIONS_SCHEDULE = "5 * * * *"  # hourly, off the hour
DEFAULT_REFRESH_SCHEDULE = "0 * * * *"  # hourly (seed 20.1)
DEFAULT_PURGE_SCHEDULE = "*/10 * * * *"  # one bounded batch every 10 minutes: steady, never a long delete
PURGE_JOB_BATCH = 10_000
_CRON_FIELDS = 5
_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
_CRON_NAME = re.compile(r"^@(yearly|annually|monthly|weekly|daily|hourly)$")


@dataclass(frozen=True)
class CronJob:
    name: str
    schedule: str
    command: str


@dataclass(frozen=True)
class ScheduledJob:
    """A ``veza-`` job as pg_cron holds it."""

    job_id: int
    name: str
    schedule: str
    command: str
    database: str
    active: bool


@dataclass(frozen=True)
class SchedulePlan:
    database: str  # where the jobs run
    create: tuple[CronJob, ...]
    update: tuple[tuple[ScheduledJob, CronJob], ...]
    remove: tuple[ScheduledJob, ...]
    unchanged: tuple[CronJob, ...]
    notes: tuple[str, ...] = ()

    @property
    def changes(self) -> int:
        return len(self.create) + len(self.update) + len(self.remove)


def check_schedule(text: str, option: str) -> str:
    """A cron expression pg_cron 1.4 accepts: five fields, or a name like ``@hourly``."""
    fields = text.split()
    if _CRON_NAME.match(text) or (len(fields) == _CRON_FIELDS and all(_CRON_FIELD.match(f) for f in fields)):
        return text
    raise UsageError(f"{option} {text!r}: expected a cron expression of 5 fields, e.g. '5 * * * *', or @hourly")


def desired_jobs(schema: Schema, database: str, partman_schema: str | None, *,
                 partitions_at: str = DEFAULT_PARTITIONS_SCHEDULE,
                 refresh_at: str = DEFAULT_REFRESH_SCHEDULE, purge_at: str = DEFAULT_PURGE_SCHEDULE,
                 lock_timeout: str = "2s") -> tuple[list[CronJob], list[str]]:
    """The jobs ``schema`` needs in ``database``, and notes on what is not a pg_cron job (built-in tables).

    Names carry the database (``veza-veza-partman-messages``): pg_cron names are unique per user,
    and one server may hold several databases of the schema (staging, production)."""
    prefix = f"{JOB_PREFIX}{database}-"
    jobs: list[CronJob] = []
    notes: list[str] = []
    builtin: list[str] = []
    for name, table in sorted(schema.tables.items()):
        spec = table.partition
        if spec is None or spec.interval is None:
            continue
        if spec.backend != "partman":
            builtin.append(name)
            continue
        if partman_schema is None:
            raise DatabaseError(f"table {name} declares backend partman, but pg_partman is not installed in the "
                                "database the jobs run in (CREATE SCHEMA partman; CREATE EXTENSION pg_partman "
                                "SCHEMA partman;)")
        command = sql.SQL("SET timezone TO 'UTC'; SET lock_timeout TO {timeout}; SELECT {run}(p_parent_table := "
                          "{parent}, p_analyze := false, p_jobmon := false)").format(
            timeout=sql.Literal(lock_timeout), run=sql.Identifier(partman_schema, "run_maintenance"),
            parent=sql.Literal(f"public.{name}"))
        jobs.append(CronJob(f"{prefix}partman-{name}", partitions_at, command.as_string(None)))
    for table in purged_tables(schema):
        command = sql.SQL("SET lock_timeout TO {timeout}; {batch}").format(
            timeout=sql.Literal(lock_timeout), batch=job_statement(table, PURGE_JOB_BATCH))
        jobs.append(CronJob(f"{prefix}purge-{table.name}", purge_at, command.as_string(None)))
    for view in refresh_order(schema, None):
        verb = "REFRESH MATERIALIZED VIEW CONCURRENTLY {}" if view.refreshable_concurrently \
            else "REFRESH MATERIALIZED VIEW {}"
        command = sql.SQL("SET lock_timeout TO {timeout}; " + verb).format(
            sql.Identifier(view.name), timeout=sql.Literal(lock_timeout))
        jobs.append(CronJob(f"{prefix}refresh-{view.name}", refresh_at, command.as_string(None)))
        if not view.refreshable_concurrently:
            notes.append(f"{view.name} has no unique index for REFRESH ... CONCURRENTLY: its refresh blocks readers")
    if builtin:
        notes.append(f"built-in backend, maintained by `veza-schema partitions` from the system cron (not pg_cron): "
                     f"{', '.join(builtin)}")
    return jobs, notes


def _cron_available(conn: psycopg.Connection) -> None:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'").fetchone()
    if row is not None:
        return
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    database = conn.execute("SELECT current_setting('cron.database_name', true)").fetchone()
    if preload is None or "pg_cron" not in str(preload[0]):
        raise DatabaseError("pg_cron is not loaded by this server: add it to shared_preload_libraries, set "
                            "cron.database_name, restart, then CREATE EXTENSION pg_cron in that database")
    raise DatabaseError(f"pg_cron is not installed in this database: pg_cron lives in the database named by "
                        f"cron.database_name ({database[0] if database else 'unset'}); pass --cron-dsn pointing "
                        "there (CREATE EXTENSION pg_cron in it if needed)")


def scheduled_jobs(cron: psycopg.Connection) -> list[ScheduledJob]:
    _cron_available(cron)
    rows = cron.execute("SELECT jobid, jobname, schedule, command, database, active FROM cron.job "
                        "WHERE jobname LIKE %s ORDER BY jobname", (JOB_PREFIX.replace("-", r"\-") + "%",)).fetchall()
    return [ScheduledJob(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), bool(r[5])) for r in rows]


def plan_schedule(cron: psycopg.Connection, target: psycopg.Connection, schema: Schema, *,
                  partitions_at: str = DEFAULT_PARTITIONS_SCHEDULE, refresh_at: str = DEFAULT_REFRESH_SCHEDULE,
                  purge_at: str = DEFAULT_PURGE_SCHEDULE, remove_all: bool = False) -> SchedulePlan:
    """What to create, update and remove so pg_cron runs exactly the jobs ``schema`` needs in ``target``."""
    row = target.execute("""
        SELECT current_database(), (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n
                                    ON n.oid = e.extnamespace WHERE e.extname = 'pg_partman')""").fetchone()
    assert row is not None
    database, partman_schema = str(row[0]), row[1]
    jobs, notes = ([], []) if remove_all else desired_jobs(schema, database, partman_schema,
                                                            partitions_at=partitions_at, refresh_at=refresh_at,
                                                            purge_at=purge_at)
    current = {job.name: job for job in scheduled_jobs(cron) if job.database == database}
    create, update, unchanged = [], [], []
    for job in jobs:
        existing = current.pop(job.name, None)
        if existing is None:
            create.append(job)
        elif (existing.schedule, existing.command, existing.active) != (job.schedule, job.command, True):
            update.append((existing, job))
        else:
            unchanged.append(job)
    return SchedulePlan(database, tuple(create), tuple(update), tuple(current.values()), tuple(unchanged),
                        tuple(notes))


def apply_schedule(cron: psycopg.Connection, plan: SchedulePlan) -> None:
    """One transaction on the pg_cron database: all of the plan or nothing."""
    try:
        with cron.transaction():
            for job in plan.remove:
                cron.execute("SELECT cron.unschedule(%s)", (job.job_id,))
            for existing, _ in plan.update:
                cron.execute("SELECT cron.unschedule(%s)", (existing.job_id,))
            for new in [*plan.create, *(job for _, job in plan.update)]:
                cron.execute("SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                             (new.name, new.schedule, new.command, plan.database))
    except psycopg.Error as exc:
        raise database_error("scheduling the pg_cron jobs failed", exc) from exc
