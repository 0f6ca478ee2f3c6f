"""The YAML format's contract: for each kind of object, the keys it accepts and each key's shape.

One source for two readers: the loader takes its allowed keys from here (:func:`keys`), and
``veza-schema json-schema`` turns the whole table into a JSON Schema (:func:`json_schema`) that
editors use through the ``yaml-language-server`` modeline of each module file. A key added to
the format is added here, then the committed schema is regenerated (``veza-schema json-schema
--output docs/yaml-format.schema.json``; a test fails while it is stale). The loader stays the
judge of meaning (types, references, SQL): the schema checks shapes and key names, and is never
stricter than the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from veza_schema.model import (
    DEFAULT_PRIVILEGE_TARGETS,
    FK_ACTIONS,
    INDEX_METHODS,
    PARTITION_BACKENDS,
    POLICY_COMMANDS,
)

Shape = dict[str, Any]


def _ci(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else ("\\s+" if c == " " else c) for c in word)


def keyword(*values: str) -> Shape:
    """One of ``values``, in any letter case (the loader lower-cases keywords); completion offers them."""
    return {"anyOf": [{"enum": list(values)},
                      {"type": "string", "pattern": "^(" + "|".join(_ci(v) for v in values) + ")$"}]}


def ref(kind: str) -> Shape:
    return {"$ref": f"#/$defs/{kind}"}


def map_of(shape: Shape) -> Shape:
    return {"type": "object", "additionalProperties": shape}


def one_of(*shapes: Shape) -> Shape:
    return {"anyOf": list(shapes)}


TEXT: Shape = {"type": "string"}
SCALAR: Shape = {"type": ["string", "number", "boolean"]}  # a bare number or boolean is taken as its SQL text
BOOL: Shape = {"type": "boolean"}
STRINGS: Shape = one_of(TEXT, {"type": "array", "items": SCALAR})  # a list, or one item alone
WAIVE: Shape = {"type": "object", "description": "Rule code -> the reason the rule does not apply here.",
                "additionalProperties": {"type": ["string", "null"]}}
ACTION: Shape = keyword(*FK_ACTIONS)
TIMING: Shape = keyword("before", "after", "instead of")
INTEGER: Shape = {"type": "integer"}
GRANTS: Shape = {"type": "object", "description": "Role (public for PUBLIC) -> its privileges on the object "
                                                  "('all', 'select', ... optionally 'with grant option').",
                 "additionalProperties": STRINGS}
EVENTS: Shape = one_of(keyword("insert", "update", "delete", "truncate"),
                       {"type": "array", "items": keyword("insert", "update", "delete", "truncate")})

# Kind -> key -> shape; a kind's keys in the order the documentation lists them.
CONTRACT: Mapping[str, Mapping[str, Shape]] = {
    "module": {
        "module": TEXT, "description": TEXT, "schema": one_of(TEXT, ref("schema")),
        "extensions": one_of(TEXT, {"type": "array", "items": one_of(TEXT, ref("extension"))}),
        "roles": map_of(ref("role")), "enums": map_of(ref("enum")), "types": map_of(ref("type")),
        "sequences": map_of(ref("sequence")), "functions": map_of(ref("function")),
        "trigger_templates": map_of(ref("trigger_template")), "tables": map_of(ref("table")),
        "views": map_of(ref("view")),
        "default_privileges": {"type": "array", "items": ref("default_privilege")},
    },
    "schema": {"name": TEXT, "comment": TEXT, "grants": GRANTS},
    "extension": {"name": TEXT, "version": SCALAR, "schema": TEXT},
    "role": {
        "login": BOOL, "inherit": BOOL, "createdb": BOOL, "createrole": BOOL, "bypassrls": BOOL,
        "connection_limit": INTEGER, "member_of": STRINGS, "comment": TEXT, "waive": WAIVE, "rfc": TEXT,
    },
    "sequence": {
        "type": keyword("smallint", "integer", "bigint"), "start": INTEGER, "increment": INTEGER,
        "min_value": INTEGER, "max_value": INTEGER, "cache": INTEGER, "cycle": BOOL, "owned_by": TEXT,
        "comment": TEXT, "grants": GRANTS, "waive": WAIVE, "rfc": TEXT,
    },
    "default_privilege": {"for_role": TEXT, "schema": TEXT, "on": keyword(*DEFAULT_PRIVILEGE_TARGETS),
                          "grants": GRANTS},
    "deprecated": {"since": SCALAR, "rfc": SCALAR, "note": SCALAR},
    "enum": {"values": STRINGS, "comment": TEXT, "waive": WAIVE, "rfc": TEXT},
    "type": {"attributes": map_of(TEXT), "comment": TEXT, "waive": WAIVE, "rfc": TEXT},
    "function": {
        "returns": TEXT, "language": TEXT, "arguments": one_of(TEXT, {"type": "null"}), "body": TEXT,
        "volatility": keyword("volatile", "stable", "immutable"), "security_definer": BOOL, "comment": TEXT,
        "waive": WAIVE, "rfc": TEXT, "renamed_from": TEXT, "strict": BOOL, "leakproof": BOOL,
        "parallel": keyword("unsafe", "restricted", "safe"), "cost": {"type": "number"}, "rows": {"type": "number"},
        "settings": map_of(SCALAR), "grants": GRANTS, "exact_body": BOOL,
    },
    "trigger_template": {
        "name": TEXT, "function": TEXT, "timing": TIMING, "events": EVENTS,
        "for_each": keyword("row", "statement"), "when": TEXT, "applies_to": ref("applies_to"), "rfc": TEXT,
    },
    "applies_to": {"has_column": TEXT, "tagged": TEXT, "tables": STRINGS, "except": STRINGS},
    "table": {
        "comment": TEXT, "tags": STRINGS, "columns": map_of(one_of(TEXT, ref("column"))),
        "primary_key": one_of(STRINGS, ref("primary_key")), "unique": map_of(one_of(STRINGS, ref("unique"))),
        "checks": map_of(one_of(TEXT, ref("check"))), "foreign_keys": map_of(ref("foreign_key")),
        "indexes": map_of(ref("index")), "partition_by": ref("partition_by"), "purge": ref("purge"),
        "triggers": map_of(ref("trigger")),
        "waive": WAIVE, "renamed_from": TEXT, "rfc": TEXT, "deprecated": ref("deprecated"),
        "exclusions": map_of(ref("exclusion")), "unlogged": BOOL, "row_security": BOOL,
        "force_row_security": BOOL, "policies": map_of(ref("policy")), "grants": GRANTS,
    },
    "column": {
        "type": TEXT, "nullable": BOOL, "default": SCALAR, "primary_key": BOOL, "unique": BOOL,
        "references": TEXT, "on_delete": ACTION, "on_update": ACTION, "identity": keyword("always", "by default"),
        "generated": TEXT, "comment": TEXT, "renamed_from": TEXT, "rfc": TEXT, "deprecated": ref("deprecated"),
        "waive": WAIVE, "counts": ref("counts"), "maintained_by": TEXT, "collation": TEXT,
        "statistics": {"type": "integer", "minimum": 0, "maximum": 10000},
    },
    "counts": {"rows_of": TEXT, "via": TEXT, "key": TEXT, "where": SCALAR, "maintained_by": STRINGS},
    "primary_key": {"name": TEXT, "columns": STRINGS, "deferrable": BOOL, "initially_deferred": BOOL},
    "unique": {"columns": STRINGS, "deferrable": BOOL, "initially_deferred": BOOL, "nulls_not_distinct": BOOL,
               "waive": WAIVE, "rfc": TEXT},
    "check": {"expression": TEXT, "waive": WAIVE, "rfc": TEXT},
    "exclusion": {
        "using": keyword(*INDEX_METHODS), "elements": STRINGS, "where": SCALAR, "include": STRINGS,
        "deferrable": BOOL, "initially_deferred": BOOL, "waive": WAIVE, "rfc": TEXT,
    },
    "policy": {
        "command": keyword(*POLICY_COMMANDS), "permissive": BOOL, "roles": STRINGS, "using": SCALAR,
        "with_check": SCALAR, "waive": WAIVE, "rfc": TEXT,
    },
    "foreign_key": {
        "columns": STRINGS, "references": TEXT, "on_delete": ACTION, "on_update": ACTION, "deferrable": BOOL,
        "initially_deferred": BOOL, "waive": WAIVE, "rfc": TEXT,
    },
    "index": {
        "columns": STRINGS, "expressions": STRINGS, "opclasses": map_of(TEXT), "unique": BOOL,
        "using": keyword(*INDEX_METHODS), "where": SCALAR, "include": STRINGS, "waive": WAIVE, "rfc": TEXT,
        "comment": TEXT, "renamed_from": TEXT,
    },
    "partition_by": {
        "range": STRINGS, "list": STRINGS, "hash": STRINGS, "interval": keyword("day", "week", "month", "year"),
        "premake": {"type": "integer", "minimum": 0, "maximum": 120}, "default_partition": BOOL,
        "retention": TEXT, "retention_keep_table": BOOL, "backend": keyword(*PARTITION_BACKENDS),
    },
    "purge": {"column": TEXT, "after": TEXT},
    "trigger": {
        "function": TEXT, "timing": TIMING, "events": EVENTS, "for_each": keyword("row", "statement"),
        "when": TEXT, "waive": WAIVE, "rfc": TEXT,
    },
    "view": {
        "query": TEXT, "materialized": BOOL, "indexes": map_of(ref("index")), "comment": TEXT,
        "depends_on": STRINGS, "waive": WAIVE, "rfc": TEXT, "triggers": map_of(ref("trigger")), "grants": GRANTS,
    },
}

# Keys an object cannot do without (the loader says so too, with the object's name).
REQUIRED: Mapping[str, tuple[str, ...]] = {
    "module": ("module",), "deprecated": ("since",), "enum": ("values",), "type": ("attributes",),
    "function": ("returns", "language", "body"), "trigger_template": ("name", "function", "timing", "events",
                                                                      "applies_to"),
    "table": ("columns",), "column": ("type",), "primary_key": ("columns",), "unique": ("columns",),
    "check": ("expression",), "counts": ("rows_of", "via"), "purge": ("column", "after"),
    "foreign_key": ("columns", "references"),
    "trigger": ("function", "timing", "events"),
    "view": ("query",), "schema": ("name",), "extension": ("name",), "exclusion": ("elements",),
    "default_privilege": ("for_role", "on", "grants"),
}

DESCRIPTIONS: Mapping[str, str] = {
    "module": "A module file of schema/ (docs/yaml-format.md).",
    "enum": "An enum: its values, or a mapping with values.", "type": "A composite type.",
    "table": "A table.", "column": "A column: its type alone, or a mapping.", "index": "An index.",
    "view": "A view or materialized view.", "function": "A function.", "trigger": "A trigger.",
    "trigger_template": "A trigger applied to every table a selector picks.",
    "counts": "A counter column kept by generated triggers: the rows of a child table per parent row.",
    "role": "A role (cluster-wide; created when missing, never dropped).", "sequence": "A sequence.",
    "policy": "A row-level security policy.", "exclusion": "An EXCLUDE constraint.",
    "default_privilege": "ALTER DEFAULT PRIVILEGES for objects a role creates later.",
}


def keys(kind: str) -> tuple[str, ...]:
    """The keys the loader accepts for ``kind``, in the contract's order."""
    return tuple(CONTRACT[kind])


def _object(kind: str) -> Shape:
    shape: Shape = {"type": "object", "properties": dict(CONTRACT[kind]), "additionalProperties": False}
    if REQUIRED.get(kind):
        shape["required"] = list(REQUIRED[kind])
    if kind in DESCRIPTIONS:
        shape["description"] = DESCRIPTIONS[kind]
    return shape


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one module file, from :data:`CONTRACT` alone."""
    definitions = {kind: _object(kind) for kind in CONTRACT if kind != "module"}
    # `enums: {name: [values]}` is the short form of `{values: [...]}`.
    definitions["enum"] = one_of(STRINGS, definitions["enum"])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "veza-schema module file", **_object("module"), "$defs": definitions}
