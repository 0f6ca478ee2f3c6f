"""The SQL that reconciles drift: the migrations' online-safe planner applied to the drift's changes.

A reviewer runs it by hand (``diff --format sql``), so changes without an online-safe form
come last under a warning, and changes with no in-place form at all are listed, not written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from veza_schema.diff.changes import Change, describe, destroys_data
from veza_schema.diff.plan import Plan, UnsafeChangeError, build_plan
from veza_schema.model import Schema
from veza_schema.sql.split import split_statements

LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "15min"


@dataclass(frozen=True)
class Reconciliation:
    """The planner's SQL for a list of changes, and the changes it refused (no online-safe form)."""

    statements: tuple[str, ...]
    refused: tuple[tuple[Change, str], ...] = ()
    # Changes with no online-safe form whose statements are still included, last, under a warning.
    unsafe: tuple[tuple[Change, str], ...] = ()


def reconcile(changes: Sequence[Change], current: Schema, desired: Schema) -> Reconciliation:
    """The statements that apply ``changes``, online-safe, from the migrations' planner.

    Statements come in the planner's file order (``DROP INDEX CONCURRENTLY``, new enum
    values, the transactional main part wrapped in ``BEGIN``/``COMMIT``, then ``CREATE INDEX
    CONCURRENTLY`` and validations), after the migrations' ``SET lock_timeout`` and
    ``statement_timeout``: run them one by one in autocommit, as ``psql`` runs a script.
    A change the planner refuses as not online-safe (e.g. removing an enum value, which
    rebuilds the type and rewrites every table using it) comes last, under a warning comment,
    and is listed in ``unsafe``; one with no in-place form at all is listed in ``refused``.
    """
    remaining = list(changes)
    refused: list[tuple[Change, str]] = []
    while True:
        try:
            plan = build_plan(remaining, current, desired)
            break
        except UnsafeChangeError as exc:
            if not any(exc.change is c for c in remaining):
                raise
            refused.append((exc.change, exc.reason))
            remaining = [c for c in remaining if c is not exc.change]
    statements: list[str] = []
    if plan.files:
        statements += _timeouts()
    statements += _plan_statements(plan)
    unsafe: list[tuple[Change, str]] = []
    if refused:
        # Reconciling drift is a human's decision made on reading the SQL: show the statements of
        # changes without an online-safe form too (a rebuilt enum rewrites its tables), last and
        # under a warning, unless they have no in-place form at all.
        try:
            forced = build_plan([c for c, _ in refused], current, desired, allow_forbidden=True)
        except UnsafeChangeError:
            pass
        else:
            unsafe, refused = refused, []
            if not plan.files:
                statements += _timeouts()
            statements += [f"-- WARNING, not online-safe: {describe(c)}: {reason}" for c, reason in unsafe]
            statements += _plan_statements(forced)
    return Reconciliation(tuple(statements), tuple(refused), tuple(unsafe))


def _plan_statements(plan: Plan) -> list[str]:
    """A plan's statements one by one, transactional files wrapped in BEGIN/COMMIT; a statement that
    destroys data (a dropped table, column, sequence or extension, a lossy type change) comes after a
    warning comment saying what is lost."""
    statements: list[str] = []
    for planned in plan.files:
        body: list[str] = []
        for step in planned.steps:
            lost = destroys_data(step.change)
            texts = [s.text.strip() + ";" for text in step.up for s in split_statements(text)]
            if lost and texts:
                body.append(f"-- WARNING: destroys data: {' '.join(lost.split())}")
            body += texts
        if any(not line.startswith("--") for line in body):
            statements += ["BEGIN;", *body, "COMMIT;"] if planned.transactional else body
    return statements


def _timeouts() -> list[str]:
    """The migrations' session timeouts, so reconciling SQL waits for locks no longer than they do."""
    return [sql.SQL("SET lock_timeout = {};").format(sql.Literal(LOCK_TIMEOUT)).as_string(None),
            sql.SQL("SET statement_timeout = {};").format(sql.Literal(STATEMENT_TIMEOUT)).as_string(None)]
