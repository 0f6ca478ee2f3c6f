"""The base a change set is judged against: a git ref, a directory, or the applied migrations.

Git refs are read by :mod:`veza_schema.yaml.gitref`, which maps positions back to the
repository's paths, so a dropped column is reported at the line it had in the base.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from veza_schema.errors import UsageError, VezaSchemaError
from veza_schema.migrations.snapshot import SNAPSHOT_FILE, read_snapshot
from veza_schema.model import Schema, SourcePos
from veza_schema.yaml.gitref import SchemaAtRef, default_ref, load_at_ref
from veza_schema.yaml.loader import load_schema

MIGRATIONS_BASE = "migrations"


@dataclass(frozen=True)
class Base:
    """A base model, how to name it, and how to show its positions."""

    schema: Schema
    label: str
    relocate: Callable[[SourcePos | None], SourcePos | None] = field(default=lambda pos: pos)
    # Earlier states consulted for deprecations besides the base's own.
    prior: tuple[Schema, ...] = ()


def prior_from_git(schema_dir: Path) -> tuple[Schema, ...]:
    """The default git base's model, for deprecations; empty when there is none or it does not load."""
    try:
        commit, label = default_ref(schema_dir)
        return (load_at_ref(commit, schema_dir, label).schema,)
    except (VezaSchemaError, OSError):
        return ()


def resolve_base(spec: str | None, schema_dir: Path, migrations_dir: Path) -> Base:
    """``--base``: ``migrations``, a directory, a git ref; default the merge base with origin/main, else HEAD.

    Raises:
        UsageError: an unusable base (exit 2).
        SchemaLoadError: the base's YAML does not load (exit 2).
    """
    if spec is None:
        commit, label = default_ref(schema_dir)
        return _base(load_at_ref(commit, schema_dir, label))
    if spec == MIGRATIONS_BASE:
        snapshot = read_snapshot(migrations_dir)
        if snapshot is None:
            raise UsageError(f"--base migrations: {migrations_dir / SNAPSHOT_FILE} not found (no migration "
                             "generated yet?)")
        return Base(snapshot, f"the applied migrations ({migrations_dir / SNAPSHOT_FILE})",
                    prior=prior_from_git(schema_dir))
    if Path(spec).is_dir():
        return Base(load_schema(Path(spec)), f"directory {spec}")
    return _base(load_at_ref(spec, schema_dir))


def _base(found: SchemaAtRef) -> Base:
    return Base(found.schema, found.label, found.relocate)
