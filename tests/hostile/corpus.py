"""The hostile-input corpus: every text field the YAML accepts, every class of breakout payload.

A field is one line of :data:`FIELDS`: where its text goes in a small module (``P`` marks the
spot; the payload is written there as one JSON-quoted YAML scalar, so it stays on that line) and
a ``neutral`` value the field accepts. To add a field the loader learned (a new key in the format's
contract, ``yaml/contract.py``, with its route in ``loader.FIELD_ROUTES``), add one line here, e.g.::

    ("purge", "after"): table("purge: {column: created_at, after: P}", "30 days"),

``tests/hostile/test_field_routes.py`` fails until the line exists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

CANARY = "canary"  # a table with rows, created beside the schema in every database the corpus touches

# Payload classes: each would, if pasted into SQL, drop or empty the canary, or run code with the
# rights of whoever applies the migration. Several shapes per class, so that every way of closing
# the surrounding SQL is tried (a string, a parenthesis, a statement, a comment).
PAYLOADS: dict[str, tuple[str, ...]] = {
    "second statement": (
        f"1; DROP TABLE {CANARY}",
        f"x); DROP TABLE {CANARY}; --",
        f"x) STORED; DELETE FROM {CANARY}; --",
        f"x; DELETE FROM {CANARY}",
    ),
    "DO block": (
        f"1); DO $$BEGIN DELETE FROM {CANARY}; END$$; SELECT (1",
        f"DO $$ BEGIN DROP TABLE {CANARY}; END $$",
    ),
    "data-modifying CTE": (
        f"(WITH gone AS (DELETE FROM {CANARY} RETURNING 1) SELECT count(*) FROM gone)",
        f"WITH gone AS (DELETE FROM {CANARY} RETURNING *) SELECT * FROM gone",
    ),
    "comment trick": (
        "1 --",
        "1 /*",
        f"x */ ; DROP TABLE {CANARY}; /* ",
        f"1 -- \n; DROP TABLE {CANARY}",
    ),
    "quote trick": (
        f"'); DROP TABLE {CANARY}; --",
        f'"); DROP TABLE {CANARY}; --',
        f"E'\\'; DROP TABLE {CANARY}; --'",
        f"'x''); DROP TABLE {CANARY}; --'",
        "' || (SELECT 1) || '",
    ),
    "dollar-quote trick": (
        f"$$; DROP TABLE {CANARY}; $$",
        f"$body$; DROP TABLE {CANARY}; $body$",
        "x $body2$ $body$ $$ ends with a dollar $",
    ),
    "newline": (
        f"x\nDROP TABLE {CANARY};",
        f"x\r\nDELETE FROM {CANARY};",
        f"x\u2028DROP TABLE {CANARY};",
    ),
    "volatile call": (
        "pg_terminate_backend(pg_backend_pid())",
        "set_config('search_path', 'evil', false)",
        f"(SELECT count(*) FROM {CANARY} WHERE pg_terminate_backend(pg_backend_pid()))",
    ),
}
ALL_PAYLOADS: tuple[tuple[str, str], ...] = tuple((kind, p) for kind, items in PAYLOADS.items() for p in items)

MARK = "\u27e6P\u27e7"  # where the payload goes (never valid YAML on its own); written P in FIELDS
P = "P"

# The module every field is placed in: a trigger function and a table with a few columns, and
# slots ({...}) where a field adds its lines.
BASE = """\
module: {name}
{module}functions:
  touch:
    returns: trigger
    language: plpgsql
    body: "BEGIN RETURN NEW; END;"
{functions}tables:
  items:
    columns:
      id: {{type: uuid, primary_key: true}}
      name: {{type: text, nullable: true}}
      score: {{type: integer, nullable: true}}
      created_at: {{type: timestamptz, default: now()}}
{columns}{table}{tables}"""
_SLOTS = ("name", "module", "functions", "columns", "table", "tables")


@dataclass(frozen=True)
class Field:
    """Lines a field adds to :data:`BASE`, slot by slot, with ``P`` where its text goes."""

    name: str = "app"  # the module name (the file is app.yaml)
    module: str = ""  # top-level lines (sections other than functions and tables)
    functions: str = ""  # lines in `functions:`
    columns: str = ""  # lines in `items.columns`
    table: str = ""  # table-level lines of `items`
    tables: str = ""  # lines in `tables:` (another table)
    neutral: str = "x"  # a value the field accepts

    def __post_init__(self) -> None:
        for slot in _SLOTS:  # a bare P in a slot is the spot
            object.__setattr__(self, slot, re.sub(r"(?<![\w'])P(?![\w'])", MARK, getattr(self, slot)))

    def yaml(self, value: str) -> str:
        """The module with ``value`` in the field, JSON-quoted (a valid YAML scalar, on one line)."""
        quoted = json.dumps(value)
        return BASE.format(**{slot: getattr(self, slot).replace(MARK, quoted) for slot in _SLOTS})

    def line(self) -> int:
        """The 1-based line of the module holding the field."""
        marked = BASE.format(**{slot: getattr(self, slot) for slot in _SLOTS})
        return next(number for number, text in enumerate(marked.splitlines(), 1) if MARK in text)


def module(lines: str, neutral: str = "x") -> Field:
    return Field(module=lines + "\n", neutral=neutral)


def function(line: str, neutral: str = "x") -> Field:
    return Field(functions=f"  {line}\n", neutral=neutral)


def column(line: str, neutral: str = "x") -> Field:
    return Field(columns=f"      {line}\n", neutral=neutral)


def table(line: str, neutral: str = "x") -> Field:
    return Field(table=f"    {line}\n", neutral=neutral)


def other_table(line: str, neutral: str = "x") -> Field:
    return Field(tables=f"  {line}\n", neutral=neutral)


def template(fields: str, neutral: str = "x") -> Field:
    return module("trigger_templates:\n  touch_all: {" + fields + "}", neutral)


def view(fields: str, neutral: str = "x") -> Field:
    return module("views:\n  item_names: {" + fields + "}", neutral)


def counter(fields: str, neutral: str = "x", others: str = "") -> Field:
    """A counter column of items counting the rows of another table (``counts``)."""
    return Field(columns="      n_others: {type: integer, default: 0, counts: {" + fields + "}}\n",
                 tables="  others: {columns: {id: uuid, item_id: uuid, name: {type: text, nullable: true}}"
                        + others + "}\n", neutral=neutral)


FUNCTION = "returns: integer, language: sql, arguments: 'a integer', body: 'SELECT a', volatility: stable"
TEMPLATE = "name: 'trg_{table}_touch', function: touch, timing: before, events: [update]"
APPLIES = "applies_to: {tables: [items]}"
VIEW = "query: 'SELECT id, name FROM items'"


FIELDS: dict[tuple[str, str], Field] = {
    ("module", "module"): Field(name=P, neutral="app"),
    ("module", "description"): module("description: P"),
    ("module", "extensions"): module("extensions: [P]", "pg_trgm"),
    ("enum", "(name)"): module("enums:\n  P: [a, b]", "mood"),
    ("enum", "values"): module("enums:\n  mood: [a, P]"),
    ("enum", "comment"): module("enums:\n  mood: {values: [a], comment: P}"),
    ("enum", "rfc"): module("enums:\n  mood: {values: [a], rfc: P}", "RFC-0001"),
    ("type", "(name)"): module("types:\n  P: {attributes: {a: integer}}", "pair"),
    ("type", "comment"): module("types:\n  pair: {attributes: {a: integer}, comment: P}"),
    ("type", "rfc"): module("types:\n  pair: {attributes: {a: integer}, rfc: P}", "RFC-0001"),
    ("attribute", "(name)"): module("types:\n  pair: {attributes: {P: integer}}", "a"),
    ("attribute", "(value)"): module("types:\n  pair: {attributes: {a: P}}", "integer"),
    ("function", "(name)"): function("P: {" + FUNCTION + "}", "twice"),
    ("function", "returns"): function("twice: {returns: P, language: sql, body: 'SELECT 1'}", "integer"),
    ("function", "language"): function("twice: {returns: integer, language: P, body: 'SELECT 1'}", "sql"),
    ("function", "arguments"): function("twice: {returns: integer, language: sql, arguments: P, body: 'SELECT 1'}",
                                        "a integer"),
    ("function", "body"): function("twice: {returns: integer, language: plpgsql, body: P}", "BEGIN RETURN 1; END;"),
    ("function", "volatility"): function("twice: {" + FUNCTION.replace("volatility: stable", "volatility: P") + "}",
                                         "immutable"),
    ("function", "comment"): function("twice: {" + FUNCTION + ", comment: P}"),
    ("function", "rfc"): function("twice: {" + FUNCTION + ", rfc: P}", "RFC-0001"),
    ("function", "renamed_from"): function("twice: {" + FUNCTION + ", renamed_from: P}", "double"),
    ("trigger_template", "(name)"): module("trigger_templates:\n  P: {" + TEMPLATE + ", " + APPLIES + "}", "touch_all"),
    ("trigger_template", "name"): template(TEMPLATE.replace("'trg_{table}_touch'", "P") + ", " + APPLIES,
                                           "trg_{table}_t"),
    ("trigger_template", "function"): template(TEMPLATE.replace("function: touch", "function: P") + ", " + APPLIES,
                                       "touch"),
    ("trigger_template", "timing"): template(TEMPLATE.replace("timing: before", "timing: P") + ", " + APPLIES, "after"),
    ("trigger_template", "events"): template(TEMPLATE.replace("events: [update]", "events: [P]") + ", " + APPLIES,
                                     "insert"),
    ("trigger_template", "for_each"): template(TEMPLATE + ", for_each: P, " + APPLIES, "row"),
    ("trigger_template", "when"): template(TEMPLATE + ", when: P, " + APPLIES, "OLD.name IS DISTINCT FROM NEW.name"),
    ("trigger_template", "rfc"): template(TEMPLATE + ", rfc: P, " + APPLIES, "RFC-0001"),
    ("applies_to", "has_column"): template(TEMPLATE + ", applies_to: {has_column: P}", "created_at"),
    ("applies_to", "tagged"): template(TEMPLATE + ", applies_to: {tagged: P}"),
    ("applies_to", "tables"): template(TEMPLATE + ", applies_to: {tables: [P]}", "items"),
    ("applies_to", "except"): template(TEMPLATE + ", applies_to: {has_column: created_at, except: [P]}", "items"),
    ("table", "(name)"): other_table("P: {columns: {id: uuid}}", "others"),
    ("table", "comment"): table("comment: P"),
    ("table", "tags"): table("tags: [P]"),
    ("table", "primary_key"): other_table("others: {columns: {id: uuid}, primary_key: [P]}", "id"),
    ("table", "renamed_from"): table("renamed_from: P", "old_items"),
    ("table", "rfc"): table("rfc: P", "RFC-0001"),
    ("column", "(name)"): column("P: {type: text, nullable: true}", "extra"),
    ("column", "type"): column("extra: {type: P, nullable: true}", "varchar(20)"),
    ("column", "default"): column("extra: {type: text, nullable: true, default: P}", "'x'"),
    ("column", "references"): column("extra: {type: uuid, nullable: true, references: P}", "items.id"),
    ("column", "on_delete"): column("extra: {type: uuid, nullable: true, references: items.id, on_delete: P}",
                                    "cascade"),
    ("column", "on_update"): column("extra: {type: uuid, nullable: true, references: items.id, on_update: P}",
                                    "cascade"),
    ("column", "identity"): column("extra: {type: bigint, identity: P}", "always"),
    ("column", "generated"): column("extra: {type: text, nullable: true, generated: P}", "upper(name)"),
    ("column", "comment"): column("extra: {type: text, nullable: true, comment: P}"),
    ("column", "renamed_from"): column("extra: {type: text, nullable: true, renamed_from: P}", "old_extra"),
    ("column", "rfc"): column("extra: {type: text, nullable: true, rfc: P}", "RFC-0001"),
    ("column", "maintained_by"): column("extra: {type: integer, nullable: true, maintained_by: P}"),
    ("counts", "rows_of"): counter("rows_of: P, via: item_id", "others"),
    ("counts", "via"): counter("rows_of: others, via: P", "item_id"),
    ("counts", "key"): counter("rows_of: others, via: item_id, key: P", "id"),
    ("counts", "where"): counter("rows_of: others, via: item_id, where: P", "name IS NOT NULL"),
    ("counts", "maintained_by"): counter("rows_of: others, via: item_id, maintained_by: [P]", "trg_others_touch",
                                         ", triggers: {trg_others_touch: {function: touch, timing: before, "
                                         "events: [update]}}"),
    ("primary_key", "name"): other_table("others: {columns: {id: uuid}, primary_key: {name: P, columns: [id]}}",
                                         "pk_others"),
    ("primary_key", "columns"): other_table("others: {columns: {id: uuid}, primary_key: {columns: [P]}}", "id"),
    ("unique", "(name)"): table("unique: {P: [name]}", "uq_items_name"),
    ("unique", "columns"): table("unique: {uq_items_name: [P]}", "name"),
    ("unique", "rfc"): table("unique: {uq_items_name: {columns: [name], rfc: P}}", "RFC-0001"),
    ("check", "(name)"): table("checks: {P: score > 0}", "chk_items_score"),
    ("check", "expression"): table("checks: {chk_items_score: P}", "score > 0"),
    ("check", "rfc"): table("checks: {chk_items_score: {expression: score > 0, rfc: P}}", "RFC-0001"),
    ("foreign_key", "(name)"): table("foreign_keys: {P: {columns: [id], references: items(id)}}", "fk_items_self"),
    ("foreign_key", "columns"): table("foreign_keys: {fk_items_self: {columns: [P], references: items(id)}}", "id"),
    ("foreign_key", "references"): table("foreign_keys: {fk_items_self: {columns: [id], references: P}}", "items(id)"),
    ("foreign_key", "on_delete"): table("foreign_keys: {fk_items_self: {columns: [id], references: items(id), "
                               "on_delete: P}}", "cascade"),
    ("foreign_key", "on_update"): table("foreign_keys: {fk_items_self: {columns: [id], references: items(id), "
                               "on_update: P}}", "cascade"),
    ("foreign_key", "rfc"): table("foreign_keys: {fk_items_self: {columns: [id], references: items(id), rfc: P}}",
                         "RFC-0001"),
    ("index", "(name)"): table("indexes: {P: {columns: [name]}}", "idx_items_name"),
    ("index", "columns"): table("indexes: {idx_items_name: {columns: [P]}}", "name desc"),
    ("index", "expressions"): table("indexes: {idx_items_name: {expressions: [P]}}", "lower(name)"),
    ("index", "opclasses"): table("indexes: {idx_items_name: {columns: [name], using: gin, opclasses: {name: P}}}",
                                  "gin_trgm_ops"),
    ("index", "using"): table("indexes: {idx_items_name: {columns: [name], using: P}}", "hash"),
    ("index", "where"): table("indexes: {idx_items_name: {columns: [name], where: P}}", "score > 0"),
    ("index", "include"): table("indexes: {idx_items_name: {columns: [name], include: [P]}}", "score"),
    ("index", "rfc"): table("indexes: {idx_items_name: {columns: [name], rfc: P}}", "RFC-0001"),
    ("index", "comment"): table("indexes: {idx_items_name: {columns: [name], comment: P}}"),
    ("index", "renamed_from"): table("indexes: {idx_items_name: {columns: [name], renamed_from: P}}",
                                     "idx_items_old"),
    ("trigger", "(name)"): table("triggers: {P: {function: touch, timing: before, events: [update]}}",
                                 "trg_items_touch"),
    ("trigger", "function"): table("triggers: {trg_items_touch: {function: P, timing: before, events: [update]}}",
                                   "touch"),
    ("trigger", "timing"): table("triggers: {trg_items_touch: {function: touch, timing: P, events: [update]}}",
                                 "after"),
    ("trigger", "events"): table("triggers: {trg_items_touch: {function: touch, timing: before, events: [P]}}",
                                 "insert"),
    ("trigger", "for_each"): table("triggers: {trg_items_touch: {function: touch, timing: before, "
                                   "events: [update], for_each: P}}", "row"),
    ("trigger", "when"): table("triggers: {trg_items_touch: {function: touch, timing: before, events: [update], "
                               "when: P}}", "OLD.name IS DISTINCT FROM NEW.name"),
    ("trigger", "rfc"): table("triggers: {trg_items_touch: {function: touch, timing: before, events: [update], "
                              "rfc: P}}", "RFC-0001"),
    ("partition_by", "range"): table("partition_by: {range: [P]}", "created_at"),
    ("partition_by", "list"): table("partition_by: {list: [P]}", "name"),
    ("partition_by", "hash"): table("partition_by: {hash: [P]}", "id"),
    ("partition_by", "interval"): table("partition_by: {range: [created_at], interval: P}", "day"),
    ("partition_by", "retention"): table("partition_by: {range: [created_at], retention: P}", "3 months"),
    ("partition_by", "backend"): table("partition_by: {range: [created_at], backend: P}", "builtin"),
    ("purge", "column"): table("purge: {column: P, after: 30 days}", "created_at"),
    ("purge", "after"): table("purge: {column: created_at, after: P}", "30 days"),
    ("view", "(name)"): module("views:\n  P: {" + VIEW + "}", "item_names"),
    ("view", "query"): view("query: P", "SELECT id, name FROM items"),
    ("view", "comment"): view(VIEW + ", comment: P"),
    ("view", "depends_on"): view(VIEW + ", depends_on: [P]", "items"),
    ("view", "rfc"): view(VIEW + ", rfc: P", "RFC-0001"),
    ("deprecated", "since"): table("deprecated: {since: P}", "2026-12-01"),
    ("deprecated", "rfc"): table("deprecated: {since: 2026-12-01, rfc: P}", "RFC-0001"),
    ("deprecated", "note"): table("deprecated: {since: 2026-12-01, note: P}"),
    ("waive", "(name)"): table("waive: {P: a reason}", "NAM001"),
    ("waive", "(value)"): table("waive: {NAM001: P}"),
    # Object coverage (schemas, roles, sequences, grants, policies, exclusions, function options).
    ("module", "schema"): module("schema: P", "public"),
    ("schema", "name"): module("schema: {name: P}", "audit"),
    ("schema", "comment"): module("schema: {name: audit, comment: P}"),
    ("extension", "name"): module("extensions: [{name: P}]", "pg_trgm"),
    ("extension", "version"): module("extensions: [{name: pg_trgm, version: P}]", "1.6"),
    ("extension", "schema"): module("extensions: [{name: pg_trgm, schema: P}]", "public"),
    ("role", "(name)"): module("roles:\n  P: {}", "veza_app"),
    ("role", "member_of"): module("roles:\n  veza_readers: {}\n  veza_app: {member_of: [P]}", "veza_readers"),
    ("role", "comment"): module("roles:\n  veza_app: {comment: P}"),
    ("role", "rfc"): module("roles:\n  veza_app: {rfc: P}", "RFC-0001"),
    ("sequence", "(name)"): module("sequences:\n  P: {}", "invoice_numbers"),
    ("sequence", "type"): module("sequences:\n  invoice_numbers: {type: P}", "integer"),
    ("sequence", "owned_by"): module("sequences:\n  invoice_numbers: {owned_by: P}", "items.score"),
    ("sequence", "comment"): module("sequences:\n  invoice_numbers: {comment: P}"),
    ("sequence", "rfc"): module("sequences:\n  invoice_numbers: {rfc: P}", "RFC-0001"),
    ("default_privilege", "for_role"): module("roles:\n  veza_owner: {}\ndefault_privileges:\n"
                                              "  - {for_role: P, on: tables, grants: {veza_owner: [select]}}",
                                              "veza_owner"),
    ("default_privilege", "schema"): module("roles:\n  veza_owner: {}\ndefault_privileges:\n"
                                            "  - {for_role: veza_owner, schema: P, on: tables, "
                                            "grants: {veza_owner: [select]}}", "public"),
    ("default_privilege", "on"): module("roles:\n  veza_owner: {}\ndefault_privileges:\n"
                                        "  - {for_role: veza_owner, on: P, grants: {veza_owner: [select]}}", "tables"),
    ("grant", "(name)"): Field(module="roles:\n  veza_app: {}\n", table="    grants: {P: [select]}\n",
                               neutral="veza_app"),
    ("grant", "(value)"): Field(module="roles:\n  veza_app: {}\n", table="    grants: {veza_app: [P]}\n",
                                neutral="select"),
    ("function", "parallel"): function("twice: {" + FUNCTION + ", parallel: P}", "safe"),
    ("function", "settings"): function("twice: {" + FUNCTION + ", settings: {work_mem: P}}", "64MB"),
    ("column", "collation"): column("extra: {type: text, nullable: true, collation: P}", "C"),
    ("exclusion", "(name)"): table("exclusions: {P: {using: btree, elements: [score WITH =]}}", "ex_items_score"),
    ("exclusion", "using"): table("exclusions: {ex_items_score: {using: P, elements: [score WITH =]}}", "btree"),
    ("exclusion", "elements"): table("exclusions: {ex_items_score: {using: btree, elements: [P]}}", "score WITH ="),
    ("exclusion", "where"): table("exclusions: {ex_items_score: {using: btree, elements: [score WITH =], where: P}}",
                                  "score > 0"),
    ("exclusion", "include"): table("exclusions: {ex_items_score: {using: btree, elements: [score WITH =], "
                                    "include: [P]}}", "name"),
    ("exclusion", "rfc"): table("exclusions: {ex_items_score: {using: btree, elements: [score WITH =], rfc: P}}",
                                "RFC-0001"),
    ("policy", "(name)"): table("row_security: true\n    policies: {P: {using: score > 0}}", "p_items"),
    ("policy", "command"): table("row_security: true\n    policies: {p_items: {command: P, using: score > 0}}",
                                 "select"),
    ("policy", "roles"): Field(module="roles:\n  veza_app: {}\n",
                               table="    policies: {p_items: {roles: [P], using: score > 0}}\n", neutral="veza_app"),
    ("policy", "using"): table("row_security: true\n    policies: {p_items: {using: P}}", "score > 0"),
    ("policy", "with_check"): table("row_security: true\n    policies: {p_items: {command: insert, with_check: P}}",
                                    "score > 0"),
    ("policy", "rfc"): table("row_security: true\n    policies: {p_items: {using: score > 0, rfc: P}}", "RFC-0001"),
}
