"""Time-range partitions that keep working in production: made ahead, the default partition
emptied into them, expired ones detached or dropped; each table on its own.

One job: carrying out a :class:`~veza_schema.maintenance.partition_plan.TablePlan`.

The model (``schema/``) says which tables are partitioned, how far ahead (``premake``), how
long partitions live (``retention``) and who maintains them (``backend``); names and bounds
come from :mod:`veza_schema.managed`, as in the migrations. One run, per table: read the catalog
(:mod:`~veza_schema.maintenance.partition_state`), decide
(:mod:`~veza_schema.maintenance.partition_plan`; ``--dry-run`` stops there), then execute
here. Each unit of work is one transaction under ``lock_timeout``, retried with backoff when a
lock is not granted in time (:mod:`veza_schema.db.retry`), so writers never queue behind the
job for longer than ``lock_timeout``.

Locks, by design (see docs/partitions.md): a new partition is created as a standalone table
with a CHECK matching its bounds, then attached. Where a default partition exists, the attaching
transaction holds SHARE ROW EXCLUSIVE on the parent (reads go on; writes wait for this short
transaction) and takes ACCESS EXCLUSIVE on the default partition without waiting (NOWAIT: a
reader holding it makes the job retry later, never makes writers queue). A writer left free to
route a row into the default partition during the attach would fail once it commits ("new row
violates partition constraint"): its partition map predates the new partition. The default
partition is scanned under that lock, cheap because this job keeps it empty. Rows of the
default partition that belong to a new partition are copied in bounded batches while they
stay where they are (visible, updatable, and still referenced), a trigger logging the key of
every row written there meanwhile; catch-up rounds copy the logged rows again, then one short
transaction copies the rows logged since the last round, empties the originals without firing
triggers or ON DELETE actions, and attaches: writers wait for the rows written during the move,
not for the month. Retention first archives, deletes or unlinks the rows of other
tables that reference an expiring partition (as each foreign key's ON DELETE says), in
batches, then detaches the partition and moves it to the archive schema or drops it.

Library entry points (used by the CLI and by bench/bench_write_stall.py):
:func:`prepare_session`, :func:`~veza_schema.maintenance.partition_plan.plan_table`,
:func:`maintain_table`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import cast

import psycopg
from psycopg import sql

from veza_schema.db.errors import database_error
from veza_schema.db.retry import LockRetry, retry_on_lock_timeout
from veza_schema.errors import DatabaseError
from veza_schema.maintenance.partition_plan import (
    ConfigChange,
    Expiry,
    NewPartition,
    ReferencingRows,
    TablePlan,
    plan_table,
)
from veza_schema.maintenance.partition_state import (
    CAPTURE_PREFIX,
    JOB_LOCK_CLASS,
    PUBLIC,
    IncomingKey,
    LivePartition,
    bounds,
    references_clause,
)
from veza_schema.managed import ARCHIVE_SCHEMA, PARTITION_BOUNDS_CHECK
from veza_schema.model import Schema, Table, qualify
from veza_schema.sql import text
from veza_schema.sql.render import render_template
from veza_schema.sql.text import Sql

DEFAULT_BATCH_SIZE = 10_000
# Catch-up rounds of a move stop once a round copies at most this many rows again (or after this
# many rounds): the last rows are copied under the lock, so writers wait for about that many.
_CAUGHT_UP = 100
_CATCH_UP_ROUNDS = 10
# A step that drops the foreign keys referencing the table waits at most this long (seconds) for ACCESS
# EXCLUSIVE on the table's partitions and the referencing tables: readers queue behind it meanwhile. A
# reader holding one longer makes the step retry later.
_RELINK_WAIT = 0.05
# pg_partman re-raises every error as its own (SQLSTATE P0001, the message kept, with its CONTEXT
# appended): the SQLSTATE behind it, told by PostgreSQL's message.
_WRAPPED = {"canceling statement due to lock timeout": "55P03", "deadlock detected": "40P01",
            "updated partition constraint for default partition": "23514"}
# A deadlock victim is retried like a lock timeout: both mean "try again shortly".
_RETRYABLE = frozenset({"55P03", "40P01"})


def _sqlstate(exc: psycopg.Error) -> str | None:
    if exc.sqlstate == "P0001":
        primary = exc.diag.message_primary or ""
        for message, sqlstate in _WRAPPED.items():
            if primary.startswith(message):
                return sqlstate
    return exc.sqlstate


def _retryable(exc: psycopg.Error) -> bool:
    return _sqlstate(exc) in _RETRYABLE


def _database_error(what: str, exc: psycopg.Error) -> DatabaseError:
    if exc.sqlstate == "P0001" and _sqlstate(exc) != "P0001":  # unwrap pg_partman's error
        return DatabaseError(f"{what}: {_first_line(exc)} (in pg_partman)", _sqlstate(exc))
    return database_error(what, exc)


def partitioned_tables(schema: Schema, names: Sequence[str] | None = None) -> list[Table]:
    """Range-partitioned tables with an interval, by name (only ``names`` when given)."""
    tables = [t for _, t in sorted(schema.tables.items())
              if t.partition is not None and t.partition.strategy == "range" and t.partition.interval]
    if names:
        wanted = set(names)
        tables = [t for t in tables if t.name in wanted]
    return tables


# -- doing it ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaintenanceOptions:
    batch_size: int = DEFAULT_BATCH_SIZE
    retry: LockRetry = field(default_factory=LockRetry)
    relink_from: int | None = None  # rows from which a move relinks (None: TableState.relink_from decides)


@dataclass
class TableResult:
    """What one run did to one table; ``error`` set when it stopped on a database error."""

    plan: TablePlan
    created: list[NewPartition] = field(default_factory=list)
    moved_rows: int = 0
    copied_under_lock: int = 0  # of the rows moved, those written during the move and copied in its last step
    deleted_under_lock: int = 0  # originals DELETEd in that last step (the default partition held other rows)
    relinked_keys: int = 0  # foreign keys dropped and re-added NOT VALID around a move's TRUNCATE or a DETACH
    validated_keys: list[str] = field(default_factory=list)  # foreign keys validated after it ("name on table")
    validated_leftovers: list[str] = field(default_factory=list)  # of those, left NOT VALID by an interrupted run
    removed_leftovers: list[str] = field(default_factory=list)  # capture triggers of an interrupted move
    expired: list[Expiry] = field(default_factory=list)
    referencing_rows: int = 0
    config: list[ConfigChange] = field(default_factory=list)
    retries: int = 0
    error: DatabaseError | None = None

    @property
    def table(self) -> str:
        return self.plan.table.name

    @property
    def needs_attention(self) -> bool:
        return self.plan.needs_attention


Progress = Callable[[str], None]


def prepare_session(conn: psycopg.Connection, retry: LockRetry) -> None:
    """UTC (partition periods are cut in UTC, as by the migrations) and a lock_timeout on everything."""
    conn.execute("SET timezone TO 'UTC'")
    conn.execute(sql.SQL("SET lock_timeout TO {}").format(sql.Literal(retry.lock_timeout_setting)))


def maintain_table(conn: psycopg.Connection, plan: TablePlan, options: MaintenanceOptions | None = None,
                   progress: Progress = lambda message: None) -> TableResult:
    """Carry out ``plan`` on an autocommit connection prepared by :func:`prepare_session`.

    A database error stops this table only: it is kept in the result (exit 3), with what was
    done before it. Work already committed stays committed and is safe to resume: a rerun
    finds the partitions made, the rows moved, and a half-filled new partition by its CHECK.
    """
    options = options or MaintenanceOptions()
    result = TableResult(plan)
    worker = _Worker(conn, plan, options, result, progress)
    try:
        if not worker.claim():
            raise DatabaseError(f"{plan.table.name}: another `veza-schema partitions` is maintaining this table "
                                "now; skipped (rerun once it has finished)")
    except psycopg.Error as exc:
        result.error = database_error(f"{plan.table.name}", exc)
        return result
    except DatabaseError as exc:
        result.error = exc
        return result
    try:
        worker.remove_leftovers()
        if plan.state.unvalidated_keys:
            worker.validate_keys(leftovers=True)
        worker.sync_config()
        # Moves first: attaching a partition scans the default partition under the lock, and a
        # move leaves it without the rows it took (often empty) for the attaches that follow. A
        # failed move does not keep the empty periods from being made (they need no privilege).
        failed: DatabaseError | None = None
        try:
            for new in (new for new in plan.create if new.default_rows):
                worker.create(new)
        except DatabaseError as exc:
            failed = exc
        try:  # once for all the moves: each VALIDATE scans the referencing table
            worker.validate_keys(relinked_only=True)
        except DatabaseError as exc:
            failed = failed or exc
        for new in (new for new in plan.create if not new.default_rows):
            worker.create(new)
        if failed is not None:
            raise failed
        try:
            for expiry in plan.expire:
                worker.expire(expiry)
        except DatabaseError as exc:
            failed = exc
        try:  # what the detaches re-added NOT VALID
            worker.validate_keys(relinked_only=True)
        except DatabaseError as exc:
            failed = failed or exc
        if failed is not None:
            raise failed
    except DatabaseError as exc:
        result.error = exc
    except psycopg.Error as exc:
        result.error = database_error(f"{plan.table.name}", exc)
    finally:
        worker.release()
    result.created.sort(key=lambda new: new.start)
    return result


class _Worker:
    """Executes one table's plan; every unit of work is one retried transaction."""

    def __init__(self, conn: psycopg.Connection, plan: TablePlan, options: MaintenanceOptions,
                 result: TableResult, progress: Progress) -> None:
        self.conn, self.plan, self.options, self.result, self.progress = conn, plan, options, result, progress
        self.table = plan.table.name
        self.key = plan.state.key
        self.partman = plan.state.partman
        self.unvalidated = False  # a step re-added foreign keys NOT VALID since the last validation

    # one run per table ------------------------------------------------------------------------------
    def claim(self) -> bool:
        """Take this table's job lock (a session advisory lock, gone with the session if the run dies)."""
        row = self.execute("SELECT pg_try_advisory_lock(%(key)s)", {"key": self.job_lock_key()}).fetchone()
        return bool(row and row[0])

    def release(self) -> None:
        with contextlib.suppress(psycopg.Error):  # a broken connection has lost the lock already
            self.execute("SELECT pg_advisory_unlock(%(key)s)", {"key": self.job_lock_key()})

    def job_lock_key(self) -> int:
        row = self.execute("SELECT %(table)s::regclass::oid::bigint",
                           {"table": sql.Identifier(PUBLIC, self.table).as_string(self.conn)}).fetchone()
        assert row is not None
        return (JOB_LOCK_CLASS << 32) | int(row[0])

    def remove_leftovers(self) -> None:
        """Drop what an interrupted move left (its capture trigger, function and log): holding the job
        lock, no other run is moving rows of this table. Left, the trigger would log every write to
        the default partition for ever."""
        default, names = self.plan.state.default, self.plan.state.capture_triggers
        if default is None or not names:
            return
        self.at_once(f"removing what an interrupted move left on {default}", [
            statement for name in names for statement in _capture_dropped(name, default, if_exists=True)])
        self.result.removed_leftovers.extend(names)

    # transactions ------------------------------------------------------------------------------
    def transaction(self, what: str, work: Callable[[], object]) -> object:
        def attempt() -> object:
            with self.conn.transaction():
                return work()

        return self.retried(what, attempt)

    def at_once(self, what: str, statements: Sequence[sql.Composable | tuple[sql.Composable, dict[str, object]]]
                ) -> _Done:
        """``statements`` (with their parameters, bound by psycopg here) in one round trip, retried like
        :meth:`transaction`: on this autocommit connection PostgreSQL runs them as one implicit
        transaction, committed after the last one and rolled back at the first error. For the steps
        holding locks that make writers wait: they wait for the database only, never for this process
        to be scheduled between statements (on a busy machine, milliseconds each)."""
        binder = psycopg.ClientCursor(self.conn)
        query: sql.Composable = sql.SQL("; ").join([
            sql.SQL(binder.mogrify(cast(sql.Composed, statement[0]), statement[1])) if isinstance(statement, tuple)
            else statement for statement in statements])

        def attempt() -> _Done:
            cursor = self.execute(query)
            counts = [cursor.rowcount]
            while cursor.nextset():
                counts.append(cursor.rowcount)
            return _Done(counts, cursor.fetchone() if cursor.description is not None else None)

        done = self.retried(what, attempt)
        assert isinstance(done, _Done)
        return done

    def retried(self, what: str, attempt: Callable[[], object]) -> object:
        def retrying(attempt_number: int, delay: float, exc: BaseException) -> None:
            self.result.retries += 1
            self.progress(f"{what}: {_first_line(exc)}; retry {attempt_number} in {delay:.1f}s")

        try:
            return retry_on_lock_timeout(attempt, self.options.retry, retrying, _retryable)
        except psycopg.Error as exc:
            raise _database_error(f"{self.table}: {what} failed", exc) from exc

    def execute(self, query: sql.Composable | str, params: dict[str, object] | None = None
                ) -> psycopg.Cursor:
        return self.conn.execute(query, params)  # type: ignore[arg-type]

    # pg_partman settings ------------------------------------------------------------------------
    def sync_config(self) -> None:
        if not self.plan.config or self.partman is None:
            return
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c.setting), sql.Placeholder(c.setting))
            for c in self.plan.config)
        params: dict[str, object] = {c.setting: c.after for c in self.plan.config}
        params["parent"] = f"{PUBLIC}.{self.table}"
        query = sql.SQL("UPDATE {} SET {} WHERE parent_table = %(parent)s").format(
            sql.Identifier(self.partman.schema, "part_config"), assignments)
        self.transaction("updating part_config", lambda: self.execute(query, params))
        self.result.config.extend(self.plan.config)

    # new partitions ------------------------------------------------------------------------------
    def create(self, new: NewPartition) -> None:
        if new.default_rows == 0:
            try:
                self.attach_empty(new)
            except DatabaseError as exc:
                if exc.sqlstate != "23514":  # rows for its range reached the default partition meanwhile
                    raise
            else:
                self.result.created.append(new)
                return
        moved, under_lock, deleted, relinked = self.create_moving_default_rows(new)
        self.result.created.append(replace(new, default_rows=moved, under_lock=under_lock,
                                           deleted_under_lock=moved if deleted else 0, relinked_keys=relinked))
        self.result.moved_rows += moved
        self.result.copied_under_lock += under_lock
        self.result.deleted_under_lock += moved if deleted else 0
        self.result.relinked_keys += relinked

    def attach_empty(self, new: NewPartition) -> None:
        """The standalone table in one transaction, then the locks and the attach in one round trip
        (a crash between the two leaves the standalone table, which the next run empties and reuses)."""
        if self.plan.backend == "partman" and self.partman is not None:
            create_partition = sql.Identifier(self.partman.schema, "create_partition_time")
            self.transaction(f"creating {new.name}", lambda: self.execute(
                sql.SQL("SELECT {}(%(parent)s, ARRAY[%(start)s]::timestamptz[], false)").format(create_partition),
                {"parent": f"{PUBLIC}.{self.table}", "start": new.start}))
            return
        made = self.standalone(new)
        if made is not None:
            self.at_once(f"creating {new.name}", made)
        self.at_once(f"attaching {new.name}", [*self.locks_for_attach(), *(self.emptied(new) if made is None else []),
                                               *self.attach(new)])

    def locks_for_attach(self) -> list[sql.Composable]:
        """Writers wait for the attaching transaction instead of routing rows into the default
        partition with a partition map that predates the new partition (their INSERT would fail);
        the default partition is taken without queueing behind its readers (55P03: retried later).
        The parent ONLY: LOCK TABLE would also lock every partition, and wait (writers queued behind
        it) for whoever holds one, such as an autovacuum of an old month."""
        default = self.plan.state.default
        if default is None:
            return []
        return [sql.SQL("LOCK TABLE ONLY {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(PUBLIC, self.table)),
                sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE NOWAIT").format(sql.Identifier(PUBLIC, default))]

    def standalone(self, new: NewPartition) -> list[sql.Composable] | None:
        """The statements making the partition-to-be a plain table with the parent's columns, indexes
        and CHECKs, and a CHECK matching its bounds; None when an interrupted run made it (it is
        reused, once :meth:`emptied`)."""
        existing = self.execute("""
            SELECT c.relispartition, EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid
                                              AND k.conname = %(check)s)
            FROM pg_class c WHERE c.relname = %(name)s AND c.relnamespace = %(ns)s::regnamespace""",
                                {"name": new.name, "check": PARTITION_BOUNDS_CHECK, "ns": PUBLIC}).fetchone()
        if existing is not None:
            if existing[0] or not existing[1]:
                raise DatabaseError(f"{self.table}: a table named {new.name} already exists and is not a partition "
                                    "this job was making; rename or drop it")
            return None
        return [sql.SQL(
            "CREATE TABLE {new} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES "
            "INCLUDING STORAGE INCLUDING GENERATED INCLUDING STATISTICS)").format(
            new=sql.Identifier(PUBLIC, new.name), parent=sql.Identifier(PUBLIC, self.table)),
            sql.SQL("ALTER TABLE {new} ADD CONSTRAINT {check} CHECK ({key} IS NOT NULL AND {key} >= {lo} "
                    "AND {key} < {hi})").format(
            new=sql.Identifier(PUBLIC, new.name), check=sql.Identifier(PARTITION_BOUNDS_CHECK),
            key=sql.Identifier(self.key), lo=sql.Literal(new.start.isoformat()), hi=sql.Literal(new.end.isoformat()))]

    @staticmethod
    def emptied(new: NewPartition) -> list[sql.Composable]:
        """Emptying a reused partition-to-be: the rows it holds are copies, their originals are still in
        the default partition."""
        return [sql.SQL("TRUNCATE {}").format(sql.Identifier(PUBLIC, new.name))]

    def attach(self, new: NewPartition) -> list[sql.Composable]:
        """The statements attaching ``new`` and dropping its bounds CHECK."""
        return [sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {new} FOR VALUES FROM ({lo}) TO ({hi})").format(
            parent=sql.Identifier(PUBLIC, self.table), new=sql.Identifier(PUBLIC, new.name),
            lo=sql.Literal(new.start.isoformat()), hi=sql.Literal(new.end.isoformat())),
            sql.SQL("ALTER TABLE {new} DROP CONSTRAINT {check}").format(
            new=sql.Identifier(PUBLIC, new.name), check=sql.Identifier(PARTITION_BOUNDS_CHECK))]

    def create_moving_default_rows(self, new: NewPartition) -> tuple[int, int, bool, int]:
        """Copy, catch up, swap: the rows stay in the default partition (visible, updatable, and
        still referenced) while they are copied in bounded batches into the partition-to-be, and a
        trigger on the default partition logs the primary key of every row written there meanwhile.
        Catch-up rounds copy the logged rows again until few are left; then one short transaction in
        one round trip, holding the locks of :meth:`locks_for_attach`, copies the last logged rows (only those written
        since the previous round), empties the originals without firing triggers or ON DELETE
        actions (it is a move, not a deletion: TRUNCATE when the default partition holds nothing
        else, the foreign keys referencing the table dropped and re-added NOT VALID around it where
        :attr:`~veza_schema.maintenance.partition_state.TableState.relink_refusal` allows; else
        DELETE), and attaches the partition. A table without
        a primary key has no row identity to log: its rows are copied in that last transaction.
        A crash at any point leaves every row where it was; a rerun starts the copy over.
        Returns the rows moved, how many of them were copied in the last step, whether that step
        DELETEd the originals (its time then grows with the rows moved), and how many foreign keys it
        re-added NOT VALID (:meth:`validate_keys` validates them)."""
        default = self.plan.state.default
        assert default is not None
        key = self.plan.state.primary_key
        in_range = sql.SQL("{key} >= %(lo)s AND {key} < %(hi)s").format(key=sql.Identifier(self.key))
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in self.plan.state.columns)
        logged = sql.SQL("({key}) IN (SELECT {key} FROM {log})").format(
            key=sql.SQL(", ").join(sql.Identifier(c) for c in key), log=sql.Identifier(PUBLIC, _capture_name(new)))
        source, target = sql.Identifier(PUBLIC, default), sql.Identifier(PUBLIC, new.name)
        params = bounds(new)
        move_key = text.join(text.ident(c) for c in key)

        def relinks(move: _MoveCount) -> bool:
            """Whether the last step drops the foreign keys referencing the table around a TRUNCATE."""
            relink_from = self.plan.state.relink_from if self.options.relink_from is None else self.options.relink_from
            return self.plan.state.relinks and bool(key) and move.rows >= relink_from

        def prepare() -> _MoveCount:
            """One round trip from the trigger's creation (its lock makes writers of the default partition
            wait) to the commit; the relation's size is read after the trigger exists: rows written
            later, past those pages, are logged."""
            replica = [sql.SQL("SET LOCAL session_replication_role = replica"),  # fails here, before anything
                       sql.SQL("SET LOCAL session_replication_role = origin")] \
                if self.plan.state.move_needs_replica else []                      # is made, without the right
            row = self.at_once(f"creating {new.name}", [
                *replica, *(self.standalone(new) or self.emptied(new)), *(self.capture(new) if key else []),
                sql.SQL("SELECT pg_relation_size({rel}::regclass) / current_setting('block_size')::int, "
                        "greatest(reltuples, 0) / greatest(relpages, 1) FROM pg_class WHERE oid = {rel}::regclass"
                        ).format(rel=sql.Literal(source.as_string(self.conn)))]).row
            assert row is not None
            return _MoveCount(pages=int(str(row[0])),
                              pages_per_batch=max(1, int(self.options.batch_size / max(float(str(row[1])), 1.0))))

        def copy_pages(move: _MoveCount, first: int) -> _MoveCount:
            """The rows of pages [first, last) that belong to the range; rows written since the trigger
            exists may be copied twice (ON CONFLICT skips the second): they are logged, and caught up."""
            row = self.execute(sql.SQL(
                "WITH batch AS (SELECT {columns} FROM ONLY {source} WHERE ctid >= %(first)s::tid "
                "AND ctid < %(last)s::tid), copied AS (INSERT INTO {target} ({columns}) SELECT {columns} FROM batch "
                "WHERE {in_range} ON CONFLICT DO NOTHING RETURNING 1) "
                "SELECT (SELECT count(*) FROM copied), count(*) FILTER (WHERE NOT coalesce({in_range}, false)) "
                "FROM batch").format(columns=columns, source=source, target=target, in_range=in_range),
                {**params, "first": f"({first},0)", "last": f"({first + move.pages_per_batch},0)"}).fetchone()
            assert row is not None
            return replace(move, rows=move.rows + int(row[0]), others=move.others or int(row[1]) > 0)

        def catch_up(move: _MoveCount) -> _MoveCount:
            """Copy again the rows whose key was logged (their copies first removed)."""
            removed = self.execute(sql.SQL("DELETE FROM {target} WHERE {logged}").format(
                target=target, logged=logged)).rowcount
            added = self.execute(sql.SQL("INSERT INTO {target} ({columns}) SELECT {columns} FROM ONLY {source} "
                                         "WHERE {in_range} AND {logged}").format(
                target=target, columns=columns, source=source, in_range=in_range, logged=logged), params).rowcount
            others = move.others
            if not others:  # only a TRUNCATE needs to know
                row = self.execute(sql.SQL("SELECT EXISTS (SELECT FROM ONLY {source} WHERE {logged} "
                                           "AND NOT coalesce({in_range}, false))").format(
                    source=source, logged=logged, in_range=in_range), params).fetchone()
                others = bool(row and row[0])
            return replace(move, rows=move.rows - removed + added, others=others, last_step=added)

        def catch_up_round(move: _MoveCount) -> _MoveCount:
            # One snapshot for the log and the rows it names: a key logged after it is kept for the next round.
            self.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # The log's statistics first: without them the planner takes it for large (it is never analyzed,
            # and full of dead rows) and scans the whole default partition, here and under the last step's lock.
            self.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(PUBLIC, _capture_name(new))))
            move = catch_up(move)
            return replace(move, logged=self.execute(sql.SQL("DELETE FROM {}").format(
                sql.Identifier(PUBLIC, _capture_name(new)))).rowcount)

        def swap(move: _MoveCount) -> _MoveCount:
            """The last step, under the locks, in one round trip (see the template)."""
            relink = relinks(move)
            block = render_template(
                "objects/partition_move_swap.sql.j2", target=f"{PUBLIC}.{new.name}", source=f"{PUBLIC}.{default}",
                log=f"{PUBLIC}.{_capture_name(new)}", key=move_key, columns=text.join(text.ident(c) for c in
                                                                                  self.plan.state.columns),
                in_range=text.compose("{} >= {} AND {} < {}", text.ident(self.key), text.literal(new.start.isoformat()),
                                      text.ident(self.key), text.literal(new.end.isoformat())),
                must_delete=Sql("true" if move.others or (self.plan.state.incoming and not relink) or not key
                                else "false"),
                replica=self.plan.state.move_needs_replica, rows=move.rows)
            row = self.at_once(f"attaching {new.name}", [
                *self.locks_for_attach(), *(self.keys_dropped() if relink else []), sql.SQL(block.rstrip("\n")),
                *(self.keys_readded() if relink else []), *(self.capture_drops(new) if key else []),
                *self.attach(new),
                sql.SQL("SELECT current_setting('veza.move_rows')::bigint, "
                        "current_setting('veza.move_copied')::bigint, current_setting('veza.move_deleted')::bool, "
                        "coalesce(current_setting('veza.relinked', true), '')")]).row
            assert row is not None
            return replace(move, rows=int(str(row[0])), last_step=int(str(row[1])), others=row[2] is True,
                           relinked=int(str(row[3]) or 0))

        def step(what: str, work: Callable[[_MoveCount], _MoveCount], move: _MoveCount) -> _MoveCount:
            # Each transaction returns the new count; a rolled-back attempt (retried) leaves it as it was.
            done = self.transaction(what, partial(work, move))
            assert isinstance(done, _MoveCount)
            return done

        move = prepare()
        if key:
            for first in range(0, move.pages, move.pages_per_batch):
                move = step(f"copying rows of {default} to {new.name}", partial(copy_pages, first=first), move)
            for _ in range(_CATCH_UP_ROUNDS):
                move = step(f"copying rows written to {default} meanwhile", catch_up_round, move)
                if move.logged <= _CAUGHT_UP:
                    break
        move = swap(move)
        if move.others:
            self.vacuum_default()
        return move.rows, move.last_step, move.others, move.relinked

    def keys_dropped(self) -> list[sql.Composable]:
        """Dropping the foreign keys that reference this table, for the rest of the step (see the template)."""
        wait = f"{max(1, round(min(self.options.retry.lock_timeout, _RELINK_WAIT) * 1000))}ms"
        return [sql.SQL(render_template("objects/partition_keys_drop.sql.j2", parent=f"{PUBLIC}.{self.table}",
                                        wait=wait).rstrip("\n"))]

    def keys_readded(self) -> list[sql.Composable]:
        """Re-adding NOT VALID, later in the same step, what :meth:`keys_dropped` dropped."""
        self.unvalidated = True
        return [sql.SQL(render_template("objects/partition_keys_readd.sql.j2").rstrip("\n"))]

    def validate_keys(self, *, leftovers: bool = False, relinked_only: bool = False) -> None:
        """Validate the foreign keys referencing this table that are NOT VALID: those the last step of a
        move re-added, or (``leftovers``, first thing in a run) those a run interrupted after that step
        left. VALIDATE takes SHARE UPDATE EXCLUSIVE on the referencing table and ROW SHARE on this one:
        writers go on while it scans. Until then the keys are enforced on every write, only not proven
        for the rows already there (the same keys were in the new partition at the commit).
        ``relinked_only``: nothing to do unless a step of this run re-added keys."""
        if relinked_only and not self.unvalidated:
            return
        self.unvalidated = False
        for schema, table, name in self.execute("""
                SELECT n.nspname, c.relname, con.conname FROM pg_constraint con
                JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE con.contype = 'f' AND con.confrelid = %(parent)s::regclass AND con.conparentid = 0
                AND NOT con.convalidated AND coalesce((to_jsonb(con) ->> 'conenforced')::bool, true)
                ORDER BY 2, 3""", {"parent": sql.Identifier(PUBLIC, self.table).as_string(self.conn)}).fetchall():
            what = f"{name} on {qualify(schema, table)}"
            self.progress(f"validating foreign key {what}")
            self.retried(f"validating foreign key {what}", partial(self.execute, sql.SQL(
                "ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.Identifier(schema, table), sql.Identifier(name))))
            self.result.validated_keys.append(what)
            if leftovers:
                self.result.validated_leftovers.append(what)

    def vacuum_default(self) -> None:
        """After a move that DELETEd its rows: every later attach scans the default partition under its
        lock, dead rows included; VACUUM (which writers do not wait for) leaves it pages without rows.
        Best effort: when it cannot take its lock in time (an autovacuum runs there), the attaches only
        take longer."""
        default = self.plan.state.default
        assert default is not None
        try:
            self.retried(f"vacuuming {default}", lambda: self.execute(
                sql.SQL("VACUUM (TRUNCATE false) {}").format(sql.Identifier(PUBLIC, default))))
        except DatabaseError as exc:
            self.progress(f"{default} not vacuumed: {exc}")

    def capture(self, new: NewPartition) -> list[sql.Composable]:
        """The statements making the log of keys written to the default partition during the move,
        and its trigger (last: its lock makes writers of the default partition wait until the commit)."""
        name, default = _capture_name(new), self.plan.state.default
        assert default is not None
        key = sql.SQL(", ").join(sql.Identifier(c) for c in self.plan.state.primary_key)
        return [
            sql.SQL("CREATE UNLOGGED TABLE {log} AS SELECT {key} FROM ONLY {parent} WITH NO DATA").format(
                log=sql.Identifier(PUBLIC, name), key=key, parent=sql.Identifier(PUBLIC, self.table)),
            sql.SQL(render_template("objects/partition_move_capture.sql.j2", function=f"{PUBLIC}.{name}",
                                    log=f"{PUBLIC}.{name}", key=self.plan.state.primary_key).rstrip("\n;")),
            sql.SQL("CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {default} FOR EACH ROW "
                    "EXECUTE FUNCTION {function}()").format(
                name=sql.Identifier(name), default=sql.Identifier(PUBLIC, default),
                function=sql.Identifier(PUBLIC, name))]

    def capture_drops(self, new: NewPartition) -> list[sql.Composable]:
        """The statements dropping what :meth:`capture` made (the trigger's takes an ACCESS EXCLUSIVE lock
        on the default partition: they run under the last step's locks)."""
        default = self.plan.state.default
        assert default is not None
        return _capture_dropped(_capture_name(new), default, if_exists=False)

    # moving rows in batches ------------------------------------------------------------------------
    def move_batch(self, source: str, target: str | None, where: sql.Composable, params: dict[str, object], *,
                   limit: int | None, set_null: Sequence[str] = (), target_schema: str = PUBLIC) -> int:
        return self.execute(self.batch(source, target, where, limit=limit, set_null=set_null,
                                       target_schema=target_schema), params).rowcount

    def batch(self, source: str, target: str | None, where: sql.Composable, *,
              limit: int | None, set_null: Sequence[str] = (), target_schema: str = PUBLIC) -> sql.Composable:
        """The statement moving the rows of ``source`` matching ``where`` (``limit`` of them) to ``target``,
        deleting them (no target) or setting ``set_null`` columns to NULL."""
        source_id = sql.Identifier(PUBLIC, source)
        chosen = sql.SQL("SELECT ctid FROM ONLY {source} WHERE {where}{limit}").format(
            source=source_id, where=where, limit=sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit
            else sql.SQL(""))
        if set_null:
            assignments = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in set_null)
            return sql.SQL("UPDATE ONLY {source} SET {assignments} WHERE ctid = ANY(ARRAY({chosen}))").format(
                source=source_id, assignments=assignments, chosen=chosen)
        if target is None:
            return sql.SQL("DELETE FROM ONLY {source} WHERE ctid = ANY(ARRAY({chosen}))").format(
                source=source_id, chosen=chosen)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns_of(source))
        return sql.SQL("WITH moved AS (DELETE FROM ONLY {source} WHERE ctid = ANY(ARRAY({chosen})) "
                       "RETURNING {columns}) INSERT INTO {target} ({columns}) SELECT {columns} FROM moved").format(
            source=source_id, chosen=chosen, columns=columns, target=sql.Identifier(target_schema, target))

    def columns_of(self, relation: str) -> tuple[str, ...]:
        if relation == self.plan.state.default:
            return self.plan.state.columns
        return tuple(r[0] for r in self.execute("""
            SELECT attname FROM pg_attribute WHERE attrelid = %(rel)s::regclass AND attnum > 0
            AND NOT attisdropped AND attgenerated = '' ORDER BY attnum""",
                                                {"rel": f"{PUBLIC}.{relation}"}).fetchall())

    # retention -------------------------------------------------------------------------------------
    def expire(self, expiry: Expiry) -> None:
        partition = expiry.partition
        if expiry.keep_table or any(r.action == "archive" for r in expiry.referencing):
            self.transaction("creating the archive schema", lambda: self.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ARCHIVE_SCHEMA))))
        for referencing in expiry.referencing:
            if referencing.action == "archive":
                self.ensure_archive(referencing)
            self.result.referencing_rows += self.unlink(referencing, partition, limit=self.options.batch_size)
        if self.plan.backend == "partman" and not self.plan.state.incoming and self.partman is not None:
            self.transaction(f"expiring {partition.name}", lambda: self.partman_drop(expiry))
        else:
            self.detach(expiry)
        self.result.expired.append(expiry)

    def ensure_archive(self, referencing: ReferencingRows) -> None:
        archive = referencing.archive_table
        assert archive is not None
        self.transaction(f"creating {ARCHIVE_SCHEMA}.{archive}", lambda: self.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {archive} (LIKE {source} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES INCLUDING STORAGE INCLUDING GENERATED)").format(
            archive=sql.Identifier(ARCHIVE_SCHEMA, archive),
            source=sql.Identifier(PUBLIC, referencing.key.table))))

    def unlink(self, referencing: ReferencingRows, partition: LivePartition, *, limit: int) -> int:
        """Apply the foreign key's ON DELETE to the rows referencing ``partition``, leaf by leaf, in
        batches of ``limit`` (one transaction each)."""
        key = referencing.key
        set_null = key.nulled_on_delete if referencing.action == "set null" else ()
        total = 0
        for leaf in key.leaves:
            what = f"{referencing.action} of {key.table} rows referencing {partition.name}"
            while True:
                batch = self.transaction(what, partial(self.move_batch_to, leaf, referencing.archive_table, key,
                                                       partition, limit=limit, set_null=set_null))
                assert isinstance(batch, int)
                total += batch
                if batch < limit:
                    break
        return total

    def move_batch_to(self, leaf: str, archive: str | None, key: IncomingKey, partition: LivePartition, *,
                      limit: int | None, set_null: Sequence[str]) -> int:
        return self.move_batch(leaf, archive, references_clause(key), bounds(partition), limit=limit,
                               set_null=set_null, target_schema=ARCHIVE_SCHEMA)

    def detach(self, expiry: Expiry) -> None:
        """One round trip (DETACH takes ACCESS EXCLUSIVE on the parent: writers wait for all of it):
        lock the referencing tables (no new reference into the partition), handle the rows that
        referenced it since the last batch, detach, then archive or drop it."""
        partition = expiry.partition
        statements: list[sql.Composable | tuple[sql.Composable, dict[str, object]]] = [
            # ONLY: a partitioned referencing table is written through its parent, and locking its
            # partitions too would wait (writers queued behind) for whoever holds one, an autovacuum
            # say; a row written straight into a partition that references the month makes the
            # DETACH fail (PostgreSQL checks), nothing else.
            sql.SQL("LOCK TABLE ONLY {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(PUBLIC, table))
            for table in sorted({r.key.table for r in expiry.referencing})]
        locks = len(statements)
        for referencing in expiry.referencing:
            key = referencing.key
            statements += [(self.batch(leaf, referencing.archive_table, references_clause(key), limit=None,
                                       set_null=key.nulled_on_delete if referencing.action == "set null" else (),
                                       target_schema=ARCHIVE_SCHEMA), bounds(partition)) for leaf in key.leaves]
        unlinks = len(statements) - locks
        # PostgreSQL checks, under the DETACH's lock, that no row references the partition: a scan of the
        # partition against each referencing table (336 ms for 50,000 referenced rows on the bench machine).
        # Redundant here: the referencing tables are locked, and the statements above archived, deleted or
        # unlinked every row referencing the partition (its key in the partition's range, no column NULL).
        # So the keys are dropped around the DETACH and re-added NOT VALID, then validated after the commit.
        relink = self.plan.state.relinks
        if relink:
            statements += self.keys_dropped()
        statements.append(sql.SQL("ALTER TABLE {parent} DETACH PARTITION {partition}").format(
            parent=sql.Identifier(PUBLIC, self.table), partition=sql.Identifier(PUBLIC, partition.name)))
        if expiry.keep_table:
            statements.append(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(PUBLIC, partition.name), sql.Identifier(ARCHIVE_SCHEMA)))
            statements += self.archive_drops(partition.name, PUBLIC)
        else:
            statements.append(sql.SQL("DROP TABLE {}").format(sql.Identifier(PUBLIC, partition.name)))
        if relink:
            statements += [*self.keys_readded(), sql.SQL("SELECT current_setting('veza.relinked')::int")]
        done = self.at_once(f"expiring {partition.name}", statements)
        self.result.referencing_rows += sum(done.rowcounts[locks:locks + unlinks])
        if relink and done.row is not None:
            self.result.relinked_keys += int(str(done.row[0]))

    def archive_drops(self, name: str, schema: str) -> list[sql.Composable]:
        """Dropping, once ``name`` is in the archive schema, its foreign keys to partitioned tables (read
        where it is now, in ``schema``; a detached partition keeps its constraints' names)."""
        return [sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(ARCHIVE_SCHEMA, name), sql.Identifier(constraint)) for (constraint,) in self.execute("""
                SELECT con.conname FROM pg_constraint con JOIN pg_class ref ON ref.oid = con.confrelid
                WHERE con.conrelid = %(rel)s::regclass AND con.contype = 'f' AND ref.relkind = 'p'""",
                {"rel": sql.Identifier(schema, name).as_string(self.conn)}).fetchall()]

    def standalone_archive(self, name: str) -> None:
        """An archived partition keeps its foreign keys to plain tables (erasing a user still reaches
        it) but not those to partitioned ones: they would block detaching the referenced partitions."""
        for statement in self.archive_drops(name, ARCHIVE_SCHEMA):
            self.execute(statement)

    def partman_drop(self, expiry: Expiry) -> None:
        assert self.partman is not None and self.plan.table.partition is not None
        spec = self.plan.table.partition
        assert spec.retention is not None
        self.execute(sql.SQL(
            "SELECT {}(%(parent)s, p_retention := %(retention)s::interval, p_keep_table := %(keep)s, "
            "p_retention_schema := %(schema)s, p_reference_timestamp := %(as_of)s)").format(
            sql.Identifier(self.partman.schema, "drop_partition_time")),
            {"parent": f"{PUBLIC}.{self.table}", "retention": str(spec.retention), "keep": expiry.keep_table,
             "schema": ARCHIVE_SCHEMA if expiry.keep_table else None, "as_of": self.plan.as_of})
        if expiry.keep_table:
            self.standalone_archive(expiry.partition.name)


@dataclass(frozen=True)
class _MoveCount:
    """What a move of default rows knows as it goes: exact, from each statement's row count."""

    pages: int  # of the default partition when the log began: rows written later are logged
    pages_per_batch: int
    rows: int = 0  # rows in the partition-to-be
    others: bool = False  # rows of another range in the default partition (DELETE); after the last step: it DELETEd
    last_step: int = 0  # rows copied by the latest catch-up (the last one: under the lock)
    logged: int = 0  # keys the latest catch-up took from the log
    relinked: int = 0  # after the last step: foreign keys it re-added NOT VALID


@dataclass(frozen=True)
class _Done:
    """What :meth:`_Worker.at_once` ran: each statement's row count, and the last one's row (if any)."""

    rowcounts: list[int]
    row: tuple[object, ...] | None


def _capture_dropped(name: str, default: str, *, if_exists: bool) -> list[sql.Composable]:
    """Dropping a move's capture trigger (on the default partition), its function and its log, all named
    ``name``; ``if_exists`` for what an interrupted move may have left only in part."""
    guard = sql.SQL(" IF EXISTS" if if_exists else "")
    return [sql.SQL("DROP TRIGGER{} {} ON {}").format(guard, sql.Identifier(name), sql.Identifier(PUBLIC, default)),
            sql.SQL("DROP FUNCTION{} {}()").format(guard, sql.Identifier(PUBLIC, name)),
            sql.SQL("DROP TABLE{} {}").format(guard, sql.Identifier(PUBLIC, name))]


def _capture_name(new: NewPartition) -> str:
    """The log table, its trigger function and its trigger (one name; ``veza_`` marks it as the tool's)."""
    name = f"{CAPTURE_PREFIX}{new.name}"
    if len(name.encode()) > 63:  # PostgreSQL would truncate it: a stable short name instead
        name = f"{CAPTURE_PREFIX}{hashlib.sha256(new.name.encode()).hexdigest()[:16]}"
    return name


def _first_line(exc: BaseException) -> str:
    primary = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    lines = str(primary).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def maintain(conn: psycopg.Connection, table: Table, as_of: datetime | None = None, premake: int | None = None,
             options: MaintenanceOptions | None = None, progress: Progress = lambda message: None) -> TableResult:
    """One table, end to end (the session prepared, the plan made and carried out): what a
    benchmark or another tool calls. Raises :class:`DatabaseError` when the table cannot be read."""
    options = options or MaintenanceOptions()
    prepare_session(conn, options.retry)
    try:
        plan = plan_table(conn, table, as_of or datetime.now(UTC), premake)
    except psycopg.Error as exc:
        raise database_error(f"reading {table.name}", exc) from exc
    return maintain_table(conn, plan, options, progress)
