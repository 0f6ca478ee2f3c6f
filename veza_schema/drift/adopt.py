"""``inspect``: a live database -> ``schema/`` YAML a DBA can adopt, or a refusal naming what cannot be written.

One job: turning one introspection into module files that load, lint and round-trip, and saying
exactly what they leave out. The steps:

1. introspect every schema of the database (the catalog facts the model cannot carry are
   collected, never dropped silently);
2. group objects into modules (a mapping, name prefixes, or foreign-key connectivity);
3. write the files, load them back with the loader itself (a file it refuses is a bug, reported
   with the loader's own ``file:line:col`` message) and compare the loaded model with the
   introspected one (anything not carried is reported by name);
4. lint the loaded model and waive, on the object, every rule the database breaks, with a reason
   starting ``from inspect:`` so a reviewer sees it was adopted, not decided.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from veza_schema.db.introspect import IntrospectionStats, Unmodeled, introspect
from veza_schema.diff.changes import describe
from veza_schema.diff.differ import diff_schemas
from veza_schema.drift.compare import without_excluded, without_managed
from veza_schema.errors import SchemaLoadError
from veza_schema.lint.engine import lint
from veza_schema.model import Schema
from veza_schema.yaml.loader import load_schema
from veza_schema.yaml.writer import (
    Assignment,
    ModuleSchemaError,
    Waivers,
    assign_modules,
    stable_expression,
    write_modules,
)

WAIVER_PREFIX = "from inspect: "


@dataclass
class Inspection:
    """What ``inspect`` wrote (module -> YAML text) and everything it could not write."""

    texts: dict[str, str]
    schema: Schema
    unmodeled: list[Unmodeled]
    not_carried: list[str] = field(default_factory=list)
    waived: int = 0
    queries: int = 0

    @property
    def unrepresentable(self) -> list[Unmodeled]:
        """Objects left out because the model cannot even name them (exit 2)."""
        return [fact for fact in self.unmodeled if fact.kind == "name"]


class InspectError(ValueError):
    """The written YAML would not load (a writer bug), or the mapping mixes schemas in a module (``usage``)."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


def inspect_database(conn: psycopg.Connection[Any], *, mapping: Mapping[str, str] | None = None,
                     by_prefix: bool = False, exclude: Sequence[str] = ()) -> Inspection:
    """Introspect, group, write, load back, compare and waive; see the module docstring.

    Raises:
        InspectError: the files do not load back, or the mapping mixes schemas in a module.
    """
    stats = IntrospectionStats()
    schema = without_excluded(without_managed(introspect(conn, stats=stats)), exclude)
    # An overload is a fact of kind "function" (the YAML names functions by name alone): not written.
    schema = dataclasses.replace(schema, functions={k: f for k, f in schema.functions.items() if k == f.name})
    assignment = assign_modules(schema, mapping, by_prefix)
    texts = _write(schema, assignment, {})
    loaded = _load(texts)
    waivers = inspect_waivers(loaded)
    if waivers:
        texts = _write(schema, assignment, waivers)
        loaded = _load(texts)
    result = Inspection(texts, schema, [fact for fact in stats.unmodeled if not _excluded(fact, exclude)],
                        queries=stats.queries, waived=sum(len(codes) for codes in waivers.values()))
    result.not_carried = [describe(change) for change in diff_schemas(_comparable(loaded), _comparable(schema))]
    return result


def _excluded(fact: Unmodeled, exclude: Sequence[str]) -> bool:
    from veza_schema.drift.compare import excluded

    return bool(fact.subject) and excluded(fact.subject, exclude)


def _write(schema: Schema, assignment: Assignment, waivers: Waivers) -> dict[str, str]:
    try:
        return write_modules(schema, assignment, waivers)
    except ModuleSchemaError as exc:
        raise InspectError(str(exc), usage=True) from exc


def _load(texts: Mapping[str, str]) -> Schema:
    if not texts:
        return Schema()  # an empty database: no file to load back (load_schema refuses an empty directory)
    with tempfile.TemporaryDirectory(prefix="veza-inspect-") as scratch:
        root = Path(scratch)
        for module, text in texts.items():
            (root / f"{module}.yaml").write_text(text, encoding="utf-8")
        try:
            return load_schema(root)
        except SchemaLoadError as exc:
            raise InspectError("the written YAML does not load back (please report this): "
                               + "; ".join(str(problem) for problem in exc.problems[:5])) from exc


def _comparable(schema: Schema) -> Schema:
    """What the written YAML must give back: function bodies without their outer newlines (the renderer
    adds one on each side) and IN lists written as such (:func:`stable_expression`)."""
    def text(value: str | None) -> str | None:
        return None if value is None else stable_expression(value)

    functions = {k: dataclasses.replace(f, body=f.body.strip("\n")) for k, f in schema.functions.items()}
    tables = {}
    for name, table in schema.tables.items():
        tables[name] = dataclasses.replace(
            table,
            columns=tuple(dataclasses.replace(c, default=text(c.default), generated=text(c.generated))
                          for c in table.columns),
            checks={n: dataclasses.replace(c, expression=stable_expression(c.expression))
                    for n, c in table.checks.items()},
            indexes={n: dataclasses.replace(i, where=text(i.where)) for n, i in table.indexes.items()},
            triggers={n: dataclasses.replace(t, when=text(t.when)) for n, t in table.triggers.items()},
            policies={n: dataclasses.replace(p, using=text(p.using), with_check=text(p.with_check))
                      for n, p in table.policies.items()},
            exclusions={n: dataclasses.replace(e, where=text(e.where)) for n, e in table.exclusions.items()},
        )
    return dataclasses.replace(without_managed(schema), functions=functions, tables=tables)


def inspect_waivers(loaded: Schema) -> dict[str, dict[str, str]]:
    """A waiver, on its table (or view, enum, type, function), for each rule the adopted schema breaks."""
    report = lint(loaded)
    roots = {f"tables.{name}" for name in loaded.tables} | {f"views.{name}" for name in loaded.views} \
        | {f"enums.{name}" for name in loaded.enums} | {f"types.{name}" for name in loaded.composite_types} \
        | {f"functions.{name}" for name in loaded.functions}
    messages: dict[tuple[str, str], list[str]] = {}
    for finding in report.active:
        owner = _owner(finding.object, roots)
        if owner is not None:
            messages.setdefault((owner, finding.code), []).append(finding.message)
    waivers: dict[str, dict[str, str]] = {}
    for (owner, code), found in sorted(messages.items()):
        counted = Counter(found)
        text = "; ".join(message if count == 1 else f"{message} (x{count})" for message, count in counted.items())
        waivers.setdefault(owner, {})[code] = WAIVER_PREFIX + " ".join(text.split())
    return waivers


def _owner(path: str, roots: set[str]) -> str | None:
    """The longest top-level object path ``path`` is in (``tables.t.columns.c`` -> ``tables.t``)."""
    parts = path.split(".")
    for size in range(len(parts), 1, -1):
        candidate = ".".join(parts[:size])
        if candidate in roots:
            return candidate
    return None


def object_counts(schema: Schema) -> dict[str, int]:
    """How many objects of each kind the model holds (what ``inspect`` reports and a test compares)."""
    tables = list(schema.tables.values())
    return {
        "schemas": len(schema.namespaces),
        "tables": len(tables),
        "columns": sum(len(t.columns) for t in tables),
        "constraints": sum((t.primary_key is not None) + len(t.uniques) + len(t.checks) + len(t.foreign_keys)
                           + len(t.exclusions) for t in tables),
        "indexes": len(schema.indexes),
        "views": len(schema.views),
        "triggers": len(schema.triggers),
        "policies": len(schema.policies),
        "functions": len(schema.functions),
        "sequences": len(schema.sequences),
        "enums": len(schema.enums),
        "types": len(schema.composite_types),
        "extensions": len(schema.extensions),
        "roles": len(schema.roles),
    }
