"""What a rule reports: one located finding, and the report of a whole run.

Findings are plain frozen data so every output format (text, json, sarif, github) reads
the same thing, and tests can compare them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from veza_schema.model import SourcePos

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule violation on one object, pointed at its YAML ``file:line:col``.

    ``object`` is a YAML-shaped path (``tables.users.columns.email``) naming the object the
    finding is about; waivers declared on that object, on one of its ancestors, or on one
    of ``related`` (e.g. the column a ``unique: true`` constraint came from) apply to it.
    """

    code: str
    severity: Severity
    message: str
    pos: SourcePos | None
    object: str
    fix: str = ""
    related: tuple[str, ...] = field(default=(), compare=False)
    waived: bool = False
    waiver_reason: str | None = None

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        pos = self.pos or SourcePos("", 0, 0)
        return (pos.file, pos.line, pos.column, self.code, self.message)


@dataclass(frozen=True, slots=True)
class LintReport:
    """Every finding of a run (waived ones included, flagged) plus the codes that ran.

    ``verification`` says whether and by which server the schema was applied (None: not asked).
    """

    findings: tuple[Finding, ...]
    rules_run: tuple[str, ...]
    waivers_applied: bool = True
    verification: str | None = None

    @property
    def active(self) -> tuple[Finding, ...]:
        """Findings that count: not covered by a waiver."""
        return tuple(f for f in self.findings if not f.waived)

    @property
    def waived(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.waived)

    @property
    def errors(self) -> int:
        return sum(1 for f in self.active if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.active if f.severity == "warning")

    def exit_code(self, strict: bool = False) -> int:
        """0 clean, 1 when errors remain (or warnings, with ``strict``)."""
        if self.errors or (strict and self.warnings):
            return 1
        return 0
