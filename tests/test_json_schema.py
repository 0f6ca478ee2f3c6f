"""The JSON Schema of the YAML format: generated from the loader's contract, committed, current,
referenced by every shipped module file, accepting every shipped file and refusing a misspelled key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import REPO_ROOT, invoke
from veza_schema.errors import SchemaLoadError
from veza_schema.yaml import loader
from veza_schema.yaml.contract import CONTRACT, json_schema
from veza_schema.yaml.loader import load_schema

COMMITTED = REPO_ROOT / "docs" / "yaml-format.schema.json"
SHIPPED = sorted((REPO_ROOT / "schema").glob("*.yaml"))
SAMPLES = sorted((REPO_ROOT / "tests" / "data" / "sample_schema").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../docs/yaml-format.schema.json"


class _PlainLoader(yaml.SafeLoader):
    """YAML as an editor's language server sees it: dates stay strings."""


_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(text: str) -> list[str]:
    document: Any = yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader subclass
    found: list[str] = []

    def collect(error: jsonschema.ValidationError) -> None:
        found.append(f"{'/'.join(map(str, error.absolute_path))}: {error.message}")
        for sub in error.context or ():
            collect(sub)

    for error in validator().iter_errors(document):
        collect(error)
    return found


def test_the_committed_schema_is_what_the_contract_generates() -> None:
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == json_schema(), \
        "stale: run `veza-schema json-schema --output docs/yaml-format.schema.json`"


def test_the_command_prints_the_schema_and_checks_the_committed_file(tmp_path: Path) -> None:
    printed = invoke("json-schema")
    assert printed.exit_code == 0 and json.loads(printed.stdout) == json_schema()
    assert invoke("json-schema", "--output", str(COMMITTED), "--check").exit_code == 0
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    assert invoke("json-schema", "--output", str(stale), "--check").exit_code == 1
    assert invoke("json-schema", "--output", str(stale)).exit_code == 0
    assert json.loads(stale.read_text()) == json_schema()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_module_file_carries_the_modeline(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == MODELINE
    assert (path.parent / first.split("$schema=", 1)[1]).resolve() == COMMITTED


@pytest.mark.parametrize("path", SHIPPED + SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_module_file_validates(path: Path) -> None:
    assert errors_of(path.read_text(encoding="utf-8")) == []


# Mistakes in keys, one per kind of object, each refused by the loader and by the schema.
MISSPELLINGS = {
    "module key": ("tables:", "tabels:"),
    "table key": ("    columns:\n", "    colums:\n"),
    "column key": ("nullable: true", "nulable: true"),
    "index key": ("{columns: [title]}", "{column: [title]}"),
}
BASE = """\
module: app
tables:
  items:
    columns:
      id: {type: uuid, primary_key: true}
      title: {type: text, nullable: true}
    indexes:
      idx_items_title_btree: {columns: [title]}
"""


@pytest.mark.parametrize("case", sorted(MISSPELLINGS))
def test_a_misspelled_key_fails_the_schema_and_the_loader(case: str, tmp_path: Path) -> None:
    right, wrong = MISSPELLINGS[case]
    assert errors_of(BASE) == []
    text = BASE.replace(right, wrong)
    assert text != BASE
    found = errors_of(text)
    assert found and any(re.search(r"Additional properties are not allowed|is a required property", e)
                         for e in found), found
    (tmp_path / "app.yaml").write_text(text)
    with pytest.raises(SchemaLoadError, match="unknown key|needs"):
        load_schema(tmp_path)


# The loader's other spellings of the same things: the schema must accept whatever the loader accepts.
LENIENT = """\
module: app
enums:
  mood: [happy, sad]
functions:
  touch:
    returns: trigger
    language: plpgsql
    arguments:
    volatility: VOLATILE
    body: "BEGIN RETURN NEW; END;"
tables:
  items:
    comment: Items
    tags: audited
    columns:
      id: uuid
      score: {type: integer, default: 0}
      flag: {type: boolean, default: false}
      parent: {type: uuid, nullable: true, references: items.id, on_delete: SET NULL}
      since: {type: date, nullable: true, deprecated: {since: 2026-12-01, note: going}}
    primary_key: [id]
    unique:
      uq_items_score: score
    checks:
      chk_items_score_positive: score >= 0
    indexes:
      idx_items_score_partial: {columns: score, where: true}
    triggers:
      trg_items_touch: {function: touch, timing: BEFORE, events: update}
"""


def test_every_spelling_the_loader_accepts_validates(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(LENIENT)
    load_schema(tmp_path)
    assert errors_of(LENIENT) == []


def test_the_loader_takes_every_kinds_keys_from_the_contract() -> None:
    source = Path(loader.__file__).read_text(encoding="utf-8")
    for kind in CONTRACT:
        assert f'keys("{kind}")' in source, kind
    assert not re.search(r"check_keys\([^,]+,\s*\(", source), "a key tuple written in the loader, not the contract"


# Every kind the coverage work added (schemas, roles, grants, sequences, RLS, exclusions, function
# attributes, extension versions, default privileges, view triggers), in the loader's spellings.
# `"on"` is quoted for PyYAML (YAML 1.1 reads a bare on as true); the loader and editors read either.
COVERAGE = """\
module: audit
schema: {name: audit, comment: Audit trail, grants: {veza_app: [usage]}}
extensions: [pgcrypto, {name: btree_gist, version: "1.7"}]
roles:
  veza_app: {login: true, connection_limit: 50, member_of: [veza_readers], comment: The API}
  veza_readers: {}
sequences:
  numbers: {type: integer, start: 10, cache: 1, cycle: false, grants: {veza_app: [usage, select]}}
functions:
  stamp:
    returns: trigger
    language: plpgsql
    security_definer: true
    settings: {search_path: "pg_catalog, audit", work_mem: 64MB}
    strict: true
    parallel: UNSAFE
    cost: 100
    grants: {veza_app: [execute]}
    body: "BEGIN RETURN NEW; END;"
tables:
  events:
    unlogged: false
    row_security: true
    force_row_security: true
    columns:
      id: {type: bigint, identity: always}
      room: {type: integer, statistics: 500}
      label: {type: text, collation: C}
      during: tstzrange
    primary_key: {columns: [id], deferrable: true, initially_deferred: true}
    unique:
      uq_events_label: {columns: [label], nulls_not_distinct: true, deferrable: true}
    exclusions:
      ex_events_overlap: {using: GIST, elements: ["room WITH =", "during WITH &&"], where: room > 0}
    policies:
      p_events_read: {command: SELECT, roles: [veza_app], using: "true"}
    grants: {veza_app: [select], public: [select with grant option]}
views:
  recent:
    query: SELECT id, label FROM audit.events
    grants: {veza_readers: [all]}
    triggers:
      trg_recent_write: {function: audit.stamp, timing: INSTEAD OF, events: [insert], for_each: row}
default_privileges:
  - {for_role: veza_app, schema: audit, "on": TABLES, grants: {veza_readers: [select]}}
"""


def test_every_coverage_kind_the_loader_accepts_validates(tmp_path: Path) -> None:
    (tmp_path / "audit.yaml").write_text(COVERAGE)
    load_schema(tmp_path)
    assert errors_of(COVERAGE) == []
