"""Writing migration files: the initial migration from the whole model, then (through the
differ) one pair per change set. A snapshot of the model the migrations produce is kept
beside them (``veza.snapshot.json``), so generating needs no database and an unchanged
``schema/`` writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from veza_schema.errors import UsageError
from veza_schema.migrations.files import MigrationFile, read_migrations
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

DEFAULT_LOCK_TIMEOUT = "5s"
DEFAULT_STATEMENT_TIMEOUT = "15min"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class FileSettings:
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT
    schema_dir: str = "schema"
    unverified: bool = False  # written with --no-verify: the header says so


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


def render_migration_file(label: str, direction: str, sections: Sequence[Section], changes: Sequence[str],
                          settings: FileSettings, no_transaction: bool = False,
                          rfcs: Sequence[str] = ()) -> str:
    return render_template("migration.sql.j2", label=label, direction=direction, body=sections_to_sql(sections),
                           changes=changes, lock_timeout=settings.lock_timeout,
                           statement_timeout=settings.statement_timeout, schema_dir=settings.schema_dir,
                           no_transaction=no_transaction, rfcs=list(rfcs), unverified=settings.unverified)


def initial_changes(schema: Schema) -> list[str]:
    """The header's change list for a migration that creates everything."""
    lines = [f"+ extension {name}" for name in schema.extensions]
    lines += [f"+ enum {name}" for name in sorted(schema.enums)]
    lines += [f"+ type {name}" for name in sorted(schema.composite_types)]
    lines += [f"+ function {name}" for name in sorted(schema.functions)]
    lines += [f"+ table {name}" for name in sorted(schema.tables)]
    lines += [f"+ {'materialized ' if v.materialized else ''}view {name}" for name, v in sorted(schema.views.items())]
    return lines


def initial_migration(schema: Schema, label: str, settings: FileSettings) -> tuple[str, str]:
    changes = initial_changes(schema)
    up = render_migration_file(label, "up", create_schema_sections(schema), changes, settings)
    undo = ["-" + line[1:] for line in reversed(changes)]
    down = render_migration_file(label, "down", drop_schema_sections(schema), undo, settings)
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


def write_pair(directory: Path, version: int, name: str, up: str, down: str) -> WrittenMigration:
    directory.mkdir(parents=True, exist_ok=True)
    up_path = directory / f"{version}_{name}.up.sql"
    down_path = directory / f"{version}_{name}.down.sql"
    up_path.write_bytes(up.encode("utf-8"))
    down_path.write_bytes(down.encode("utf-8"))
    return WrittenMigration(version, name, up_path, down_path)


def generate_initial(schema: Schema, directory: Path, name: str, settings: FileSettings,
                     now: datetime | None = None) -> WrittenMigration:
    existing = read_migrations(directory)
    version = next_version(existing, now)
    up, down = initial_migration(schema, f"{version}_{name}", settings)
    written = write_pair(directory, version, name, up, down)
    write_snapshot(directory, schema)
    write_sum(directory)
    return written
