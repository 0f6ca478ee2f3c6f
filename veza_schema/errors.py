"""One error family; each error carries the data a message needs and its exit code.

Exit codes (documented in the README and in ``veza-schema --help``): 0 ok, 1 findings or
drift, 2 bad input or usage, 3 database error, 4 internal error (a bug), 130 interrupted.
The CLI prints ``str(error)`` on one line and exits with ``exit_code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: importing the model would slow every command's start
    from veza_schema.model import SourcePos

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_DATABASE = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success, nothing to report",
    EXIT_FINDINGS: "findings: lint errors, a forbidden change, drift, a database not up to date",
    EXIT_BAD_INPUT: "bad input or usage: invalid YAML or SQL in it, unknown flags, badly named migration files",
    EXIT_DATABASE: "database error: unreachable or malformed DSN, a failed statement, a lock timeout, "
                   "a database in an unexpected state",
    EXIT_INTERNAL: "internal error: a bug (set VEZA_DEBUG=1 for a traceback and report it)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


# Characters a terminal acts on instead of showing: C0 controls (ESC starts colour, cursor and
# screen-clearing sequences; CR overwrites the line), DEL, C1 controls (0x9b is a one-byte CSI) and
# the bidirectional overrides that reorder what a reviewer reads. Newline and tab stay.
_UNPRINTABLE = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if code not in (9, 10)}
_UNPRINTABLE.update({code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on written as a visible escape (``\\x1b``).

    Why: messages and findings quote YAML text (defaults, CHECKs, comments), and YAML is untrusted
    input: printed raw, an escape sequence in a pull request could clear a reviewer's screen or
    rewrite the line that reports an error. Every report meant for people goes through here.
    """
    return text.translate(_UNPRINTABLE)


class VezaSchemaError(Exception):
    """Base of every expected failure."""

    exit_code = EXIT_BAD_INPUT


class UsageError(VezaSchemaError):
    """Bad flags or arguments."""


class InternalError(VezaSchemaError):
    """A check of our own output failed: a bug to report, not bad input."""

    exit_code = EXIT_INTERNAL


@dataclass
class Problem:
    """One located complaint about an input file."""

    pos: SourcePos | None
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.message}" if self.pos else self.message


class SchemaLoadError(VezaSchemaError):
    """The YAML could not be turned into a model; lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(problem) for problem in problems))


class MigrationFileError(VezaSchemaError):
    """A migrations directory that does not follow the SQLx naming rules, or a stale sum file."""


class DatabaseError(VezaSchemaError):
    """Connecting, or running SQL, failed; keeps the SQLSTATE when there is one."""

    exit_code = EXIT_DATABASE

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class DatabaseStateError(DatabaseError):
    """The database is in a state that forbids the operation (dirty history, modified file...)."""
