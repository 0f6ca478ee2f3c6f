"""What PostgreSQL itself refuses when the schema is applied (``lint`` without ``--offline``).

These rules have no check over the model: :mod:`veza_schema.lint.verify` applies the rendered
schema to a scratch database and reports each error the server raises under one of them, by
SQLSTATE, at the YAML position of the object whose statement failed. They cannot be waived.
"""

from __future__ import annotations

from veza_schema.lint.registry import Rule, declare

SERVER_UNKNOWN_OBJECT = declare(
    "PG101",
    "server-unknown-object",
    "error",
    "server",
    summary="PostgreSQL cannot find something the schema uses: a type, a function or operator, an operator "
    "class for the index method, a column, a table, an extension.",
    why="The migration fails on the server at apply time (`type \"x\" does not exist`, `data type uuid has no "
    "default operator class for access method \"gin\"`, `operator does not exist: integer = text`); lint "
    "applies the schema to a scratch database first, so CI says it at the YAML line instead.",
    fix="Follow PostgreSQL's message and hint: fix the name, declare the extension that provides it, cast "
    "the operand, or pick an operator class (`opclass:`) or another index method.",
)
SERVER_TYPE_MISMATCH = declare(
    "PG102",
    "server-type-mismatch",
    "error",
    "server",
    summary="PostgreSQL refuses a value or an expression of the wrong type: a default or a literal that is "
    "not a value of the column's type, an expression of another type than its context needs.",
    why="`default: \"'abc'\"` on an integer column, `CHECK (price > 'ten')`, a default of type text on an "
    "integer column: the server refuses the DDL at apply time (SQLSTATE classes 22 and 42804).",
    fix="Write a value of the column's type (quoted strings only for text-like types), or cast explicitly.",
)
SERVER_INVALID_DEFINITION = declare(
    "PG103",
    "server-invalid-definition",
    "error",
    "server",
    summary="Any other error PostgreSQL raises while applying the schema: an invalid table, constraint, "
    "index, view, function or trigger definition.",
    why="The schema does not apply as written; `generate` would write a migration that fails on the server.",
    fix="Follow PostgreSQL's message, DETAIL and HINT shown with the finding.",
)

RULES: tuple[Rule, ...] = (SERVER_UNKNOWN_OBJECT, SERVER_TYPE_MISMATCH, SERVER_INVALID_DEFINITION)

# SQLSTATEs per rule; anything else is PG103.
UNKNOWN_OBJECT_STATES = frozenset({"42704", "42883", "42P01", "42703", "3F000", "58P01", "42P02"})
TYPE_MISMATCH_STATES = frozenset({"42804", "42846", "42725", "42P18"})


def rule_for(sqlstate: str | None) -> Rule:
    """The rule a server error is reported under."""
    state = sqlstate or ""
    if state in UNKNOWN_OBJECT_STATES:
        return SERVER_UNKNOWN_OBJECT
    if state in TYPE_MISMATCH_STATES or state.startswith("22"):
        return SERVER_TYPE_MISMATCH
    return SERVER_INVALID_DEFINITION
