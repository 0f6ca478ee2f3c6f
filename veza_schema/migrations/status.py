"""What ``status`` reports, as data: the versioned JSON document scripts read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from veza_schema.migrations.runner import MigrationState

STATUS_DOCUMENT_VERSION = 1


def status_document(database: str, states: Sequence[MigrationState], up_to_date: bool) -> dict[str, Any]:
    """The documented JSON shape of ``status --format json`` (version 1, see README)."""
    counts = Counter(s.state for s in states)
    return {
        "version": STATUS_DOCUMENT_VERSION,
        "database": database,
        "up_to_date": up_to_date,
        "counts": {k: counts.get(k, 0) for k in ("applied", "pending", "modified", "missing", "failed",
                                                  "out_of_order")},
        "migrations": [
            {
                "version": s.version,
                "name": s.name,
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
