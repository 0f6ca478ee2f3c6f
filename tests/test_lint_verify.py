"""Lint that PostgreSQL agrees with: the schema is applied on a real server, each error is a located finding.

The five cases of issue 11 (a default of the wrong type, a CHECK comparing an integer with
text, GIN on a plain uuid, an unknown type, SET NULL on a NOT NULL column) must each fail
``lint`` naming the object and its YAML line, on PostgreSQL 18 and 15, and ``generate`` must
refuse them. Servers are the suite's (``--shadow-dsn``); nothing here starts an embedded one.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.helpers import Server, invoke
from veza_schema.db.shadow import TEMPLATE_PREFIX, shadow_from_template, template_name
from veza_schema.lint.verify import verify
from veza_schema.sql.render import create_schema_sections, sections_to_sql
from veza_schema.yaml.loader import load_schema

TABLE = """module: shop
tables:
  customers:
    columns:
      id: {{type: uuid, primary_key: true, default: gen_random_uuid()}}
      created_at: {{type: timestamptz, default: now()}}
      updated_at: {{type: timestamptz, default: now()}}
  orders:
    columns:
      id: {{type: uuid, primary_key: true, default: gen_random_uuid()}}
      customer_id: {{type: uuid{nullable}, references: customers.id, on_delete: {on_delete}}}
      quantity: {{type: integer{quantity}}}
      reference: {{type: {reference_type}}}
      created_at: {{type: timestamptz, default: now()}}
      updated_at: {{type: timestamptz, default: now()}}
{extra}    indexes:
      idx_orders_customer_id_btree: {{columns: [customer_id]}}
{index}"""


def orders_yaml(*, nullable: str = "", on_delete: str = "cascade", quantity: str = "", reference_type: str = "uuid",
                extra: str = "", index: str = "") -> str:
    return TABLE.format(nullable=nullable, on_delete=on_delete, quantity=quantity, reference_type=reference_type,
                        extra=extra, index=index)


# Each case: YAML, the object path it is about, the YAML line of that object's key, what the message says.
FIVE_CASES = {
    "default-of-the-wrong-type": (orders_yaml(quantity=", default: \"'several'\""),
                                  "tables.orders.columns.quantity", 12, "several"),
    "check-integer-against-text": (orders_yaml(extra="    checks:\n      chk_orders_quantity_set: quantity <> "
                                                     "'none'::text\n"),
                                   "tables.orders.checks.chk_orders_quantity_set", 17, "text"),
    "gin-on-plain-uuid": (orders_yaml(index="      idx_orders_reference_gin: {columns: [reference], using: gin}\n"),
                          "tables.orders.indexes.idx_orders_reference_gin", 18, "gin"),
    "unknown-type": (orders_yaml(reference_type="order_reference"), "tables.orders.columns.reference", 13,
                     "order_reference"),
    "set-null-on-not-null": (orders_yaml(on_delete="set null"), "tables.orders.foreign_keys.fk_orders_customers",
                             11, "SET NULL"),
}
CLEAN = orders_yaml()


def write_schema(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "shop.yaml").write_text(text, encoding="utf-8")
    return directory


@pytest.fixture(params=["pg18", "pg15"])
def shadow(request: pytest.FixtureRequest) -> Server:
    """The server lint verifies on: the suite's PostgreSQL 18, then Debian's PostgreSQL 15."""
    return request.getfixturevalue("pg_server" if request.param == "pg18" else "pg15_server")


def no_migrations(parent: Path) -> Path:
    """An empty migrations directory (lint refuses a missing one, as every command does)."""
    (parent / "migrations").mkdir(exist_ok=True)
    return parent / "migrations"


def lint_json(schema_dir: Path, *args: str) -> tuple[int, dict, str]:
    result = invoke("lint", "--schema-dir", str(schema_dir), "--migrations-dir", str(no_migrations(schema_dir.parent)),
                    "--format", "json", *args)
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, document, result.stderr


@pytest.mark.parametrize("case", sorted(FIVE_CASES))
def test_each_issue_case_fails_lint_naming_the_object_and_its_yaml_line(case: str, shadow: Server,
                                                                        tmp_path: Path) -> None:
    text, path, line, words = FIVE_CASES[case]
    schema_dir = write_schema(tmp_path / "schema", text)
    code, document, stderr = lint_json(schema_dir, "--shadow-dsn", shadow.admin_dsn)
    assert code == 1, stderr
    errors = [f for f in document["findings"] if f["severity"] == "error" and not f["waived"]]
    assert [(f["object"], f["line"]) for f in errors] == [(path, line)], errors
    assert words in errors[0]["message"]
    assert errors[0]["file"].endswith("shop.yaml")


@pytest.mark.parametrize("case", sorted(c for c in FIVE_CASES if c != "set-null-on-not-null"))
def test_postgresql_itself_refuses_each_case_at_its_yaml_line(case: str, shadow: Server, tmp_path: Path) -> None:
    """Only the server's verdict (PG1xx): what the model rules say first, the server confirms."""
    text, path, line, _ = FIVE_CASES[case]
    schema_dir = write_schema(tmp_path / "schema", text)
    code, document, stderr = lint_json(schema_dir, "--select", "PG1", "--shadow-dsn", shadow.admin_dsn)
    assert code == 1, stderr
    [finding] = document["findings"]
    assert finding["code"].startswith("PG1") and finding["object"] == path and finding["line"] == line
    assert f"PostgreSQL {shadow.version()} refuses" in finding["message"]
    assert f"PostgreSQL {shadow.version()}." in document["verification"]


@pytest.mark.parametrize("case", sorted(FIVE_CASES))
def test_generate_refuses_each_case_and_writes_nothing(case: str, pg_server: Server, tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", FIVE_CASES[case][0])
    migrations = tmp_path / "migrations"
    result = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations),
                    "--shadow-dsn", pg_server.admin_dsn)
    assert result.exit_code == 1, result.output
    assert "generate refuses" in result.stderr and "--no-verify" in result.stderr
    assert "shop.yaml:" in result.stdout
    assert not migrations.exists()


def test_generate_with_no_verify_writes_and_says_so_in_the_header(pg_server: Server, tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", FIVE_CASES["unknown-type"][0])
    migrations = tmp_path / "migrations"
    result = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations), "--no-verify")
    assert result.exit_code == 0, result.output
    [up] = migrations.glob("*.up.sql")
    assert "-- NOT VERIFIED: written with --no-verify" in up.read_text()
    assert "--no-verify" in result.stderr


def test_generate_of_a_valid_schema_says_which_server_verified_it(pg_server: Server, tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", CLEAN)
    migrations = tmp_path / "migrations"
    result = invoke("generate", "--schema-dir", str(schema_dir), "--migrations-dir", str(migrations),
                    "--shadow-dsn", pg_server.admin_dsn)
    assert result.exit_code == 0, result.output
    assert "verified: PostgreSQL" in result.stdout
    [up] = migrations.glob("*.up.sql")
    assert "NOT VERIFIED" not in up.read_text()


def test_one_bad_object_does_not_hide_the_others(pg_server: Server, tmp_path: Path) -> None:
    """Every case of the issue in one schema: five findings, the CHECK on the failing column included."""
    text = orders_yaml(quantity=", default: \"'several'\"", reference_type="order_reference",
                       extra="    checks:\n      chk_orders_quantity_set: quantity <> 'none'::text\n",
                       index="      idx_orders_id_gin: {columns: [id], using: gin}\n")
    schema = load_schema(write_schema(tmp_path / "schema", text))
    verification = verify(schema, pg_server.admin_dsn)
    found = sorted((f.code, f.object) for f in verification.findings)
    assert found == [
        ("PG101", "tables.orders.checks.chk_orders_quantity_set"),
        ("PG101", "tables.orders.columns.reference"),
        ("PG101", "tables.orders.indexes.idx_orders_id_gin"),
        ("PG102", "tables.orders.columns.quantity"),
    ]


def test_findings_carry_postgresqls_detail_and_hint(pg_server: Server, tmp_path: Path) -> None:
    text = orders_yaml(extra="    checks:\n      chk_orders_quantity_set: quantity <> 'none'::text\n")
    schema = load_schema(write_schema(tmp_path / "schema", text))
    [finding] = verify(schema, pg_server.admin_dsn).findings
    assert "operator does not exist: integer <> text" in finding.message
    assert finding.fix.startswith("PostgreSQL's hint: No operator matches")
    generated = orders_yaml(extra="").replace(
        "      quantity: {type: integer}\n",
        "      quantity: {type: integer}\n      doubled: {type: integer, generated: quantity * 2}\n"
        "      quadrupled: {type: integer, generated: doubled * 2}\n")
    [finding] = verify(load_schema(write_schema(tmp_path / "generated", generated)), pg_server.admin_dsn).findings
    assert finding.code == "PG103" and "(DETAIL: A generated column cannot reference another" in finding.message


def test_statements_needing_a_failed_table_are_not_reported_again(pg_server: Server, tmp_path: Path) -> None:
    """A table PostgreSQL refuses takes its indexes and the FKs into it along: one finding, the rest not run."""
    text = orders_yaml().replace("  customers:\n", "  customers:\n    partition_by: {range: [created_at]}\n")
    schema = load_schema(write_schema(tmp_path / "schema", text))
    verification = verify(schema, pg_server.admin_dsn)
    assert [f.object for f in verification.findings] == ["tables.customers.primary_key"]
    assert verification.not_run >= 1
    assert "were not run" in verification.describe()


def test_a_clean_schema_is_cached_as_a_template_and_the_next_run_finds_it(pg_server: Server, tmp_path: Path) -> None:
    schema = load_schema(write_schema(tmp_path / "schema", CLEAN.replace("orders", "cached_orders")))
    first = verify(schema, pg_server.admin_dsn)
    second = verify(schema, pg_server.admin_dsn)
    assert not first.findings and not first.cached
    assert not second.findings and second.cached
    assert "cached template" in second.describe()
    name = template_name(sections_to_sql(create_schema_sections(schema)))
    with psycopg.connect(pg_server.admin_dsn) as conn:
        assert conn.execute("SELECT datallowconn FROM pg_database WHERE datname = %s", (name,)).fetchone() == (False,)


def test_a_refused_schema_leaves_no_database_behind(pg_server: Server, tmp_path: Path) -> None:
    def databases() -> set[str]:
        with psycopg.connect(pg_server.admin_dsn) as conn:
            return {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}

    before = databases()
    schema = load_schema(write_schema(tmp_path / "schema", FIVE_CASES["unknown-type"][0]))
    assert verify(schema, pg_server.admin_dsn).findings
    assert databases() - before == set()


def test_diff_can_copy_the_template_holding_the_applied_script(pg_server: Server, tmp_path: Path) -> None:
    schema = load_schema(write_schema(tmp_path / "schema", CLEAN.replace("orders", "copied_orders")))
    script = sections_to_sql(create_schema_sections(schema))
    with shadow_from_template(pg_server.admin_dsn, script) as dsn, psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'r' "
                                             "AND relnamespace = 'public'::regnamespace").fetchall()}
        copy = conn.info.dbname
    assert tables == {"customers", "copied_orders"}
    with psycopg.connect(pg_server.admin_dsn) as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database").fetchall()}
    assert copy not in names and template_name(script) in names
    assert template_name(script).startswith(TEMPLATE_PREFIX)


def test_at_most_three_templates_stay_on_a_server(pg_server: Server, tmp_path: Path) -> None:
    for i in range(5):
        schema = load_schema(write_schema(tmp_path / f"s{i}", CLEAN.replace("orders", f"kept_orders_{i}")))
        verify(schema, pg_server.admin_dsn)
    with psycopg.connect(pg_server.admin_dsn) as conn:
        kept = conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'veza\\_tpl\\_%'").fetchone()
    assert kept == (3,)


def test_offline_does_not_touch_a_server_and_says_so(tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", CLEAN)
    unreachable = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    code, document, stderr = lint_json(schema_dir, "--offline", "--shadow-dsn", unreachable)
    assert code == 0, stderr
    assert document["verification"] == "not verified against PostgreSQL (--offline)"
    text = invoke("lint", "--schema-dir", str(schema_dir), "--migrations-dir", str(no_migrations(tmp_path)),
                  "--offline")
    assert "not verified against PostgreSQL (--offline)" in text.stdout


def test_an_unreachable_server_exits_3_and_points_at_offline(tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", CLEAN)
    code, _, stderr = lint_json(schema_dir, "--shadow-dsn", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    assert code == 3
    assert "--offline" in stderr


def test_the_shadow_server_can_come_from_the_environment(pg_server: Server, tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", FIVE_CASES["gin-on-plain-uuid"][0])
    result = invoke("lint", "--schema-dir", str(schema_dir), "--migrations-dir", str(no_migrations(tmp_path)),
                    "--select", "PG1", env={"VEZA_SHADOW_DSN": pg_server.admin_dsn})
    assert result.exit_code == 1 and "PG101" in result.stdout


def test_a_server_finding_is_not_repeated_under_a_model_error_on_the_same_object(pg_server: Server,
                                                                                  tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", FIVE_CASES["unknown-type"][0])
    _, document, _ = lint_json(schema_dir, "--shadow-dsn", pg_server.admin_dsn)
    assert [f["code"] for f in document["findings"]] == ["PG012"]
    _, only_server, _ = lint_json(schema_dir, "--ignore", "PG012", "--shadow-dsn", pg_server.admin_dsn)
    assert [f["code"] for f in only_server["findings"]] == ["PG101"]


def test_a_waiver_cannot_silence_postgresql(pg_server: Server, tmp_path: Path) -> None:
    text = FIVE_CASES["unknown-type"][0].replace(
        "reference: {type: order_reference}", "reference: {type: order_reference, waive: {PG101: trust me}}")
    schema_dir = write_schema(tmp_path / "schema", text)
    _, document, _ = lint_json(schema_dir, "--select", "PG1,LNT", "--shadow-dsn", pg_server.admin_dsn)
    codes = sorted((f["code"], f["waived"]) for f in document["findings"])
    assert codes == [("LNT003", False), ("PG101", False)]


def test_verification_never_runs_a_views_query(pg_server: Server, tmp_path: Path) -> None:
    """schema/ is untrusted (lint verifies pull requests): a materialized view is created WITH NO DATA, so
    its query is analyzed by PostgreSQL but never executed (here it would divide by zero)."""
    text = CLEAN + ("views:\n  order_counts:\n    materialized: true\n"
                    "    query: SELECT count(*) / 0 AS boom FROM orders\n")
    schema = load_schema(write_schema(tmp_path / "schema", text))
    assert verify(schema, pg_server.admin_dsn).findings == ()
    broken = text.replace("FROM orders", "FROM no_such_table")
    [finding] = verify(load_schema(write_schema(tmp_path / "broken", broken)), pg_server.admin_dsn).findings
    assert finding.object == "views.order_counts" and "no_such_table" in finding.message


def test_diffs_shadow_never_runs_a_views_query_either(pg_server: Server, tmp_path: Path) -> None:
    """diff builds schema/ in a shadow database too: the same materialized view builds (WITH NO DATA), and
    its model is the one YAML declares (the introspector does not read whether a view is populated)."""
    from veza_schema.db.shadow import build_in_shadow

    text = CLEAN + ("views:\n  order_counts:\n    materialized: true\n"
                    "    query: SELECT count(*) / 0 AS boom FROM orders\n")
    built = build_in_shadow(load_schema(write_schema(tmp_path / "schema", text)), pg_server.admin_dsn)
    assert built.schema.views["order_counts"].materialized
    assert built.server == "--shadow-dsn"


def test_a_container_shadow_that_cannot_start_is_a_database_error_naming_offline(tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", CLEAN)
    result = invoke("lint", "--schema-dir", str(schema_dir), "--migrations-dir", str(no_migrations(tmp_path)),
                    "--shadow-dsn", "docker://postgres:15", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.exit_code == 3, result.output
    assert "cannot start a postgres:15 container" in result.stderr and "--offline" in result.stderr


def test_the_sources_key_changes_with_any_yaml_byte(tmp_path: Path) -> None:
    from veza_schema.lint.verify import source_key

    schema_dir = write_schema(tmp_path / "schema", CLEAN)
    first = source_key(schema_dir)
    assert source_key(schema_dir) == first
    (schema_dir / "shop.yaml").write_text(CLEAN + "\n", encoding="utf-8")
    assert source_key(schema_dir) != first


def test_a_second_lint_of_unchanged_sources_finds_the_template_and_an_edit_is_verified_again(
        pg_server: Server, tmp_path: Path) -> None:
    schema_dir = write_schema(tmp_path / "schema", CLEAN.replace("orders", "labelled_orders"))
    _, first, _ = lint_json(schema_dir, "--select", "PG1", "--shadow-dsn", pg_server.admin_dsn)
    _, second, _ = lint_json(schema_dir, "--select", "PG1", "--shadow-dsn", pg_server.admin_dsn)
    assert "kept as the template" in first["verification"]
    assert "cached template" in second["verification"]
    write_schema(schema_dir, FIVE_CASES["gin-on-plain-uuid"][0].replace("orders", "labelled_orders"))
    code, third, _ = lint_json(schema_dir, "--select", "PG1", "--shadow-dsn", pg_server.admin_dsn)
    assert code == 1 and [f["code"] for f in third["findings"]] == ["PG101"]
