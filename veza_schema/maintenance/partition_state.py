"""What the catalog says about one time-partitioned table: its partitions and their bounds, the
rows of its default partition per period, the foreign keys pointing at it, and pg_partman's
record of it. A handful of queries per table, whatever its size (but the default partition,
which this job keeps small, is counted)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

import psycopg
from psycopg import sql

from veza_schema.errors import DatabaseError
from veza_schema.managed import next_period, period_start
from veza_schema.model import Table, qualify

PUBLIC = "public"
# The advisory lock `partitions` holds on a table while it maintains it (the key: this class in the high
# 32 bits, the table's oid in the low ones): one run per table at a time, and what a run finds of an
# earlier one (a capture trigger) is known to be left by an interrupted run.
JOB_LOCK_CLASS = 0x76657A61  # "veza"
CAPTURE_PREFIX = "veza_move_"  # the log table, trigger function and trigger of a move in progress
# What writers wait for under a move's last step, measured on the bench machine (PostgreSQL 15 and 18):
# a DELETE of the originals about 0.85 ms per 1,000 rows; dropping and re-adding a foreign key that
# references the table about 1 ms per partition of it. A move relinks from the row count where the
# DELETE would cost more (and at least _RELINK_FROM_ROWS: the validation then scans each referencing table).
_ROWS_PER_KEY_AND_PARTITION = 1_200
_RELINK_FROM_ROWS = 20_000
_RANGE = re.compile(r"FOR VALUES FROM \('(?P<lo>[^']*)'\) TO \('(?P<hi>[^']*)'\)")
_FK_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}


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
    validated: bool = True  # False: NOT VALID (left by an interrupted move, or added so by hand)
    enforced: bool = True  # False: NOT ENFORCED (PostgreSQL 18)
    partitioned: bool = False  # the referencing table is partitioned
    schema: str = PUBLIC  # the referencing table's
    set_null_columns: tuple[str, ...] = ()  # ON DELETE SET NULL (these columns) (PostgreSQL 15); (): all of them
    labelled: bool = False  # it carries a SECURITY LABEL (pg_seclabel), which dropping it would lose

    @property
    def nulled_on_delete(self) -> tuple[str, ...]:
        """The columns ON DELETE SET NULL empties, as PostgreSQL would: those the key lists, else all of them."""
        return self.set_null_columns or self.columns

    @property
    def where(self) -> str:
        """The referencing table as SQL names it (its schema when not the home one)."""
        return qualify(self.schema, self.table)


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
    delete_triggers: bool = False  # the default partition has triggers firing on DELETE or TRUNCATE
    primary_key: tuple[str, ...] = ()  # the parent's (it includes the partition key); () when it has none
    capture_triggers: tuple[str, ...] = ()  # on the default partition: a move in progress, or interrupted
    maintained_by: int | None = None  # the pid of a session running `partitions` on this table now
    server_version: int = 0  # PostgreSQL's server_version_num

    @property
    def relink_refusal(self) -> str | None:
        """Why the last step of a move must DELETE the originals of a referenced table under the lock
        (writers then wait in proportion to them), or None: it may drop the foreign keys referencing the
        table, TRUNCATE the originals and re-add the keys NOT VALID, each under its own name, to be
        validated after the commit without making writers wait."""
        for key in self.incoming:
            if key.table == self.table:
                return f"foreign key {key.name} references {self.table} itself"
            if not key.enforced:
                return f"foreign key {key.name} of {key.table} is NOT ENFORCED"
            if key.labelled:
                return (f"foreign key {key.name} of {key.table} carries a security label, which dropping and "
                        "re-adding the key would lose")
            if key.partitioned and self.server_version < 180000:
                return (f"{key.table} is partitioned, and PostgreSQL before 18 cannot re-add its foreign key "
                        f"{key.name} NOT VALID")
        return None

    @property
    def relinks(self) -> bool:
        """Whether a step may drop the foreign keys referencing the table around it (some do, and
        :attr:`relink_refusal` has no reason against it)."""
        return bool(self.incoming) and self.relink_refusal is None

    @property
    def relink_from(self) -> int:
        """From how many rows a move out of the default partition relinks the foreign keys referencing the
        table rather than DELETE the rows under the lock (see the constants above)."""
        return max(_RELINK_FROM_ROWS, _ROWS_PER_KEY_AND_PARTITION * len(self.incoming) * (len(self.partitions) + 2))

    @property
    def unvalidated_keys(self) -> tuple[IncomingKey, ...]:
        """Foreign keys referencing the table left NOT VALID (a run validates them first)."""
        return tuple(key for key in self.incoming if key.enforced and not key.validated)

    @property
    def move_needs_replica(self) -> bool:
        """Moving rows out of the default partition deletes them there: without
        ``session_replication_role = replica`` that would fire ON DELETE actions and triggers
        (and TRUNCATE triggers, where the move empties the default partition by truncating it)."""
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
                       AND t.tgtype & (8 | 32) <> 0)""", (default or "", PUBLIC)).fetchone()
    primary_key = conn.execute("""
        SELECT ARRAY(SELECT a.attname FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.i)
        FROM pg_index x WHERE x.indrelid = %s AND x.indisprimary""", (oid,)).fetchone()
    job = conn.execute("""
        SELECT ARRAY(SELECT t.tgname::text FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                     WHERE c.relname = %(default)s AND c.relnamespace = %(ns)s::regnamespace
                     AND starts_with(t.tgname, %(prefix)s) ORDER BY 1),
               (SELECT min(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = %(class)s
                AND objid = %(oid)s AND objsubid = 1 AND pid <> pg_backend_pid())""",
                       {"default": default or "", "ns": PUBLIC, "prefix": CAPTURE_PREFIX, "class": JOB_LOCK_CLASS,
                        "oid": oid}).fetchone()
    assert job is not None
    return TableState(table.name, key, tuple(partitions), default, tuple(default_rows), columns,
                      _incoming(conn, oid, key), _partman_config(conn, table.name), tuple(odd),
                      bool(triggers and triggers[0]), tuple(primary_key[0]) if primary_key else (),
                      tuple(job[0]), job[1], conn.info.server_version)


def _incoming(conn: psycopg.Connection, oid: int, key: str) -> tuple[IncomingKey, ...]:
    keys = []
    for (name, table, action, columns, ref_columns, leaves, leading, validated, enforced, partitioned,
         schema, set_null_columns, labelled) in conn.execute(
            """
            SELECT con.conname, src.relname, con.confdeltype::text,
                   ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
                   ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i),
                   ARRAY(SELECT c.relname FROM pg_partition_tree(con.conrelid) t
                         JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf ORDER BY 1),
                   ARRAY(SELECT a.attname FROM pg_index x
                         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
                         WHERE x.indrelid = con.conrelid),
                   con.convalidated, coalesce((to_jsonb(con) ->> 'conenforced')::bool, true),  -- 18: NOT ENFORCED
                   src.relkind = 'p', src.relnamespace::regnamespace::text,
                   ARRAY(SELECT a.attname FROM jsonb_array_elements_text(  -- 15: SET NULL (columns)
                             CASE jsonb_typeof(to_jsonb(con) -> 'confdelsetcols') WHEN 'array'
                             THEN to_jsonb(con) -> 'confdelsetcols' ELSE '[]' END) WITH ORDINALITY s(n, i)
                         JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = s.n::int2 ORDER BY s.i),
                   EXISTS (SELECT FROM pg_seclabel l WHERE l.classoid = 'pg_constraint'::regclass
                           AND l.objoid = con.oid)
            FROM pg_constraint con JOIN pg_class src ON src.oid = con.conrelid
            WHERE con.contype = 'f' AND con.confrelid = %s AND con.conparentid = 0
            ORDER BY 2, 1""", (oid,)).fetchall():
        key_column = columns[list(ref_columns).index(key)] if key in ref_columns else ""
        keys.append(IncomingKey(name, table, tuple(columns), key_column, _FK_ACTIONS.get(action, str(action)),
                                tuple(leaves) or (table,), key_column in leading, validated, enforced, partitioned,
                                schema, tuple(set_null_columns), labelled))
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


class Period(Protocol):
    @property
    def start(self) -> datetime: ...

    @property
    def end(self) -> datetime: ...


def count_referencing_rows(conn: psycopg.Connection, key: IncomingKey, partition: LivePartition) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
        sql.Identifier(PUBLIC, key.table), references_clause(key)), bounds(partition)).fetchone()
    return int(row[0]) if row else 0


def references_clause(key: IncomingKey) -> sql.Composable:
    """Rows of ``key.table`` that reference a row of the partition (MATCH SIMPLE: no NULL column)."""
    not_null = [sql.SQL("{} IS NOT NULL").format(sql.Identifier(c)) for c in key.columns]
    in_range = sql.SQL("{key} >= %(lo)s AND {key} < %(hi)s").format(key=sql.Identifier(key.key_column))
    return sql.SQL(" AND ").join([in_range, *not_null])


def bounds(partition: Period) -> dict[str, object]:
    return {"lo": partition.start, "hi": partition.end}
