"""Crash consistency at every statement boundary of ``apply`` and ``rollback``.

The migration set is what ``generate`` writes for a realistic change: the initial migration,
then one change that becomes four files (``drop_indexes`` and ``concurrent`` outside a
transaction, ``enum_values`` and ``main`` inside one: DROP INDEX CONCURRENTLY, ADD VALUE, a
column, a foreign key and a CHECK added NOT VALID then validated, SET NOT NULL through a
CHECK, a UNIQUE built concurrently, an index built concurrently), then a transactional file
adding a table. The base database has the initial migration applied and rows in its tables.

For each boundary N (the moment before the process sends its N-th SQL statement, on any
connection: see ``tests/crash_driver.py``), the real CLI is stopped dead there: SIGKILL of the
process, or, for a sample, an immediate server stop (``pg_ctl stop -m immediate``, a power cut)
and a restart. Then, on that database:

1. ``status`` explains the state: exit 0 only when every migration is applied, else exit 1
   naming the pending or failed ones;
2. the history tells the truth: with no failed row, the applied versions are a prefix of the
   set and the schema (introspected, NOT VALID constraints and INVALID indexes included) is
   exactly the one a clean run of that prefix gives; no row was lost;
3. recovery as ``status`` and the error messages instruct (``resolve V --rolled-back`` for a
   failed file, whose statements are idempotent, then ``apply``) reaches exactly the target
   schema, and ``rollback`` then returns exactly to the base.

The exhaustive runs (every boundary, both directions, PostgreSQL 18 and 15) are marked
``slow`` (``make test-slow``); ``make test`` runs an evenly spread sample of them.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.crash import OwnServer, drive, own_server_fixture, sample, wait_for_sessions_to_end
from tests.factories import BASE_YAML, ROWS
from tests.helpers import REPO_ROOT, invoke
from veza_schema.db.introspect import IntrospectionStats, introspect
from veza_schema.migrations.files import read_migrations
from veza_schema.model import Schema
from veza_schema.sql.split import split_statements

SAMPLE = 3  # boundaries per direction and server in `make test` (evenly spread, first and last included)
SERVER_STOP_SAMPLE = 1  # boundaries per direction and server stopped by an immediate server stop

BASE = BASE_YAML.replace("      title:      {type: text}\n      created_at: {type: timestamptz, default: now()}\n",
                         "      title:      {type: text}\n      created_at: {type: timestamptz, default: now()}\n"
                         "    indexes:\n      idx_posts_user_id: {columns: [user_id]}\n")
CHANGED = (BASE
           .replace("user_role: [user, admin]", "user_role: [user, moderator, admin]")
           .replace("display_name: {type: text, nullable: true}", "display_name: {type: text}")
           .replace("      updated_at:   {type: timestamptz, default: now()}\n",
                    "      updated_at:   {type: timestamptz, default: now()}\n    unique:\n"
                    "      uq_users_email: [email]\n")
           .replace("    indexes:\n      idx_posts_user_id: {columns: [user_id]}\n",
                    "    indexes:\n      idx_posts_created_at: {columns: [created_at desc]}\n"
                    "    checks:\n      chk_posts_title_length: \"length(title) < 500\"\n"
                    "    foreign_keys:\n      fk_posts_users: {columns: [user_id], references: users(id), "
                    "on_delete: cascade}\n")
           .replace("      name: {type: text}\n",
                    "      name: {type: text}\n      slug: {type: text, nullable: true}\n"))
ADD_TABLE = """\
  comments:
    columns:
      id:      {type: uuid, primary_key: true, default: gen_random_uuid()}
      post_id: {type: uuid, references: posts.id, on_delete: cascade}
      body:    {type: text}
    indexes:
      idx_comments_post_id: {columns: [post_id]}
"""
COUNTS = "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM posts), (SELECT count(*) FROM tags)"


own_server = own_server_fixture()


# -- the migration set and its references --------------------------------------------------------------
@dataclass
class CrashSet:
    own: OwnServer
    migrations: Path
    versions: list[int]  # every migration, the initial one first
    base_template: str  # initial applied, rows inserted
    full_template: str  # everything applied
    # Schema and introspection warnings with versions[: j + 1] applied: reached by applying them (up), or by
    # rolling the others back from the full set (down: a validated constraint stays validated after the
    # rollback of its VALIDATE, which has no undo, so the two differ in NOT VALID warnings only).
    references: list[tuple[Schema, list[str]]]
    rows: tuple[int, ...]
    references_down: list[tuple[Schema, list[str]]] = field(default_factory=list)
    thorough: bool = False  # also roll back after recovering from an interrupted apply (the slow runs)
    boundaries: dict[str, int] = field(default_factory=dict)

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.own.server.admin_dsn, autocommit=True)

    def database_from(self, template: str) -> str:
        name = "c_" + uuid.uuid4().hex[:12]
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def dsn(self, name: str) -> str:
        return self.own.server.dsn_for(name)

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def observe(dsn: str) -> tuple[Schema, list[str]]:
    stats = IntrospectionStats()
    with psycopg.connect(dsn, autocommit=True) as conn:
        return introspect(conn, stats=stats), sorted(stats.warnings)


def cli_ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def build_set(own: OwnServer, directory: Path) -> CrashSet:
    schema_dir, migrations = directory / "schema", directory / "migrations"
    schema_dir.mkdir(parents=True)
    # a minimal schema (posts has no updated_at): lint's gate is not what this is about
    dirs = ("--schema-dir", str(schema_dir), "--migrations-dir", str(migrations), "--no-verify")
    assert BASE != BASE_YAML and CHANGED.count("\n") == BASE.count("\n") + 7, "an anchor did not match"
    (schema_dir / "app.yaml").write_text(BASE)
    cli_ok("generate", *dirs)
    (schema_dir / "app.yaml").write_text(CHANGED)
    approved = ("--rfc", "RFC-0001")  # the change policy asks an RFC for these changes: not what this is about
    cli_ok("generate", *dirs, "--name", "tighten_users_and_posts", *approved)
    (schema_dir / "app.yaml").write_text(CHANGED + ADD_TABLE)
    cli_ok("generate", *dirs, "--name", "add_comments", *approved)
    files = read_migrations(migrations)
    versions = [m.version for m in files]
    assert len(files) >= 5 and any(m.no_transaction for m in files) and not files[-1].no_transaction, \
        [m.label for m in files]

    server = own.server
    base = "crash_base_" + uuid.uuid4().hex[:8]
    with psycopg.connect(server.admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{base}" TEMPLATE template0')
    dsn = server.dsn_for(base)
    cli_ok("apply", "--dsn", dsn, "--migrations-dir", str(migrations), "--to", str(versions[0]))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(ROWS)
        row = conn.execute(COUNTS).fetchone()
    assert row is not None
    crash_set = CrashSet(own, migrations, versions, base, "", [], tuple(int(x) for x in row))
    walk = crash_set.database_from(base)
    references = [observe(crash_set.dsn(walk))]
    for version in versions[1:]:
        cli_ok("apply", "--dsn", crash_set.dsn(walk), "--migrations-dir", str(migrations), "--to", str(version))
        references.append(observe(crash_set.dsn(walk)))
    crash_set.references = references
    crash_set.full_template = "crash_full_" + uuid.uuid4().hex[:8]
    with crash_set.admin() as conn:
        conn.execute(f'ALTER DATABASE "{walk}" RENAME TO "{crash_set.full_template}"')
    walk = crash_set.database_from(crash_set.full_template)
    down = [observe(crash_set.dsn(walk))]
    for version in reversed(versions[:-1]):
        cli_ok("rollback", "--dsn", crash_set.dsn(walk), "--migrations-dir", str(migrations), "--to", str(version),
               "--allow-data-loss")
        down.insert(0, observe(crash_set.dsn(walk)))
    crash_set.drop(walk)
    crash_set.references_down = down
    return crash_set


@pytest.fixture(scope="module")
def crash_set(own_server: OwnServer, tmp_path_factory: pytest.TempPathFactory) -> CrashSet:
    return build_set(own_server, tmp_path_factory.mktemp("crash"))


# -- running the CLI up to a boundary --------------------------------------------------------------------
COMMANDS = {
    "apply": ("base_template", ("apply",)),
    "rollback": ("full_template", ("rollback", "--to", "{initial}", "--allow-data-loss")),
}


def command_args(crash_set: CrashSet, direction: str, dsn: str) -> list[str]:
    _, args = COMMANDS[direction]
    return [a.format(initial=crash_set.versions[0]) for a in args] + [
        "--dsn", dsn, "--migrations-dir", str(crash_set.migrations)]


def count_boundaries(crash_set: CrashSet, direction: str, tmp: Path) -> int:
    if direction not in crash_set.boundaries:
        template, _ = COMMANDS[direction]
        name = crash_set.database_from(getattr(crash_set, template))
        try:
            outcome = drive("count", 0, command_args(crash_set, direction, crash_set.dsn(name)),
                            tmp / "count")
        finally:
            crash_set.drop(name)
        count, code = outcome.split()
        assert code == "0", outcome
        crash_set.boundaries[direction] = int(count)
    return crash_set.boundaries[direction]


# -- the checks after a crash ------------------------------------------------------------------------------
def history(dsn: str) -> list[tuple[int, bool]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('_sqlx_migrations')").fetchone() == (None,):
            return []
        return [(int(v), bool(s)) for v, s in
                conn.execute("SELECT version, success FROM _sqlx_migrations ORDER BY version").fetchall()]


def check_after_crash(crash_set: CrashSet, dsn: str, where: str, direction: str) -> list[str]:
    """Every broken promise after a crash, as readable lines (empty: the crash was harmless)."""
    problems: list[str] = []
    rows = history(dsn)
    applied = [v for v, ok in rows if ok]
    failed = [v for v, ok in rows if not ok]
    migrations = ("--migrations-dir", str(crash_set.migrations))

    status = invoke("status", "--dsn", dsn, *migrations)
    complete = applied == crash_set.versions and not failed
    if status.exit_code != (0 if complete else 1):
        problems.append(f"{where}: status exit {status.exit_code} for history {rows}:\n{status.output}")
    if failed and "failed" not in status.output:
        problems.append(f"{where}: status does not name the failed migration {failed}:\n{status.output}")
    if not complete and not failed and "pending" not in status.output:
        problems.append(f"{where}: status does not name the pending migrations:\n{status.output}")

    if not failed:
        if applied != crash_set.versions[: len(applied)]:
            problems.append(f"{where}: the applied versions {applied} are not a prefix of {crash_set.versions}")
        else:
            schema, warnings = observe(dsn)
            references = crash_set.references if direction == "apply" else crash_set.references_down
            expected, expected_warnings = references[len(applied) - 1]
            if schema != expected or warnings != expected_warnings:
                problems.append(f"{where}: the history lists {len(applied)} migration(s) but the schema is not "
                                f"what they give (warnings {warnings}, expected {expected_warnings})")
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute(COUNTS).fetchone() != crash_set.rows:
            problems.append(f"{where}: rows lost")

    for version in failed:  # as instructed: the file's statements are idempotent, so re-run it
        result = invoke("resolve", str(version), "--rolled-back", "--dsn", dsn, *migrations)
        if result.exit_code != 0:
            problems.append(f"{where}: resolve {version} --rolled-back failed:\n{result.output}")
    result = invoke("apply", "--dsn", dsn, *migrations)
    if result.exit_code != 0:
        problems.append(f"{where}: apply after the crash failed:\n{result.output}")
        return problems
    if observe(dsn) != crash_set.references[-1]:
        problems.append(f"{where}: after recovery the schema is not the target")
    if direction == "apply" and not crash_set.thorough:
        return problems
    result = invoke("rollback", "--to", str(crash_set.versions[0]), "--allow-data-loss", "--dsn", dsn, *migrations)
    if result.exit_code != 0 or observe(dsn) != crash_set.references_down[0]:
        problems.append(f"{where}: rollback after recovery did not return to the base:\n{result.output}")
    return problems


def crash_at(crash_set: CrashSet, direction: str, boundary: int, tmp: Path, server_stop: bool = False) -> list[str]:
    template, _ = COMMANDS[direction]
    name = crash_set.database_from(getattr(crash_set, template))
    dsn = crash_set.dsn(name)
    where = f"{crash_set.own.label} {direction} stopped before statement {boundary}" + \
        (" by a server stop" if server_stop else "")
    try:
        outcome = drive("pause" if server_stop else "kill", boundary,
                        command_args(crash_set, direction, dsn), tmp / f"report-{boundary}",
                        on_pause=crash_set.own.crash_and_restart)
        if outcome != "killed":
            return [f"{where}: the command ended before the boundary ({outcome})"]
        wait_for_sessions_to_end(dsn)
        return check_after_crash(crash_set, dsn, where, direction)
    finally:
        crash_set.drop(name)


def crash_everywhere(crash_set: CrashSet, direction: str, boundaries: list[int], tmp: Path,
                     server_stop: bool = False, thorough: bool = False) -> None:
    crash_set.thorough = thorough
    problems = [p for n in boundaries for p in crash_at(crash_set, direction, n, tmp, server_stop)]
    assert problems == [], "\n".join(problems)


# -- the tests ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("direction", ["apply", "rollback"])
def test_interrupted_at_sampled_boundaries_status_explains_and_recovery_reaches_the_target(
        crash_set: CrashSet, direction: str, tmp_path: Path) -> None:
    total = count_boundaries(crash_set, direction, tmp_path)
    crash_everywhere(crash_set, direction, sample(total, SAMPLE), tmp_path)


@pytest.mark.parametrize("direction", ["apply", "rollback"])
def test_immediate_server_stop_at_sampled_boundaries_loses_nothing(crash_set: CrashSet, direction: str,
                                                                   tmp_path: Path) -> None:
    total = count_boundaries(crash_set, direction, tmp_path)
    chosen = sample(total, SERVER_STOP_SAMPLE + 2)[1:-1]  # inner boundaries: mid-run
    crash_everywhere(crash_set, direction, chosen, tmp_path, server_stop=True)


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["apply", "rollback"])
def test_interrupted_at_every_boundary_status_explains_and_recovery_reaches_the_target(
        crash_set: CrashSet, direction: str, tmp_path: Path) -> None:
    total = count_boundaries(crash_set, direction, tmp_path)
    crash_everywhere(crash_set, direction, list(range(1, total + 1)), tmp_path, thorough=True)


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["apply", "rollback"])
def test_immediate_server_stop_at_every_fourth_boundary_loses_nothing(crash_set: CrashSet, direction: str,
                                                                      tmp_path: Path) -> None:
    total = count_boundaries(crash_set, direction, tmp_path)
    crash_everywhere(crash_set, direction, list(range(1, total + 1, 4)), tmp_path, server_stop=True, thorough=True)


def test_the_set_mixes_transactional_and_non_transactional_files(crash_set: CrashSet) -> None:
    files = read_migrations(crash_set.migrations)
    assert [m.no_transaction for m in files][1:] == [True, False, False, True, False], [m.label for m in files]
    assert os.path.commonpath([crash_set.migrations, REPO_ROOT]) != str(REPO_ROOT)


def rerun(dsn: str, text: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in split_statements(text):
            conn.execute(statement.text.encode("utf-8"), prepare=False)  # type: ignore[call-overload]


def test_every_no_transaction_file_can_run_again_after_it_finished(crash_set: CrashSet) -> None:
    """What recovery does after a crash past a no-transaction file's last statement: run it again, right
    after it ran (up or down). Regression: SET NOT NULL through a CHECK dropped the CHECK, and the re-run
    failed on VALIDATE of the missing CHECK."""
    files = {m.version: m for m in read_migrations(crash_set.migrations)}
    assert any(m.no_transaction for m in files.values())
    name = crash_set.database_from(crash_set.base_template)
    dsn = crash_set.dsn(name)
    migrations = ("--dsn", dsn, "--migrations-dir", str(crash_set.migrations))
    try:
        for position, version in enumerate(crash_set.versions[1:], 1):
            assert invoke("apply", "--to", str(version), *migrations).exit_code == 0
            if files[version].no_transaction:
                rerun(dsn, files[version].up_sql)
                assert observe(dsn) == crash_set.references[position], f"{files[version].label} up, run twice"
        for position in range(len(crash_set.versions) - 1, 0, -1):
            migration = files[crash_set.versions[position]]
            result = invoke("rollback", "--to", str(crash_set.versions[position - 1]), "--allow-data-loss",
                            *migrations)
            assert result.exit_code == 0, result.output
            if migration.no_transaction:
                assert migration.down_sql is not None
                rerun(dsn, migration.down_sql)
                assert observe(dsn) == crash_set.references_down[position - 1], f"{migration.label} down, run twice"
    finally:
        crash_set.drop(name)
