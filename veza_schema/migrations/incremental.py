"""The next change from the snapshot and schema/: diff -> order -> plan -> files.

A plan may need several files (see :mod:`veza_schema.diff.plan`); they are written as one
change by :func:`veza_schema.migrations.generate.write_change`, named after what changed
(``add_tracks_isrc``) unless ``--name`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddEnumValue,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnDefault,
    AlterColumnGenerated,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnType,
    AlterCompositeType,
    Change,
    ChangePartitioning,
    CreateCompositeType,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreatePartitionHelper,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropCompositeType,
    DropEnum,
    DropExtension,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropPartitionHelper,
    DropPrimaryKey,
    DropTable,
    DropTrigger,
    DropUnique,
    DropView,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameIndex,
    RenameTable,
    ReplaceFunction,
    ReplaceView,
    SetComment,
)
from veza_schema.diff.differ import diff_schemas
from veza_schema.diff.locks import DEFAULT_MAX_LOCKS
from veza_schema.diff.order import order_changes
from veza_schema.diff.plan import Plan, build_plan
from veza_schema.migrations.generate import FileSettings, WrittenMigration, check_name, write_change
from veza_schema.model import Schema

MAX_NAME = 80


def plan_incremental(current: Schema, desired: Schema, *, allow_forbidden: bool = False,
                     max_locks: int | None = DEFAULT_MAX_LOCKS) -> tuple[list[Change], Plan]:
    """The ordered changes and their plan (no I/O); empty when the models are equivalent."""
    changes = order_changes(diff_schemas(current, desired))
    return changes, build_plan(changes, current, desired, allow_forbidden=allow_forbidden, max_locks=max_locks)


# -- default names ----------------------------------------------------------------------------
def _phrase(change: Change) -> tuple[str, str, str | None]:
    """(verb, object words, parent table) for one change: ``("add", "tracks_isrc", None)``; the parent is
    set for what belongs to a table (an index, a key, a trigger, a comment)."""
    match change:
        case CreateTable(table=t):
            return "create", t.name, None
        case DropTable(table=t):
            return "drop", t.name, None
        case RenameTable(old=old, new=new):
            return "rename", f"{old}_to_{new}", None
        case AddColumn(table=table, column=column):
            return "add", f"{table}_{column.name}", None
        case DropColumn(table=table, column=column):
            return "drop", f"{table}_{column.name}", None
        case RenameColumn(table=table, old=old, new=new):
            return "rename", f"{table}_{old}_to_{new}", None
        case AlterColumnType(table=table, after=column) | AlterColumnDefault(table=table, after=column) \
                | AlterColumnNullability(table=table, after=column) | AlterColumnIdentity(table=table, after=column) \
                | AlterColumnGenerated(table=table, after=column):
            return "alter", f"{table}_{column.name}", None
        case ChangePartitioning(table=table):
            return "repartition", table, None
        case CreateIndex(index=index):
            return "add", index.name, index.table
        case DropIndex(index=index):
            return "drop", index.name, index.table
        case RenameIndex(new=new) | RenameConstraint(new=new):
            return "rename", new, None
        case AddPrimaryKey(table=table, primary_key=key) | AddUnique(table=table, unique=key) \
                | AddCheck(table=table, check=key) | AddForeignKey(table=table, foreign_key=key):
            return "add", key.name, table
        case DropPrimaryKey(table=table, primary_key=key) | DropUnique(table=table, unique=key) \
                | DropCheck(table=table, check=key) | DropForeignKey(table=table, foreign_key=key):
            return "drop", key.name, table
        case CreateTrigger(trigger=trigger):
            return "add", trigger.name, trigger.table
        case DropTrigger(trigger=trigger):
            return "drop", trigger.name, trigger.table
        case CreateEnum(enum=e) | CreateCompositeType(ctype=e) | CreateFunction(function=e) | CreateView(view=e) \
                | CreateExtension(extension=e):
            return "create", e.name, None
        case DropEnum(enum=e) | DropCompositeType(ctype=e) | DropFunction(function=e) | DropView(view=e) \
                | DropExtension(extension=e):
            return "drop", e.name, None
        case AddEnumValue(after=e):
            return "extend", e.name, None
        case RecreateEnum(after=e):
            return "rebuild", e.name, None
        case AlterCompositeType(after=e) | ReplaceFunction(after=e) | ReplaceView(after=e):
            return "replace", e.name, None
        case SetComment(target=target):
            parent = target.name if target.kind in ("table", "column") else None
            return "comment", target.name + (f"_{target.column}" if target.column else ""), parent
        case CreatePartitionHelper():
            return "create", "partition_helper", None
        case DropPartitionHelper():
            return "drop", "partition_helper", None
    return "change", type(change).__name__.lower(), None


def _touched_tables(changes: Sequence[Change]) -> set[str]:
    """Tables the main changes create, drop or give/take columns: their indexes, keys and comments follow."""
    found: set[str] = set()
    for change in changes:
        match change:
            case CreateTable(table=t) | DropTable(table=t):
                found.add(t.name)
            case AddColumn(table=table) | DropColumn(table=table) | AlterColumnType(table=table):
                found.add(table)
    return found


def default_name(changes: Sequence[Change]) -> str:
    """What changed, as a migration name: ``add_tracks_isrc`` (a column and its index),
    ``create_playlists_playlist_tracks``, ``drop_users_nick_and_2_more``.

    The indexes, keys, triggers and comments of a table the change creates or gives a column
    are part of that change and do not lengthen the name.
    """
    touched = _touched_tables(changes)
    phrases: list[tuple[str, str]] = []
    for change in changes:
        verb, words, table = _phrase(change)
        if table is not None and table in touched:
            continue
        if (verb, words) not in phrases:
            phrases.append((verb, words))
    if not phrases:
        return "schema_update"
    verbs = {verb for verb, _ in phrases}
    if len(verbs) == 1 and len(phrases) > 3:
        name = f"{phrases[0][0]}_{len(phrases)}_objects"
    elif len(verbs) == 1:
        name = phrases[0][0] + "_" + "_".join(words for _, words in phrases)
    else:
        name = "_".join(phrases[0])
        if len(phrases) > 1:
            name += f"_and_{len(phrases) - 1}_more"
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in name.lower())
    if len(cleaned) > MAX_NAME:
        verb = phrases[0][0]
        cleaned = f"{verb}_{len(phrases)}_objects" if len(verbs) == 1 else f"{verb}_and_{len(phrases) - 1}_more"
    return cleaned if cleaned[:1].isalnum() else "schema_update"


def generate_incremental(snapshot: Schema, schema: Schema, migrations_dir: Path, name: str | None,
                         settings: FileSettings, *, allow_forbidden: bool = False,
                         now: datetime | None = None,
                         rfc_lookup: Callable[[Change], str | None] | None = None,
                         extra_rfcs: Sequence[str] = ()) -> list[WrittenMigration]:
    """Write the change turning ``snapshot`` into ``schema`` (one or more file pairs), then the snapshot.

    Returns [] (and writes nothing) when the models differ only in ways PostgreSQL does not
    store (whitespace in expressions, YAML metadata).

    Raises:
        UnsafeChangeError: a change with no online-safe form (see :func:`build_plan`).
    """
    changes, plan = plan_incremental(snapshot, schema, allow_forbidden=allow_forbidden,
                                     max_locks=settings.max_locks)
    if not plan.files:
        return []
    base = check_name(name or default_name(changes))
    return write_change(plan, schema, migrations_dir, base, settings, now=now, rfc_lookup=rfc_lookup,
                        extra_rfcs=extra_rfcs)
