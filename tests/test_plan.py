"""The planner: which SQL, in which file, with which undo (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.factories import BASE, CHECK, FK, IDX, POSTS, ROLES, USERS, schema, with_
from veza_schema.diff.changes import AddForeignKey, AddUnique
from veza_schema.diff.plan import Plan, UnsafeChangeError, build_plan, is_volatile, not_null_check_name
from veza_schema.migrations.files import is_no_transaction
from veza_schema.migrations.generate import FileSettings, file_names
from veza_schema.migrations.incremental import generate_incremental, plan_incremental
from veza_schema.model import Column, EnumType, Index, IndexElement, PrimaryKey, Schema, Table, UniqueConstraint


def plan(current: Schema, desired: Schema, allow_forbidden: bool = False) -> Plan:
    return plan_incremental(current, desired, allow_forbidden=allow_forbidden)[1]


def layout(p: Plan) -> list[tuple[str, bool]]:
    return [(f.kind, f.transactional) for f in p.files]


def up_sql(p: Plan, kind: str) -> str:
    return "".join(s for f in p.files if f.kind == kind for section in f.up_sections() for s in section.statements)


def down_sql(p: Plan, kind: str) -> str:
    return "".join(s for f in p.files if f.kind == kind for section in f.down_sections()
                   for s in section.statements)


def test_nothing_to_do_is_an_empty_plan() -> None:
    assert plan(BASE, BASE).files == ()


def test_index_on_existing_table_is_built_concurrently_and_retry_safe() -> None:
    p = plan(BASE, schema(USERS, with_(POSTS, indexes={IDX.name: IDX})))
    assert layout(p) == [("concurrent", False)]
    sql = up_sql(p, "concurrent")
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_posts_user_id ON posts (user_id);" in sql
    assert sql.index("NOT indisvalid") < sql.index("CREATE INDEX CONCURRENTLY")  # leftover dropped first
    assert "RAISE EXCEPTION" in sql.split("CREATE INDEX CONCURRENTLY")[1]  # and never recorded over
    assert down_sql(p, "concurrent") == "DROP INDEX CONCURRENTLY IF EXISTS idx_posts_user_id;\n"


def test_index_of_a_new_table_is_plain() -> None:
    p = plan(schema(USERS), schema(USERS, with_(POSTS, indexes={IDX.name: IDX})))
    assert layout(p) == [("main", True)]
    assert "CREATE INDEX idx_posts_user_id ON posts (user_id);" in up_sql(p, "main")
    assert "CONCURRENTLY" not in up_sql(p, "main")


def test_dropped_index_goes_first_and_comes_back_last() -> None:
    p = plan(schema(USERS, with_(POSTS, indexes={IDX.name: IDX})), BASE)
    assert layout(p) == [("drop_indexes", False)]
    assert up_sql(p, "drop_indexes") == "DROP INDEX CONCURRENTLY IF EXISTS idx_posts_user_id;\n"
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_posts_user_id" in down_sql(p, "drop_indexes")


def test_foreign_key_and_check_are_added_not_valid_then_validated() -> None:
    p = plan(BASE, schema(USERS, with_(POSTS, foreign_keys={FK.name: FK}, checks={CHECK.name: CHECK})))
    assert layout(p) == [("main", True), ("concurrent", False)]
    main = up_sql(p, "main")
    assert "ADD CONSTRAINT chk_posts_title CHECK (length(title) < 500) NOT VALID;" in main
    assert "REFERENCES users (id) ON DELETE CASCADE NOT VALID;" in main
    assert up_sql(p, "concurrent") == ("ALTER TABLE posts VALIDATE CONSTRAINT chk_posts_title;\n"
                                       "ALTER TABLE posts VALIDATE CONSTRAINT fk_posts_users;\n")
    assert down_sql(p, "concurrent") == ""
    assert down_sql(p, "main") == ("ALTER TABLE posts DROP CONSTRAINT fk_posts_users;\n"
                                   "ALTER TABLE posts DROP CONSTRAINT chk_posts_title;\n")


def test_unique_is_a_concurrent_index_then_using_index() -> None:
    uq = UniqueConstraint("uq_users_email", ("email",))
    p = plan(BASE, schema(with_(USERS, uniques={uq.name: uq}), POSTS))
    sql = up_sql(p, "concurrent")
    assert "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS uq_users_email ON users (email);" in sql
    assert "ADD CONSTRAINT uq_users_email UNIQUE USING INDEX uq_users_email;" in sql
    assert down_sql(p, "concurrent").startswith("ALTER TABLE users DROP CONSTRAINT IF EXISTS uq_users_email;")


def test_foreign_key_to_a_key_added_late_waits_for_it() -> None:
    uq = UniqueConstraint("uq_users_email", ("email",))
    fk = replace(FK, name="fk_posts_email", columns=("title",), ref_columns=("email",))
    changes, p = plan_incremental(BASE, schema(with_(USERS, uniques={uq.name: uq}),
                                               with_(POSTS, foreign_keys={fk.name: fk})))
    assert [type(c) for c in changes] == [AddUnique, AddForeignKey]
    sql = up_sql(p, "concurrent")
    assert sql.index("USING INDEX uq_users_email") < sql.index("FOREIGN KEY (title)") < sql.index("VALIDATE")


def test_set_not_null_goes_through_a_validated_check() -> None:
    nullable = with_(USERS, columns=(USERS.columns[0], replace(USERS.columns[1], nullable=True), USERS.columns[2]))
    p = plan(schema(nullable, POSTS), BASE)
    check = not_null_check_name("users", "email")
    assert up_sql(p, "main") == f"ALTER TABLE users ADD CONSTRAINT {check} CHECK (email IS NOT NULL) NOT VALID;\n"
    concurrent = up_sql(p, "concurrent")
    # The VALIDATE is skipped on a re-run after the CHECK was dropped (the file runs outside a transaction).
    assert "IF EXISTS (SELECT 1 FROM pg_constraint" in concurrent
    assert concurrent.index(f"ALTER TABLE users VALIDATE CONSTRAINT {check};") < concurrent.index(
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n") < concurrent.index(
        f"ALTER TABLE users DROP CONSTRAINT IF EXISTS {check};\n")
    down = down_sql(p, "concurrent")
    assert down.index("IF NOT EXISTS") < down.index("DROP NOT NULL")


def test_not_null_column_with_constant_default_is_one_statement() -> None:
    score = Column("score", "integer", default="0")
    p = plan(BASE, schema(USERS, with_(POSTS, columns=(*POSTS.columns, score))))
    assert up_sql(p, "main") == "ALTER TABLE posts ADD COLUMN score integer NOT NULL DEFAULT 0;\n"
    assert down_sql(p, "main") == "ALTER TABLE posts DROP COLUMN score;\n"


@pytest.mark.parametrize("default", ["gen_random_uuid()", "random()", "clock_timestamp()", "public.uuid_generate_v4()"])
def test_volatile_default_on_existing_table_is_refused(default: str) -> None:
    token = Column("token", "uuid", default=default)
    desired = schema(USERS, with_(POSTS, columns=(*POSTS.columns, token)))
    with pytest.raises(UnsafeChangeError, match="volatile"):
        plan(BASE, desired)
    assert "ADD COLUMN token uuid NOT NULL DEFAULT" in up_sql(plan(BASE, desired, allow_forbidden=True), "main")


@pytest.mark.parametrize(("expression", "volatile"), [
    ("now()", False), ("'x'", False), ("0", False), (None, False), ("gen_random_uuid()", True),
    ("(random() * 10)::int", True), ("lower('A')", False), ("nextval('s'::regclass)", True),
])
def test_is_volatile(expression: str | None, volatile: bool) -> None:
    assert is_volatile(expression, Schema()) is volatile


def test_volatile_default_on_a_new_table_is_fine() -> None:
    p = plan(schema(USERS), BASE)
    assert layout(p) == [("main", True)]


def test_enum_value_has_its_own_file_before_the_main_one() -> None:
    wider = EnumType("user_role", ("user", "moderator", "admin"))
    level = Column("level", "user_role", default="'moderator'::user_role")
    desired = schema(with_(USERS, columns=(*USERS.columns, level)), POSTS, enums={"user_role": wider})
    p = plan(BASE, desired)
    assert layout(p) == [("enum_values", True), ("main", True)]
    assert up_sql(p, "enum_values") == "ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'moderator' AFTER 'user';\n"
    down = down_sql(p, "enum_values")
    assert "ALTER TYPE user_role RENAME TO user_role__veza_old;" in down
    assert "USING role::text::user_role;" in down and down.endswith("DROP TYPE user_role__veza_old;\n")


def test_value_inserted_first_goes_before_the_old_first() -> None:
    p = plan(BASE, schema(USERS, POSTS, enums={"user_role": EnumType("user_role", ("guest", *ROLES.values))}))
    assert up_sql(p, "enum_values") == "ALTER TYPE user_role ADD VALUE IF NOT EXISTS 'guest' BEFORE 'user';\n"


def test_removing_an_enum_value_is_refused() -> None:
    with pytest.raises(UnsafeChangeError, match="rebuilds the type"):
        plan(BASE, schema(USERS, POSTS, enums={"user_role": EnumType("user_role", ("user",))}))


def test_partition_key_change_is_refused_premake_is_not() -> None:
    from tests.factories import EVENTS, MONTHLY

    with pytest.raises(UnsafeChangeError, match="in place"):
        plan(schema(EVENTS), schema(with_(EVENTS, partition=replace(MONTHLY, strategy="hash", interval=None))))
    grown = plan(schema(EVENTS), schema(with_(EVENTS, partition=replace(MONTHLY, premake=4))))
    assert layout(grown) == [("main", True)]


@pytest.mark.parametrize("premake", [4, 0], ids=["raised", "lowered"])
def test_a_premake_change_is_left_to_the_partitions_job(premake: int) -> None:
    """Creating a partition scans the DEFAULT one under ACCESS EXCLUSIVE, dropping one loses its rows:
    the migration only records the change and says who makes the partitions."""
    from tests.factories import EVENTS, MONTHLY

    changed = plan(schema(EVENTS), schema(with_(EVENTS, partition=replace(MONTHLY, premake=premake))))
    assert [(step.up, step.down) for step in changed.steps] == [((), ())]
    [line] = changed.files[0].header()
    assert line.startswith(f"~ table events partitions made ahead (premake) 2 -> {premake} [")
    assert "no SQL" in line and "veza-schema partitions" in line


def test_primary_key_on_existing_table_uses_its_index() -> None:
    bare = Table("posts", POSTS.columns)
    p = plan(schema(USERS, bare), BASE)
    assert "ADD CONSTRAINT pk_posts PRIMARY KEY USING INDEX pk_posts;" in up_sql(p, "concurrent")


def test_partitioned_table_index_cannot_be_concurrent() -> None:
    from tests.factories import EVENTS

    index = Index("idx_events_created_at", "events", (IndexElement("created_at"),))
    p = plan(schema(EVENTS), schema(with_(EVENTS, indexes={index.name: index})))
    assert layout(p) == [("main", True)]
    assert p.files[0].header() == ["+ index idx_events_created_at on events "
                                   "[partitioned: no CONCURRENTLY, takes a SHARE lock]"]


def test_down_undoes_up_step_by_step() -> None:
    """Every step carries its own undo; a file's down is the undo of its steps, last first."""
    desired = schema(with_(USERS, primary_key=PrimaryKey("pk_users", ("id",))),
                     with_(POSTS, foreign_keys={FK.name: FK}, indexes={IDX.name: IDX}, comment="Posts"))
    p = build_plan(plan_incremental(BASE, desired)[0], BASE, desired)
    for planned in p.files:
        ups = [step.up for step in planned.steps]
        downs = [step.down for step in reversed(planned.steps) if step.down]
        assert [s for section in planned.down_sections() for s in section.statements] == \
            [s for down in downs for s in down]
        assert len(ups) == len(planned.steps)


def test_generated_files_have_consecutive_versions_and_markers(tmp_path: Path) -> None:
    desired = schema(USERS, with_(POSTS, foreign_keys={FK.name: FK}, indexes={IDX.name: IDX},
                                  columns=(*POSTS.columns, Column("bio", "text", nullable=True))),
                     enums={"user_role": EnumType("user_role", ("user", "admin", "owner"))})
    settings = FileSettings(lock_timeout="2s", statement_timeout="1h")
    written = generate_incremental(BASE, desired, tmp_path, "add_bio", settings)
    assert [w.up_path.name.split("_", 1)[1] for w in written] == [
        "add_bio_enum_values.up.sql", "add_bio.up.sql", "add_bio_concurrent.up.sql"]
    versions = [w.version for w in written]
    assert versions == list(range(versions[0], versions[0] + 3))
    for w in written:
        up, down = w.up_path.read_text(), w.down_path.read_text()
        assert is_no_transaction(up) == is_no_transaction(down) == ("concurrent" in w.name)
        assert "lock_timeout = '2s'" in up and "statement_timeout = '1h'" in down
    assert (tmp_path / "veza.snapshot.json").exists()
    assert generate_incremental(desired, desired, tmp_path / "other", None, settings) == []
    assert not (tmp_path / "other").exists()


def test_header_lists_changes_and_rfcs(tmp_path: Path) -> None:
    from veza_schema.model import Meta

    bio = Column("bio", "text", nullable=True, meta=Meta(rfc="RFC-0042"))
    desired = schema(USERS, with_(POSTS, columns=(*POSTS.columns, bio)))
    [written] = generate_incremental(BASE, desired, tmp_path, None, FileSettings())
    up = written.up_path.read_text()
    assert written.name == "add_posts_bio"
    assert "-- RFC: RFC-0042" in up and "--   + column posts.bio text" in up


def test_lone_file_keeps_the_base_name() -> None:
    p = plan(BASE, schema(USERS, with_(POSTS, indexes={IDX.name: IDX})))
    assert file_names(p, "add_index") == ["add_index"]


def test_new_table_referencing_a_key_added_late_gets_its_foreign_key_after_it() -> None:
    uq = UniqueConstraint("uq_users_email", ("email",))
    fk = replace(FK, name="fk_notes_email", columns=("email",), ref_columns=("email",))
    notes = Table("notes", (Column("email", "character varying(255)"),), foreign_keys={fk.name: fk})
    p = plan(BASE, schema(with_(USERS, uniques={uq.name: uq}), POSTS, notes))
    assert "FOREIGN KEY" not in up_sql(p, "main")
    sql = up_sql(p, "concurrent")
    assert sql.index("USING INDEX uq_users_email") < sql.index("ADD CONSTRAINT fk_notes_email FOREIGN KEY")
