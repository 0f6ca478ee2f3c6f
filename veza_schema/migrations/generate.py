"""Writing migration files: the initial migration from the whole model, then (through the
differ) one change per run of ``generate``. A snapshot of the model the migrations produce
is kept beside them (``veza.snapshot.json``), so generating needs no database and an
unchanged ``schema/`` writes nothing.

A change may need several files (see :mod:`veza_schema.diff.plan`: statements that cannot
share a transaction, or more relations than a small server's lock table holds). Each file's
header then names its change and says why it is a separate file; the runner reads that
header so ``rollback`` and ``status`` treat the files as one change, while the history table
stays exactly SQLx's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from veza_schema.diff.changes import Change
from veza_schema.diff.differ import diff_schemas
from veza_schema.diff.locks import DEFAULT_MAX_LOCKS, EXTENSION_SLOTS, table_lock_slots
from veza_schema.diff.order import order_changes
from veza_schema.diff.plan import FileKind, Plan, PlannedFile, build_plan
from veza_schema.errors import UsageError
from veza_schema.migrations.files import ChangeRef, MigrationFile, read_migrations
from veza_schema.migrations.snapshot import write_snapshot
from veza_schema.migrations.sumfile import write_sum
from veza_schema.model import Schema
from veza_schema.sql.render import (
    Section,
    create_schema_sections,
    drop_schema_sections,
    render_template,
    sections_to_sql,
)
from veza_schema.sql.text import comment_line

DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "15min"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class FileSettings:
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
    schema_dir: str = "schema"
    unverified: bool = False  # written with --no-verify: the header says so
    # Lock-table slots one transactional file may hold (None: never cut a file); see diff.locks.
    max_locks: int | None = DEFAULT_MAX_LOCKS


@dataclass(frozen=True)
class FileRole:
    """Where a file stands in its change: the change (when it has several files), why this file
    is separate, and the lock-table slots its transaction holds."""

    change: ChangeRef | None = None
    why: str = ""
    locks: int | None = None


@dataclass(frozen=True)
class MigrationText:
    """One migration pair as text, before it is written."""

    name: str
    up: str
    down: str
    no_transaction: bool = False


@dataclass(frozen=True)
class WrittenMigration:
    version: int
    name: str
    up_path: Path
    down_path: Path
    transactional: bool = True
    role: FileRole = FileRole()


# The two SET statements every file starts with.
HEADER_STATEMENTS = 2


def render_migration_file(label: str, direction: str, sections: Sequence[Section], changes: Sequence[str],
                          settings: FileSettings, no_transaction: bool = False,
                          rfcs: Sequence[str] = (), role: FileRole | None = None) -> str:
    """One migration file: its header (the changes, the RFCs, how many statements follow) and its SQL.

    The statement count is what the plan meant to write (one per section item), not a parse of
    the result: ``apply`` parses the file and refuses it when the two differ (docs/security.md).
    Every text of the header goes through ``comment_line``, so nothing in it can end its line.
    """
    role = role or FileRole()
    statements = HEADER_STATEMENTS + sum(len(section.statements) for section in sections)
    change = role.change
    return render_template("migration.sql.j2", label=comment_line(label), direction=comment_line(direction),
                           body=sections_to_sql(sections), changes=[comment_line(c) for c in changes],
                           lock_timeout=settings.lock_timeout, statement_timeout=settings.statement_timeout,
                           schema_dir=comment_line(settings.schema_dir), no_transaction=no_transaction,
                           rfcs=comment_line(", ".join(rfcs)) if rfcs else None, statements=statements,
                           change_label=comment_line(change.label) if change else None,
                           change_part=int(change.part) if change else None,
                           change_parts=int(change.parts) if change else None, why=comment_line(role.why),
                           locks=int(role.locks) if role.locks else None, unverified=settings.unverified)


def initial_lock_slots(schema: Schema) -> int:
    """Lock-table slots the one-file initial migration would hold (an upper bound, see diff.locks)."""
    others = len(schema.enums) + len(schema.composite_types) + len(schema.functions)
    views = sum(3 + len(view.indexes) + len(schema.tables) for view in schema.views.values())
    return (sum(table_lock_slots(table, schema) for table in schema.tables.values()) + 5 * others + views
            + EXTENSION_SLOTS * len(schema.extensions) + 2)


def initial_changes(schema: Schema) -> list[str]:
    """The header's change list for a migration that creates everything."""
    lines = [f"+ schema {name}" for name in sorted(schema.namespaces)]
    lines += [f"+ role {name}" for name in sorted(schema.roles)]
    lines += [f"+ extension {name}" for name in schema.extensions]
    lines += [f"+ enum {name}" for name in sorted(schema.enums)]
    lines += [f"+ type {name}" for name in sorted(schema.composite_types)]
    lines += [f"+ function {name}" for name in sorted(schema.functions)]
    lines += [f"+ sequence {name}" for name in sorted(schema.sequences)]
    lines += [f"+ table {name}" for name in sorted(schema.tables)]
    lines += [f"+ policy {policy.name} on {policy.table}" for policy in schema.policies]
    lines += [f"+ {'materialized ' if v.materialized else ''}view {name}" for name, v in sorted(schema.views.items())]
    lines += [f"+ default privileges of {entry.for_role} on {entry.on}" for _, entry in
              sorted(schema.default_privileges.items())]
    return lines


def initial_migration(schema: Schema, label: str, settings: FileSettings,
                      locks: int | None = None) -> tuple[str, str]:
    changes = initial_changes(schema)
    role = FileRole(locks=locks)
    up = render_migration_file(label, "up", create_schema_sections(schema), changes, settings, role=role)
    undo = ["-" + line[1:] for line in reversed(changes)]
    down = render_migration_file(label, "down", drop_schema_sections(schema), undo, settings, role=role)
    return up, down


def next_version(existing: list[MigrationFile], now: datetime | None = None) -> int:
    """A UTC timestamp ``YYYYMMDDHHMMSS``, kept above every existing version."""
    stamp = int((now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S"))
    newest = max((m.version for m in existing), default=0)
    return max(stamp, newest + 1)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(f"--name {name!r}: use lowercase letters, digits and underscores (e.g. add_user_bio)")
    return name


def write_pair(directory: Path, version: int, name: str, up: str, down: str, transactional: bool = True,
               role: FileRole | None = None) -> WrittenMigration:
    directory.mkdir(parents=True, exist_ok=True)
    up_path = directory / f"{version}_{name}.up.sql"
    down_path = directory / f"{version}_{name}.down.sql"
    up_path.write_bytes(up.encode("utf-8"))
    down_path.write_bytes(down.encode("utf-8"))
    return WrittenMigration(version, name, up_path, down_path, transactional, role or FileRole())


# -- one change as files -----------------------------------------------------------------------
_SUFFIX: dict[FileKind, str] = {"drop_indexes": "_drop_indexes", "enum_values": "_enum_values", "main": "",
                                "concurrent": "_concurrent"}
WHY: dict[FileKind, str] = {
    "drop_indexes": "indexes dropped CONCURRENTLY, outside a transaction (DROP INDEX CONCURRENTLY cannot run in one)",
    "enum_values": "enum values added and committed first (a transaction cannot use an enum value it adds)",
    "main": "the changes that run in one transaction",
    "concurrent": "indexes built CONCURRENTLY and constraints validated outside a transaction, so writes go on "
                  "meanwhile (CREATE INDEX CONCURRENTLY cannot run in a transaction)",
}


def file_names(plan: Plan, base: str) -> list[str]:
    """A lone file keeps the base name; otherwise each kind adds its suffix, and each part after the
    first of a cut file its number (``_part2``)."""
    if len(plan.files) == 1:
        return [base]
    return [base + _SUFFIX[f.kind] + (f"_part{f.part}" if f.part > 1 else "") for f in plan.files]


def why_separate(planned: PlannedFile, max_locks: int | None) -> str:
    """Why this file is a file of its own, for its header and `generate`'s output."""
    if planned.parts > 1:
        return (f"part {planned.part} of {planned.parts} of the changes that run in a transaction, cut so each "
                f"transaction holds at most {max_locks} lock-table slots (the server's lock table is sized by "
                "max_locks_per_transaction)")
    return WHY[planned.kind]


def render_file(planned: PlannedFile, label: str, direction: str, settings: FileSettings,
                rfcs: Sequence[str] = (), role: FileRole | None = None) -> str:
    sections = planned.up_sections() if direction == "up" else planned.down_sections()
    header = planned.header() if direction == "up" else [f"undo: {line}" for line in reversed(planned.header())]
    return render_migration_file(label, direction, sections, header, settings,
                                 no_transaction=not planned.transactional, rfcs=rfcs or planned.rfcs, role=role)


def file_rfcs(planned: PlannedFile, rfc_lookup: Callable[[Change], str | None] | None,
              extra_rfcs: Sequence[str]) -> list[str]:
    """The RFCs a file's header names: its objects' own, those the policy found (table-level), and --rfc."""
    found = set(planned.rfcs) | set(extra_rfcs)
    if rfc_lookup is not None:
        found |= {ref for change in planned.changes if (ref := rfc_lookup(change))}
    return sorted(found)


def write_change(plan: Plan, desired: Schema, directory: Path, base: str, settings: FileSettings, *,
                 now: datetime | None = None, rfc_lookup: Callable[[Change], str | None] | None = None,
                 extra_rfcs: Sequence[str] = ()) -> list[WrittenMigration]:
    """The plan's files as one change (versions ``v, v+1, ...`` in running order), then the snapshot.

    Why consecutive versions: ``apply`` runs them in order and ``rollback`` (newest first)
    undoes them in exactly the reverse order. The snapshot is rewritten only after every
    file is written.
    """
    version = next_version(read_migrations(directory), now)
    several = len(plan.files) > 1
    written = []
    for offset, (planned, file_name) in enumerate(zip(plan.files, file_names(plan, base), strict=True), 0):
        label = f"{version + offset}_{file_name}"
        role = FileRole(change=ChangeRef(version, base, offset + 1, len(plan.files)) if several else None,
                        why=why_separate(planned, settings.max_locks) if several else "",
                        locks=planned.locks if planned.transactional else None)
        rfcs = file_rfcs(planned, rfc_lookup, extra_rfcs)
        up = render_file(planned, label, "up", settings, rfcs, role)
        down = render_file(planned, label, "down", settings, rfcs, role)
        written.append(write_pair(directory, version + offset, file_name, up, down, planned.transactional, role))
    write_snapshot(directory, desired)
    return written


def generate_initial(schema: Schema, directory: Path, name: str, settings: FileSettings,
                     now: datetime | None = None) -> list[WrittenMigration]:
    """The migration creating everything: one file when its transaction fits ``settings.max_locks``,
    else one change of several files cut by the planner (dependency order, each part fitting)."""
    locks = initial_lock_slots(schema)
    if settings.max_locks is not None and locks > settings.max_locks:
        changes = order_changes(diff_schemas(Schema(), schema))
        plan = build_plan(changes, Schema(), schema, max_locks=settings.max_locks)
        written = write_change(plan, schema, directory, name, settings, now=now)
    else:
        version = next_version(read_migrations(directory), now)
        up, down = initial_migration(schema, f"{version}_{name}", settings, locks)
        written = [write_pair(directory, version, name, up, down, role=FileRole(locks=locks))]
        write_snapshot(directory, schema)
    write_sum(directory)
    return written
