"""Every YAML field has exactly one route into SQL, and every text field is in the hostile corpus.

These are the tests a new YAML field runs into: a key added to the format's contract
(``yaml/contract.py``) needs its route in ``loader.FIELD_ROUTES`` and, when its route carries text, one line in
``tests/hostile/corpus.py`` (docs/security.md says how).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.hostile.corpus import FIELDS, PAYLOADS
from veza_schema.sql.routes import TEXT_ROUTES, Route
from veza_schema.yaml import loader
from veza_schema.yaml.contract import CONTRACT

REPO = Path(__file__).resolve().parents[2]


def test_every_key_of_the_format_has_a_route() -> None:
    missing = [f"{kind}.{key}" for kind, keys in CONTRACT.items() for key in keys
               if (kind, key) not in loader.FIELD_ROUTES]
    assert not missing, f"keys without a route in loader.FIELD_ROUTES (see docs/security.md): {missing}"


def test_every_route_names_a_key_of_the_format() -> None:
    stale = [f"{kind}.{key}" for kind, key in loader.FIELD_ROUTES
             if not key.startswith("(") and key not in CONTRACT.get(kind, ())]
    assert not stale, f"routes for keys the format does not have: {stale}"


def test_every_text_field_is_in_the_hostile_corpus() -> None:
    text_fields = {field for field, route in loader.FIELD_ROUTES.items() if route in TEXT_ROUTES}
    missing = sorted(f"{kind}.{key}" for kind, key in text_fields - set(FIELDS))
    assert not missing, f"text fields missing from tests/hostile/corpus.py (one line each): {missing}"
    extra = sorted(f"{kind}.{key}" for kind, key in set(FIELDS) - text_fields)
    assert not extra, f"corpus fields the loader does not route as text: {extra}"


def test_every_payload_class_of_the_issue_is_in_the_corpus() -> None:
    assert {"second statement", "DO block", "data-modifying CTE", "comment trick", "quote trick",
            "dollar-quote trick", "newline"} <= set(PAYLOADS)
    assert all(len(payloads) >= 2 for payloads in PAYLOADS.values())


def test_the_loader_reads_each_text_through_its_route() -> None:
    """A text is read through ``text``/``texts`` (which check it on its FIELD_ROUTES route); the few
    bare reads left are in readers that check the text once normalized (stripped, lower-cased, an
    index element without its ordering words) and are listed here."""
    checked_after_normalizing = {"text", "texts", "type_of", "read_functions", "read_templates", "read_check",
                                 "read_index", "read_views", "read_policy", "read_exclusion"}
    # Names parsed by parse_name / parse_qualified (the identifier route of quoted and qualified names),
    # privileges and keywords compared with their closed sets where they are read.
    checked_after_normalizing |= {"names", "references", "grants", "read_extensions", "read_schema",
                                  "read_default_privileges", "read_primary_key", "read_sequences", "read_column"}
    tree = ast.parse((REPO / "veza_schema" / "yaml" / "loader.py").read_text())
    bare = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("string", "string_list") and isinstance(node.func.value, ast.Attribute) \
                    and node.func.value.attr == "r" and function.name not in checked_after_normalizing:
                bare.append(f"{function.name}:{node.lineno}")
    assert not bare, f"loader.py reads text without its route: {bare}"


def test_the_route_of_each_field_is_documented() -> None:
    security = (REPO / "docs" / "security.md").read_text()
    for route in Route:
        assert route.name in security, f"docs/security.md does not describe the {route.name} route"


SQL_WORDS = re.compile(r"^\s*(CREATE|ALTER|DROP|COMMENT ON|INSERT|UPDATE|DELETE|SELECT|GRANT|REVOKE|SET|DO|"
                       r"TRUNCATE|REFRESH|WITH) ")
# f-strings that build SQL are allowed only where the text is parsed, never run: the route probes and
# apply's statement check (which names statement kinds and parses constraint clauses it then re-renders).
PARSED_NOT_RUN = {"sql/routes.py", "migrations/statement_check.py"}
# Not built from model text: introspection's catalog queries are assembled from our own constant
# fragments (catalog names, role-kind letters, an OID bound), and changes.py's f-strings are
# warnings about a change ("DROP TABLE x deletes its rows"), never SQL.
NOT_FROM_MODEL_TEXT = {"db/introspect.py", "diff/changes.py"}


def test_no_library_module_builds_sql_with_an_f_string() -> None:
    """SQL statements are composed on the quoting route (sql/text.compose, psycopg.sql), never formatted."""
    found = []
    for path in sorted((REPO / "veza_schema").rglob("*.py")):
        relative = path.relative_to(REPO / "veza_schema").as_posix()
        if relative in PARSED_NOT_RUN | NOT_FROM_MODEL_TEXT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant) \
                    and isinstance(node.values[0].value, str) and SQL_WORDS.match(node.values[0].value) \
                    and any(isinstance(part, ast.FormattedValue) for part in node.values):
                found.append(f"{relative}:{node.lineno}")
    assert not found, f"SQL built with f-strings (use sql/text.compose or psycopg.sql): {found}"
