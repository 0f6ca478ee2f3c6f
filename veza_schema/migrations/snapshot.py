"""``veza.snapshot.json``: the model the migrations produce, kept beside them.

Why: ``generate`` diffs ``schema/`` against it without a database, ``check --base
migrations`` judges changes against it, and ``veza.sum`` covers it like a migration file,
so an edit by hand is caught.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from veza_schema.errors import MigrationFileError
from veza_schema.model import Schema
from veza_schema.model_io import dumps, loads

SNAPSHOT_FILE = "veza.snapshot.json"
T = TypeVar("T")


def read_snapshot(directory: Path) -> Schema | None:
    return _read(directory, loads)


def read_snapshot_columns(directory: Path) -> dict[str, frozenset[str]] | None:
    """Each snapshot table's column names, read from the JSON without building the model.

    Why: lint asks the snapshot only which tables and columns exist already (PG017); decoding the
    whole model for that cost a tenth of a lint run.
    """
    import json

    def columns(text: str) -> dict[str, frozenset[str]]:
        tables = json.loads(text)["tables"]
        return {name: frozenset(column["name"] for column in table["columns"]) for name, table in tables.items()}

    return _read(directory, columns)


def _read(directory: Path, decode: Callable[[str], T]) -> T | None:
    """The snapshot decoded by ``decode``; None without one; a damaged one is a MigrationFileError."""
    path = directory / SNAPSHOT_FILE
    if not path.exists():
        return None
    try:
        return decode(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MigrationFileError(f"{path}: unreadable snapshot ({exc}); regenerate it from the applied "
                                 "migrations or restore it from git") from exc


def write_snapshot(directory: Path, schema: Schema) -> None:
    (directory / SNAPSHOT_FILE).write_text(dumps(schema), encoding="utf-8")


def snapshot_changed(directory: Path, schema: Schema) -> bool:
    """Whether writing ``schema`` would change the snapshot file: also true when only what it keeps
    besides the DDL changed (a deprecation, module membership), which model equality ignores."""
    path = directory / SNAPSHOT_FILE
    return not path.exists() or path.read_text(encoding="utf-8") != dumps(schema)
