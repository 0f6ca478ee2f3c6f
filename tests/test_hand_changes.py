"""Never silent: every catalog fact changed by hand on a converged database makes ``diff`` exit 1, named.

A database is built from a YAML schema and converged (``diff`` exits 0); then one fact is
changed by hand. Facts the YAML can express (a function made STRICT, a table made UNLOGGED,
RLS, a policy, a GRANT, a statistics target, an extension version...) are reported as drift
of that object; facts it cannot express (a rule, a storage parameter, an owner...) as
unmodeled drift of their kind, which ``--ignore-unmodeled KIND`` accepts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import Server, TestDatabase, invoke

ROLE = "hand_" + uuid.uuid4().hex[:8]

SCHEMA = f"""module: hand
extensions: [{{name: citext, version: "1.4"}}]
roles:
  {ROLE}: {{}}
enums:
  mood: [ok, bad]
sequences:
  numbers: {{start: 10}}
functions:
  add_one:
    returns: integer
    language: sql
    arguments: a integer
    body: SELECT a + 1
  touch:
    returns: trigger
    language: plpgsql
    body: |
      BEGIN
          RETURN NEW;
      END;
tables:
  items:
    columns:
      id:    {{type: integer, primary_key: true}}
      label: {{type: text, nullable: true}}
      other: {{type: text, nullable: true}}
      mood:  {{type: mood, default: "'ok'"}}
      n:     {{type: bigint, identity: by default}}
    checks:
      chk_items_id_positive: id > 0
    indexes:
      idx_items_label_btree: {{columns: [label]}}
    triggers:
      trg_items_touch: {{function: touch, timing: before, events: [update]}}
    grants: {{{ROLE}: [select]}}
  events:
    columns:
      id:         {{type: bigint}}
      created_at: {{type: timestamptz}}
    primary_key: [id, created_at]
    partition_by: {{range: [created_at], interval: month, premake: 1}}
views:
  item_labels:
    query: SELECT id, label FROM items
"""

# (what, SQL run by hand, words the diff output must hold)
MODELED = [
    ("function made STRICT", "ALTER FUNCTION add_one(integer) STRICT", "function add_one"),
    ("function given a SET clause", "ALTER FUNCTION add_one(integer) SET search_path = public", "function add_one"),
    ("table made UNLOGGED", "ALTER TABLE items SET UNLOGGED", "items UNLOGGED"),
    ("row-level security enabled", "ALTER TABLE items ENABLE ROW LEVEL SECURITY", "row-level security"),
    ("policy created", "CREATE POLICY p_items ON items USING (id > 10)", "policy p_items"),
    ("GRANT", f"GRANT INSERT ON items TO {ROLE}", "privileges"),
    ("REVOKE", f"REVOKE SELECT ON items FROM {ROLE}", "privileges"),
    ("statistics target", "ALTER TABLE items ALTER COLUMN label SET STATISTICS 500", "statistics target"),
    ("collation", 'ALTER TABLE items ALTER COLUMN other TYPE text COLLATE "C"', "collation"),
    ("extension version", "ALTER EXTENSION citext UPDATE TO '1.5'", "extension citext"),
    ("sequence options", "ALTER SEQUENCE numbers INCREMENT BY 5", "sequence numbers"),
    ("view grant", f"GRANT SELECT ON item_labels TO {ROLE}", "privileges"),
    ("INSTEAD OF trigger on a view", "CREATE TRIGGER trg_v INSTEAD OF INSERT ON item_labels FOR EACH ROW "
                                     "EXECUTE FUNCTION touch()", "trigger trg_v"),
    ("schema created", "CREATE SCHEMA extra", "schema extra"),
    ("table in another schema", "CREATE SCHEMA extra; CREATE TABLE extra.t (id int)", "extra.t"),
    ("deferrable constraint", "ALTER TABLE items DROP CONSTRAINT chk_items_id_positive; ALTER TABLE items "
                              "ADD CONSTRAINT uq_items_label UNIQUE (label) DEFERRABLE", "uq_items_label"),
    ("exclusion constraint", "CREATE EXTENSION IF NOT EXISTS btree_gist; ALTER TABLE items ADD CONSTRAINT "
                             "ex_items_label EXCLUDE USING gist (label WITH =)", "ex_items_label"),
    ("default privileges", f"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {ROLE}", "default privileges"),
    ("identity dropped", "ALTER TABLE items ALTER COLUMN n DROP IDENTITY", "identity"),
    ("serial sequence default", "CREATE SEQUENCE s2; ALTER TABLE items ALTER COLUMN id SET DEFAULT nextval('s2')",
     "default"),
]

# (kind, SQL run by hand, words the output must hold): facts the YAML has no place for.
UNMODELED = [
    ("rule", "CREATE RULE r_items AS ON DELETE TO items DO INSTEAD NOTHING", "rule items.r_items"),
    ("inheritance", "CREATE TABLE items_child () INHERITS (items)", "table items_child"),
    ("partition", "CREATE TABLE events_odd PARTITION OF events FOR VALUES FROM ('2001-01-01') TO ('2001-01-03')",
     "partition events_odd of events"),
    ("domain", "CREATE DOMAIN positive AS int CHECK (VALUE > 0)", "domain positive"),
    ("range_type", "CREATE TYPE floatrange AS RANGE (subtype = float8)", "range type floatrange"),
    ("routine", "CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", "procedure p"),
    ("trigger", "ALTER TABLE items DISABLE TRIGGER trg_items_touch", "trigger trg_items_touch on items"),
    ("constraint", "ALTER TABLE items ADD CONSTRAINT chk_items_label CHECK (label <> '') NOT VALID",
     "constraint chk_items_label on items"),
    ("index", "CLUSTER items USING idx_items_label_btree", "index idx_items_label_btree on items"),
    ("storage_parameter", "ALTER TABLE items SET (fillfactor = 50)", "table items"),
    ("replica_identity", "ALTER TABLE items REPLICA IDENTITY FULL", "table items"),
    ("column_storage", "ALTER TABLE items ALTER COLUMN label SET STORAGE EXTERNAL", "column items.label"),
    ("column_storage", "ALTER TABLE items ALTER COLUMN label SET (n_distinct = 10)", "column items.label"),
    ("column_grant", f"GRANT UPDATE (label) ON items TO {ROLE}", "column items.label"),
    ("type_grant", "REVOKE USAGE ON TYPE mood FROM PUBLIC", "enum mood"),
    ("schema_privileges", "REVOKE USAGE ON SCHEMA public FROM PUBLIC", "schema public"),
    ("owner", f"ALTER TABLE items OWNER TO {ROLE}", "table items"),
    ("comment", "COMMENT ON INDEX idx_items_label_btree IS 'by hand'", "comment on index idx_items_label_btree"),
    ("comment", "COMMENT ON CONSTRAINT chk_items_id_positive ON items IS 'by hand'",
     "comment on constraint chk_items_id_positive"),
    ("identity", "ALTER TABLE items ALTER COLUMN n SET START WITH 100", "column items.n"),
    ("statistics", "CREATE STATISTICS st_items ON label, other FROM items", "statistics st_items"),
    ("collation", "CREATE COLLATION my_c (provider = libc, locale = 'C')", "collation public.my_c"),
    ("operator", "CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = int4eq)", "operator"),
    ("text_search", "CREATE TEXT SEARCH CONFIGURATION my_cfg (COPY = english)",
     "text search configuration my_cfg"),
    ("conversion", "CREATE CONVERSION my_conv FOR 'UTF8' TO 'LATIN1' FROM utf8_to_iso8859_1", "conversion my_conv"),
    ("cast", "CREATE CAST (integer AS mood) WITH INOUT", "cast integer AS mood"),
    ("access_method", "CREATE ACCESS METHOD my_am TYPE INDEX HANDLER bthandler", "access method my_am"),
    ("foreign_server", "CREATE FOREIGN DATA WRAPPER my_fdw", "foreign data wrapper my_fdw"),
    ("event_trigger", "CREATE FUNCTION on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$; "
                      "CREATE EVENT TRIGGER et_ddl ON ddl_command_end EXECUTE FUNCTION on_ddl()",
     "event trigger et_ddl"),
    ("publication", "CREATE PUBLICATION pub_items FOR TABLE items", "publication pub_items"),
    ("name", 'CREATE TABLE "odd.name" (id int)', "odd.name"),
]


@pytest.fixture(scope="module")
def schema_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hand_schema")
    (root / "hand.yaml").write_text(SCHEMA, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def converged(pg_server: Server, schema_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A template database built from SCHEMA by generate + apply (each test copies it)."""
    name = "hand_" + uuid.uuid4().hex[:10]
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    migrations = tmp_path_factory.mktemp("hand_migrations")
    generated = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations),
                       "--no-verify")  # a minimal schema: lint would ask for uuid keys and timestamps
    assert generated.exit_code == 0, generated.output
    applied = invoke("apply", "--dsn", pg_server.dsn_for(name), "--migrations-dir", str(migrations))
    assert applied.exit_code == 0, applied.output
    yield name
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def copy(pg_server: Server, converged: str) -> Iterator[TestDatabase]:
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{converged}"')
    try:
        yield TestDatabase(name, pg_server.dsn_for(name), pg_server)
    finally:
        with psycopg.connect(pg_server.admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def diff(database: TestDatabase, schema_dir: Path, *args: str) -> tuple[int, str]:
    result = invoke("diff", "--dsn", database.dsn, "--schema-dir", str(schema_dir), "--shadow-dsn",
                    database.server.admin_dsn, *args)
    return result.exit_code, " ".join(result.output.split())


def test_the_converged_database_has_no_drift(copy: TestDatabase, schema_dir: Path) -> None:
    code, output = diff(copy, schema_dir)
    assert code == 0, output


@pytest.mark.parametrize(("what", "sql", "words"), MODELED, ids=[m[0] for m in MODELED])
def test_a_modeled_fact_changed_by_hand_is_drift(copy: TestDatabase, schema_dir: Path, what: str, sql: str,
                                                  words: str) -> None:
    copy.execute(sql)
    code, output = diff(copy, schema_dir)
    assert code == 1, output
    assert words in output, output
    assert "No drift" not in output


@pytest.mark.parametrize(("kind", "sql", "words"), UNMODELED, ids=[f"{u[0]}-{i}" for i, u in enumerate(UNMODELED)])
def test_an_unmodeled_fact_changed_by_hand_is_drift_named_by_kind(copy: TestDatabase, schema_dir: Path, kind: str,
                                                                  sql: str, words: str) -> None:
    copy.execute(sql)
    code, output = diff(copy, schema_dir)
    assert code == 1, output
    assert words in output and f"[{kind}," in output, output


def test_a_role_attribute_changed_by_hand_is_drift(copy: TestDatabase, schema_dir: Path) -> None:
    copy.execute(f"ALTER ROLE {ROLE} LOGIN")
    try:
        code, output = diff(copy, schema_dir)
    finally:
        copy.execute(f"ALTER ROLE {ROLE} NOLOGIN")  # roles are cluster-wide: other tests share this one
    assert code == 1 and f"role {ROLE}" in output, output


def test_ignore_unmodeled_accepts_one_kind_and_not_the_others(copy: TestDatabase, schema_dir: Path) -> None:
    copy.execute("ALTER TABLE items SET (fillfactor = 50); "
                 "CREATE RULE r_items AS ON DELETE TO items DO INSTEAD NOTHING")
    code, output = diff(copy, schema_dir, "--ignore-unmodeled", "storage_parameter")
    assert code == 1 and "[rule," in output and "storage_parameter," not in output, output
    code, output = diff(copy, schema_dir, "--ignore-unmodeled", "storage_parameter", "--ignore-unmodeled", "rule")
    assert code == 0, output
    assert "accepted: storage_parameter, rule" in output


def test_an_unknown_unmodeled_kind_is_a_usage_error(copy: TestDatabase, schema_dir: Path) -> None:
    code, output = diff(copy, schema_dir, "--ignore-unmodeled", "rules")
    assert code == 2
    assert "unknown unmodeled kind(s) rules" in output


def test_reconciling_sql_warns_before_each_statement_that_destroys_data(copy: TestDatabase, schema_dir: Path) -> None:
    copy.execute("CREATE TABLE scratch (id int); ALTER TABLE items ADD COLUMN notes text; "
                 "CREATE SEQUENCE extra_numbers")
    result = invoke("diff", "--dsn", copy.dsn, "--schema-dir", str(schema_dir), "--shadow-dsn",
                    copy.server.admin_dsn, "--format", "sql")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    for statement, warning in (("DROP TABLE scratch;", "DROP TABLE scratch deletes its rows"),
                               ("ALTER TABLE items DROP COLUMN notes;", "DROP COLUMN items.notes deletes its values"),
                               ("DROP SEQUENCE extra_numbers;", "DROP SEQUENCE extra_numbers loses its current value")):
        position = lines.index(statement)
        assert lines[position - 1] == f"-- WARNING: destroys data: {warning}", lines[position - 2:position + 1]
