"""`veza-schema inspect`: a live database -> schema/-style YAML that loads back to the same model.

Round trip, on the sample schema and on the whole Veza schema: ``schema/`` is generated
and applied through the CLI into db1, db1 is inspected into a temporary directory, then

1. the inspected YAML, loaded, equals ``introspect(db1)``: exactly, except function bodies
   (compared without their outer newlines: the renderer wraps a body in newlines) and IN
   lists over varchar columns, which the writer puts back as IN lists because PostgreSQL's
   ``= ANY (ARRAY[...]::text[])`` text does not read back as itself (see
   ``yaml_writer.stable_expression``); those compare equal after sqlglot normalization;
2. the inspected YAML, generated and applied into db2, gives ``introspect(db2) ==
   introspect(db1)`` exactly — like is compared with like, since default and check texts
   come back from the catalog in ``pg_get_expr`` form; and
3. ``diff`` of db1 against the inspected YAML reports no drift.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, Server, TestDatabase, fresh_database, mismatches, run_cli
from veza_schema.db.introspect import IntrospectionStats, introspect
from veza_schema.model import Column, ForeignKey, Schema, Table
from veza_schema.sql.normalize import normalize_schema
from veza_schema.yaml.loader import load_schema
from veza_schema.yaml.writer import (
    assign_modules,
    modeline,
    prefix_module,
    read_module_mapping,
    scalar,
    stable_expression,
    write_modules,
)

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"
VEZA = REPO_ROOT / "schema"


def build(database: TestDatabase, schema_dir: Path, work: Path) -> None:
    """generate + apply through the CLI, as a user would."""
    migrations = work / "migrations"
    # Inspected YAML carries no waivers (the database has none): lint's gate is not what a round trip tests.
    generated = run_cli("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations),
                        "--no-verify")
    assert generated.exit_code == 0, generated.output
    applied = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert applied.exit_code == 0, applied.output


def live(database: TestDatabase) -> Schema:
    stats = IntrospectionStats()
    with database.connect() as conn:
        found = introspect(conn, stats=stats)
    assert stats.warnings == []
    return found


def stripped_bodies(schema: Schema) -> Schema:
    functions = {k: dataclasses.replace(f, body=f.body.strip()) for k, f in schema.functions.items()}
    return dataclasses.replace(schema, functions=functions)


def round_trip(server: Server, db1: TestDatabase, schema_dir: Path, tmp_path: Path, *inspect_args: str) -> Path:
    build(db1, schema_dir, tmp_path / "one")
    out = tmp_path / "inspected"
    result = run_cli("inspect", "--dsn", db1.dsn, "--out", str(out), *inspect_args)
    assert result.exit_code == 0, result.output
    first = live(db1)
    loaded = stripped_bodies(load_schema(out))
    assert mismatches(normalize_schema(stripped_bodies(first)), normalize_schema(loaded)) == []
    exact = mismatches(stripped_bodies(first), loaded)
    assert [m for m in exact if " IN (" not in m] == []  # IN lists over varchar: see stable_expression
    for db2 in fresh_database(server):
        build(db2, out, tmp_path / "two")
        assert mismatches(first, live(db2)) == []
    drift = run_cli("diff", "--dsn", db1.dsn, "--schema-dir", str(out), "--shadow-dsn", server.admin_dsn)
    assert drift.exit_code == 0, drift.output
    return out


def test_sample_schema_round_trips(pg_server: Server, database: TestDatabase, tmp_path: Path) -> None:
    out = round_trip(pg_server, database, SAMPLE, tmp_path, "--prefix-modules")
    assert sorted(p.stem for p in out.glob("*.yaml")) == ["accounts", "events", "other", "teams", "user"]
    accounts = (out / "accounts.yaml").read_text()
    # The style of schema/: flow-style columns, column-level keys under the loader's names.
    assert "      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}\n" in accounts
    assert "      email:      {type: varchar(255), unique: true}\n" in accounts
    assert "team_id:    {type: uuid, nullable: true, references: teams.id, on_delete: set null}" in accounts
    assert "applies_to: {has_column: updated_at}" in accounts
    events = (out / "events.yaml").read_text()
    assert "    primary_key: [id, occurred_at]\n" in events
    assert "partition_by: {range: [occurred_at], interval: month, premake: 2}" in events


def test_whole_veza_schema_round_trips_with_its_own_modules(pg_server: Server, database: TestDatabase,
                                                            tmp_path: Path) -> None:
    original = load_schema(VEZA)
    mapping: dict[str, list[str]] = {}
    for group in (original.tables, original.views, original.enums, original.composite_types, original.functions,
                  original.extensions):
        for name, item in group.items():
            mapping.setdefault(item.module, []).append(name)
    mapping_file = tmp_path / "modules.yaml"
    mapping_file.write_text(yaml.safe_dump(mapping))
    out = round_trip(pg_server, database, VEZA, tmp_path, "--modules", str(mapping_file))
    inspected = load_schema(out)
    assert {n: t.module for n, t in inspected.tables.items()} == {n: t.module for n, t in original.tables.items()}
    # Templated triggers come back as templates, not one block per table.
    assert "applies_to: {has_column: updated_at}" in "".join(p.read_text() for p in out.glob("*.yaml"))


def test_unconventional_names_stay_table_level() -> None:
    """Names the loader would not generate are written out; names it would generate are left to it."""
    source = yaml.safe_load("""
module: m
tables:
  teams:
    columns:
      id: {type: uuid, primary_key: true}
  users:
    columns:
      id: {type: uuid}
      email: {type: text}
      team_id: {type: uuid, references: teams.id, on_delete: cascade}
      owner_team_id: {type: uuid}
      backup_team_id: {type: uuid}
      manager_team_id: {type: uuid}
    primary_key: {name: users_pkey, columns: [id]}
    unique: {users_email_key: [email]}
    foreign_keys:
      users_owner_fkey: {columns: [owner_team_id], references: teams(id), on_delete: restrict}
      fk_users_teams_backup_team_id: {columns: [backup_team_id], references: teams(id), deferrable: true}
""")
    schema = _load_text(source)
    texts = write_modules(schema, assign_modules(schema))
    assert list(texts) == ["teams"]  # grouped by foreign keys: users references teams
    text = texts["teams"]
    assert "primary_key: {name: users_pkey, columns: [id]}" in text
    assert "users_email_key: [email]" in text
    assert "users_owner_fkey:" in text and "deferrable: true" in text
    assert "team_id:         {type: uuid, references: teams.id, on_delete: cascade}" in text
    assert _load_text(yaml.safe_load(text)) == schema


def _load_text(data: dict) -> Schema:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{data['module']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return load_schema(tmp)


@pytest.mark.parametrize("text", ["now()", "0", "'user'", "a: b", "x, y", "{a}", "yes", "#x", " lead", "-1", "",
                                  "true", "null", "~", "[1]", "ok # no"])
def test_scalars_read_back_unchanged(text: str) -> None:
    for flow in (False, True):
        loaded = yaml.safe_load(f"{{k: {scalar(text, flow=True)}}}" if flow else f"k: {scalar(text)}")
        assert loaded["k"] == text


def test_stable_expression() -> None:
    stored = "operation::text = ANY (ARRAY['INSERT'::character varying, 'it''s'::character varying]::text[])"
    assert stable_expression(stored) == "operation IN ('INSERT', 'it''s')"
    assert stable_expression("(role::text <> ALL (ARRAY['x'::character varying]::text[])) OR ok") == \
        "(role NOT IN ('x')) OR ok"
    assert stable_expression("status = ANY (ARRAY['a'::job_status])") == "status = ANY (ARRAY['a'::job_status])"


def test_module_assignment() -> None:
    assert prefix_module("user_sessions") == "user"
    assert prefix_module("users") == "users"
    assert prefix_module("_sqlx_migrations") == "other"
    assert read_module_mapping("auth: [users, sessions]\nchat: [rooms]\n") == {
        "users": "auth", "sessions": "auth", "rooms": "chat"}
    with pytest.raises(ValueError, match="both"):
        read_module_mapping("a: [t]\nb: [t]\n")


def test_inspect_refuses_to_overwrite_and_bad_mappings(database: TestDatabase, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("module: x\n")
    assert run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path)).exit_code == 2
    bad = tmp_path / "bad.txt"
    bad.write_text("- not a mapping\n")
    assert run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "o"), "--modules", str(bad)
                   ).exit_code == 2


def test_inspect_of_an_empty_database_writes_no_file_and_says_the_schema_is_empty(database: TestDatabase,
                                                                                tmp_path: Path) -> None:
    result = run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "schema"))
    assert result.exit_code == 0, result.output
    assert "Wrote 0 module file(s)" in result.stdout and "an empty schema" in result.stdout
    assert not list((tmp_path / "schema").glob("*.yaml"))


# -- the editor's modeline: the first line of schema/'s files -------------------------------------------
def test_inspected_files_start_with_the_modeline_of_the_shipped_files(database: TestDatabase, tmp_path: Path) -> None:
    """No project around: the files go to schema/ of a new one, which keeps the JSON Schema in docs/."""
    database.execute("CREATE TABLE t (id bigint PRIMARY KEY)")
    result = run_cli("inspect", "--dsn", database.dsn, "--out", "schema", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    shipped = (VEZA / "core.yaml").read_text().splitlines()[0]
    assert shipped == "# yaml-language-server: $schema=../docs/yaml-format.schema.json"
    written = [path.read_text() for path in (tmp_path / "schema").glob("*.yaml")]
    assert written and all(text.splitlines()[0] == shipped for text in written)
    assert ("Editors check the files against docs/yaml-format.schema.json (their first line): write it with "
            "`veza-schema json-schema --output docs/yaml-format.schema.json`.") in result.stdout


def test_the_modeline_names_the_project_roots_json_schema_from_any_out_dir(database: TestDatabase,
                                                                          tmp_path: Path) -> None:
    database.execute("CREATE TABLE t (id bigint PRIMARY KEY)")
    project = tmp_path / "project"
    (project / "tools").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[tool.veza-schema]\n")
    assert run_cli("json-schema", "--output", "docs/yaml-format.schema.json", cwd=project).exit_code == 0
    result = run_cli("inspect", "--dsn", database.dsn, "--out", "../db/adopted", cwd=project / "tools")
    assert result.exit_code == 0, result.output
    (written,) = (project / "db" / "adopted").glob("*.yaml")
    first = written.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../docs/yaml-format.schema.json"
    assert "Editors check" not in result.stdout  # the JSON Schema is there


@pytest.mark.parametrize(("place", "line"), [
    ("../docs/yaml-format.schema.json", "$schema=../docs/yaml-format.schema.json"),
    ("../my docs/100%.json", "$schema=../my%20docs/100%25.json"),
    ("../x\nmodule: planted/s.json", "$schema=../x%0Amodule:%20planted/s.json"),
])
def test_the_modeline_is_one_comment_line_whatever_the_path_holds(tmp_path: Path, place: str, line: str) -> None:
    out = tmp_path / "schema"
    text = modeline(out / place, out)
    assert text == f"# yaml-language-server: {line}\n"
    assert yaml.safe_load(text + "module: m\n") == {"module": "m"}


# -- adoption: grouping, counts, lint, inspect -> generate -> inspect --------------------------------


def test_tables_are_grouped_by_foreign_key_connectivity_with_hubs_on_their_own() -> None:
    def table(name: str, *targets: str) -> Table:
        fks = {f"fk_{name}_{t}": ForeignKey(f"fk_{name}_{t}", (f"{t}_id",), t, ("id",)) for t in targets}
        columns = (Column("id", "uuid"), *(Column(f"{t}_id", "uuid") for t in targets))
        return Table(name, columns, foreign_keys=fks)

    tables = [table("users"), table("orders", "users"), table("order_items", "orders", "products"),
              table("products"), table("posts", "users"), table("likes", "users", "posts"),
              table("sessions", "users"), table("settings")]
    schema = Schema(tables={t.name: t for t in tables})
    modules = assign_modules(schema).modules
    assert modules["users"] == "users"  # referenced by 4 tables: a hub, its own module
    assert modules["sessions"] == "users"  # alone, it references only the hub
    assert modules["orders"] == modules["order_items"] == modules["products"] == "orders"
    assert modules["posts"] == modules["likes"] == "posts"
    assert modules["settings"] == "settings"


def test_objects_of_another_schema_go_to_their_schema_module_and_a_mixed_mapping_is_refused(
        database: TestDatabase, tmp_path: Path) -> None:
    database.execute("CREATE SCHEMA audit; CREATE TABLE audit.events (id int); CREATE TABLE users (id int);")
    result = run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "out"))
    assert sorted(p.name for p in (tmp_path / "out").glob("*.yaml")) == ["audit.yaml", "users.yaml"], result.output
    assert (tmp_path / "out" / "audit.yaml").read_text().splitlines()[1:3] == ["module: audit", "schema: audit"]
    mapping = tmp_path / "mixed.yaml"
    mapping.write_text("everything: [users, audit.events]\n")
    refused = run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "mixed"), "--module-map", str(mapping))
    assert refused.exit_code == 2 and "module everything would hold objects of the schemas audit, public" \
        in refused.output, refused.output


def test_a_name_the_model_cannot_key_stops_inspect_naming_it(database: TestDatabase, tmp_path: Path) -> None:
    database.execute('CREATE TABLE "odd.name" (id int); CREATE TABLE fine (id int);')
    result = run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert 'cannot be written: table public.odd.name' in result.output
    assert not (tmp_path / "out").exists()


def test_facts_the_yaml_cannot_express_are_printed_and_exit_1(database: TestDatabase, tmp_path: Path) -> None:
    database.execute("CREATE TABLE t (id int) WITH (fillfactor = 60); CREATE DOMAIN d AS int;")
    result = run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "out"))
    assert result.exit_code == 1, result.output
    assert "not in the YAML (storage_parameter): table t: WITH (fillfactor=60)" in result.output
    assert "not in the YAML (domain): domain d: over integer" in result.output
    accepted = run_cli("inspect", "--dsn", database.dsn, "--out", str(tmp_path / "out"), "--force",
                       "--ignore-unmodeled", "storage_parameter", "--ignore-unmodeled", "domain")
    assert accepted.exit_code == 0, accepted.output


def _catalog_counts(database: TestDatabase) -> dict[str, int]:
    """Object counts straight from pg_catalog (user schemas; partitions and their indexes are not objects)."""
    relations = "c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) " \
                "AND c.relnamespace::regnamespace::text NOT LIKE 'pg_toast%' AND NOT c.relispartition " \
                "AND c.relname <> '_sqlx_migrations'"
    queries = {
        "tables": f"SELECT count(*) FROM pg_class c WHERE c.relkind IN ('r', 'p') AND {relations}",
        "views": f"SELECT count(*) FROM pg_class c WHERE c.relkind IN ('v', 'm') AND {relations}",
        "indexes": f"SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE {relations} "
                   "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
                   "AND k.contype IN ('p', 'u', 'x'))",
        "constraints": f"SELECT count(*) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE {relations} "
                       "AND k.contype IN ('p', 'u', 'c', 'f', 'x') AND k.conparentid = 0",
        "triggers": f"SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE {relations} "
                    "AND NOT t.tgisinternal AND t.tgparentid = 0",
        "functions": "SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
                     "AND p.proname NOT LIKE 'veza%' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE "
                     "d.objid = p.oid AND d.deptype = 'e')",
        "enums": "SELECT count(*) FROM pg_type t WHERE t.typtype = 'e' AND t.typnamespace = 'public'::regnamespace",
    }
    return {kind: database.query(sql)[0][0] for kind, sql in queries.items()}


def test_veza_adopted_by_inspect_keeps_every_object_lints_and_regenerates_the_same_files(
        pg_server: Server, database: TestDatabase, tmp_path: Path) -> None:
    """Issue 13.6: modules by foreign keys, the catalog's counts, lint clean, inspect -> generate -> inspect."""
    build(database, VEZA, tmp_path / "one")
    first = tmp_path / "first"
    result = run_cli("inspect", "--dsn", database.dsn, "--out", str(first))
    assert result.exit_code == 0, result.output
    modules = sorted(p.stem for p in first.glob("*.yaml"))
    assert len(modules) > 5, modules
    assert "tables:" not in (first / "other.yaml").read_text()  # every table has a module of its own group
    summary = result.output.split("Wrote ", 1)[1]
    for kind, count in _catalog_counts(database).items():
        assert f" {count} {kind}" in summary, (kind, count, summary)
    linted = run_cli("lint", "--schema-dir", str(first))
    assert linted.exit_code == 0, linted.output
    assert "from inspect:" in "".join(p.read_text() for p in first.glob("*.yaml"))
    for db2 in fresh_database(pg_server):
        build(db2, first, tmp_path / "two")
        second = tmp_path / "second"
        again = run_cli("inspect", "--dsn", db2.dsn, "--out", str(second))
        assert again.exit_code == 0, again.output
    assert {p.name: p.read_text() for p in first.glob("*.yaml")} == \
        {p.name: p.read_text() for p in second.glob("*.yaml")}
