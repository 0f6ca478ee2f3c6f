"""Generate + apply, end to end through the real CLI, checked in pg_catalog."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.fixtures.servers import require_extensions, shipped_extensions
from tests.helpers import REPO_ROOT, TestDatabase, cli_env, run_cli
from veza_schema.cli.common import Output
from veza_schema.cli.migrate import _ConsoleReporter
from veza_schema.sql.split import Statement

SAMPLE = REPO_ROOT / "tests" / "data" / "sample_schema"


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    out = tmp_path / "migrations"
    result = run_cli("generate", "--schema-dir", str(SAMPLE), "--migrations-dir", str(out))
    assert result.exit_code == 0, result.output
    return out


def _apply(database: TestDatabase, migrations: Path, *extra: str) -> str:
    result = run_cli("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations), *extra)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_apply_creates_exactly_the_declared_tables(database: TestDatabase, migrations: Path) -> None:
    _apply(database, migrations)
    rows = database.query("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        ORDER BY 1""")
    assert [r[0] for r in rows] == ["_sqlx_migrations", "accounts", "events", "teams", "user"]


def test_apply_creates_columns_with_types_nullability_and_defaults(database: TestDatabase,
                                                                   migrations: Path) -> None:
    _apply(database, migrations)
    rows = database.query("""
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = 'accounts'::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum""")
    assert rows == [
        ("id", "uuid", True, "gen_random_uuid()"),
        ("email", "character varying(255)", True, None),
        ("role", "account_role", True, "'member'::account_role"),
        ("team_id", "uuid", False, None),
        ("balance", "money_amount", False, None),
        ("created_at", "timestamp with time zone", True, "now()"),
        ("updated_at", "timestamp with time zone", True, "now()"),
    ]


def test_apply_creates_constraints_with_their_names_and_actions(database: TestDatabase,
                                                                migrations: Path) -> None:
    _apply(database, migrations)
    rows = database.query("""
        SELECT t.relname, c.conname, c.contype, c.confdeltype
        FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
        WHERE t.relnamespace = 'public'::regnamespace AND NOT t.relispartition
          AND t.relname <> '_sqlx_migrations' AND c.contype <> 'n'""")
    assert sorted(rows) == [
        ("accounts", "chk_accounts_email_format", "c", " "),
        ("accounts", "fk_accounts_teams", "f", "n"),
        ("accounts", "pk_accounts", "p", " "),
        ("accounts", "uq_accounts_email", "u", " "),
        ("events", "fk_events_accounts", "f", "c"),
        ("events", "pk_events", "p", " "),
        ("teams", "fk_teams_accounts", "f", "r"),
        ("teams", "pk_teams", "p", " "),
        ("user", "pk_user", "p", " "),
    ]


def test_apply_creates_the_declared_indexes(database: TestDatabase, migrations: Path) -> None:
    _apply(database, migrations)
    rows = database.query("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
        WHERE t.relnamespace = 'public'::regnamespace AND NOT t.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1""")
    assert [name for name, _ in rows] == [
        "idx_account_event_counts_account_id_unique", "idx_accounts_created_at_desc",
        "idx_accounts_email_lower_unique", "idx_accounts_team_id_btree",
        "idx_events_account_id_occurred_at_btree", "idx_events_payload_gin", "idx_teams_owner_id_btree",
    ]
    definitions = dict(rows)
    assert definitions["idx_accounts_created_at_desc"].endswith(
        "USING btree (created_at DESC) WHERE (team_id IS NOT NULL)")
    assert "INCLUDE (name)" in definitions["idx_teams_owner_id_btree"]
    assert "USING gin (payload)" in definitions["idx_events_payload_gin"]


def test_apply_creates_enums_types_views_triggers_and_comments(database: TestDatabase,
                                                                migrations: Path) -> None:
    _apply(database, migrations)
    assert database.query("SELECT enum_range(NULL::account_role)::text") == [("{member,admin}",)]
    assert database.query("SELECT relname, relkind FROM pg_class WHERE relname IN "
                          "('active_accounts', 'account_event_counts') ORDER BY 1") == [
        ("account_event_counts", "m"), ("active_accounts", "v")]
    assert database.query("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1") == [
        ("trg_accounts_updated_at",), ("trg_teams_updated_at",)]
    assert database.query("SELECT obj_description('accounts'::regclass, 'pg_class')") == [("People who log in",)]
    assert database.query("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'") == [("pg_trgm",)]


def test_apply_creates_current_and_future_partitions_and_a_default(database: TestDatabase,
                                                                   migrations: Path) -> None:
    _apply(database, migrations)
    names = [r[0] for r in database.query(
        "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'events'::regclass ORDER BY 1")]
    assert "events_default" in names
    months = database.query("SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval "
                            "'1 month', 'YYYYMM') FROM generate_series(0, 2) n")
    assert [f"events_p{m[0]}" for m in months] == [n for n in names if n != "events_default"]


def test_history_rows_match_sqlx(database: TestDatabase, migrations: Path) -> None:
    _apply(database, migrations)
    (up,) = sorted(migrations.glob("*.up.sql"))
    version = int(up.name.split("_", 1)[0])
    rows = database.query("SELECT version, description, success, checksum, execution_time > 0 "
                          "FROM _sqlx_migrations")
    assert rows == [(version, "initial schema", True, hashlib.sha384(up.read_bytes()).digest(), True)]


def test_second_apply_reports_nothing_to_do_and_changes_nothing(database: TestDatabase, migrations: Path) -> None:
    _apply(database, migrations)
    before = database.query("SELECT * FROM _sqlx_migrations")
    output = _apply(database, migrations)
    assert "Nothing to apply" in output
    assert database.query("SELECT * FROM _sqlx_migrations") == before


def test_apply_prints_a_summary_with_migrations_tables_and_indexes(database: TestDatabase,
                                                                    migrations: Path) -> None:
    output = _apply(database, migrations)
    assert "Applied 1 migration(s)" in output
    assert "4 tables" in output and "indexes" in output


def test_dry_run_prints_the_sql_and_touches_nothing(database: TestDatabase, migrations: Path) -> None:
    output = _apply(database, migrations, "--dry-run")
    assert "CREATE TABLE accounts" in output
    assert database.query("SELECT to_regclass('accounts'), to_regclass('_sqlx_migrations')") == [(None, None)]


def test_rollback_drops_everything_the_initial_migration_created(database: TestDatabase,
                                                                 migrations: Path) -> None:
    _apply(database, migrations)
    result = run_cli("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations))
    assert result.exit_code == 0, result.output
    leftovers = database.query("""
        SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
        UNION ALL SELECT t.typname FROM pg_type t WHERE t.typnamespace = 'public'::regnamespace
          AND t.typtype IN ('e', 'c') AND t.typrelid = 0
        UNION ALL SELECT p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')""")
    assert sorted(r[0] for r in leftovers) == ["_sqlx_migrations", "_sqlx_migrations_pkey"]
    assert database.query("SELECT count(*) FROM _sqlx_migrations") == [(0,)]


def test_whole_schema_applies_on_each_server(database_each_server: TestDatabase, migrations: Path) -> None:
    require_extensions(database_each_server.server, *shipped_extensions())
    _apply(database_each_server, migrations)
    assert database_each_server.query("SELECT count(*) FROM _sqlx_migrations WHERE success") == [(1,)]


def test_an_apply_of_files_a_previous_run_read_loads_neither_the_parser_nor_rich_nor_yaml(
        database: TestDatabase, migrations: Path, tmp_path: Path) -> None:
    """The second run's split and checks come from the disk cache (keyed by the file's bytes); its output,
    piped and uncoloured, is plain text."""
    env = {**cli_env(), "VEZA_CACHE_DIR": str(tmp_path / "cache")}
    _apply(database, migrations)  # another cache: this one is cold for the run below
    rolled_back = run_cli("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations),
                          env={"VEZA_CACHE_DIR": env["VEZA_CACHE_DIR"]})
    assert rolled_back.exit_code == 0, rolled_back.output
    first = _apply_reporting_modules(database, migrations, env)
    assert {"pglast", "pglast.parser"} <= first.modules  # cold: the up file is parsed
    run_cli("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations),
            env={"VEZA_CACHE_DIR": env["VEZA_CACHE_DIR"]})
    second = _apply_reporting_modules(database, migrations, env)
    assert "Applied 1 migration(s) (1 change(s))" in second.stdout
    assert not {name for name in second.modules if name.split(".")[0] in ("pglast", "rich", "yaml")}
    assert not {name for name in second.modules if name.startswith(("veza_schema.yaml", "veza_schema.model"))}
    assert database.query("SELECT count(*) FROM _sqlx_migrations WHERE success") == [(1,)]


@dataclass
class _Run:
    stdout: str
    modules: set[str]


def _apply_reporting_modules(database: TestDatabase, migrations: Path, env: dict[str, str]) -> _Run:
    script = ("import sys\nfrom veza_schema.cli import run\n"
              f"code = run(['apply', '--dsn', {database.dsn!r}, '--migrations-dir', {str(migrations)!r}])\n"
              "print('modules:', *sys.modules)\nsys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed, _, modules = proc.stdout.rpartition("modules:")
    return _Run(printed, set(modules.split()))


def test_plain_output_is_what_rich_prints_without_colour(capsys: pytest.CaptureFixture[str]) -> None:
    """apply's uncoloured output skips rich (and its import); it must stay rich's output, character for character."""
    from rich.console import Console

    buffer = io.StringIO()
    rich = Console(file=buffer, force_terminal=False, no_color=True, width=100, highlight=False, soft_wrap=True,
                   emoji=False)
    migration = SimpleNamespace(version=20260101000000, description="add [bold]x[/] and\ta tab \x1b[2J")
    statement = Statement("CREATE INDEX CONCURRENTLY i ON t (a)\n  -- second line", 7)
    for out in (Output(None), Output(rich)):
        reporter = _ConsoleReporter(out)
        reporter.migration_started(migration, "up")  # type: ignore[arg-type]
        reporter.statement_started(migration, statement, 1, 2)  # type: ignore[arg-type]
        reporter.statement_slow(migration, statement, 1, 2, 3.5)  # type: ignore[arg-type]
        reporter.migration_finished(migration, "up", 1.25)  # type: ignore[arg-type]
        reporter.migration_started(migration, "down")  # type: ignore[arg-type]
        reporter.migration_failed(migration, "down")  # type: ignore[arg-type]
        out.line(("Applied 1 migration(s)", "bold green"), " (1 change(s)) in 0.50s: 1 tables [red]x[/].")
        out.line("Database: postgresql://h/db ", ("(--dsn)", "dim"))
    plain = capsys.readouterr().out
    assert plain == buffer.getvalue()
    assert "\\x1b[2J" in plain and "[bold]x[/]" in plain and "\t" not in plain
