"""Review diffs without a database: two versions of ``schema/`` -> model changes and their SQL.

Why: a reviewer of a pull request wants to see what the YAML change means in database
terms — which tables, columns, indexes and constraints change, and the SQL the next
migration would contain — before anything is generated or applied. Both sides are loaded
from YAML (git refs through :mod:`veza_schema.yaml.gitref`), diffed with the same differ as
``generate``, ordered, and rendered by the migrations' planner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from veza_schema.diff.changes import Change, describe
from veza_schema.drift.compare import compare, module_map
from veza_schema.drift.reconcile import reconcile
from veza_schema.drift.report import DOCUMENT_VERSION, Item, group_title, item_entry, report_items, subject
from veza_schema.errors import VezaSchemaError
from veza_schema.model import Schema
from veza_schema.yaml.gitref import load_version

NO_MODULE = "(no module)"


@dataclass(frozen=True)
class Review:
    """The changes from one version of ``schema/`` to another, and the SQL they need."""

    from_label: str
    to_label: str
    changes: tuple[Change, ...]
    before: Schema
    after: Schema
    modules: dict[str, str] = field(default_factory=dict)
    sql: tuple[str, ...] | None = None
    sql_error: str | None = None
    refused: tuple[str, ...] = ()  # describe() of changes the planner has no online-safe form for

    def module_of(self, change: Change) -> str:
        about = subject(change)
        return self.modules.get(about.table or about.name) or NO_MODULE

    def items(self) -> list[Item]:
        return report_items(self.changes)

    def grouped(self) -> dict[str, dict[str, list[Item]]]:
        """module -> table (or object) title -> reported items, modules and titles sorted."""
        views = set(self.before.views) | set(self.after.views)
        found: dict[str, dict[str, list[Item]]] = {}
        for item in self.items():
            title = group_title(subject(item.change), views)
            found.setdefault(self.module_of(item.change), {}).setdefault(title, []).append(item)
        return {m: dict(sorted(found[m].items())) for m in sorted(found)}

    def counts(self) -> dict[str, int]:
        """Reported items: added, removed, changed (a drop + add of one object is one change)."""
        found = {"added": 0, "removed": 0, "changed": 0}
        names = {"missing": "added", "extra": "removed", "different": "changed"}
        for item in self.items():
            found[names[item.drift]] += 1
        return found


def review(from_ref: str, to_ref: str, schema_dir: Path, exclude: Sequence[str] = ()) -> Review:
    """Changes from ``from_ref`` to ``to_ref`` (git refs or directories), with the SQL they need."""
    before = load_version(from_ref, schema_dir)
    after = load_version(to_ref, schema_dir)
    changes = compare(before, after, exclude)
    sql: tuple[str, ...] | None = ()
    error: str | None = None
    refused: tuple[str, ...] = ()
    if changes:
        try:
            planned = reconcile(changes, before, after)
            sql = planned.statements
            refused = tuple(f"{describe(change)}: {reason}" for change, reason in planned.refused)
        except VezaSchemaError as exc:
            sql, error = None, str(exc)
    return Review(from_ref, to_ref, tuple(changes), before, after, module_map(after, before), sql, error, refused)


# -- outputs ------------------------------------------------------------------------------------
def review_document(result: Review) -> dict[str, Any]:
    """The versioned JSON shape of ``diff --from --to --format json`` (see ``docs/diff.md``)."""
    return {
        "version": DOCUMENT_VERSION,
        "kind": "review",
        "from": result.from_label,
        "to": result.to_label,
        "changed": bool(result.changes),
        "counts": result.counts(),
        "changes": [item_entry(item, result.modules) for item in result.items()],
        "sql": list(result.sql) if result.sql is not None else None,
        "sql_error": result.sql_error,
        "refused": list(result.refused),
    }


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fence(sql: Sequence[str]) -> str:
    body = "\n".join(statement.rstrip("\n") for statement in sql)
    fence = "```"
    while fence in body:
        fence += "`"
    return f"{fence}sql\n{body}\n{fence}"


def github_markdown(result: Review) -> str:
    """A Markdown summary fit for a pull-request comment: one table per module, the SQL folded."""
    lines = [f"### veza-schema: `{_cell(result.from_label)}` → `{_cell(result.to_label)}`", ""]
    if not result.changes:
        lines.append("No schema changes.")
        return "\n".join(lines) + "\n"
    counts = result.counts()
    grouped = result.grouped()
    lines.append(f"**{sum(counts.values())} change(s)** in {len(grouped)} module(s): {counts['added']} added, "
                 f"{counts['removed']} removed, {counts['changed']} changed.")
    for module, groups in grouped.items():
        lines += ["", f"#### {_cell(module)}", "", "| | object | change |", "|---|---|---|"]
        for title, found in groups.items():
            for item in found:
                lines.append(f"| `{item.sign}` | {_cell(title)} | {_cell(item.description)} |")
    lines.append("")
    for refused in result.refused:
        lines.append(f"> **Refused by the planner** (no online-safe form): {_cell(refused)}")
    if result.refused:
        lines.append("")
    if result.sql is not None:
        lines += [f"<details><summary>SQL the migration would contain ({len(result.sql)} statement(s))</summary>",
                  "", _fence(result.sql), "", "</details>"]
    else:
        lines.append(f"_SQL not available: {_cell(result.sql_error or 'unknown error')}_")
    return "\n".join(lines) + "\n"
