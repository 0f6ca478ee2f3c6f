"""The SQL that reconciles drift: the migrations' online-safe planner applied to the drift's changes.

A reviewer runs it by hand (``diff --format sql``), so changes without an online-safe form
come last under a warning, and changes with no in-place form at all are listed, not written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from psycopg import sql

from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddExclusion,
    AlterColumnDefault,
    AlterColumnGenerated,
    Change,
    CreateIndex,
    CreatePolicy,
    CreateTable,
    CreateTrigger,
    CreateView,
    ReplaceView,
    describe,
    destroys_data,
)
from veza_schema.diff.plan import Plan, UnsafeChangeError, build_plan
from veza_schema.model import Column, Index, Schema, Trigger
from veza_schema.sql.split import split_statements
from veza_schema.sql.text import comment_line

LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "15min"


@dataclass(frozen=True)
class Reconciliation:
    """The planner's SQL for a list of changes, and the changes it refused (no online-safe form)."""

    statements: tuple[str, ...]
    refused: tuple[tuple[Change, str], ...] = ()
    # Changes with no online-safe form whose statements are still included, last, under a warning.
    unsafe: tuple[tuple[Change, str], ...] = ()


def reconcile(changes: Sequence[Change], current: Schema, desired: Schema,
              source: Schema | None = None) -> Reconciliation:
    """The statements that apply ``changes``, online-safe, from the migrations' planner.

    Statements come in the planner's file order (``DROP INDEX CONCURRENTLY``, new enum
    values, the transactional main part wrapped in ``BEGIN``/``COMMIT``, then ``CREATE INDEX
    CONCURRENTLY`` and validations), after the migrations' ``SET lock_timeout`` and
    ``statement_timeout``: run them one by one in autocommit, as ``psql`` runs a script.
    A change the planner refuses as not online-safe (e.g. removing an enum value, which
    rebuilds the type and rewrites every table using it) comes last, under a warning comment,
    and is listed in ``unsafe``; one with no in-place form at all is listed in ``refused``.

    ``source`` is the YAML model when ``desired`` was built in a shadow database: the statements
    then use the YAML's own expression texts (PostgreSQL's deparsed text does not always read back
    as itself, e.g. ``= ANY (ARRAY[...]::text[])`` over varchar).
    """
    ordered = [with_source_texts(change, source) for change in changes] if source is not None else list(changes)
    remaining = list(ordered)
    declined: list[tuple[Change, str]] = []
    while True:
        try:
            plan = build_plan(remaining, current, desired)
            break
        except UnsafeChangeError as exc:
            if not any(exc.change is c for c in remaining):
                raise
            declined.append((exc.change, exc.reason))
            remaining = [c for c in remaining if c is not exc.change]
    # Reconciling drift is a human's decision made on reading the SQL: changes without an online-safe
    # form are included too (a rebuilt enum rewrites its tables), in their place and under a warning,
    # unless they have no in-place form at all.
    unsafe: list[tuple[Change, str]] = []
    refused: list[tuple[Change, str]] = []
    for change, reason in declined:
        try:
            build_plan([change], current, desired, allow_forbidden=True)
        except UnsafeChangeError:
            refused.append((change, reason))
        else:
            unsafe.append((change, reason))
    if unsafe:
        plan = build_plan([c for c in ordered if not any(c is r for r, _ in refused)], current, desired,
                          allow_forbidden=True)
    statements: list[str] = []
    if plan.files:
        statements += _timeouts()
    statements += _plan_statements(plan, {id(change): reason for change, reason in unsafe})
    return Reconciliation(tuple(statements), tuple(refused), tuple(unsafe))


def with_source_texts(change: Change, source: Schema) -> Change:
    """``change`` with the objects it creates taken from ``source`` (the YAML) when it declares them."""
    match change:
        case CreateTable(table=table) if table.name in source.tables:
            return replace(change, table=replace(source.tables[table.name], foreign_keys=table.foreign_keys))
        case AddColumn(table=table, column=column) if (found := _column(source, table, column.name)):
            return replace(change, column=found)
        case AlterColumnDefault(table=table, after=after) | AlterColumnGenerated(table=table, after=after) \
                if (found := _column(source, table, after.name)):
            return replace(change, after=found)
        case AddCheck(table=table, check=check) if table in source.tables and check.name in source.tables[table].checks:
            return replace(change, check=source.tables[table].checks[check.name])
        case AddExclusion(table=table, exclusion=ex) if table in source.tables \
                and ex.name in source.tables[table].exclusions:
            return replace(change, exclusion=source.tables[table].exclusions[ex.name])
        case CreateIndex(index=index) if (found_index := _index(source, index.table, index.name)):
            return replace(change, index=found_index)
        case CreateTrigger(trigger=trigger) if (found_trigger := _trigger(source, trigger.table, trigger.name)):
            return replace(change, trigger=found_trigger)
        case CreatePolicy(policy=policy) if policy.table in source.tables \
                and policy.name in source.tables[policy.table].policies:
            return replace(change, policy=source.tables[policy.table].policies[policy.name])
        case CreateView(view=view) if view.name in source.views:
            return replace(change, view=source.views[view.name])
        case ReplaceView(after=view) if view.name in source.views:
            return replace(change, after=source.views[view.name])
    return change


def _column(source: Schema, table: str, name: str) -> Column | None:
    found = source.tables.get(table)
    return found.column(name) if found is not None else None


def _index(source: Schema, owner: str, name: str) -> Index | None:
    holder = source.tables.get(owner) or source.views.get(owner)
    return holder.indexes.get(name) if holder is not None else None


def _trigger(source: Schema, owner: str, name: str) -> Trigger | None:
    holder = source.tables.get(owner) or source.views.get(owner)
    return holder.triggers.get(name) if holder is not None else None


def _plan_statements(plan: Plan, unsafe: Mapping[int, str]) -> list[str]:
    """A plan's statements one by one, transactional files wrapped in BEGIN/COMMIT; the statements of a
    change without an online-safe form (``unsafe``: change id -> why) follow a warning comment, and so do
    those that destroy data (a dropped table, column, sequence or extension, a lossy type change)."""
    statements: list[str] = []
    for planned in plan.files:
        body: list[str] = []
        warned: set[int] = set()
        for step in planned.steps:
            texts = [s.text.strip() + ";" for text in step.up for s in split_statements(text)]
            if not texts:
                continue
            reason = unsafe.get(id(step.change))
            if reason is not None and id(step.change) not in warned:
                warned.add(id(step.change))
                body.append(f"-- WARNING, not online-safe: {comment_line(describe(step.change))}: "
                            f"{comment_line(reason)}")
            lost = destroys_data(step.change)
            if lost:
                body.append(f"-- WARNING: destroys data: {comment_line(lost)}")
            body += texts
        if any(not line.startswith("--") for line in body):
            statements += ["BEGIN;", *body, "COMMIT;"] if planned.transactional else body
    return statements


def _timeouts() -> list[str]:
    """The migrations' session timeouts, so reconciling SQL waits for locks no longer than they do."""
    return [sql.SQL("SET lock_timeout = {};").format(sql.Literal(LOCK_TIMEOUT)).as_string(None),
            sql.SQL("SET statement_timeout = {};").format(sql.Literal(STATEMENT_TIMEOUT)).as_string(None)]
