"""Time-range partitions that keep working in production: made ahead, the default partition
emptied into them, expired ones detached or dropped; each table on its own.

The model (``schema/``) says which tables are partitioned, how far ahead (``premake``), how
long partitions live (``retention``) and who maintains them (``backend``); names and bounds
come from :mod:`veza_schema.managed`, as in the migrations. One run, per table:

1. read the catalog (partitions and their bounds, rows in the default partition per period,
   foreign keys pointing at the table) -> :class:`TableState`;
2. decide, without touching anything (:func:`decide`) -> :class:`TablePlan`; ``--dry-run``
   prints exactly this;
3. execute: each unit of work is one transaction under ``lock_timeout``, retried with backoff
   when a lock is not granted in time (:mod:`veza_schema.db.retry`), so writers never queue
   behind the job for longer than ``lock_timeout``.

Locks, by design (PostgreSQL 15, see docs/partitions.md): a new partition is created as a
standalone table with a CHECK matching its bounds and then attached (SHARE UPDATE EXCLUSIVE
on the parent: reads and writes go on; the default partition is scanned under ACCESS
EXCLUSIVE, which is cheap because this job keeps it empty). Rows of the default partition
that belong to a new partition move in bounded batches, one transaction each (a DELETE ...
RETURNING feeding an INSERT: a row is never lost nor duplicated); the last rows move in the
transaction that attaches. Retention first moves, deletes or unlinks the rows of other tables
that reference an expiring partition (following each foreign key's ON DELETE action), in
batches, then detaches it (ACCESS EXCLUSIVE on the parent, briefly) and moves it to the
archive schema or drops it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Literal

import psycopg
from psycopg import sql

from veza_schema.db.errors import database_error
from veza_schema.db.retry import LockRetry, retry_on_lock_timeout
from veza_schema.errors import DatabaseError
from veza_schema.managed import (
    ARCHIVE_SCHEMA,
    PARTITION_BOUNDS_CHECK,
    next_period,
    period_start,
    planned_partitions,
    retention_cutoff,
    suffix_format,
)
from veza_schema.model import Schema, Table

DEFAULT_BATCH_SIZE = 10_000
PUBLIC = "public"
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


_RANGE = re.compile(r"FOR VALUES FROM \('(?P<lo>[^']*)'\) TO \('(?P<hi>[^']*)'\)")
_FK_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


def partitioned_tables(schema: Schema, names: Sequence[str] | None = None) -> list[Table]:
    """Range-partitioned tables with an interval, by name (only ``names`` when given)."""
    tables = [t for _, t in sorted(schema.tables.items())
              if t.partition is not None and t.partition.strategy == "range" and t.partition.interval]
    if names:
        wanted = set(names)
        tables = [t for t in tables if t.name in wanted]
    return tables


# -- what the catalog holds -------------------------------------------------------------------------
@dataclass(frozen=True)
class LivePartition:
    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class IncomingKey:
    """A foreign key of another table (``table``) referencing the partitioned table."""

    name: str
    table: str
    columns: tuple[str, ...]
    key_column: str  # the referencing column that holds the referenced row's partition key
    on_delete: str
    leaves: tuple[str, ...]  # the plain tables holding its rows (itself, or its leaf partitions)
    indexed: bool  # an index of the referencing table leads with key_column


@dataclass(frozen=True)
class PartmanConfig:
    """pg_partman's view of a table: where the extension lives and the table's part_config row."""

    schema: str
    version: str
    registered: bool
    premake: int | None = None
    retention: str | None = None
    keep_table: bool | None = None
    retention_schema: str | None = None
    datetime_string: str | None = None
    infinite: bool | None = None


@dataclass(frozen=True)
class TableState:
    table: str
    key: str
    partitions: tuple[LivePartition, ...]
    default: str | None
    default_rows: tuple[tuple[datetime | None, int], ...]  # (period start, rows); None: NULL key
    columns: tuple[str, ...]
    incoming: tuple[IncomingKey, ...]
    partman: PartmanConfig | None  # None: pg_partman is not installed
    odd_partitions: tuple[str, ...] = ()  # bounds that are not one period of the interval
    delete_triggers: bool = False  # the default partition has triggers firing on DELETE

    @property
    def move_needs_replica(self) -> bool:
        """Moving rows out of the default partition deletes them there: without
        ``session_replication_role = replica`` that would fire ON DELETE actions and triggers."""
        return bool(self.incoming) or self.delete_triggers

    @property
    def default_row_count(self) -> int:
        return sum(count for _, count in self.default_rows)


def read_state(conn: psycopg.Connection, table: Table) -> TableState:
    """The partitions, default rows and incoming foreign keys of ``table``: a handful of queries."""
    assert table.partition is not None and table.partition.interval is not None
    interval = table.partition.interval
    key = table.partition.columns[0]
    row = conn.execute("""
        SELECT c.oid, c.relkind::text, d.relname
        FROM pg_class c
        LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
        LEFT JOIN pg_class d ON d.oid = pt.partdefid
        WHERE c.relname = %s AND c.relnamespace = %s::regnamespace""", (table.name, PUBLIC)).fetchone()
    if row is None:
        raise DatabaseError(f"table {table.name} does not exist in the database: apply the migrations first "
                            "(veza-schema apply)")
    oid, relkind, default = row
    if relkind != "p":
        raise DatabaseError(f"table {table.name} is not partitioned in the database: apply the migrations first")
    partitions, odd = [], []
    for name, bound in conn.execute("""
            SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s ORDER BY 1""", (oid,)).fetchall():
        if name == default:
            continue
        span = _parse_range(bound or "")
        if span is None or next_period(period_start(span[0], interval), interval) != span[1] \
                or period_start(span[0], interval) != span[0]:
            odd.append(name)
        if span is not None:
            partitions.append(LivePartition(name, *span))
    partitions.sort(key=lambda p: p.start)
    default_rows: list[tuple[datetime | None, int]] = []
    if default is not None:
        query = sql.SQL("SELECT date_trunc({unit}, {key}), count(*) FROM ONLY {default} GROUP BY 1 ORDER BY 1") \
            .format(unit=sql.Literal(interval), key=sql.Identifier(key), default=sql.Identifier(PUBLIC, default))
        default_rows = [(_as_utc(start) if start is not None else None, int(count))
                        for start, count in conn.execute(query).fetchall()]
    columns = tuple(r[0] for r in conn.execute("""
        SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped
        AND attgenerated = '' ORDER BY attnum""", (oid,)).fetchall())
    triggers = conn.execute("""
        SELECT EXISTS (SELECT FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                       WHERE c.relname = %s AND c.relnamespace = %s::regnamespace AND NOT t.tgisinternal
                       AND t.tgtype & 8 <> 0)""", (default or "", PUBLIC)).fetchone()
    return TableState(table.name, key, tuple(partitions), default, tuple(default_rows), columns,
                      _incoming(conn, oid, key), _partman_config(conn, table.name), tuple(odd),
                      bool(triggers and triggers[0]))


def _incoming(conn: psycopg.Connection, oid: int, key: str) -> tuple[IncomingKey, ...]:
    keys = []
    for name, table, action, columns, ref_columns, leaves, leading in conn.execute("""
            SELECT con.conname, src.relname, con.confdeltype::text,
                   ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                   ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
                   ARRAY(SELECT c.relname FROM pg_partition_tree(con.conrelid) t
                         JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf ORDER BY 1),
                   ARRAY(SELECT a.attname FROM pg_index x
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
                         WHERE x.indrelid = con.conrelid)
            FROM pg_constraint con JOIN pg_class src ON src.oid = con.conrelid
            WHERE con.contype = 'f' AND con.confrelid = %s AND con.conparentid = 0
            ORDER BY 2, 1""", (oid,)).fetchall():
        key_column = columns[list(ref_columns).index(key)] if key in ref_columns else ""
        keys.append(IncomingKey(name, table, tuple(columns), key_column, _FK_ACTIONS.get(action, str(action)),
                                tuple(leaves) or (table,), key_column in leading))
    return tuple(keys)


def _partman_config(conn: psycopg.Connection, table: str) -> PartmanConfig | None:
    row = conn.execute("""
        SELECT n.nspname, e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_partman'""").fetchone()
    if row is None:
        return None
    schema, version = row
    config = conn.execute(sql.SQL("""
        SELECT premake, retention, retention_keep_table, retention_schema, datetime_string,
               infinite_time_partitions
        FROM {} WHERE parent_table = %s""").format(sql.Identifier(schema, "part_config")),
        (f"{PUBLIC}.{table}",)).fetchone()
    if config is None:
        return PartmanConfig(schema, version, False)
    return PartmanConfig(schema, version, True, *config)


def _parse_range(bound: str) -> tuple[datetime, datetime] | None:
    match = _RANGE.search(bound)
    if not match:
        return None
    try:
        return _as_utc(datetime.fromisoformat(match["lo"])), _as_utc(datetime.fromisoformat(match["hi"]))
    except ValueError:
        return None


def _as_utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


# -- what to do -------------------------------------------------------------------------------------
ReferenceAction = Literal["archive", "delete", "set null"]


@dataclass(frozen=True)
class NewPartition:
    name: str
    start: datetime
    end: datetime
    default_rows: int = 0  # rows of the default partition that move into it


@dataclass(frozen=True)
class ReferencingRows:
    """Rows of another table pointing into an expiring partition, and what retention does to them."""

    key: IncomingKey
    rows: int
    action: ReferenceAction
    archive_table: str | None = None  # in ARCHIVE_SCHEMA, for action "archive"


@dataclass(frozen=True)
class Expiry:
    partition: LivePartition
    keep_table: bool  # detached and moved to ARCHIVE_SCHEMA, else dropped
    referencing: tuple[ReferencingRows, ...] = ()


@dataclass(frozen=True)
class ConfigChange:
    setting: str
    before: object
    after: object


@dataclass(frozen=True)
class TablePlan:
    """Everything one run would do to one table, and what needs a person's attention."""

    table: Table
    state: TableState
    as_of: datetime
    premake: int
    create: tuple[NewPartition, ...] = ()
    expire: tuple[Expiry, ...] = ()
    stray: tuple[tuple[datetime | None, int], ...] = ()  # default rows in no partition to be created
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    config: tuple[ConfigChange, ...] = ()

    @property
    def backend(self) -> str:
        assert self.table.partition is not None
        return self.table.partition.backend

    @property
    def interval(self) -> str:
        assert self.table.partition is not None and self.table.partition.interval is not None
        return self.table.partition.interval

    @property
    def stray_rows(self) -> int:
        return sum(count for _, count in self.stray)

    @property
    def needs_attention(self) -> bool:
        return bool(self.stray or self.problems)

    @property
    def missing(self) -> tuple[NewPartition, ...]:
        return self.create


def decide(table: Table, state: TableState, as_of: datetime, premake: int | None = None,
           count_referencing: Callable[[IncomingKey, LivePartition], int] = lambda key, partition: 0,
           ) -> TablePlan:
    """The plan for one table from its catalog state: pure but for ``count_referencing``."""
    spec = table.partition
    assert spec is not None and spec.interval is not None
    ahead = spec.premake if premake is None else premake
    problems: list[str] = []
    notes: list[str] = []
    by_period = dict(state.default_rows)
    create: list[NewPartition] = []
    for planned in planned_partitions(table.name, spec.interval, ahead, as_of):
        overlapping = [p for p in state.partitions if p.start < planned.end and planned.start < p.end]
        if any((p.start, p.end) == (planned.start, planned.end) for p in overlapping):
            continue
        if overlapping:
            problems.append(f"partition {overlapping[0].name} overlaps the period of {planned.name} "
                            f"[{_day(planned.start)}, {_day(planned.end)}): not created")
            continue
        create.append(NewPartition(planned.name, planned.start, planned.end, by_period.pop(planned.start, 0)))
    stray = tuple(sorted(by_period.items(), key=lambda item: (item[0] is None, item[0] or as_of)))
    if state.odd_partitions:
        notes.append(f"partitions not spanning one {spec.interval}: {', '.join(state.odd_partitions)}")
    expire = _expiries(table, state, as_of, count_referencing, problems, notes)
    config: tuple[ConfigChange, ...] = ()
    if spec.backend == "partman":
        config = _partman_changes(table, state, problems)
    elif state.partman is not None and state.partman.registered:
        problems.append(f"{table.name} is registered with pg_partman but declares backend builtin: remove it "
                        f"from {state.partman.schema}.part_config, or declare `backend: partman`")
    return TablePlan(table, state, as_of, ahead, tuple(create), expire, stray, tuple(problems), tuple(notes),
                     config)


def _expiries(table: Table, state: TableState, as_of: datetime,
              count_referencing: Callable[[IncomingKey, LivePartition], int],
              problems: list[str], notes: list[str]) -> tuple[Expiry, ...]:
    spec = table.partition
    assert spec is not None
    if spec.retention is None:
        return ()
    cutoff = retention_cutoff(as_of, spec.retention.count, spec.retention.unit)
    current = period_start(as_of, spec.interval or "month")
    expired = [p for p in state.partitions if p.end < cutoff and p.end <= current]
    if not expired:
        return ()
    self_keys = [k for k in state.incoming if k.table == table.name]
    if self_keys:
        problems.append(f"foreign key {self_keys[0].name} of {table.name} references {table.name} itself: "
                        "PostgreSQL refuses to detach a partition whose rows reference each other, so "
                        f"retention cannot remove {', '.join(p.name for p in expired)}; make it a plain "
                        "column (see docs/partitions.md)")
        return ()
    unkeyed = [k for k in state.incoming if not k.key_column]
    if unkeyed:
        problems.append(f"foreign key {unkeyed[0].name} of {unkeyed[0].table} does not include the partition key "
                        f"of {table.name}: retention cannot tell which partition its rows reference")
        return ()
    for key in state.incoming:
        if not key.indexed:
            notes.append(f"no index of {key.table} leads with {key.key_column}: each retention batch for "
                         f"{key.name} scans the whole table")
    result = []
    for partition in expired:
        referencing = []
        blocked = False
        for key in state.incoming:
            rows = count_referencing(key, partition)
            if key.on_delete == "cascade":
                action: ReferenceAction = "archive" if spec.retention_keep_table else "delete"
            elif key.on_delete == "set null":
                action = "set null"
            else:
                if rows:
                    problems.append(f"{rows} row(s) of {key.table} reference {partition.name} through {key.name} "
                                    f"(ON DELETE {key.on_delete.upper()}): retention keeps the partition; "
                                    "remove those rows first")
                    blocked = True
                continue
            archive = f"{key.table}{_suffix(partition.name, table.name)}" if action == "archive" else None
            referencing.append(ReferencingRows(key, rows, action, archive))
        if not blocked:
            result.append(Expiry(partition, spec.retention_keep_table, tuple(referencing)))
    return tuple(result)


def _partman_changes(table: Table, state: TableState, problems: list[str]) -> tuple[ConfigChange, ...]:
    spec = table.partition
    assert spec is not None and spec.interval is not None
    partman = state.partman
    if partman is None:
        problems.append(f"{table.name} declares backend partman but pg_partman is not installed in this database "
                        "(CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman;)")
        return ()
    if not partman.registered:
        problems.append(f"{table.name} declares backend partman but is not registered with pg_partman: tables "
                        "created with `backend: partman` are registered by their migration (create_parent); "
                        "see docs/partitions.md to adopt an existing table")
        return ()
    # pg_partman's own retention cannot move the rows that reference a partition: this job applies it.
    own_retention = spec.retention is not None and not state.incoming
    wanted: dict[str, object] = {
        "premake": spec.premake,
        "retention": str(spec.retention) if own_retention else None,
        "retention_keep_table": spec.retention_keep_table,
        "retention_schema": ARCHIVE_SCHEMA if own_retention and spec.retention_keep_table else None,
        "datetime_string": suffix_format(spec.interval),
        "infinite_time_partitions": True,
    }
    current: dict[str, object] = {
        "premake": partman.premake, "retention": partman.retention, "retention_keep_table": partman.keep_table,
        "retention_schema": partman.retention_schema, "datetime_string": partman.datetime_string,
        "infinite_time_partitions": partman.infinite,
    }
    return tuple(ConfigChange(name, current[name], value) for name, value in wanted.items()
                 if not _same_setting(name, current[name], value))


def _same_setting(name: str, current: object, wanted: object) -> bool:
    if name == "retention" and isinstance(current, str) and isinstance(wanted, str):
        return _normal_interval(current) == _normal_interval(wanted)
    return current == wanted


def _normal_interval(text: str) -> str:
    match = re.match(r"^\s*(\d+)\s+([a-z]+?)s?\s*$", text.lower())
    return f"{int(match[1])} {match[2]}" if match else text


def _suffix(partition: str, table: str) -> str:
    return partition[len(table):] if partition.startswith(table) else f"_{partition}"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d") if moment.time() == datetime.min.time() else moment.isoformat()


def plan_table(conn: psycopg.Connection, table: Table, as_of: datetime, premake: int | None = None) -> TablePlan:
    """Read the catalog and decide; counts the rows referencing each expiring partition."""
    state = read_state(conn, table)
    return decide(table, state, as_of, premake, lambda key, part: count_referencing_rows(conn, key, part))


def count_referencing_rows(conn: psycopg.Connection, key: IncomingKey, partition: LivePartition) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        sql.Identifier(PUBLIC, key.table), _references(key)), _bounds(partition)).fetchone()
    return int(row[0]) if row else 0


def _references(key: IncomingKey) -> sql.Composable:
    """Rows of ``key.table`` that reference a row of the partition (MATCH SIMPLE: no NULL column)."""
    not_null = [sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in key.columns]
    in_range = sql.SQL("{key} >= %(lo)s AND {key} < %(hi)s").format(key=sql.Identifier(key.key_column))
    return sql.SQL(" AND ").join([in_range, *not_null])


def _bounds(partition: LivePartition | NewPartition) -> dict[str, object]:
    return {"lo": partition.start, "hi": partition.end}


# -- doing it ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MaintenanceOptions:
    batch_size: int = DEFAULT_BATCH_SIZE
    retry: LockRetry = field(default_factory=LockRetry)


@dataclass
class TableResult:
    """What one run did to one table; ``error`` set when it stopped on a database error."""

    plan: TablePlan
    created: list[NewPartition] = field(default_factory=list)
    moved_rows: int = 0
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
        worker.sync_config()
        for new in plan.create:
            worker.create(new)
        for expiry in plan.expire:
            worker.expire(expiry)
    except DatabaseError as exc:
        result.error = exc
    except psycopg.Error as exc:
        result.error = database_error(f"{plan.table.name}", exc)
    return result


class _Worker:
    """Executes one table's plan; every unit of work is one retried transaction."""

    def __init__(self, conn: psycopg.Connection, plan: TablePlan, options: MaintenanceOptions,
                 result: TableResult, progress: Progress) -> None:
        self.conn, self.plan, self.options, self.result, self.progress = conn, plan, options, result, progress
        self.table = plan.table.name
        self.key = plan.state.key
        self.partman = plan.state.partman

    # transactions ------------------------------------------------------------------------------
    def transaction(self, what: str, work: Callable[[], object]) -> object:
        def attempt() -> object:
            with self.conn.transaction():
                return work()

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
                self.transaction(f"creating {new.name}", lambda: self.attach_empty(new))
            except DatabaseError as exc:
                if exc.sqlstate != "23514":  # rows for its range reached the default partition meanwhile
                    raise
            else:
                self.result.created.append(new)
                return
        moved = self.create_moving_default_rows(new)
        self.result.created.append(replace(new, default_rows=moved))
        self.result.moved_rows += moved

    def attach_empty(self, new: NewPartition) -> None:
        if self.plan.backend == "partman" and self.partman is not None:
            self.execute(sql.SQL("SELECT {}(%(parent)s, ARRAY[%(start)s]::timestamptz[], false)").format(
                sql.Identifier(self.partman.schema, "create_partition_time")),
                {"parent": f"{PUBLIC}.{self.table}", "start": new.start})
            return
        self.standalone(new)
        self.attach(new)

    def standalone(self, new: NewPartition) -> None:
        """The partition-to-be as a plain table with the parent's columns, indexes and CHECKs, and
        a CHECK matching its bounds; an interrupted earlier run's table is reused."""
        existing = self.execute("""
            SELECT c.relispartition, EXISTS (SELECT FROM pg_constraint k WHERE k.conrelid = c.oid
                                              AND k.conname = %(check)s)
            FROM pg_class c WHERE c.relname = %(name)s AND c.relnamespace = %(ns)s::regnamespace""",
                                {"name": new.name, "check": PARTITION_BOUNDS_CHECK, "ns": PUBLIC}).fetchone()
        if existing is not None:
            if existing[0] or not existing[1]:
                raise DatabaseError(f"{self.table}: a table named {new.name} already exists and is not a partition "
                                    "this job was making; rename or drop it")
            return
        self.execute(sql.SQL(
            "CREATE TABLE {new} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES "
            "INCLUDING STORAGE INCLUDING GENERATED INCLUDING STATISTICS)").format(
            new=sql.Identifier(PUBLIC, new.name), parent=sql.Identifier(PUBLIC, self.table)))
        self.execute(sql.SQL("ALTER TABLE {new} ADD CONSTRAINT {check} CHECK ({key} IS NOT NULL AND {key} >= {lo} "
                             "AND {key} < {hi})").format(
            new=sql.Identifier(PUBLIC, new.name), check=sql.Identifier(PARTITION_BOUNDS_CHECK),
            key=sql.Identifier(self.key), lo=sql.Literal(new.start.isoformat()), hi=sql.Literal(new.end.isoformat())))

    def attach(self, new: NewPartition) -> None:
        self.execute(sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {new} FOR VALUES FROM ({lo}) TO ({hi})").format(
            parent=sql.Identifier(PUBLIC, self.table), new=sql.Identifier(PUBLIC, new.name),
            lo=sql.Literal(new.start.isoformat()), hi=sql.Literal(new.end.isoformat())))
        self.execute(sql.SQL("ALTER TABLE {new} DROP CONSTRAINT {check}").format(
            new=sql.Identifier(PUBLIC, new.name), check=sql.Identifier(PARTITION_BOUNDS_CHECK)))

    def create_moving_default_rows(self, new: NewPartition) -> int:
        """Copy, verify, swap: the rows stay in the default partition (visible, and referenced rows
        still referenced) while they are copied in bounded batches into the partition-to-be; then one
        short transaction under an ACCESS EXCLUSIVE lock on the default partition checks that the copy
        is exact (count and checksum; recopies under the lock if rows changed meanwhile), deletes the
        originals without firing triggers or ON DELETE actions (it is a move, not a deletion) and
        attaches the partition. A crash at any point leaves every row where it was."""
        default = self.plan.state.default
        assert default is not None
        in_range = sql.SQL("{key} >= %(lo)s AND {key} < %(hi)s").format(key=sql.Identifier(self.key))
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in self.plan.state.columns)
        source, target = sql.Identifier(PUBLIC, default), sql.Identifier(PUBLIC, new.name)
        params = _bounds(new)

        def prepare() -> None:
            self.standalone(new)
            self.execute(sql.SQL("TRUNCATE {}").format(target))  # an interrupted run's copy starts over

        def copy_batch(after: str) -> tuple[int, str]:
            row = self.execute(sql.SQL(
                "WITH batch AS (SELECT ctid AS source_ctid, {columns} FROM ONLY {source} WHERE ctid > %(after)s::tid "
                "AND {in_range} ORDER BY ctid LIMIT {limit}), copied AS (INSERT INTO {target} ({columns}) "
                "SELECT {columns} FROM batch) SELECT count(*), max(source_ctid)::text FROM batch").format(
                columns=columns, source=source, in_range=in_range, target=target,
                limit=sql.Literal(self.options.batch_size)), {**params, "after": after}).fetchone()
            assert row is not None
            return int(row[0]), str(row[1] or after)

        def fingerprint(relation: sql.Composable, where: sql.Composable) -> tuple[int, int]:
            row = self.execute(sql.SQL("SELECT count(*), coalesce(sum(hashtextextended(ROW({columns})::text, 0)), 0) "
                                       "FROM ONLY {relation} WHERE {where}").format(
                columns=columns, relation=relation, where=where), params).fetchone()
            assert row is not None
            return int(row[0]), int(row[1])

        def swap() -> int:
            self.execute(sql.SQL("LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE").format(
                sql.Identifier(PUBLIC, self.table)))
            self.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(source))
            expected = fingerprint(source, in_range)
            if fingerprint(target, sql.SQL("true")) != expected:  # rows changed during the copy
                self.execute(sql.SQL("TRUNCATE {}").format(target))
                self.execute(sql.SQL("INSERT INTO {target} ({columns}) SELECT {columns} FROM ONLY {source} "
                                     "WHERE {in_range}").format(target=target, columns=columns, source=source,
                                                                in_range=in_range), params)
            if self.plan.state.move_needs_replica:
                self.execute("SET LOCAL session_replication_role = replica")
            deleted = self.execute(sql.SQL("DELETE FROM ONLY {} WHERE {}").format(source, in_range), params).rowcount
            if self.plan.state.move_needs_replica:
                self.execute("SET LOCAL session_replication_role = origin")
            if deleted != expected[0]:
                raise DatabaseError(f"{self.table}: {deleted} row(s) deleted from {default} instead of {expected[0]}; "
                                    "rolled back")
            self.attach(new)
            return deleted

        self.transaction(f"creating {new.name}", prepare)
        after = "(0,0)"
        while True:
            copied = self.transaction(f"copying rows of {default} to {new.name}", partial(copy_batch, after))
            assert isinstance(copied, tuple)
            count, after = copied
            if count < self.options.batch_size:
                break
        moved = self.transaction(f"attaching {new.name}", swap)
        assert isinstance(moved, int)
        return moved

    # moving rows in batches ------------------------------------------------------------------------
    def move_batch(self, source: str, target: str | None, where: sql.Composable, params: dict[str, object], *,
                   limit: int | None, set_null: Sequence[str] = (), target_schema: str = PUBLIC) -> int:
        source_id = sql.Identifier(PUBLIC, source)
        chosen = sql.SQL("SELECT ctid FROM ONLY {source} WHERE {where}{limit}").format(
            source=source_id, where=where, limit=sql.SQL(" LIMIT {}").format(sql.Literal(limit)) if limit
            else sql.SQL(""))
        if set_null:
            assignments = sql.SQL(", ").join(sql.SQL("{} = NULL").format(sql.Identifier(c)) for c in set_null)
            query = sql.SQL("UPDATE ONLY {source} SET {assignments} WHERE ctid = ANY(ARRAY({chosen}))").format(
                source=source_id, assignments=assignments, chosen=chosen)
            return self.execute(query, params).rowcount
        if target is None:
            query = sql.SQL("DELETE FROM ONLY {source} WHERE ctid = ANY(ARRAY({chosen}))").format(
                source=source_id, chosen=chosen)
            return self.execute(query, params).rowcount
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns_of(source))
        query = sql.SQL("WITH moved AS (DELETE FROM ONLY {source} WHERE ctid = ANY(ARRAY({chosen})) "
                        "RETURNING {columns}) INSERT INTO {target} ({columns}) SELECT {columns} FROM moved").format(
            source=source_id, chosen=chosen, columns=columns, target=sql.Identifier(target_schema, target))
        return self.execute(query, params).rowcount

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
            self.transaction(f"expiring {partition.name}", lambda: self.detach(expiry))
        self.result.expired.append(expiry)

    def ensure_archive(self, referencing: ReferencingRows) -> None:
        archive = referencing.archive_table
        assert archive is not None
        self.transaction(f"creating {ARCHIVE_SCHEMA}.{archive}", lambda: self.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {archive} (LIKE {source} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES INCLUDING STORAGE INCLUDING GENERATED)").format(
            archive=sql.Identifier(ARCHIVE_SCHEMA, archive),
            source=sql.Identifier(PUBLIC, referencing.key.table))))

    def unlink(self, referencing: ReferencingRows, partition: LivePartition, *, limit: int | None) -> int:
        """Apply the foreign key's ON DELETE to the rows referencing ``partition``, leaf by leaf:
        in batches of ``limit`` (one transaction each), or all at once in the caller's transaction."""
        key = referencing.key
        set_null = key.columns if referencing.action == "set null" else ()
        total = 0
        for leaf in key.leaves:
            if limit is None:
                total += self.move_batch_to(leaf, referencing.archive_table, key, partition, limit=None,
                                            set_null=set_null)
                continue
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
        return self.move_batch(leaf, archive, _references(key), _bounds(partition), limit=limit,
                               set_null=set_null, target_schema=ARCHIVE_SCHEMA)

    def detach(self, expiry: Expiry) -> None:
        partition = expiry.partition
        for table in sorted({r.key.table for r in expiry.referencing}):
            # No new reference into the partition between the last batch and the detach.
            self.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(sql.Identifier(PUBLIC, table)))
        for referencing in expiry.referencing:
            self.result.referencing_rows += self.unlink(referencing, partition, limit=None)
        self.execute(sql.SQL("ALTER TABLE {parent} DETACH PARTITION {partition}").format(
            parent=sql.Identifier(PUBLIC, self.table), partition=sql.Identifier(PUBLIC, partition.name)))
        if expiry.keep_table:
            self.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
                sql.Identifier(PUBLIC, partition.name), sql.Identifier(ARCHIVE_SCHEMA)))
            self.standalone_archive(partition.name)
        else:
            self.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(PUBLIC, partition.name)))

    def standalone_archive(self, name: str) -> None:
        """An archived partition keeps its foreign keys to plain tables (erasing a user still reaches
        it) but not those to partitioned ones: they would block detaching the referenced partitions."""
        for (constraint,) in self.execute("""
                SELECT con.conname FROM pg_constraint con JOIN pg_class ref ON ref.oid = con.confrelid
                WHERE con.conrelid = %(rel)s::regclass AND con.contype = 'f' AND ref.relkind = 'p'""",
                                          {"rel": sql.Identifier(ARCHIVE_SCHEMA, name).as_string(self.conn)}
                                          ).fetchall():
            self.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(ARCHIVE_SCHEMA, name), sql.Identifier(constraint)))

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


def _first_line(exc: BaseException) -> str:
    primary = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    lines = str(primary).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# -- health, for monitoring -------------------------------------------------------------------------
@dataclass(frozen=True)
class TableHealth:
    """What ``partitions --check`` reports for one table; ``ok`` is False when a person must act."""

    table: str
    backend: str
    interval: str
    premake: int
    default_partition: str | None
    default_rows: int
    default_rows_by_period: tuple[tuple[datetime | None, int], ...]
    future_partitions: int
    missing: tuple[str, ...]
    expired: tuple[str, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.default_rows or self.missing or self.expired or self.problems)


def health(plan: TablePlan) -> TableHealth:
    """Rows in the default partition, partitions missing ahead, partitions past retention, problems."""
    current = period_start(plan.as_of, plan.interval)
    future = sum(1 for p in plan.state.partitions if p.start > current)
    missing = tuple(p.name for p in plan.create)
    problems = tuple(plan.problems)
    if plan.config:
        problems += ("pg_partman settings differ from schema/: "
                     + ", ".join(f"{c.setting} {c.before} (wants {c.after})" for c in plan.config),)
    return TableHealth(plan.table.name, plan.backend, plan.interval, plan.premake, plan.state.default,
                       plan.state.default_row_count, plan.state.default_rows, future, missing,
                       tuple(e.partition.name for e in plan.expire), problems)


def periods_text(rows: Iterable[tuple[datetime | None, int]], interval: str) -> str:
    """``2030-01: 2, 2024-05: 1`` (``NULL key`` for rows without a partition key)."""
    pattern = {"year": "%Y", "month": "%Y-%m"}.get(interval, "%Y-%m-%d")
    return ", ".join(f"{start.strftime(pattern) if start else 'NULL key'}: {count}" for start, count in rows)

