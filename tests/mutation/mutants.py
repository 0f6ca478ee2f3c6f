"""The mutants: realistic bugs in the modules issue 18 names, each with the tests that must kill it.

A mutant replaces one exact fragment of one file (it must occur exactly once). ``tests``
are pytest arguments (files or node ids) run with ``-x`` in a copy of the checkout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]
    why: str  # the bug it stands for


RUNNER = "veza_schema/migrations/runner.py"
SUMFILE = "veza_schema/migrations/sumfile.py"

ATOMICITY = "tests/test_atomicity.py"

MUTANTS: list[Mutant] = [
    # -- the three weak spots issue 18 names --------------------------------------------------------------
    Mutant("history_outside_transaction", RUNNER,
           """            elapsed = int((time.monotonic() - started) * 1e9)
            if step.direction == "up":
                history.record(conn, migration.version, migration.description, migration.checksum, True, elapsed)
            else:
                history.forget(conn, migration.version)
    except psycopg.Error""",
           """        elapsed = int((time.monotonic() - started) * 1e9)
        if step.direction == "up":
            history.record(conn, migration.version, migration.description, migration.checksum, True, elapsed)
        else:
            history.forget(conn, migration.version)
    except psycopg.Error""",
           (f"{ATOMICITY}::test_history_row_failing_rolls_back_the_files_ddl_on_apply",
            f"{ATOMICITY}::test_history_row_failing_rolls_back_the_down_files_ddl_on_rollback"),
           "the history row written after the file's transaction instead of inside it"),
    Mutant("snapshot_not_in_sum", SUMFILE,
           '_COVERED_SUFFIXES = (".sql", ".json")', '_COVERED_SUFFIXES = (".sql",)',
           (f"{ATOMICITY}::test_hand_edited_snapshot_is_refused_by_apply_generate_lint_and_status",),
           "veza.snapshot.json left out of veza.sum: a hand edit goes unnoticed"),
    Mutant("rollback_oldest_first", RUNNER,
           "    for state in reversed(chosen):", "    for state in chosen:",
           (f"{ATOMICITY}::test_rollback_of_several_dependent_files_runs_newest_first",),
           "down files run oldest first"),
]
