"""docs/seed-deviations.md tells the truth: every name it cites exists, or is listed as removed or renamed.

The page is tables of ``| Object | Seed | Ours | Why |``. A name in the "Ours" cell must exist in the model;
a row whose "Ours" says *dropped* (or gives another name: a rename) lists the object's name as gone, and it
must then really be gone; so does the left side of an arrow between two quoted names in prose. Names in a "Seed" cell
are the seed's own. Every other name the page cites must exist, be one of those, or be a PostgreSQL
built-in function.
"""

from __future__ import annotations

import re

from tests.factories import shipped_schema
from tests.helpers import REPO_ROOT
from veza_schema.managed import PARTITION_FUNCTION
from veza_schema.model import Schema
from veza_schema.sql.volatility import offline_facts

DOC = REPO_ROOT / "docs" / "seed-deviations.md"
_NAME = re.compile(r"`((?:chk|uq|fk|pk|idx|trg)_[a-z0-9_]+|[a-z_][a-z0-9_]*\(\))`")
_ARROW = re.compile(r"`([a-z_][a-z0-9_]*(?:\(\))?)` -> `([a-z_][a-z0-9_]*(?:\(\))?)`")


def _existing(schema: Schema) -> set[str]:
    names = {f"{name}()" for name in schema.functions} | {f"{PARTITION_FUNCTION}()"}
    for table in schema.tables.values():
        names |= set(table.uniques) | set(table.checks) | set(table.foreign_keys) | set(table.indexes)
        names |= set(table.triggers)
        if table.primary_key:
            names.add(table.primary_key.name)
    for view in schema.views.values():
        names |= set(view.indexes)
    return names


def _rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if len(cells) == 4 and not set(cells[0]) <= {"-"} and cells[0] != "Object":
            rows.append(cells)
    return rows


def _names(text: str) -> set[str]:
    return set(_NAME.findall(text))


def test_every_name_the_deviations_page_cites_exists_or_is_listed_as_gone() -> None:
    text = DOC.read_text(encoding="utf-8")
    existing = _existing(shipped_schema())
    gone: set[str] = set()
    seed_names: set[str] = set()
    problems: list[str] = []
    for obj, seed, ours, _why in _rows(text):
        seed_names |= _names(seed)
        dropped = "dropped" in ours.lower()
        ours_names = _names(ours)
        for name in ours_names - existing:
            if not dropped:
                problems.append(f"{name}: cited as ours, but no such object in schema/")
        listed = _names(obj) - ours_names
        if dropped or (ours_names and ours_names <= existing):
            for name in listed:
                if name in existing:
                    problems.append(f"{name}: listed as dropped or renamed, but it still exists")
            gone |= listed
    for old, new in _ARROW.findall(text):
        if new in existing and old not in existing:
            gone.add(old)
        elif _NAME.fullmatch(f"`{new}`"):
            problems.append(f"{old} -> {new}: the new name must exist and the old one be gone")
    built_in = {f"{name}()" for name in offline_facts().volatility}
    for name in sorted(_names(text) - existing - gone - seed_names - built_in):
        problems.append(f"{name}: cited, but neither in schema/ nor listed as dropped or renamed")
    assert problems == []
