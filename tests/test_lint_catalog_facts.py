"""Catalog facts: one answer, PostgreSQL's, for the planner, the change policy and lint.

The built-in table (``sql/builtin_catalog.py``) is generated from PostgreSQL's catalog; these
tests compare it with the test server's, check the answers rules rely on against PostgreSQL 15
as well, and feed the same default expression to the planner, the policy and lint.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.helpers import REPO_ROOT, Server
from veza_schema.db.catalog import catalog_facts
from veza_schema.diff.changes import AddColumn
from veza_schema.diff.plan import UnsafeChangeError, build_plan, is_volatile
from veza_schema.errors import MigrationFileError
from veza_schema.lint import lint
from veza_schema.lint.registry import LintContext
from veza_schema.migrations.snapshot import SNAPSHOT_FILE, read_snapshot, read_snapshot_columns, write_snapshot
from veza_schema.model import Column, Extension, Function, PrimaryKey, Schema, Table
from veza_schema.policy.classify import classify
from veza_schema.sql import builtin_catalog
from veza_schema.sql.facts import builtin_facts

REGENERATE = ("regenerate veza_schema/sql/builtin_catalog.py from this server's catalog "
              "(veza_schema.db.catalog.builtin_catalog_source says how)")


def live_facts(server: Server):  # type: ignore[no-untyped-def]
    with psycopg.connect(server.admin_dsn) as conn:
        return catalog_facts(conn), conn.info.server_version // 10000


def test_the_built_in_table_is_the_servers_catalog(pg_server: Server) -> None:
    live, major = live_facts(pg_server)
    table = builtin_facts()
    if not builtin_catalog.SERVER.startswith(f"PostgreSQL {major}."):
        pytest.skip(f"the table was read from {builtin_catalog.SERVER}, the test server runs {major}")
    assert dict(live.types) == dict(table.types), REGENERATE
    assert set(live.opclasses) == set(table.opclasses), REGENERATE
    assert set(live.casts) == set(table.casts), REGENERATE


def test_the_live_facts_are_read_once_per_server_version(pg_server: Server) -> None:
    with psycopg.connect(pg_server.admin_dsn) as conn:
        assert catalog_facts(conn) is catalog_facts(conn)


@pytest.mark.parametrize("fixture", ["pg_server", "pg15_server"])
def test_the_answers_rules_rely_on_hold_on_each_server(fixture: str, request: pytest.FixtureRequest) -> None:
    """What the offline table says about the issue's cases is what PostgreSQL 18 and 15 say."""
    live, _ = live_facts(request.getfixturevalue(fixture))
    for facts in (live, builtin_facts()):
        assert facts.has_default_opclass("gin", "uuid") is False
        assert facts.has_default_opclass("gin", "text[]") is True
        assert facts.has_default_opclass("btree", "character varying(20)") is True
        assert facts.type_exists("order_reference", Schema()) is False
        assert facts.type_exists("timestamp(3) with time zone") is True
        assert facts.cast_context("text", "integer") == "e"
        assert facts.cast_context("integer", "bigint") == "i"
        assert facts.comparable("integer", "text") is False
        assert facts.comparable("integer", "numeric") is True


def test_an_extension_adds_its_facts_only_to_a_schema_declaring_it() -> None:
    facts = builtin_facts()
    with_btree_gin = Schema(extensions={"btree_gin": Extension("btree_gin")})
    assert facts.has_default_opclass("gin", "uuid") is False
    assert facts.has_default_opclass("gin", "uuid", with_btree_gin) is True
    with_citext = Schema(extensions={"citext": Extension("citext")})
    assert facts.type_exists("citext", Schema()) is False
    assert facts.type_exists("citext", with_citext) is True
    with_trgm = Schema(extensions={"pg_trgm": Extension("pg_trgm")})
    assert facts.has_opclass("gin", "gin_trgm_ops", Schema()) is False
    assert facts.has_opclass("gin", "gin_trgm_ops", with_trgm) is True


def test_an_extension_the_table_does_not_know_makes_type_questions_unanswerable() -> None:
    unknown = Schema(extensions={"postgis": Extension("postgis")})
    assert builtin_facts().type_exists("geometry", unknown) is None
    assert builtin_facts().has_default_opclass("gist", "geometry", unknown) is None


# -- one volatility verdict -------------------------------------------------------------------------
def _tables(column: Column | None, functions: dict[str, Function] | None = None,
            extensions: tuple[str, ...] = ()) -> Schema:
    columns = (Column("id", "uuid", default="gen_random_uuid()"),) + ((column,) if column else ())
    table = Table("accounts", columns, primary_key=PrimaryKey("pk_accounts", ("id",)))
    return Schema(tables={"accounts": table}, functions=functions or {},
                  extensions={name: Extension(name) for name in extensions})


_OWN = {"next_code": Function("next_code", "", "text", "sql", "SELECT 'x'", volatility="stable"),
        "roll_dice": Function("roll_dice", "", "integer", "sql", "SELECT 4", volatility="volatile")}


@pytest.mark.parametrize(("default", "extensions", "rewrites"), [
    ("gen_random_uuid()", (), True),  # built-in, volatile
    ("clock_timestamp()", (), True),
    ("now()", (), False),  # built-in, stable
    ("CURRENT_TIMESTAMP", (), False),  # an SQL value function, not a pg_proc entry
    ("'draft'", (), False),
    ("lower('A')", (), False),
    ("next_code()", (), False),  # the schema's own function, declared stable
    ("roll_dice()", (), True),  # the schema's own function, declared volatile
    ("uuid_generate_v4()", (), True),  # an extension's function the schema does not declare: unknown
    ("similarity('a', 'b')", ("pg_trgm",), False),  # declared extension: its catalog says immutable
    ("no_such_function()", (), True),  # unknown = volatile
])
def test_planner_policy_and_lint_give_one_verdict_on_a_default(default: str, extensions: tuple[str, ...],
                                                               rewrites: bool) -> None:
    column = Column("code", "text", nullable=True, default=default)
    before, after = _tables(None, _OWN, extensions), _tables(column, _OWN, extensions)
    change = AddColumn("accounts", column)

    planner = is_volatile(default, after)
    try:
        build_plan([change], before, after)
        refused = False
    except UnsafeChangeError:
        refused = True
    [decision] = [d for d in classify([change], before, after).decisions]
    policy = decision.code == "POL104"
    report = lint(after, select=["PG017"], context=LintContext(builtin_facts(), before))
    linted = [f.object for f in report.active] == ["tables.accounts.columns.code"]

    assert (planner, refused, policy, linted) == (rewrites,) * 4


def test_pg017_reads_the_same_tables_and_columns_from_the_snapshot_file_as_from_its_model(tmp_path: Path) -> None:
    column = Column("code", "text", nullable=True, default="roll_dice()")
    before, after = _tables(None, _OWN, ()), _tables(column, _OWN, ())
    write_snapshot(tmp_path, before)
    from_file = lint(after, select=["PG017"],
                     context=LintContext(builtin_facts(), previous_columns=lambda: read_snapshot_columns(tmp_path)))
    from_model = lint(after, select=["PG017"], context=LintContext(builtin_facts(), before))
    assert [f.object for f in from_file.active] == [f.object for f in from_model.active] == [
        "tables.accounts.columns.code"]


def test_the_shipped_snapshot_read_for_its_columns_matches_the_model_it_decodes_to() -> None:
    migrations = REPO_ROOT / "migrations"
    snapshot = read_snapshot(migrations)
    assert snapshot is not None
    assert read_snapshot_columns(migrations) == {
        name: frozenset(c.name for c in table.columns) for name, table in snapshot.tables.items()}


def test_a_snapshot_unreadable_for_its_columns_is_a_migration_file_error(tmp_path: Path) -> None:
    (tmp_path / SNAPSHOT_FILE).write_text('{"tables": {"t": {"columns": 3}}}', encoding="utf-8")
    with pytest.raises(MigrationFileError, match="unreadable snapshot"):
        read_snapshot_columns(tmp_path)
