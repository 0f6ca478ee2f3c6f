"""The YAML of the object kinds beyond tables and columns: names, schemas, sequences, roles, grants,
row-level security, exclusion constraints, function attributes (loaded, refused, written back)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from veza_schema.errors import SchemaLoadError
from veza_schema.model import ExclusionConstraint, Policy, Role, SequenceObject, SourcePos
from veza_schema.sql.render import create_schema_sections, grant_statements, sections_to_sql
from veza_schema.sql.text import ident
from veza_schema.yaml.loader import load_schema
from veza_schema.yaml.names import format_key, make_object_name, parse_name, parse_qualified
from veza_schema.yaml.writer import assign_modules, write_modules


def load(tmp_path: Path, *modules: str) -> object:
    """Write each module text (named by its first line) into a schema directory and load it."""
    for text in modules:
        name = text.split("\n", 1)[0].removeprefix("module: ").strip()
        (tmp_path / f"{name}.yaml").write_text(text, encoding="utf-8")
    return load_schema(tmp_path)


def problems(tmp_path: Path, *modules: str) -> str:
    with pytest.raises(SchemaLoadError) as error:
        load(tmp_path, *modules)
    return str(error.value)


def test_quoted_names_and_qualified_references_parse() -> None:
    assert parse_name('"Order Items"') == "Order Items"
    assert parse_name('"a ""quoted"" name"') == 'a "quoted" name'
    assert parse_name("order items") is None
    assert parse_qualified('audit."Odd Name"') == ("audit", "Odd Name")
    assert parse_qualified("a.b.c") == ("a", "b", "c")
    assert parse_qualified("a..b") is None
    assert format_key("audit.Odd Name") == 'audit."Odd Name"'


def test_serial_sequence_names_follow_postgresql_truncation() -> None:
    assert make_object_name("orders", "id", "seq") == "orders_id_seq"
    long = make_object_name("a_table_with_a_really_long_name_that_goes_on_and_on_and_on",
                            "a_column_with_a_long_name_too", "seq")
    assert long == "a_table_with_a_really_long_na_a_column_with_a_long_name_too_seq"
    assert len(long) == 63


def test_a_module_lives_in_its_schema_and_references_are_qualified(tmp_path: Path) -> None:
    schema = load(tmp_path, """module: audit
schema: {name: audit, comment: Audit trail}
enums:
  severity: [info, critical]
tables:
  events:
    columns:
      id: {type: bigint, primary_key: true}
      severity: {type: audit.severity}
      user_id: {type: integer, references: users.id, on_delete: cascade}
""", """module: users
tables:
  users:
    columns:
      id: {type: integer, primary_key: true}
""")
    events = schema.tables["audit.events"]  # type: ignore[attr-defined]
    assert events.column("severity").type == "audit.severity"
    assert events.foreign_keys["fk_events_users"].ref_table == "users"
    assert events.primary_key.name == "pk_events"
    assert schema.namespaces["audit"].comment == "Audit trail"  # type: ignore[attr-defined]
    sql = sections_to_sql(create_schema_sections(schema))  # type: ignore[arg-type]
    assert "CREATE SCHEMA audit;" in sql and "CREATE TABLE audit.events (" in sql
    assert "severity audit.severity NOT NULL" in sql


def test_an_unqualified_reference_to_another_schema_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, """module: audit
schema: audit
tables:
  events:
    columns:
      id: {type: bigint, primary_key: true}
  details:
    columns:
      event_id: {type: bigint, references: events.id, on_delete: cascade}
""")
    assert "references missing table 'events'" in found


def test_serial_expands_to_a_sequence_owned_by_its_column(tmp_path: Path) -> None:
    schema = load(tmp_path, """module: m
tables:
  orders:
    columns:
      number: {type: bigserial, primary_key: true}
""")
    column = schema.tables["orders"].column("number")  # type: ignore[attr-defined]
    assert (column.type, column.nullable, column.default) == ("bigint", False,
                                                              "nextval('orders_number_seq'::regclass)")
    assert schema.sequences == {  # type: ignore[attr-defined]
        "orders_number_seq": SequenceObject("orders_number_seq", "bigint", owned_by="orders.number")}


def test_roles_grants_policies_and_exclusions_load(tmp_path: Path) -> None:
    schema = load(tmp_path, """module: m
roles:
  app: {login: true, member_of: [readers]}
  readers: {}
tables:
  notes:
    row_security: true
    columns:
      id: {type: integer, primary_key: true}
      owner: {type: text}
      during: {type: tstzrange}
    exclusions:
      ex_notes_during: {using: gist, elements: ["during   WITH &&"], deferrable: true}
    policies:
      p_notes_own: {command: select, permissive: false, roles: [app, readers], using: owner = current_user}
    grants: {app: [all], readers: [select with grant option]}
""")
    notes = schema.tables["notes"]  # type: ignore[attr-defined]
    assert notes.grants == {"app": ("delete", "insert", "references", "select", "trigger", "truncate", "update"),
                            "readers": ("select with grant option",)}
    assert notes.policies["p_notes_own"] == Policy("p_notes_own", "notes", "select", False, ("app", "readers"),
                                                   "owner = current_user")
    assert notes.exclusions["ex_notes_during"] == ExclusionConstraint("ex_notes_during", ("during WITH &&",),
                                                                      deferrable=True)
    assert schema.roles["app"] == Role("app", login=True, member_of=("readers",))  # type: ignore[attr-defined]


def test_grants_to_undeclared_roles_and_unknown_privileges_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, """module: m
tables:
  notes:
    columns:
      id: {type: integer, primary_key: true}
    grants: {ghost: [select], public: [fly]}
""")
    assert "role 'ghost' is not declared" in found
    assert "privilege 'fly' of public on table notes" in found


def test_function_attributes_and_settings_load_as_postgresql_keeps_them(tmp_path: Path) -> None:
    schema = load(tmp_path, """module: m
functions:
  secret:
    returns: text
    language: sql
    strict: true
    security_definer: true
    parallel: safe
    cost: 5
    settings: {search_path: '"$user", Public', work_mem: 64MB}
    grants: {}
    body: SELECT 's'
""")
    fn = schema.functions["secret"]  # type: ignore[attr-defined]
    assert (fn.strict, fn.parallel, fn.cost, dict(fn.grants)) == (True, "safe", 5.0, {})
    assert fn.settings == (("search_path", '"$user", public'), ("work_mem", "64MB"))
    sql = sections_to_sql(create_schema_sections(schema))  # type: ignore[arg-type]
    assert "SET search_path = '$user', 'public'" in sql
    assert "REVOKE EXECUTE ON FUNCTION secret() FROM PUBLIC;" in sql


def test_a_table_without_columns_loads_and_is_written_back(tmp_path: Path) -> None:
    schema = load(tmp_path, "module: m\ntables:\n  nothing:\n    columns: {}\n")
    assert schema.tables["nothing"].columns == ()  # type: ignore[attr-defined]
    texts = write_modules(schema, assign_modules(schema))  # type: ignore[arg-type]
    assert "    columns: {}\n" in texts["nothing"]


def test_grant_statements_take_an_object_from_one_set_of_rights_to_another() -> None:
    assert grant_statements("TABLE", ident("t"), {"a": ("insert", "select with grant option")},
                            {"a": ("select",), "public": ("select",)}) == [
        "REVOKE INSERT ON TABLE t FROM a;\n",
        "REVOKE GRANT OPTION FOR SELECT ON TABLE t FROM a;\n",
        "GRANT SELECT ON TABLE t TO PUBLIC;\n",
    ]


def test_each_key_of_an_object_keeps_the_line_and_column_of_its_value(tmp_path: Path) -> None:
    schema: Any = load(tmp_path, "module: shop\ntables:\n  items:\n    columns:\n"
                                 "      id: {type: uuid, primary_key: true}\n"
                                 "      price:\n        type: integer\n        default:   0\n"
                                 "      name: {type: text, default: \"''\"}\n")
    table = schema.tables["items"]
    price, name = table.column("price"), table.column("name")
    file = table.meta.pos.file
    assert file.endswith("shop.yaml")
    assert dict(price.meta.key_pos) == {"type": SourcePos(file, 7, 15), "default": SourcePos(file, 8, 20)}
    assert str(name.meta.at("default")) == f"{file}:9:35"
    assert name.meta.at("comment") == name.meta.pos == SourcePos(file, 9, 7)  # absent: the object itself
    assert list(name.meta.key_pos) == ["type", "default"] and len(name.meta.key_pos) == 2
    with pytest.raises(KeyError):
        name.meta.key_pos["comment"]
