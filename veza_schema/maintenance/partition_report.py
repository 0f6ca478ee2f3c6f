"""What `veza-schema partitions` prints: the plan (``--dry-run``), what was done, and the health
report of ``--check`` as text or JSON (for a monitoring job)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from veza_schema.maintenance.partition_plan import (
    Expiry,
    NewPartition,
    TableHealth,
    TablePlan,
    day_text,
    periods_text,
)
from veza_schema.maintenance.partitions import TableResult
from veza_schema.managed import ARCHIVE_SCHEMA


def header(plan: TablePlan) -> str:
    spec = plan.table.partition
    assert spec is not None
    parts = [plan.interval, f"{plan.premake} ahead"]
    if spec.retention is not None:
        parts.append(f"retention {spec.retention}, then {'archive' if spec.retention_keep_table else 'drop'}")
    if spec.backend != "builtin":
        parts.append(f"backend {spec.backend}")
    return f"{plan.table.name} ({', '.join(parts)})"


def _new(new: NewPartition, default: str | None, verb: str, *, done: bool = False,
         referenced: TablePlan | None = None) -> str:
    text = f"{new.name} FOR VALUES FROM ('{day_text(new.start)}') TO ('{day_text(new.end)}')"
    if new.default_rows:
        text += f", {verb} {new.default_rows} row(s) out of {default}"
        if done:  # what writers waited for: the rows written during the move, copied under the lock
            deleted = f", {new.deleted_under_lock} deleted under it" if new.deleted_under_lock else ""
            relinked = f"; {new.relinked_keys} foreign key(s) re-added NOT VALID under it" \
                if new.relinked_keys else ""
            text += f" ({new.under_lock} of them copied under the lock{deleted}{relinked})"
        elif referenced is not None:
            refusal, keys = referenced.state.relink_refusal, len(referenced.state.incoming)
            if refusal is None and new.default_rows >= referenced.state.relink_from:
                text += f" (the {keys} foreign key(s) referencing the table dropped and re-added NOT VALID under " \
                        "the lock, then validated while writers go on)"
            elif refusal is None:
                text += f" (deleted there under the lock: fewer than {referenced.state.relink_from} rows cost " \
                        f"writers less than re-adding the {keys} foreign key(s) referencing the table, and " \
                        "validating them)"
            else:
                text += f" (deleted there under the lock, so writers wait in proportion to them: {refusal})"
    return text


def _expiry(expiry: Expiry, verb_keep: str, verb_drop: str) -> list[str]:
    partition = expiry.partition
    fate = f"{verb_keep} to {ARCHIVE_SCHEMA}.{partition.name}" if expiry.keep_table else verb_drop
    lines = [f"{partition.name} [{day_text(partition.start)}, {day_text(partition.end)}): {fate}"]
    for ref in expiry.referencing:
        target = f" to {ARCHIVE_SCHEMA}.{ref.archive_table}" if ref.action == "archive" else ""
        lines.append(f"    first {ref.action} {ref.rows} row(s) of {ref.key.table} referencing it "
                     f"({ref.key.name}, ON DELETE {ref.key.on_delete.upper()}){target}")
    return lines


def plan_lines(plan: TablePlan) -> list[str]:
    """Exactly what a run would do to this table (``--dry-run``)."""
    lines = [f"  {header(plan)}:" + ("" if _busy(plan) else " up to date")]
    for name in plan.interrupted_moves:
        lines.append(f"    ~ would remove {name} from {plan.state.default} (left by an interrupted move)")
    for key in plan.unvalidated_keys:
        lines.append(f"    ~ would validate foreign key {key.name} on {key.where} (NOT VALID)")
    for change in plan.config:
        lines.append(f"    ~ would set pg_partman part_config.{change.setting}: {change.before} -> {change.after}")
    for new in plan.create:
        text = _new(new, plan.state.default, "moving", referenced=plan if plan.state.incoming else None)
        lines.append(f"    + would create {text}")
    for expiry in plan.expire:
        first, *rest = _expiry(expiry, "would detach, move", "would detach and drop")
        lines.append(f"    - {first}")
        lines += [f"    {line}" for line in rest]
        if plan.state.relinks:
            lines.append(f"        then the {len(plan.state.incoming)} foreign key(s) referencing {plan.table.name} "
                         "dropped around the detach (no check of the referencing rows under its lock) and "
                         "re-added NOT VALID, then validated while writers go on")
    lines += _attention(plan)
    return lines


def result_lines(result: TableResult) -> list[str]:
    """What was done to one table (without the header line, printed before the work starts)."""
    plan = result.plan
    lines = []
    for name in result.removed_leftovers:
        lines.append(f"    ~ removed {name} from {plan.state.default} (left by an interrupted move)")
    for change in result.config:
        lines.append(f"    ~ pg_partman part_config.{change.setting}: {change.before} -> {change.after}")
    for name in result.validated_leftovers:
        lines.append(f"    ~ validated foreign key {name} (left NOT VALID by an interrupted move)")
    for new in result.created:
        lines.append(f"    + created {_new(new, plan.state.default, 'moved', done=True)}")
    fresh = [name for name in result.validated_keys if name not in result.validated_leftovers]
    if fresh:
        lines.append(f"    ~ validated foreign key(s) {', '.join(fresh)} (re-added NOT VALID by this run)")
    for expiry in result.expired:
        first, *rest = _expiry(expiry, "detached, moved", "detached and dropped")
        lines.append(f"    - {first}")
        lines += [f"    {line}" for line in rest]
    lines += _attention(plan)
    if result.error is not None:
        lines.append(f"    ! stopped: {result.error}")
    if not lines:
        lines.append("    up to date, 0 partition(s) created")
    return lines


def _attention(plan: TablePlan) -> list[str]:
    lines = []
    if plan.stray:
        lines.append(f"    ! {plan.stray_rows} row(s) in {plan.state.default} belong to no partition to be created "
                     f"({periods_text(plan.stray, plan.interval)}): raise --premake, or move them by hand")
    lines += [f"    ! {problem}" for problem in plan.problems]
    lines += [f"    note: {note}" for note in plan.notes]
    return lines


def _busy(plan: TablePlan) -> bool:
    return bool(plan.create or plan.expire or plan.config or plan.needs_attention or plan.notes
                or plan.interrupted_moves or plan.unvalidated_keys)


def summary(results: Sequence[TableResult] | Sequence[TablePlan], *, dry_run: bool) -> str:
    plans = [r.plan if isinstance(r, TableResult) else r for r in results]
    if dry_run:
        created = sum(len(p.create) for p in plans)
        moved = sum(n.default_rows for p in plans for n in p.create)
        expired = sum(len(p.expire) for p in plans)
        verb = "Would create"
    else:
        done = [r for r in results if isinstance(r, TableResult)]
        created = sum(len(r.created) for r in done)
        moved = sum(r.moved_rows for r in done)
        expired = sum(len(r.expired) for r in done)
        verb = "Created"
    text = f"{verb} {created} partition(s)"
    if moved:
        text += f", moving {moved} row(s) out of default partitions" if dry_run else \
            f", moved {moved} row(s) out of default partitions"
    if expired:
        text += f", {'would expire' if dry_run else 'expired'} {expired} partition(s)"
    text += f" for {len(plans)} partitioned table(s)."
    attention = [p.table.name for p in plans if p.needs_attention]
    if attention:
        text += f" Needs attention: {', '.join(attention)}."
    return text


def result_json(results: Sequence[TableResult], as_of: datetime, errors: dict[str, str]) -> dict[str, Any]:
    """What a run did, as one document (``--format json``): per table the partitions created with the
    rows moved into each and how many of those were copied under the lock (what writers waited for),
    the partitions expired, the leftovers removed, the retries and the error."""
    tables: list[dict[str, Any]] = []
    for result in results:
        tables.append({
            "table": result.table,
            "created": [{"partition": new.name, "from": new.start.isoformat(), "to": new.end.isoformat(),
                         "moved_rows": new.default_rows, "copied_under_lock": new.under_lock,
                         "deleted_under_lock": new.deleted_under_lock, "relinked_keys": new.relinked_keys}
                        for new in result.created],
            "moved_rows": result.moved_rows,
            "copied_under_lock": result.copied_under_lock,
            "deleted_under_lock": result.deleted_under_lock,
            "relinked_keys": result.relinked_keys,
            "validated_keys": list(result.validated_keys),
            "expired": [{"partition": e.partition.name, "kept_as": f"{ARCHIVE_SCHEMA}.{e.partition.name}"
                         if e.keep_table else None} for e in result.expired],
            "referencing_rows": result.referencing_rows,
            "removed_leftovers": list(result.removed_leftovers),
            "retries": result.retries,
            "needs_attention": result.needs_attention,
            "error": str(result.error) if result.error is not None else None,
        })
    done = {t["table"] for t in tables}
    for table, message in sorted(errors.items()):
        if table not in done:
            tables.append({"table": table, "error": message})
    return {"as_of": as_of.isoformat(), "ok": not errors and not any(r.needs_attention for r in results),
            "tables": sorted(tables, key=lambda t: str(t["table"]))}


# -- --check ---------------------------------------------------------------------------------------
def health_lines(item: TableHealth) -> list[str]:
    status = "ok" if item.ok else "ATTENTION"
    lines = [f"  {item.table} ({item.interval}, {item.premake} ahead, backend {item.backend}): {status}; "
             f"{item.future_partitions} future partition(s), {item.default_rows} row(s) in the default partition"]
    if item.default_rows:
        periods = periods_text(item.default_rows_by_period, item.interval)
        lines.append(f"    ! rows in {item.default_partition}: {periods}")
    if item.missing:
        lines.append(f"    ! missing: {', '.join(item.missing)}")
    if item.expired:
        lines.append(f"    ! past retention: {', '.join(item.expired)}")
    lines += [f"    ! {problem}" for problem in item.problems]
    return lines


def health_json(items: Sequence[TableHealth], as_of: datetime, errors: dict[str, str]) -> dict[str, Any]:
    """One document for a monitoring job: ``ok`` overall, and per table the numbers behind it."""
    tables = []
    for item in items:
        pattern = {"year": "%Y", "month": "%Y-%m"}.get(item.interval, "%Y-%m-%d")
        tables.append({
            "table": item.table,
            "ok": item.ok,
            "backend": item.backend,
            "interval": item.interval,
            "premake": item.premake,
            "future_partitions": item.future_partitions,
            "missing_partitions": list(item.missing),
            "default_partition": item.default_partition,
            "default_rows": item.default_rows,
            "default_rows_by_period": {(start.strftime(pattern) if start else "null"): count
                                       for start, count in item.default_rows_by_period},
            "past_retention": list(item.expired),
            "interrupted_moves": list(item.interrupted_moves),
            "unvalidated_keys": list(item.unvalidated_keys),
            "problems": list(item.problems),
        })
    for table, message in sorted(errors.items()):
        tables.append({"table": table, "ok": False, "error": message})
    return {
        "as_of": as_of.isoformat(),
        "ok": all(t["ok"] for t in tables),
        "tables": sorted(tables, key=lambda t: str(t["table"])),
    }

