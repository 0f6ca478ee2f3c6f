"""Rules on PostgreSQL features beyond tables and columns: repeated keys, row-level security,
SECURITY DEFINER functions, UNLOGGED tables.

Each is a trap PostgreSQL accepts without a word: a key that repeats the primary key costs an
index and nothing else, policies without ``row_security`` filter nothing, a SECURITY DEFINER
function without a pinned ``search_path`` runs whatever a caller's schema shadows, an UNLOGGED
table loses its rows on a crash.
"""

from __future__ import annotations

from collections.abc import Iterator

from veza_schema.lint.findings import Finding
from veza_schema.lint.registry import Rule, rule
from veza_schema.lint.rules.common import table_path
from veza_schema.model import Schema, split_name
from veza_schema.sql.render import repeated_keys


@rule(
    "PG040",
    "key-repeats-another-key",
    "warning",
    "pitfalls",
    summary="A UNIQUE constraint on exactly the columns of the primary key or of another UNIQUE constraint.",
    why="It enforces nothing more and costs a second index on every write. CREATE TABLE silently drops such a "
    "key (veza-schema adds it with ALTER TABLE so the database holds what the YAML says), so a tool that "
    "renders it inline would report it missing forever.",
    fix="Delete the repeated constraint (foreign keys can reference the primary key or the remaining one).",
)
def check_repeated_keys(schema: Schema) -> Iterator[Finding]:
    this = check_repeated_keys
    for table in schema.tables.values():
        for uq in repeated_keys(table):
            yield this.finding(f"unique constraint {uq.name} on {table.name} ({', '.join(uq.columns)}) repeats the "
                               "primary key or another unique constraint", uq.meta.pos or table.meta.pos,
                               f"{table_path(table.name)}.unique.{uq.name}")


@rule(
    "PG041",
    "policies-without-row-security",
    "error",
    "pitfalls",
    summary="A table with policies but without `row_security: true`.",
    why="PostgreSQL applies policies only when row-level security is enabled on the table: until then every "
    "role with a grant sees and changes every row, whatever the policies say.",
    fix="Add `row_security: true` to the table (and `force_row_security: true` if the owner must obey them too).",
)
def check_policies_without_row_security(schema: Schema) -> Iterator[Finding]:
    this = check_policies_without_row_security
    for table in schema.tables.values():
        if table.policies and not table.row_security:
            yield this.finding(f"table {table.name} has {len(table.policies)} polic"
                               f"{'y' if len(table.policies) == 1 else 'ies'} but row-level security is off",
                               table.meta.at("policies"), table_path(table.name))


@rule(
    "PG042",
    "security-definer-without-search-path",
    "error",
    "pitfalls",
    summary="A SECURITY DEFINER function without `settings: {search_path: ...}`.",
    why="It runs with its owner's rights but resolves names with the caller's search_path: a caller who can "
    "create objects in a schema on that path can make it run their own function or table instead.",
    fix="Pin the path: `settings: {search_path: \"pg_catalog, public\"}` (or schema-qualify every name and set "
    "it to `pg_catalog`).",
)
def check_security_definer_search_path(schema: Schema) -> Iterator[Finding]:
    this = check_security_definer_search_path
    for function in schema.functions.values():
        if function.security_definer and not any(name == "search_path" for name, _ in function.settings):
            yield this.finding(f"function {function.name} is SECURITY DEFINER without a pinned search_path",
                               function.meta.at("security_definer"), f"functions.{function.name}")


@rule(
    "PG043",
    "unlogged-table",
    "warning",
    "pitfalls",
    summary="An UNLOGGED table.",
    why="Its rows are not written to the WAL: they vanish after a crash and never reach replicas or "
    "point-in-time restores. Right for caches and scratch data, wrong for anything else.",
    fix="Drop `unlogged: true`, or waive the rule with the reason the data may be lost.",
)
def check_unlogged_table(schema: Schema) -> Iterator[Finding]:
    this = check_unlogged_table
    for table in schema.tables.values():
        if table.unlogged:
            yield this.finding(f"table {split_name(table.name)[1]} is UNLOGGED: its rows are lost on a crash",
                               table.meta.at("unlogged"), table_path(table.name))


RULES: tuple[Rule, ...] = (
    check_repeated_keys,
    check_policies_without_row_security,
    check_security_definer_search_path,
    check_unlogged_table,
)
