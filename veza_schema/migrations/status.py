"""What ``status`` reports, as data: migrations grouped by change, and the versioned JSON document
scripts read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veza_schema.migrations.runner import MigrationState, change_groups

STATUS_DOCUMENT_VERSION = 1


@dataclass(frozen=True)
class ChangeStatus:
    """One change (the files one ``generate`` wrote) and its state as a whole."""

    version: int
    name: str
    files: tuple[MigrationState, ...]

    @property
    def label(self) -> str:
        return f"{self.version}_{self.name}"

    @property
    def state(self) -> str:
        """The files' common state; ``partly applied`` when only some are; else the most alarming one."""
        states = {f.state for f in self.files}
        if len(states) == 1:
            return next(iter(states))
        for alarming in ("failed", "modified", "missing", "out_of_order"):
            if alarming in states:
                return alarming
        return "partly applied"


def changes_of(states: Sequence[MigrationState]) -> list[ChangeStatus]:
    """States grouped into changes, in version order."""
    found = []
    for group in change_groups(list(states)):
        first = group[0]
        if first.file is not None:
            change = first.file.change
            found.append(ChangeStatus(change.version, change.name, tuple(group)))
        else:
            found.append(ChangeStatus(first.version, first.name, tuple(group)))
    return found


def status_document(database: str, states: Sequence[MigrationState], up_to_date: bool) -> dict[str, Any]:
    """The documented JSON shape of ``status --format json`` (version 1, see README)."""
    counts = Counter(s.state for s in states)
    changes = changes_of(states)
    change_of = {f.version: change.label for change in changes for f in change.files}
    return {
        "version": STATUS_DOCUMENT_VERSION,
        "database": database,
        "up_to_date": up_to_date,
        "counts": {k: counts.get(k, 0) for k in ("applied", "pending", "modified", "missing", "failed",
                                                  "out_of_order")},
        "changes": [
            {"change": change.label, "state": change.state, "versions": [f.version for f in change.files]}
            for change in changes
        ],
        "migrations": [
            {
                "version": s.version,
                "name": s.name,
                "change": change_of[s.version],
                "state": s.state,
                "installed_on": s.applied.installed_on.isoformat() if s.applied else None,
                "execution_time_ms": round(s.applied.execution_time_ns / 1e6, 3) if s.applied else None,
                "checksum_file": s.file.checksum.hex() if s.file else None,
                "checksum_applied": s.applied.checksum.hex() if s.applied else None,
                "detail": s.detail or None,
                "hand_written": bool(s.file and s.file.hand_written),
            }
            for s in states
        ],
    }


def status_lines(states: Sequence[MigrationState]) -> list[tuple[str, ...]]:
    """The text table's rows (header first): a change of several files gets a row of its own,
    its files follow indented; a one-file change is one row."""
    rows: list[tuple[str, ...]] = [("version", "name", "state", "installed on", "detail")]
    for change in changes_of(states):
        indent = ""
        if len(change.files) > 1:
            rows.append((str(change.version), f"{change.name} (change of {len(change.files)} files)", change.state,
                         "", ""))
            indent = "  "
        for s in change.files:
            installed = s.applied.installed_on.strftime("%Y-%m-%d %H:%M:%S") if s.applied else ""
            name = f"{s.name} (hand-written)" if s.file and s.file.hand_written else s.name
            rows.append((indent + str(s.version), name, s.state, installed, s.detail))
    return rows
