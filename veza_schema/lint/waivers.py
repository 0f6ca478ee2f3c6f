"""Waivers: a deliberate, reasoned exception to one rule on one object.

A waiver declared on an object covers findings of its code on that object, on anything
inside it (a table's waiver covers its columns and constraints), and on findings that name
the object as related (the column a ``unique: true`` constraint came from). The loader
copies a column's waivers onto the FK its ``references`` creates; such copies are one
waiver, identified by code and source position. Waivers are themselves checked: LNT001
(no reason), LNT002 (matches nothing), LNT003 (unknown code).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import Registry, Rule, declare
from veza_schema.lint.rules.common import column_path, index_path, table_path
from veza_schema.model import Meta, Schema, Waiver

WAIVER_WITHOUT_REASON = declare(
    "LNT001",
    "waiver-without-reason",
    "error",
    "waivers",
    summary="A waiver whose reason is empty.",
    why="A waiver is a decision a reviewer must be able to judge later; `waive: {IMM002: ''}` only silences.",
    fix="Write why the rule does not apply: `waive: {IMM002: append-only log, rows are never updated}`.",
)
UNUSED_WAIVER = declare(
    "LNT002",
    "unused-waiver",
    "warning",
    "waivers",
    summary="A waiver for a rule that does not fire on its object.",
    why="Stale waivers hide the next real finding on the object and mislead readers about the schema.",
    fix="Delete the waiver (or move it to the object the finding is reported on).",
)
UNKNOWN_WAIVER_CODE = declare(
    "LNT003",
    "unknown-waiver-code",
    "error",
    "waivers",
    summary="A waiver naming a rule code that does not exist (or a waiver rule, which cannot be waived).",
    why="A typo in a code (IMM02, PG05) waives nothing and silently leaves the intent unrecorded.",
    fix="Use a code listed in docs/rules.md.",
)


@dataclass
class _Entry:
    """One waiver and every object path carrying it."""

    waiver: Waiver
    paths: list[str] = field(default_factory=list)
    used: bool = False


def _carriers(schema: Schema) -> Iterator[tuple[str, Meta]]:
    """Every object of the model that holds waivers, with its YAML-shaped path (made for those only:
    a 10,000-table schema has ~150,000 objects and a few waivers)."""
    for table in schema.tables.values():
        tp = table_path(table.name)
        if table.meta.waivers:
            yield tp, table.meta
        for column in table.columns:
            if column.meta.waivers:
                yield column_path(table.name, column.name), column.meta
        if table.primary_key and table.primary_key.meta.waivers:
            yield f"{tp}.primary_key", table.primary_key.meta
        for uq in table.uniques.values():
            if uq.meta.waivers:
                yield f"{tp}.unique.{uq.name}", uq.meta
        for ck in table.checks.values():
            if ck.meta.waivers:
                yield f"{tp}.checks.{ck.name}", ck.meta
        for fk in table.foreign_keys.values():
            if fk.meta.waivers:
                yield f"{tp}.foreign_keys.{fk.name}", fk.meta
        for index in table.indexes.values():
            if index.meta.waivers:
                yield index_path(index), index.meta
        for trigger in table.triggers.values():
            if trigger.meta.waivers:
                yield f"{tp}.triggers.{trigger.name}", trigger.meta
    for enum in schema.enums.values():
        yield f"enums.{enum.name}", enum.meta
    for ctype in schema.composite_types.values():
        yield f"types.{ctype.name}", ctype.meta
    for function in schema.functions.values():
        yield f"functions.{function.name}", function.meta
    for view in schema.views.values():
        yield f"views.{view.name}", view.meta
        for index in view.indexes.values():
            yield index_path(index, on_view=True), index.meta


def collect(schema: Schema) -> list[_Entry]:
    """Every distinct waiver of the schema, in source order."""
    entries: dict[tuple[object, ...], _Entry] = {}
    for path, meta in _carriers(schema):
        for waiver in meta.waivers:
            key: tuple[object, ...] = (waiver.code, waiver.pos) if waiver.pos else (waiver.code, path)
            entries.setdefault(key, _Entry(waiver)).paths.append(path)
    return list(entries.values())


def _ancestors(path: str) -> Iterator[str]:
    """``tables.t.columns.c`` -> itself, ``tables.t.columns``, ``tables.t``, ``tables``."""
    while path:
        yield path
        path = path.rpartition(".")[0]


def apply(
    findings: Iterable[Finding], schema: Schema, codes_run: set[str], registry: Registry, enforce: bool = True
) -> list[Finding]:
    """Mark findings covered by a waiver; with ``enforce`` add the waiver findings (LNT001-003).

    ``registry`` holds the rules a waiver may name (LNT003 reports any other code).

    With ``enforce=False`` (``--no-waivers``) nothing is waived: covered findings only carry the
    reason they would have been waived for, so the output can say so.
    """
    entries = collect(schema)
    index: dict[tuple[str, str], list[_Entry]] = {}
    for entry in entries:
        for path in entry.paths:
            index.setdefault((path, entry.waiver.code), []).append(entry)
    result: list[Finding] = []
    for finding in findings:
        match: _Entry | None = None
        for origin in (finding.object, *finding.related):
            for path in _ancestors(origin):
                candidates = index.get((path, finding.code))
                if candidates:
                    match = candidates[0]
                    break
            if match:
                break
        if match is None:
            result.append(finding)
            continue
        match.used = True
        result.append(replace(finding, waived=enforce, waiver_reason=match.waiver.reason or ""))
    if enforce:
        result.extend(_waiver_findings(entries, codes_run, registry))
    return result


def _waiver_findings(entries: list[_Entry], codes_run: set[str], registry: Registry) -> Iterator[Finding]:
    for entry in entries:
        waiver, path = entry.waiver, entry.paths[0]
        rule = registry.get(waiver.code)
        known = rule is not None and rule.check is not None
        if not known:
            if UNKNOWN_WAIVER_CODE.code in codes_run:
                what = ("a rule lint does not check, so it cannot be waived" if rule is not None
                        else "an unknown rule code")
                yield UNKNOWN_WAIVER_CODE.finding(f"waiver for '{waiver.code}': {what}", waiver.pos, path)
            continue
        if not waiver.reason.strip() and WAIVER_WITHOUT_REASON.code in codes_run:
            yield WAIVER_WITHOUT_REASON.finding(
                f"waiver of {waiver.code} on {path} has no reason", waiver.pos, path
            )
        if not entry.used and waiver.code in codes_run and UNUSED_WAIVER.code in codes_run:
            yield UNUSED_WAIVER.finding(
                f"waiver of {waiver.code} on {path} matches no finding", waiver.pos, path
            )


RULES: tuple[Rule, ...] = (WAIVER_WITHOUT_REASON, UNUSED_WAIVER, UNKNOWN_WAIVER_CODE)
