"""The next migration(s) from the snapshot and schema/: diff -> order -> plan -> files.

Why files with consecutive versions: a plan may need statements that cannot share a
transaction (see :mod:`veza_schema.diff.plan`); each planned file becomes one up/down
pair, versions ``v, v+1, ...`` in running order, so ``apply`` runs them in order and
``rollback`` (newest first) undoes them in exactly the reverse order. The snapshot is
rewritten only after every file is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from veza_schema.diff.changes import Change, slug
from veza_schema.diff.differ import diff_schemas
from veza_schema.diff.order import order_changes
from veza_schema.diff.plan import Plan, PlannedFile, build_plan
from veza_schema.migrations.files import read_migrations
from veza_schema.migrations.generate import (
    FileSettings,
    WrittenMigration,
    check_name,
    next_version,
    render_migration_file,
    write_pair,
)
from veza_schema.migrations.snapshot import write_snapshot
from veza_schema.model import Schema

MAX_NAME = 80
_SUFFIX = {"drop_indexes": "_drop_indexes", "enum_values": "_enum_values", "main": "", "concurrent": "_concurrent"}


def plan_incremental(current: Schema, desired: Schema, *, allow_forbidden: bool = False) -> tuple[list[Change], Plan]:
    """The ordered changes and their plan (no I/O); empty when the models are equivalent."""
    changes = order_changes(diff_schemas(current, desired))
    return changes, build_plan(changes, current, desired, allow_forbidden=allow_forbidden)


def default_name(changes: Sequence[Change]) -> str:
    """``add_column_users_bio`` for one change, ``schema_update`` for several."""
    if len(changes) == 1:
        name = slug(changes[0]).lower()
        cleaned = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)
        if cleaned and cleaned[0].isalnum() and cleaned.isascii():
            return cleaned[:MAX_NAME]
    return "schema_update"


def file_names(plan: Plan, base: str) -> list[str]:
    """A lone file keeps the base name; otherwise each kind adds its suffix."""
    if len(plan.files) == 1:
        return [base]
    return [base + _SUFFIX[f.kind] for f in plan.files]


def render_file(planned: PlannedFile, label: str, direction: str, settings: FileSettings,
                rfcs: Sequence[str] = ()) -> str:
    sections = planned.up_sections() if direction == "up" else planned.down_sections()
    header = planned.header() if direction == "up" else [f"undo: {line}" for line in reversed(planned.header())]
    return render_migration_file(label, direction, sections, header, settings,
                                 no_transaction=not planned.transactional, rfcs=rfcs or planned.rfcs)


def file_rfcs(planned: PlannedFile, rfc_lookup: Callable[[Change], str | None] | None,
              extra_rfcs: Sequence[str]) -> list[str]:
    """The RFCs a file's header names: its objects' own, those the policy found (table-level), and --rfc."""
    found = set(planned.rfcs) | set(extra_rfcs)
    if rfc_lookup is not None:
        found |= {ref for change in planned.changes if (ref := rfc_lookup(change))}
    return sorted(found)


def generate_incremental(snapshot: Schema, schema: Schema, migrations_dir: Path, name: str | None,
                         settings: FileSettings, *, allow_forbidden: bool = False,
                         now: datetime | None = None,
                         rfc_lookup: Callable[[Change], str | None] | None = None,
                         extra_rfcs: Sequence[str] = ()) -> list[WrittenMigration]:
    """Write the migration pair(s) turning ``snapshot`` into ``schema``, then the new snapshot.

    Returns [] (and writes nothing) when the models differ only in ways PostgreSQL does not
    store (whitespace in expressions, YAML metadata).

    Raises:
        UnsafeChangeError: a change with no online-safe form (see :func:`build_plan`).
    """
    changes, plan = plan_incremental(snapshot, schema, allow_forbidden=allow_forbidden)
    if not plan.files:
        return []
    base = check_name(name or default_name(changes))
    version = next_version(read_migrations(migrations_dir), now)
    written = []
    for offset, (planned, file_name) in enumerate(zip(plan.files, file_names(plan, base), strict=True)):
        label = f"{version + offset}_{file_name}"
        rfcs = file_rfcs(planned, rfc_lookup, extra_rfcs)
        up = render_file(planned, label, "up", settings, rfcs)
        down = render_file(planned, label, "down", settings, rfcs)
        written.append(write_pair(migrations_dir, version + offset, file_name, up, down))
    write_snapshot(migrations_dir, schema)
    return written
