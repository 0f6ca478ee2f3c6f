"""``migrations/veza.sum``: one hash per file plus a cumulative hash over names and hashes.

Editing, reordering, deleting or inserting a migration changes the sum, so a stale sum is
caught before anything runs; and because every new migration rewrites the first line, two
branches that each add a migration conflict in git instead of merging silently.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

from veza_schema.errors import MigrationFileError

SUM_FILE = "veza.sum"
# Files covered: every migration and the snapshot that generation diffs against.
_COVERED_SUFFIXES = (".sql", ".json")


def _h1(data: bytes) -> str:
    return "h1:" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def covered_files(directory: Path) -> list[Path]:
    return sorted((p for p in directory.iterdir() if p.is_file() and p.suffix in _COVERED_SUFFIXES),
                  key=lambda p: p.name)


def compute_sum(directory: Path) -> str:
    """The sum file's text for the directory as it is now."""
    lines = [f"{path.name} {_h1(path.read_bytes())}" for path in covered_files(directory)]
    total = _h1("\n".join(lines).encode("utf-8"))
    return "\n".join([total, *lines]) + "\n"


def write_sum(directory: Path) -> Path:
    path = directory / SUM_FILE
    path.write_text(compute_sum(directory), encoding="utf-8", newline="\n")
    return path


@dataclass(frozen=True)
class SumMismatch:
    name: str
    problem: str  # "modified", "added", "removed"


def verify_sum(directory: Path) -> list[SumMismatch]:
    """Differences between the sum file and the files; empty when the sum is current."""
    path = directory / SUM_FILE
    if not directory.exists() or not any(directory.glob("*.sql")):
        return []
    if not path.exists():
        return [SumMismatch(SUM_FILE, "missing")]
    recorded = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        name, _, digest = line.rpartition(" ")
        recorded[name] = digest
    actual = {p.name: _h1(p.read_bytes()) for p in covered_files(directory)}
    problems = [SumMismatch(name, "modified") for name in sorted(actual) if name in recorded
                and recorded[name] != actual[name]]
    problems += [SumMismatch(name, "added") for name in sorted(set(actual) - set(recorded))]
    problems += [SumMismatch(name, "removed") for name in sorted(set(recorded) - set(actual))]
    if not problems and path.read_text(encoding="utf-8") != compute_sum(directory):
        problems.append(SumMismatch(SUM_FILE, "cumulative hash or order differs"))
    return problems


def require_current_sum(directory: Path) -> None:
    """Refuse to go on with a stale sum: someone changed migrations without `veza-schema hash`."""
    problems = verify_sum(directory)
    if not problems:
        return
    details = ", ".join(f"{p.name} ({p.problem})" for p in problems[:5])
    more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
    raise MigrationFileError(f"{directory / SUM_FILE} does not match the migration files: {details}{more}. "
                             "If the change is intended, run `veza-schema hash`; never edit an applied migration")
