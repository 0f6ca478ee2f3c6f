"""Run the real ``veza-schema`` CLI and stop it dead before its N-th SQL statement (tests only).

Usage: ``python -m tests.crash_driver MODE N -- <veza-schema arguments>`` with the file
``VEZA_CRASH_REPORT`` to write to. MODE:

- ``count``: run to the end, write ``<statements> <exit code>`` (how many boundaries there are), and
  each statement, on one line, to the file ``VEZA_CRASH_STATEMENTS`` when set (which boundary is which);
- ``kill``: SIGKILL this process just before statement N is sent (no cleanup, no exit handler,
  the server sees the connection drop, exactly as with ``kill -9`` or an OOM kill);
- ``pause``: write ``paused`` and sleep just before statement N, so the test can stop the server
  (``pg_ctl stop -m immediate``: a power cut) and then kill this process.

Why here and not in the runner: production code keeps no crash hook (nothing to switch on by
mistake, nothing to slow it down). A statement boundary is the moment between two
statements the process sends, which is exactly a call of psycopg's ``Cursor.execute``
(``Connection.execute`` goes through it): wrapping it in this process only counts every
statement on every connection (the lock, the migration, the history) and stops at the N-th,
deterministically, without timing.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql


def main(argv: list[str]) -> int:
    mode, stop_at, separator, *cli_args = argv
    assert mode in ("count", "kill", "pause") and separator == "--", argv
    report = Path(os.environ["VEZA_CRASH_REPORT"])
    target = int(stop_at)
    count = 0
    original = psycopg.Cursor.execute
    log = os.environ.get("VEZA_CRASH_STATEMENTS")
    sent: list[str] = []

    def execute(self: psycopg.Cursor, query: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal count
        count += 1
        if log is not None:
            text = query.as_string(self) if isinstance(query, psycopg.sql.Composable) else str(query)
            sent.append(" ".join(text.split()))
        if count == target and mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if count == target and mode == "pause":
            report.write_text("paused\n")
            while True:
                time.sleep(60)
        return original(self, query, *args, **kwargs)

    psycopg.Cursor.execute = execute  # type: ignore[method-assign, assignment]
    from veza_schema.cli import run

    code = run(cli_args)
    if log is not None:
        Path(log).write_text("".join(f"{statement}\n" for statement in sent))
    report.write_text(f"{count} {code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
