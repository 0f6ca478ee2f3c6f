"""What `veza-schema partitions` would do to one table, decided from its catalog state without
touching anything (``--dry-run`` prints exactly this), and its health for ``--check``.

Rules: partitions from the current period through ``premake`` ahead (names and bounds from
:mod:`veza_schema.managed`); rows of the default partition go to the partition created for
their period, the others are reported per period; partitions ending before ``as_of -
retention`` expire (pg_partman's rule), after the rows of other tables referencing them are
archived, deleted or unlinked as their foreign key's ON DELETE says (a RESTRICT with rows, or
a table referencing itself, keeps the partition and is reported); for ``backend: partman``,
pg_partman's settings follow schema/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from veza_schema.maintenance.partition_state import (
    IncomingKey,
    LivePartition,
    TableState,
    count_referencing_rows,
    read_state,
)
from veza_schema.managed import ARCHIVE_SCHEMA, period_start, planned_partitions, retention_cutoff, suffix_format
from veza_schema.model import Table
from veza_schema.sql import text

ReferenceAction = Literal["archive", "delete", "set null"]


@dataclass(frozen=True)
class NewPartition:
    name: str
    start: datetime
    end: datetime
    default_rows: int = 0  # rows of the default partition that move into it
    under_lock: int = 0  # in a result: of the rows moved, those written during the move and copied in its last step
    deleted_under_lock: int = 0  # in a result: originals DELETEd (not TRUNCATEd) in that last step
    relinked_keys: int = 0  # in a result: foreign keys re-added NOT VALID around that step's TRUNCATE


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
    def interrupted_moves(self) -> tuple[str, ...]:
        """Capture triggers on the default partition while no run holds this table: left by a run that
        died during a move (a run removes them first)."""
        return () if self.state.maintained_by is not None else self.state.capture_triggers

    @property
    def unvalidated_keys(self) -> tuple[IncomingKey, ...]:
        """Foreign keys referencing the table left NOT VALID while no run holds it (a run validates them)."""
        return () if self.state.maintained_by is not None else self.state.unvalidated_keys


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
                            f"[{day_text(planned.start)}, {day_text(planned.end)}): not created")
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


def day_text(moment: datetime) -> str:
    """``2026-11-01`` for a midnight, the ISO timestamp otherwise (as partition bounds print)."""
    return moment.strftime("%Y-%m-%d") if moment.time() == datetime.min.time() else moment.isoformat()


def plan_table(conn: psycopg.Connection, table: Table, as_of: datetime, premake: int | None = None) -> TablePlan:
    """Read the catalog and decide; counts the rows referencing each expiring partition."""
    state = read_state(conn, table)
    return decide(table, state, as_of, premake, lambda key, part: count_referencing_rows(conn, key, part))


# -- health, for monitoring --------------------------------------------------------------------------
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
    interrupted_moves: tuple[str, ...] = ()  # capture triggers an interrupted move left on the default partition
    unvalidated_keys: tuple[str, ...] = ()  # NOT VALID foreign keys referencing the table ("name on table")

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
    interrupted = plan.interrupted_moves
    if interrupted:
        problems += (f"an interrupted move left {', '.join(interrupted)} on {plan.state.default} (trigger, function "
                     "and log table: it logs every write to the default partition): rerun `veza-schema partitions`, "
                     "which removes it",)
    unvalidated = tuple(f"{key.name} on {key.where}" for key in plan.unvalidated_keys)
    for key in plan.unvalidated_keys:
        problems += (f"foreign key {key.name} on {key.where} is NOT VALID (left by a move interrupted before it "
                     "validated it, or added so by hand): enforced on new rows, unproven for the rows there; rerun "
                     f"`veza-schema partitions`, which validates it first, or run ALTER TABLE "
                     f"{text.qname(key.where)} VALIDATE CONSTRAINT {text.ident(key.name)}",)
    return TableHealth(plan.table.name, plan.backend, plan.interval, plan.premake, plan.state.default,
                       plan.state.default_row_count, plan.state.default_rows, future, missing,
                       tuple(e.partition.name for e in plan.expire), problems, interrupted, unvalidated)


def periods_text(rows: Iterable[tuple[datetime | None, int]], interval: str) -> str:
    """``2030-01: 2, 2024-05: 1`` (``NULL key`` for rows without a partition key)."""
    pattern = {"year": "%Y", "month": "%Y-%m"}.get(interval, "%Y-%m-%d")
    return ", ".join(f"{start.strftime(pattern) if start else 'NULL key'}: {count}" for start, count in rows)
