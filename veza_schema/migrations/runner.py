"""Apply, roll back, inspect and repair migrations on a live database.

Safety rules, in order of importance:
- a transactional file and its history row commit together, or neither does;
- a non-transactional file (``-- no-transaction``) is recorded as failed *before* it runs,
  so a crash leaves a marker that blocks further applies until ``resolve``;
- nothing runs while any migration is failed, modified or missing, and an unapplied
  version older than the newest applied one is refused unless explicitly allowed;
- the history is read only after the migration lock is held.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import psycopg

from veza_schema.db.dsn import Target, connect
from veza_schema.db.errors import server_message
from veza_schema.db.pipeline import ActivityProbe, PipelineError, run_pipelined
from veza_schema.db.retry import backoff_delay
from veza_schema.errors import DatabaseError, DatabaseStateError, UsageError
from veza_schema.migrations import history
from veza_schema.migrations.data_loss import refuse_data_loss
from veza_schema.migrations.files import MigrationFile, PlannedStep, is_no_transaction
from veza_schema.migrations.lock import HeldLock, migration_lock
from veza_schema.migrations.statement_check import refuse_unexpected_statements
from veza_schema.sql.split import Statement, parse_script

State = Literal["applied", "pending", "modified", "missing", "failed", "out_of_order"]
LOCK_NOT_AVAILABLE = "55P03"


@dataclass(frozen=True)
class MigrationState:
    version: int
    name: str
    state: State
    file: MigrationFile | None = None
    applied: history.AppliedMigration | None = None
    detail: str = ""


def compute_states(files: list[MigrationFile], applied: list[history.AppliedMigration]) -> list[MigrationState]:
    """Compare files with history, version by version."""
    by_version = {m.version: m for m in applied}
    newest_applied = max((m.version for m in applied), default=0)
    states: list[MigrationState] = []
    for file in files:
        row = by_version.pop(file.version, None)
        if row is None:
            state: State = "out_of_order" if file.version < newest_applied else "pending"
            detail = (f"older than the newest applied version {newest_applied}" if state == "out_of_order" else "")
            states.append(MigrationState(file.version, file.name, state, file, None, detail))
        elif not row.success:
            states.append(MigrationState(file.version, file.name, "failed", file, row,
                                         "started outside a transaction and did not finish"))
        elif row.checksum != file.checksum:
            states.append(MigrationState(file.version, file.name, "modified", file, row,
                                         _modified_detail(file.up_bytes, row.checksum)))
        else:
            states.append(MigrationState(file.version, file.name, "applied", file, row))
    for version, row in sorted(by_version.items()):
        state = "failed" if not row.success else "missing"
        detail = "applied, but its file is gone" if state == "missing" else "failed, and its file is gone"
        states.append(MigrationState(version, row.description.replace(" ", "_"), state, None, row, detail))
    return sorted(states, key=lambda s: s.version)


def _modified_detail(content: bytes, applied_checksum: bytes) -> str:
    current = hashlib.sha384(content).hexdigest()
    detail = f"file sha384 {current[:16]}..., applied sha384 {applied_checksum.hex()[:16]}..."
    variants = {
        "line endings (CRLF vs LF)": (content.replace(b"\r\n", b"\n"), content.replace(b"\n", b"\r\n")),
        "a byte-order mark (BOM)": (content.removeprefix(b"\xef\xbb\xbf"), b"\xef\xbb\xbf" + content),
    }
    for what, candidates in variants.items():
        if any(hashlib.sha384(c).digest() == applied_checksum for c in candidates if c != content):
            return detail + f"; only {what} differ: restore the original bytes (see .gitattributes)"
    return detail


class Reporter(Protocol):
    """Progress callbacks; the CLI prints them, tests may collect them.

    Cheap to call by design: ``statement_started`` comes only for statements of
    non-transactional files (each runs on its own, often long: index builds); a transactional
    file runs as one pipeline and only a statement still running after ``RunOptions.slow_after``
    seconds is announced, once, by ``statement_slow``.
    """

    def migration_started(self, migration: MigrationFile, direction: str) -> None: ...

    def statement_started(self, migration: MigrationFile, statement: Statement, index: int, total: int) -> None: ...

    def statement_slow(self, migration: MigrationFile, statement: Statement, index: int, total: int,
                       seconds: float) -> None: ...

    def migration_finished(self, migration: MigrationFile, direction: str, seconds: float) -> None: ...

    def migration_failed(self, migration: MigrationFile, direction: str) -> None:
        """The file did not finish; the error itself is raised (and printed) afterwards."""

    def retrying(self, migration: MigrationFile, attempt: int, delay: float, reason: str) -> None: ...


class SilentReporter:
    def migration_started(self, migration: MigrationFile, direction: str) -> None:
        pass

    def statement_started(self, migration: MigrationFile, statement: Statement, index: int, total: int) -> None:
        pass

    def statement_slow(self, migration: MigrationFile, statement: Statement, index: int, total: int,
                       seconds: float) -> None:
        pass

    def migration_finished(self, migration: MigrationFile, direction: str, seconds: float) -> None:
        pass

    def migration_failed(self, migration: MigrationFile, direction: str) -> None:
        pass

    def retrying(self, migration: MigrationFile, attempt: int, delay: float, reason: str) -> None:
        pass


@dataclass
class RunOptions:
    lock_timeout: float = 60.0
    retries: int = 5  # on lock_timeout (55P03): the transaction, or the whole non-transactional file, reruns
    backoff: float = 0.5
    allow_out_of_order: bool = False
    allow_data_loss: bool = False  # else steps that destroy data refuse to run (policy.data_loss)
    reporter: Reporter = field(default_factory=SilentReporter)
    slow_after: float = 3.0  # seconds before a running statement is named (Reporter.statement_slow)
    sleep: Callable[[float], None] = time.sleep


@dataclass
class RunResult:
    steps: list[PlannedStep]
    seconds: float = 0.0
    dry_run: bool = False
    counts: history.ObjectCounts | None = None  # what the database holds afterwards (apply)


class MigrationFailed(DatabaseError):
    """A statement failed; the message says what state the database is left in and what to do."""


# Every session of ours: names resolve in schema public only (pg_catalog is searched first all the
# same), whatever search_path the role or database sets; and, from PostgreSQL 14, no idle_session_timeout:
# the lock session idles while the migrations run, and ending it would release the lock mid-apply.
_SESSION = ("SELECT pg_catalog.set_config('search_path', 'public', false), pg_catalog.pg_is_in_recovery(), "
            "pg_catalog.current_setting('transaction_read_only') = 'on', pg_catalog.current_database()")
_NO_IDLE_TIMEOUT = ", pg_catalog.set_config('idle_session_timeout', '0', false)"


def _session(target: Target, *, application_name: str = "veza-schema", writing: bool = False
             ) -> psycopg.Connection:
    """A connection set up as every runner session is (see ``_SESSION``).

    Raises:
        DatabaseStateError: ``writing`` to a database that is read-only (a hot standby, or
            ``default_transaction_read_only``), before anything runs.
    """
    conn = connect(target, autocommit=True, application_name=application_name)
    try:
        row = conn.execute(_SESSION + (_NO_IDLE_TIMEOUT if conn.info.server_version >= 140000 else "")).fetchone()
        assert row is not None
        _, standby, read_only, database = row[:4]
        if writing and (standby or read_only):
            why = ("it is a hot standby (in recovery)" if standby else
                   "default_transaction_read_only is on for this session (set on the role, the database, the "
                   "server or the DSN)")
            raise DatabaseStateError(
                f"database {database} is read-only: {why}. Nothing was run. Connect to the primary, or turn "
                "default_transaction_read_only off for the migrations' role (ALTER ROLE ... SET "
                "default_transaction_read_only = off).")
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _locked_session(target: Target, options: RunOptions, *, create_history: bool
                    ) -> Iterator[tuple[psycopg.Connection, HeldLock]]:
    """The working session, once the lock session holds the migration lock (and how to check it still does)."""
    lock_conn = _session(target, application_name="veza-schema lock")
    try:
        with migration_lock(lock_conn, options.lock_timeout) as held:
            conn = _session(target, writing=True)
            try:
                if create_history:
                    history.ensure_history(conn)
                yield conn, held
            finally:
                conn.close()
    finally:
        lock_conn.close()


def _refuse_unhealthy(states: list[MigrationState], allow_out_of_order: bool) -> None:
    for state in states:
        if state.state == "failed":
            raise DatabaseStateError(
                f"migration {state.version}_{state.name} is marked failed (it ran outside a transaction and did "
                f"not finish). Check which of its statements took effect, then either finish them by hand and "
                f"run `veza-schema resolve {state.version} --applied`, or undo them and run `veza-schema resolve "
                f"{state.version} --rolled-back` and apply again.")
        if state.state == "modified":
            raise DatabaseStateError(
                f"migration {state.version}_{state.name} was applied but its file has changed since "
                f"({state.detail}); restore the file, or add a new migration instead of editing an applied one")
        if state.state == "missing":
            raise DatabaseStateError(
                f"migration {state.version}_{state.name} is applied in the database but its file is missing from "
                "the migrations directory; restore it (is this checkout older than the database?)")
        if state.state == "out_of_order" and not allow_out_of_order:
            raise DatabaseStateError(
                f"migration {state.version}_{state.name} is not applied but is older than the newest applied "
                f"migration ({state.detail}); probably merged from a branch. Re-number it, or pass "
                "--allow-out-of-order to apply it anyway")


def plan_apply(states: list[MigrationState], to: int | None, allow_out_of_order: bool) -> list[PlannedStep]:
    _refuse_unhealthy(states, allow_out_of_order)
    todo = [s for s in states if s.state == "pending" or (s.state == "out_of_order" and allow_out_of_order)]
    if to is not None:
        if not any(s.version == to for s in states):
            raise UsageError(f"--to {to}: no migration has that version")
        todo = [s for s in todo if s.version <= to]
    steps = []
    for state in todo:
        assert state.file is not None
        sql = state.file.up_sql
        steps.append(PlannedStep(state.file, "up", sql, not is_no_transaction(sql)))
    return steps


def read_states(target: Target, files: list[MigrationFile]) -> list[MigrationState]:
    """States without taking the lock (for ``status``)."""
    conn = _session(target)
    try:
        return compute_states(files, history.read_history(conn))
    finally:
        conn.close()


def apply(target: Target, files: list[MigrationFile], *, to: int | None = None, dry_run: bool = False,
          options: RunOptions | None = None) -> RunResult:
    """Apply pending migrations in version order (see module docstring for the guarantees)."""
    options = options or RunOptions()
    started = time.monotonic()
    if dry_run:
        conn = _session(target)
        try:
            steps = plan_apply(compute_states(files, history.read_history(conn)), to, options.allow_out_of_order)
        finally:
            conn.close()
        refuse_unexpected_statements(steps)
        return RunResult(steps, time.monotonic() - started, dry_run=True)
    with _locked_session(target, options, create_history=True) as (conn, held):
        steps = plan_apply(compute_states(files, history.read_checked(conn)), to, options.allow_out_of_order)
        check_lock_budget(conn, steps)
        _guard_data_loss(conn, steps, options)
        for step in steps:
            _run_step(conn, step, options, held)
        counts = history.count_objects(conn)  # on this session: no second connection for the summary
    return RunResult(steps, time.monotonic() - started, counts=counts)


def _change_of(state: MigrationState) -> int:
    return state.file.change.version if state.file is not None else state.version


def change_groups(states: list[MigrationState]) -> list[list[MigrationState]]:
    """Consecutive states grouped by the change their files belong to (see ``files.ChangeRef``)."""
    groups: list[list[MigrationState]] = []
    for state in states:
        if groups and _change_of(groups[-1][-1]) == _change_of(state):
            groups[-1].append(state)
        else:
            groups.append([state])
    return groups


def plan_rollback(states: list[MigrationState], steps: int | None, to: int | None,
                  by_file: bool = False) -> list[PlannedStep]:
    """The down files to run, newest first: the last ``steps`` changes (every file of each), or
    the last ``steps`` files with ``by_file``, or everything newer than ``to``."""
    _refuse_unhealthy([s for s in states if s.state != "pending" and s.state != "out_of_order"], True)
    applied = [s for s in states if s.state == "applied"]
    if to is not None:
        if to != 0 and not any(s.version == to for s in applied):
            raise UsageError(f"--to {to}: that version is not applied (use 0 to roll everything back)")
        chosen = [s for s in applied if s.version > to]
    elif by_file:
        chosen = applied[-(steps or 1):] if applied else []
    else:
        chosen = [state for group in change_groups(applied)[-(steps or 1):] for state in group]
    planned = []
    for state in reversed(chosen):
        assert state.file is not None
        down = state.file.down_sql
        if down is None:
            raise UsageError(f"migration {state.file.label} has no .down.sql file: it cannot be rolled back")
        planned.append(PlannedStep(state.file, "down", down, not is_no_transaction(down)))
    return planned


def rollback(target: Target, files: list[MigrationFile], *, steps: int | None = None, to: int | None = None,
             by_file: bool = False, dry_run: bool = False, options: RunOptions | None = None) -> RunResult:
    """Run down files, newest first (the last change by default); each down file and its history
    deletion commit together."""
    options = options or RunOptions()
    started = time.monotonic()
    if dry_run:
        conn = _session(target)
        try:
            planned = plan_rollback(compute_states(files, history.read_history(conn)), steps, to, by_file)
        finally:
            conn.close()
        refuse_unexpected_statements(planned)
        return RunResult(planned, time.monotonic() - started, dry_run=True)
    with _locked_session(target, options, create_history=True) as (conn, held):
        planned = plan_rollback(compute_states(files, history.read_checked(conn)), steps, to, by_file)
        check_lock_budget(conn, planned)
        _guard_data_loss(conn, planned, options)
        for step in planned:
            _run_step(conn, step, options, held)
    return RunResult(planned, time.monotonic() - started)


def _guard_data_loss(conn: psycopg.Connection, steps: list[PlannedStep], options: RunOptions) -> None:
    """Under the lock, before anything runs: refuse a file holding what its header does not list
    (UnexpectedStatementError, checked first: counting data loss evaluates DELETE conditions),
    then steps that would destroy data (DataLossRefused)."""
    refuse_unexpected_statements(steps)
    if not options.allow_data_loss and steps:
        refuse_data_loss(conn, steps)


# -- the server's lock table -----------------------------------------------------------------
_LOCK_SETTINGS = """
SELECT current_setting('max_locks_per_transaction')::int, current_setting('max_connections')::int,
       current_setting('max_prepared_transactions')::int
"""
_COUNTED = re.compile(r"^\s*(?:CREATE|DROP)\s+(?:UNIQUE\s+)?(?:TABLE|INDEX|MATERIALIZED\s+VIEW|VIEW|SEQUENCE)\b",
                      re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class LockBudget:
    """The server's lock table: ``max_locks_per_transaction * (max_connections + max_prepared_transactions)``
    slots, shared by every session (PostgreSQL sizes it so)."""

    max_locks_per_transaction: int
    max_connections: int
    max_prepared_transactions: int

    @property
    def slots(self) -> int:
        return self.max_locks_per_transaction * (self.max_connections + self.max_prepared_transactions)

    def needed_setting(self, locks: int) -> int:
        """The smallest max_locks_per_transaction whose lock table holds ``locks`` slots."""
        return -(-locks // (self.max_connections + self.max_prepared_transactions))


def read_lock_budget(conn: psycopg.Connection) -> LockBudget:
    row = conn.execute(_LOCK_SETTINGS).fetchone()
    assert row is not None
    return LockBudget(int(row[0]), int(row[1]), int(row[2]))


def step_lock_slots(step: PlannedStep) -> int:
    """Slots the step's transaction holds: the header's bound (generated files), else at least one per
    relation the file creates or drops (a hand-written file)."""
    header = step.migration.header if step.direction == "up" else step.migration.down_header
    if header.locks is not None:
        return header.locks
    return len(_COUNTED.findall(step.sql))


def check_lock_budget(conn: psycopg.Connection, steps: list[PlannedStep]) -> None:
    """Refuse, before anything runs, a transactional file the server's lock table cannot hold.

    Raises:
        DatabaseStateError: naming the file, its slots, the server's, and the setting to raise.
    """
    transactional = [step for step in steps if step.transactional]
    if not transactional:
        return
    budget = read_lock_budget(conn)
    for step in transactional:
        locks = step_lock_slots(step)
        if locks > budget.slots:
            path = step.migration.up_path if step.direction == "up" else step.migration.down_path
            raise DatabaseStateError(
                f"{path} holds up to {locks} lock-table slots in one transaction, but this server's lock table "
                f"has {budget.slots}: max_locks_per_transaction ({budget.max_locks_per_transaction}) x "
                f"(max_connections ({budget.max_connections}) + max_prepared_transactions "
                f"({budget.max_prepared_transactions})). Nothing was run. Set max_locks_per_transaction = "
                f"{budget.needed_setting(locks)} or more (postgresql.conf, or ALTER SYSTEM; it takes a server "
                "restart), or generate the change again with a smaller --max-locks-per-file")


def _run_step(conn: psycopg.Connection, step: PlannedStep, options: RunOptions, held: HeldLock) -> None:
    migration = step.migration
    statements = list(parse_script(step.sql).statements)  # the checks' split: one per file, disk-cached
    options.reporter.migration_started(migration, step.direction)
    started = time.monotonic()
    probe = ActivityProbe(conn)  # names a slow statement; connects only if one is
    try:
        if step.transactional:  # checked before its commit: a lost lock rolls it back
            _with_retries(options, migration,
                          lambda: _run_transactional(conn, step, statements, options, started, probe, held))
        else:
            try:
                _run_non_transactional(conn, step, statements, options, started, probe, held)
            except psycopg.Error as exc:  # statement errors are MigrationFailed already: a history write failed
                raise MigrationFailed(
                    f"{migration.label} runs outside a transaction and writing its history row failed: "
                    f"{server_message(exc)}\nEither none of its statements ran (its history row is unchanged) "
                    "or all of them did (its history row says failed); `veza-schema status` shows which.",
                    exc.diag.sqlstate) from exc
    except BaseException:
        options.reporter.migration_failed(migration, step.direction)
        raise
    finally:
        probe.close()
    options.reporter.migration_finished(migration, step.direction, time.monotonic() - started)


def _with_retries(options: RunOptions, migration: MigrationFile, action: Callable[[], None]) -> None:
    attempt = 0
    while True:
        try:
            action()
            return
        except _LockNotAvailable as exc:
            attempt += 1
            if attempt > options.retries:
                raise exc.error from None
            delay = backoff_delay(options.backoff, attempt)  # one backoff rule, shared with maintenance
            options.reporter.retrying(migration, attempt, delay, exc.error.args[0])
            options.sleep(delay)


class _LockNotAvailable(Exception):
    def __init__(self, error: MigrationFailed) -> None:
        self.error = error



def _failure(step: PlannedStep, statement: Statement, exc: psycopg.Error, aftermath: str) -> MigrationFailed:
    """``file:line: what the server said`` (DETAIL, HINT, SQLSTATE, or a lost connection in words), then
    the state the database is left in."""
    path = step.migration.up_path if step.direction == "up" else step.migration.down_path
    return MigrationFailed(f"{path}:{_error_line(statement, exc.diag.statement_position)}: {server_message(exc)}\n"
                           f"{aftermath}", exc.diag.sqlstate)


def _error_line(statement: Statement, position: str | None) -> int:
    """The file line PostgreSQL's error points at (its 1-based character position in the statement),
    else the statement's first line."""
    if position and position.isdigit() and 0 < int(position) <= len(statement.text) + 1:
        return statement.line + statement.text.count("\n", 0, int(position) - 1)
    return statement.line


def _run_transactional(conn: psycopg.Connection, step: PlannedStep, statements: list[Statement],
                       options: RunOptions, started: float, probe: ActivityProbe, held: HeldLock) -> None:
    """The whole file in one pipeline inside one transaction with its history row.

    PostgreSQL runs the statements back to back and skips every statement after a failure,
    so the first error names its own statement, and rolling back leaves nothing of the file.
    """
    migration = step.migration

    def slow(index: int, seconds: float) -> None:
        options.reporter.statement_slow(migration, statements[index], index + 1, len(statements), seconds)

    try:
        with conn.transaction():
            try:
                run_pipelined(conn, [s.text.encode("utf-8") for s in statements], slow_after=options.slow_after,
                              on_slow=slow, probe=probe)
            except PipelineError as failed:
                aftermath = f"Nothing of {migration.label} was applied (its transaction was rolled back)."
                error = _failure(step, statements[failed.index], failed.error, aftermath)
                if failed.error.diag.sqlstate == LOCK_NOT_AVAILABLE:
                    raise _LockNotAvailable(error) from failed.error
                raise error from failed.error
            elapsed = int((time.monotonic() - started) * 1e9)
            if step.direction == "up":
                history.record(conn, migration.version, migration.description, migration.checksum, True, elapsed)
            else:
                history.forget(conn, migration.version)
            held.require(conn, f"nothing of {migration.label} was applied (its transaction was rolled back)")
    except psycopg.Error as exc:  # the history row or the commit failed (a deferred constraint)
        raise MigrationFailed(f"{migration.label}: recording it in the history or committing failed: "
                              f"{server_message(exc)}\nNothing of {migration.label} was applied (its transaction "
                              "was rolled back).", exc.diag.sqlstate) from exc


def _run_non_transactional(conn: psycopg.Connection, step: PlannedStep, statements: list[Statement],
                           options: RunOptions, started: float, probe: ActivityProbe, held: HeldLock) -> None:
    """Statement by statement, each committed on its own (``CREATE INDEX CONCURRENTLY`` needs that)."""
    migration = step.migration
    held.require(conn, f"{migration.label} was not started")  # its statements commit one by one: check first
    if step.direction == "up":
        history.record(conn, migration.version, migration.description, migration.checksum, False, 0)
    else:
        history.mark_failed(conn, migration.version)

    def run_all() -> None:
        # On lock_timeout the whole file runs again from its first statement: generated
        # non-transactional files are idempotent (IF [NOT] EXISTS, invalid-index cleanup), and
        # a retried CREATE INDEX CONCURRENTLY IF NOT EXISTS alone would skip its invalid leftover.
        for index, statement in enumerate(statements, 1):
            options.reporter.statement_started(migration, statement, index, len(statements))

            def slow(_: int, seconds: float, statement: Statement = statement, index: int = index) -> None:
                options.reporter.statement_slow(migration, statement, index, len(statements), seconds)

            try:  # a pipeline of one statement: its own implicit transaction, named when slow
                run_pipelined(conn, [statement.text.encode("utf-8")], slow_after=options.slow_after, on_slow=slow,
                              probe=probe)
            except PipelineError as failed:
                aftermath = (
                    f"{migration.label} runs outside a transaction: the statements before line {statement.line} "
                    f"took effect and it is now marked failed. Fix the cause, then run `veza-schema resolve "
                    f"{migration.version} --rolled-back` after undoing its effects (or if it is safe to re-run) "
                    f"and apply again, or complete it by hand and run `veza-schema resolve {migration.version} "
                    "--applied`.")
                error = _failure(step, statement, failed.error, aftermath)
                if failed.error.diag.sqlstate == LOCK_NOT_AVAILABLE:
                    raise _LockNotAvailable(error) from failed.error
                raise error from failed.error

    _with_retries(options, migration, run_all)
    outcome = "--applied" if step.direction == "up" else "--rolled-back"
    held.require(conn, f"{migration.label} ran outside a transaction and stays marked failed: check that no other "
                       f"run touched it meanwhile, then `veza-schema resolve {migration.version} {outcome}`")
    elapsed = int((time.monotonic() - started) * 1e9)
    if step.direction == "up":
        history.mark_done(conn, migration.version, elapsed)
    else:
        history.forget(conn, migration.version)


def baseline(target: Target, files: list[MigrationFile], version: int, *, force: bool = False,
             options: RunOptions | None = None) -> list[MigrationFile]:
    """Record every migration up to ``version`` as applied, running nothing."""
    options = options or RunOptions()
    if not any(f.version == version for f in files):
        raise UsageError(f"--version {version}: no migration file has that version")
    with _locked_session(target, options, create_history=True) as (conn, _):
        existing = history.read_checked(conn)
        if existing and not force:
            raise DatabaseStateError(f"the history already has {len(existing)} migration(s); baseline is for a "
                                     "database that has none (use --force to replace it)")
        chosen = [f for f in files if f.version <= version]
        with conn.transaction():
            if force:
                history.forget_all(conn)
            for file in chosen:
                history.record(conn, file.version, file.description, file.checksum, True, 0)
    return chosen


def resolve(target: Target, files: list[MigrationFile], version: int, *, applied: bool, force: bool = False,
            options: RunOptions | None = None) -> str:
    """Clear a failed entry after a human fixed things: keep it as applied, or forget it.

    ``applied`` is checked first: every object the file's up statements leave behind must be
    in the database in that state (an index present and valid, a constraint validated, a
    column NOT NULL...), see :mod:`veza_schema.migrations.verify`; ``force`` records it anyway.

    Raises:
        DatabaseStateError: ``applied`` but the database does not hold what the file leaves behind.
    """
    options = options or RunOptions()
    with _locked_session(target, options, create_history=True) as (conn, _):
        rows = {row.version: row for row in history.read_checked(conn)}
        row = rows.get(version)
        if row is None or row.success:
            state = "not in the history" if row is None else "not failed"
            raise UsageError(f"migration {version} is {state}: only a failed migration can be resolved")
        if applied:
            file = next((f for f in files if f.version == version), None)
            checked = "not checked (--force)" if force else "not checked (its file is missing)"
            if file is not None and not force:
                from veza_schema.migrations.verify import verify_applied  # resolve only: apply never loads it

                found = verify_applied(conn, file.up_sql)
                checked = f"{found.checked} object(s) checked in the database"
                if found.unchecked:
                    checked += f", {found.unchecked} statement(s) whose effect cannot be checked"
                if found.problems:
                    raise DatabaseStateError(
                        f"migration {file.label} is not applied in this database: "
                        + "; ".join(found.problems)
                        + f". Finish it by hand, or undo what it did and run `veza-schema resolve {version} "
                        "--rolled-back`, then apply again (its statements are idempotent). --force records it "
                        "as applied anyway.")
            checksum = file.checksum if file else row.checksum
            with conn.transaction():
                history.mark_resolved(conn, version, checksum)
            return f"applied ({checked})"
        history.forget(conn, version)
        return "rolled-back"
