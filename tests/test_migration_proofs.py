"""Proofs on a real server that incremental migrations do what they claim.

For every row of SCENARIOS: build the database from the old YAML (``generate`` + ``apply``
through the CLI), fill it with rows, change the YAML, ``generate`` and ``apply`` the new
migration(s), and check that the schema equals a database built from scratch from the new
YAML (both read back with :func:`veza_schema.db.introspect.introspect`); then ``rollback`` the
new files and check the schema equals the old one again, with the rows still there; and
``generate`` once more, which must write nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Server, TestDatabase, _fresh_database, run_cli
from veza_schema.db.dsn import Target
from veza_schema.db.introspect import introspect
from veza_schema.migrations import runner
from veza_schema.migrations.files import read_migrations
from veza_schema.migrations.generate import FileSettings, generate_initial
from veza_schema.model import Schema
from veza_schema.yaml.loader import load_schema

BASE = """\
module: app
enums:
  user_role: [user, admin]
functions:
  set_updated_at:
    returns: trigger
    language: plpgsql
    body: |
      BEGIN
          NEW.updated_at = now();
          RETURN NEW;
      END;
tables:
  users:
    comment: People
    columns:
      id:           {type: uuid, primary_key: true, default: gen_random_uuid()}
      email:        {type: varchar(255)}
      display_name: {type: text, nullable: true}
      role:         {type: user_role, default: "'user'"}
      created_at:   {type: timestamptz, default: now()}
      updated_at:   {type: timestamptz, default: now()}
  posts:
    columns:
      id:         {type: uuid, primary_key: true, default: gen_random_uuid()}
      user_id:    {type: uuid}
      title:      {type: text}
      created_at: {type: timestamptz, default: now()}
  tags:
    columns:
      id:   {type: uuid, primary_key: true, default: gen_random_uuid()}
      name: {type: text}
"""

EVENTS = """\
  events:
    columns:
      id:         {type: uuid, default: gen_random_uuid()}
      kind:       {type: text}
      created_at: {type: timestamptz, default: now()}
    primary_key: [id, created_at]
    partition_by: {range: [created_at], interval: month, premake: PREMAKE}
"""

ROWS = """
INSERT INTO users (email, display_name)
SELECT 'user' || i || '@example.com', 'User ' || i FROM generate_series(1, 300) AS i;
INSERT INTO posts (user_id, title) SELECT id, 'Post of ' || email FROM users;
INSERT INTO tags (name) SELECT 'tag' || i FROM generate_series(1, 20) AS i;
"""


def edit(text: str, anchor: str, replacement: str) -> str:
    """Replace one exact anchor (so a typo in a scenario fails loudly instead of changing nothing)."""
    assert text.count(anchor) == 1, anchor
    return text.replace(anchor, replacement)


def in_table(table: str, section: str, body: str) -> Callable[[str], str]:
    """Append a YAML section (indexes:, checks: ...) to a table of BASE."""
    anchors = {"users": "      updated_at:   {type: timestamptz, default: now()}\n",
               "posts": "      created_at: {type: timestamptz, default: now()}\n  tags:",
               "tags": "      name: {type: text}\n"}
    anchor = anchors[table]
    tail = "  tags:" if table == "posts" else ""
    head = anchor[: len(anchor) - len(tail)]
    return lambda text: edit(text, anchor, f"{head}    {section}:\n{body}{tail}")


@dataclass(frozen=True)
class Scenario:
    id: str
    change: Callable[[str], str]  # old YAML -> new YAML
    old: Callable[[str], str] = lambda text: text
    files: int = 1  # migration files the change must produce
    flags: tuple[str, ...] = ()  # extra `generate` flags (a change the policy forbids needs an RFC)
    rows: str = ROWS


SCENARIOS: list[Scenario] = [
    Scenario("add_nullable_column",
             lambda t: edit(t, "      name: {type: text}\n", "      name: {type: text}\n"
                                                              "      note: {type: text, nullable: true}\n")),
    Scenario("add_not_null_column_with_default",
             lambda t: edit(t, "      name: {type: text}\n", "      name: {type: text}\n"
                                                              "      weight: {type: bigint, default: 0}\n")),
    Scenario("add_index_to_populated_table",
             in_table("posts", "indexes", "      idx_posts_created_at: {columns: [created_at desc]}\n")),
    Scenario("add_unique_to_populated_table",
             in_table("users", "unique", "      uq_users_email: [email]\n")),
    Scenario("add_foreign_key_to_populated_table",
             in_table("posts", "foreign_keys", "      fk_posts_users: {columns: [user_id], references: users(id), "
                                               "on_delete: cascade}\n"), files=2),
    Scenario("add_check_to_populated_table",
             in_table("posts", "checks", "      chk_posts_title_length: \"length(title) < 500\"\n"), files=2),
    Scenario("set_not_null_on_populated_column",
             lambda t: edit(t, "display_name: {type: text, nullable: true}", "display_name: {type: text}"),
             files=2),
    Scenario("add_table",
             lambda t: t + """\
  comments:
    columns:
      id:      {type: uuid, primary_key: true, default: gen_random_uuid()}
      post_id: {type: uuid, references: posts.id, on_delete: cascade}
      body:    {type: text}
    indexes:
      idx_comments_post_id: {columns: [post_id]}
"""),
    Scenario("drop_table",
             lambda t: edit(t, "  tags:\n    columns:\n      id:   {type: uuid, primary_key: true, default: "
                               "gen_random_uuid()}\n      name: {type: text}\n", ""),
             flags=("--allow-forbidden", "--rfc", "RFC-0001")),
    Scenario("change_default",
             lambda t: edit(t, "{type: user_role, default: \"'user'\"}", "{type: user_role, default: \"'admin'\"}")),
    Scenario("add_enum_value",
             lambda t: edit(t, "user_role: [user, admin]", "user_role: [user, moderator, admin]")),
    Scenario("add_partitioned_table",
             lambda t: t + EVENTS.replace("PREMAKE", "2")),
    Scenario("add_partitions_premake",
             lambda t: edit(t, "premake: 1", "premake: 3"),
             old=lambda t: t + EVENTS.replace("PREMAKE", "1")),
    Scenario("add_trigger",
             in_table("users", "triggers", "      trg_users_updated_at: {function: set_updated_at, timing: before, "
                                           "events: [update]}\n")),
    Scenario("change_column_type_read_by_a_view",
             lambda t: edit(t, "      title:      {type: varchar(200)}", "      title:      {type: text}"),
             old=lambda t: edit(t, "      title:      {type: text}", "      title:      {type: varchar(200)}")
             + "views:\n  post_titles:\n    query: SELECT id, title FROM posts\n"),
    Scenario("declared_column_rename",
             lambda t: edit(t, "      display_name: {type: text, nullable: true}",
                            "      nickname: {type: text, nullable: true, renamed_from: display_name}")),
    Scenario("declared_table_rename",
             lambda t: edit(t, "  posts:\n", "  articles:\n    renamed_from: posts\n"),
             old=in_table("posts", "indexes", "      idx_posts_user_id: {columns: [user_id]}\n")),
]


@pytest.fixture
def reference(pg_server: Server) -> Iterator[TestDatabase]:
    """A second fresh database, built from scratch from the new YAML."""
    yield from _fresh_database(pg_server)


def schema_of(database: TestDatabase) -> Schema:
    with database.connect() as conn:
        return introspect(conn)


def cli_ok(*args: str) -> str:
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return result.output


def row_count(database: TestDatabase) -> int:
    return int(database.query("SELECT count(*) FROM users")[0][0])


# The proofs are about schemas: dropping a table or rolling back an added column with rows in
# it is the point of some scenarios, so the data-loss guard of the runner is lifted here.
LOSSY = runner.RunOptions(allow_data_loss=True)


def apply(database: TestDatabase, migrations: Path, via_cli: bool) -> None:
    if via_cli:
        cli_ok("apply", "--dsn", database.dsn, "--migrations-dir", str(migrations), "--allow-data-loss")
    else:
        runner.apply(Target(database.dsn, "test"), read_migrations(migrations), options=LOSSY)


def rollback(database: TestDatabase, migrations: Path, steps: int, via_cli: bool) -> None:
    if via_cli:
        cli_ok("rollback", "--dsn", database.dsn, "--migrations-dir", str(migrations), "--steps", str(steps),
               "--allow-data-loss")
    else:
        runner.rollback(Target(database.dsn, "test"), read_migrations(migrations), steps=steps, options=LOSSY)


def prove(scenario: Scenario, database: TestDatabase, reference: TestDatabase, tmp_path: Path,
          via_cli: bool = False) -> None:
    """The proof of one scenario; ``generate`` always runs through the CLI."""
    schema_dir, migrations = tmp_path / "schema", tmp_path / "migrations"
    schema_dir.mkdir()
    old_yaml = scenario.old(BASE)
    (schema_dir / "app.yaml").write_text(old_yaml)
    dirs = ("--schema-dir", str(schema_dir), "--migrations-dir", str(migrations))
    cli_ok("generate", *dirs)
    apply(database, migrations, via_cli)
    old_schema = schema_of(database)
    database.execute(scenario.rows)
    rows = row_count(database)

    new_yaml = scenario.change(old_yaml)
    assert new_yaml != old_yaml
    (schema_dir / "app.yaml").write_text(new_yaml)
    before = {m.version for m in read_migrations(migrations)}
    cli_ok("generate", *dirs, "--name", scenario.id, *scenario.flags)
    new_files = [m for m in read_migrations(migrations) if m.version not in before]
    assert len(new_files) == scenario.files, [m.label for m in new_files]
    apply(database, migrations, via_cli)

    generate_initial(load_schema(schema_dir), tmp_path / "reference", "initial", FileSettings())
    runner.apply(Target(reference.dsn, "test"), read_migrations(tmp_path / "reference"))
    assert schema_of(database) == schema_of(reference)
    assert row_count(database) == rows

    rollback(database, migrations, len(new_files), via_cli)
    assert schema_of(database) == old_schema
    assert row_count(database) == rows

    output = cli_ok("generate", *dirs)
    assert "Nothing to generate" in output
    assert {m.version for m in read_migrations(migrations)} == before | {m.version for m in new_files}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_scenario(scenario: Scenario, database: TestDatabase, reference: TestDatabase, tmp_path: Path) -> None:
    prove(scenario, database, reference, tmp_path)


def test_scenario_through_the_cli(database: TestDatabase, reference: TestDatabase, tmp_path: Path) -> None:
    """One multi-file scenario with apply and rollback through the CLI too (sum file included)."""
    scenario = next(s for s in SCENARIOS if s.id == "add_foreign_key_to_populated_table")
    prove(scenario, database, reference, tmp_path, via_cli=True)


def test_failed_concurrent_build_is_cleaned_and_retried(database: TestDatabase, tmp_path: Path) -> None:
    """A UNIQUE build that fails (duplicates) leaves an INVALID index; after the data is fixed,
    ``resolve --rolled-back`` + ``apply`` re-runs the file, which drops the leftover and rebuilds."""
    schema_dir, migrations = tmp_path / "schema", tmp_path / "migrations"
    schema_dir.mkdir()
    (schema_dir / "app.yaml").write_text(BASE)
    dirs = ("--schema-dir", str(schema_dir), "--migrations-dir", str(migrations))
    cli_ok("generate", *dirs)
    target = Target(database.dsn, "test")
    runner.apply(target, read_migrations(migrations))
    database.execute(ROWS + "INSERT INTO users (email) VALUES ('user1@example.com');")
    (schema_dir / "app.yaml").write_text(in_table("users", "unique", "      uq_users_email: [email]\n")(BASE))
    cli_ok("generate", *dirs, "--name", "unique_email")
    [pending] = [m for m in read_migrations(migrations) if m.name == "unique_email"]
    assert pending.no_transaction

    with pytest.raises(runner.MigrationFailed, match="could not create unique index"):
        runner.apply(target, read_migrations(migrations))
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('uq_users_email')"
    assert database.query(valid) == [(False,)]
    assert database.query("SELECT success FROM _sqlx_migrations WHERE version = %s", (pending.version,)) == \
        [(False,)]

    database.execute("DELETE FROM users WHERE ctid = (SELECT max(ctid) FROM users WHERE email = "
                     "'user1@example.com')")
    runner.resolve(target, read_migrations(migrations), pending.version, applied=False)
    runner.apply(target, read_migrations(migrations))
    assert database.query(valid) == [(True,)]
    assert database.query("SELECT contype FROM pg_constraint WHERE conname = 'uq_users_email'") == [("u",)]
