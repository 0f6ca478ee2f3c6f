"""The migrations directory: SQLx's file naming, parsed strictly.

Files are ``<version>_<description>.up.sql`` / ``.down.sql`` pairs (or a single
``<version>_<description>.sql``, irreversible). The checksum is SHA-384 of the raw bytes
of the up file, as SQLx computes it, so both tools agree on what was applied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from veza_schema.errors import MigrationFileError

_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[^.]+?)(?P<kind>\.up|\.down)?\.sql$")
NO_TRANSACTION_MARKER = "-- no-transaction"
# Header lines `generate` writes and the runner reads (the history table stays exactly SQLx's):
# the change a file belongs to, and the lock-table slots its transaction holds at most.
CHANGE_LINE = re.compile(r"^-- Part of change (?P<version>\d+)_(?P<name>\S+): file (?P<part>\d+) of (?P<parts>\d+)\b")
_HEADER_BYTES = 4096
LOCKS_LINE = re.compile(r"^-- Lock-table slots: (?P<locks>\d+)\b")


@dataclass(frozen=True)
class ChangeRef:
    """The change a file belongs to: the files one ``generate`` wrote, named by the first one."""

    version: int
    name: str
    part: int = 1
    parts: int = 1

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"


@dataclass(frozen=True)
class FileHeader:
    change: ChangeRef | None = None
    locks: int | None = None


def parse_header(text: str) -> FileHeader:
    """The change and lock lines of a migration's leading comment block (absent in hand-written files)."""
    change: ChangeRef | None = None
    locks: int | None = None
    for line in text.lstrip("\ufeff").splitlines():
        if not line.startswith("--"):
            break
        if (found := CHANGE_LINE.match(line)) is not None:
            change = ChangeRef(int(found["version"]), found["name"], int(found["part"]), int(found["parts"]))
        elif (slots := LOCKS_LINE.match(line)) is not None:
            locks = int(slots["locks"])
    return FileHeader(change, locks)


@dataclass(frozen=True)
class MigrationFile:
    version: int
    name: str  # the part after the version, as in the file name
    up_path: Path
    down_path: Path | None

    @property
    def description(self) -> str:
        """SQLx's description: the name with underscores as spaces."""
        return self.name.replace("_", " ")

    @property
    def up_bytes(self) -> bytes:
        return self.up_path.read_bytes()

    @property
    def checksum(self) -> bytes:
        return hashlib.sha384(self.up_bytes).digest()

    @property
    def up_sql(self) -> str:
        return self.up_bytes.decode("utf-8")

    @property
    def down_sql(self) -> str | None:
        return self.down_path.read_text(encoding="utf-8") if self.down_path else None

    @property
    def no_transaction(self) -> bool:
        return is_no_transaction(self.up_sql)

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"

    @cached_property
    def header(self) -> FileHeader:
        return _read_header(self.up_path)

    @cached_property
    def down_header(self) -> FileHeader:
        return _read_header(self.down_path) if self.down_path else FileHeader()

    @property
    def change(self) -> ChangeRef:
        """Its change, from the header; a file without one is a change of its own."""
        return self.header.change or ChangeRef(self.version, self.name)


def _read_header(path: Path) -> FileHeader:
    """The header comes first (before the change list), so its first bytes are enough."""
    with path.open("rb") as handle:
        return parse_header(handle.read(_HEADER_BYTES).decode("utf-8", errors="replace"))


def is_no_transaction(sql: str) -> bool:
    """SQLx's rule: a file starting with ``-- no-transaction`` runs outside a transaction."""
    return sql.lstrip("\ufeff").startswith(NO_TRANSACTION_MARKER)


def read_migrations(directory: Path) -> list[MigrationFile]:
    """All migrations of a directory, sorted by version; a missing directory has none.

    Raises:
        MigrationFileError: an unparsable name, a duplicate version, a down without an up.
    """
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise MigrationFileError(f"{directory}: not a directory")
    ups: dict[int, tuple[str, Path, bool]] = {}
    downs: dict[int, tuple[str, Path]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationFileError(f"{path}: migration files are named <version>_<name>.up.sql / .down.sql "
                                     "(version: digits, e.g. 20261125120000)")
        version = int(match.group("version"))
        if version <= 0:
            raise MigrationFileError(f"{path}: the version must be a positive integer")
        name, kind = match.group("name"), match.group("kind")
        if kind == ".down":
            if version in downs:
                raise MigrationFileError(f"{path}: duplicate down migration for version {version}")
            downs[version] = (name, path)
            continue
        if version in ups:
            raise MigrationFileError(f"{path}: duplicate version {version} (also {ups[version][1].name})")
        ups[version] = (name, path, kind == ".up")
    migrations = []
    for version, (name, path, paired) in sorted(ups.items()):
        down = downs.pop(version, None)
        if down and down[0] != name:
            raise MigrationFileError(f"{down[1]}: name differs from its up file {path.name}")
        if down and not paired:
            raise MigrationFileError(f"{down[1]}: a down file needs a .up.sql file, not {path.name}")
        migrations.append(MigrationFile(version, name, path, down[1] if down else None))
    if downs:
        version, (_, path) = next(iter(sorted(downs.items())))
        raise MigrationFileError(f"{path}: down migration without an up migration for version {version}")
    return migrations


@dataclass(frozen=True)
class PlannedStep:
    """One migration file to run, with exactly the SQL that will run."""

    migration: MigrationFile
    direction: Literal["up", "down"]
    sql: str
    transactional: bool
