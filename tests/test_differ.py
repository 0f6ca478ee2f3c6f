"""The differ, ``reverse`` and the ordering pass: pure, on model objects, no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import (
    BASE,
    CHECK,
    EMAIL,
    EVENTS,
    FK,
    ID,
    IDX,
    MONEY,
    MONEY2,
    MONTHLY,
    POSTS,
    ROLE,
    ROLES,
    TOUCH,
    TRIGGER,
    USERS,
    VIEW,
    schema,
    with_,
)
from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddEnumValue,
    AddForeignKey,
    AddUnique,
    AlterColumnDefault,
    AlterColumnNullability,
    AlterColumnType,
    AlterCompositeType,
    Change,
    ChangePartitioning,
    ColumnUse,
    CommentTarget,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreatePartitionHelper,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropTable,
    DropTrigger,
    DropView,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameIndex,
    RenameTable,
    ReorderColumns,
    ReplaceFunction,
    ReplaceView,
    SetComment,
    describe,
    reverse,
)
from veza_schema.diff.differ import diff_schemas, sort_key
from veza_schema.diff.order import order_changes
from veza_schema.model import (
    Column,
    EnumType,
    Extension,
    ForeignKey,
    Function,
    Meta,
    PrimaryKey,
    Schema,
    Table,
    UniqueConstraint,
    View,
)


def sort(changes: list[Change]) -> list[Change]:
    return sorted(changes, key=sort_key)


POSTS_BIO = with_(POSTS, columns=(*POSTS.columns, Column("bio", "text", nullable=True)))
CASES: list[tuple[str, Schema, Schema, list[Change]]] = [
    ("nothing", BASE, BASE, []),
    ("metadata only", BASE, schema(USERS, with_(POSTS, comment=None, meta=Meta(rfc="RFC-1"))), []),
    ("add table", schema(USERS), BASE, [CreateTable(POSTS)]),
    ("drop table", BASE, schema(USERS), [DropTable(POSTS)]),
    ("add column", BASE, schema(USERS, POSTS_BIO), [AddColumn("posts", POSTS_BIO.columns[-1])]),
    ("drop column", schema(USERS, POSTS_BIO), BASE, [DropColumn("posts", POSTS_BIO.columns[-1])]),
    ("column type", BASE,
     schema(USERS, with_(POSTS, columns=(ID, POSTS.columns[1], Column("title", "character varying(200)")))),
     [AlterColumnType("posts", Column("title", "text"), Column("title", "character varying(200)"))]),
    ("default", BASE, schema(with_(USERS, columns=(ID, EMAIL, replace(ROLE, default="'admin'::user_role"))), POSTS),
     [AlterColumnDefault("users", ROLE, replace(ROLE, default="'admin'::user_role"))]),
    ("default whitespace only", BASE,
     schema(with_(USERS, columns=(ID, EMAIL, replace(ROLE, default="  'user'::user_role "))), POSTS), []),
    ("nullability", BASE, schema(with_(USERS, columns=(ID, replace(EMAIL, nullable=True), ROLE)), POSTS),
     [AlterColumnNullability("users", EMAIL, replace(EMAIL, nullable=True))]),
    ("add index", BASE, schema(USERS, with_(POSTS, indexes={IDX.name: IDX})), [CreateIndex(IDX)]),
    ("modified index is drop + create", schema(USERS, with_(POSTS, indexes={IDX.name: IDX})),
     schema(USERS, with_(POSTS, indexes={IDX.name: replace(IDX, where="title IS NOT NULL")})),
     [DropIndex(IDX), CreateIndex(replace(IDX, where="title IS NOT NULL"))]),
    ("index predicate whitespace only",
     schema(USERS, with_(POSTS, indexes={IDX.name: replace(IDX, where="title IS NOT NULL")})),
     schema(USERS, with_(POSTS, indexes={IDX.name: replace(IDX, where="title  IS\nNOT NULL")})), []),
    ("add check", BASE, schema(USERS, with_(POSTS, checks={CHECK.name: CHECK})), [AddCheck("posts", CHECK)]),
    ("modified check is drop + add", schema(USERS, with_(POSTS, checks={CHECK.name: CHECK})),
     schema(USERS, with_(POSTS, checks={CHECK.name: replace(CHECK, expression="length(title) < 100")})),
     [DropCheck("posts", CHECK), AddCheck("posts", replace(CHECK, expression="length(title) < 100"))]),
    ("add foreign key", BASE, schema(USERS, with_(POSTS, foreign_keys={FK.name: FK})), [AddForeignKey("posts", FK)]),
    ("modified foreign key is drop + add", schema(USERS, with_(POSTS, foreign_keys={FK.name: FK})),
     schema(USERS, with_(POSTS, foreign_keys={FK.name: replace(FK, on_delete="restrict")})),
     [DropForeignKey("posts", FK), AddForeignKey("posts", replace(FK, on_delete="restrict"))]),
    ("add unique", BASE,
     schema(with_(USERS, uniques={"uq_users_email": UniqueConstraint("uq_users_email", ("email",))}), POSTS),
     [AddUnique("users", UniqueConstraint("uq_users_email", ("email",)))]),
    ("enum value appended", BASE, schema(USERS, POSTS, enums={"user_role": EnumType("user_role", ("user", "admin",
                                                                                                  "owner"))}),
     [AddEnumValue(ROLES, EnumType("user_role", ("user", "admin", "owner")),
                   (ColumnUse("users", "role", "user_role", "'user'::user_role"),))]),
    ("enum value removed", BASE, schema(USERS, POSTS, enums={"user_role": EnumType("user_role", ("user",))}),
     [RecreateEnum(ROLES, EnumType("user_role", ("user",)),
                   (ColumnUse("users", "role", "user_role", "'user'::user_role"),))]),
    ("new enum", schema(USERS, POSTS, enums={}), BASE, [CreateEnum(ROLES)]),
    ("undeclared rename is drop + add", BASE,
     schema(with_(USERS, columns=(ID, ROLE, Column("mail", "character varying(255)"))), POSTS),
     [DropColumn("users", EMAIL), AddColumn("users", Column("mail", "character varying(255)"))]),
    ("a column declared before existing ones cannot be placed there", BASE,
     schema(with_(USERS, columns=(ID, Column("bio", "text", nullable=True), EMAIL, ROLE)), POSTS),
     [AddColumn("users", Column("bio", "text", nullable=True)),
      ReorderColumns("users", ("id", "email", "role", "bio"), ("id", "bio", "email", "role"))]),
    ("trigger", schema(USERS, functions={"touch": TOUCH}),
     schema(with_(USERS, triggers={TRIGGER.name: TRIGGER}), functions={"touch": TOUCH}), [CreateTrigger(TRIGGER)]),
    ("function body", schema(USERS, functions={"touch": TOUCH}),
     schema(USERS, functions={"touch": replace(TOUCH, body="BEGIN NEW.x = 1; RETURN NEW; END;")}),
     [ReplaceFunction(TOUCH, replace(TOUCH, body="BEGIN NEW.x = 1; RETURN NEW; END;"))]),
    ("function signature", schema(USERS, functions={"touch": TOUCH}),
     schema(USERS, functions={"touch": replace(TOUCH, arguments="n integer", returns="integer")}),
     [DropFunction(TOUCH), CreateFunction(replace(TOUCH, arguments="n integer", returns="integer"))]),
    ("view query with the same columns", schema(USERS, views={VIEW.name: VIEW}),
     schema(USERS, views={VIEW.name: replace(VIEW, query="SELECT id, email FROM users WHERE id IS NOT NULL")}),
     [ReplaceView(VIEW, replace(VIEW, query="SELECT id, email FROM users WHERE id IS NOT NULL"))]),
    ("view losing a column is drop + create", schema(USERS, views={VIEW.name: VIEW}),
     schema(USERS, views={VIEW.name: replace(VIEW, query="SELECT id FROM users")}),
     [DropView(VIEW), CreateView(replace(VIEW, query="SELECT id FROM users"))]),
    ("materialized view query is drop + create", schema(USERS, views={VIEW.name: replace(VIEW, materialized=True)}),
     schema(USERS, views={VIEW.name: replace(VIEW, materialized=True, query="SELECT id FROM users")}),
     [DropView(replace(VIEW, materialized=True)),
      CreateView(replace(VIEW, materialized=True, query="SELECT id FROM users"))]),
    ("comment", BASE, schema(with_(USERS, comment="People"), POSTS),
     [SetComment(CommentTarget("table", "users"), None, "People")]),
    ("column comment", BASE, schema(with_(USERS, columns=(ID, replace(EMAIL, comment="Login"), ROLE)), POSTS),
     [SetComment(CommentTarget("column", "users", column="email"), None, "Login")]),
    ("partitioned table", BASE, schema(USERS, POSTS, EVENTS), [CreateTable(EVENTS), CreatePartitionHelper()]),
    ("premake", schema(USERS, EVENTS),
     schema(USERS, with_(EVENTS, partition=replace(MONTHLY, premake=4))),
     [ChangePartitioning("events", MONTHLY, replace(MONTHLY, premake=4))]),
    ("composite type", schema(composite_types={"money": MONEY}), schema(composite_types={"money": MONEY2}),
     [AlterCompositeType(MONEY, MONEY2)]),
    ("extension", BASE, schema(USERS, POSTS, extensions={"pgcrypto": Extension("pgcrypto")}),
     [CreateExtension(Extension("pgcrypto"))]),
]


@pytest.mark.parametrize(("current", "desired", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_diff(current: Schema, desired: Schema, expected: list[Change]) -> None:
    assert diff_schemas(current, desired) == sort(expected)


@pytest.mark.parametrize(("current", "desired"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_reversed_diff_is_the_diff_back(current: Schema, desired: Schema) -> None:
    """Undoing every change of a -> b is exactly the diff b -> a (so down files can mirror up files).

    Column order is the exception: a dropped column comes back last, so a column dropped from the
    middle cannot be restored in place (the reverse diff says so with a ReorderColumns).
    """
    def placed(changes: list[Change]) -> list[Change]:
        return [c for c in changes if not isinstance(c, ReorderColumns)]

    assert placed(sort([reverse(c) for c in diff_schemas(current, desired)])) == placed(diff_schemas(desired, current))


def test_diff_is_pure_and_deterministic() -> None:
    current, desired = BASE, schema(USERS, with_(POSTS_BIO, indexes={IDX.name: IDX}, checks={CHECK.name: CHECK}))
    first = diff_schemas(current, desired)
    assert first == diff_schemas(current, desired)
    assert current == BASE  # not mutated


# -- declared renames -----------------------------------------------------------------------------
def test_declared_column_rename() -> None:
    nickname = Column("nickname", "character varying(255)", meta=Meta(renamed_from="email", rfc="RFC-7"))
    uq = UniqueConstraint("uq_users_email", ("email",))
    current = schema(with_(USERS, uniques={uq.name: uq}), POSTS)
    desired = schema(with_(USERS, columns=(ID, nickname, ROLE),
                           uniques={"uq_users_nickname": UniqueConstraint("uq_users_nickname", ("nickname",))}),
                     POSTS)
    changes = diff_schemas(current, desired)
    assert changes == sort([RenameColumn("users", "email", "nickname"),
                            RenameConstraint("users", "uq_users_email", "uq_users_nickname")])
    assert changes[0].meta.rfc == "RFC-7" or changes[1].meta.rfc == "RFC-7"


def test_declared_table_rename_carries_references_and_names() -> None:
    current = schema(USERS, with_(POSTS, foreign_keys={FK.name: FK}, indexes={IDX.name: IDX}))
    articles = Table("articles", POSTS.columns, PrimaryKey("pk_articles", ("id",)),
                     foreign_keys={"fk_articles_users": replace(FK, name="fk_articles_users")},
                     indexes={"idx_articles_user_id": replace(IDX, name="idx_articles_user_id", table="articles")},
                     meta=Meta(renamed_from="posts"))
    assert diff_schemas(current, schema(USERS, articles)) == sort([
        RenameTable("posts", "articles"),
        RenameConstraint("articles", "pk_posts", "pk_articles"),
        RenameConstraint("articles", "fk_posts_users", "fk_articles_users"),
        RenameIndex("idx_posts_user_id", "idx_articles_user_id"),
    ])


def test_rename_of_a_referenced_column_keeps_foreign_keys() -> None:
    current = schema(USERS, with_(POSTS, foreign_keys={FK.name: FK}))
    uid = Column("uid", "uuid", default="gen_random_uuid()", meta=Meta(renamed_from="id"))
    desired = schema(with_(USERS, columns=(uid, EMAIL, ROLE), primary_key=PrimaryKey("pk_users", ("uid",))),
                     with_(POSTS, foreign_keys={FK.name: replace(FK, ref_columns=("uid",))}))
    assert diff_schemas(current, desired) == [RenameColumn("users", "id", "uid")]


def test_rename_already_applied_is_nothing() -> None:
    """After the migration, the YAML still says renamed_from: the snapshot has the new name."""
    nickname = Column("nickname", "character varying(255)", meta=Meta(renamed_from="email"))
    applied = schema(with_(USERS, columns=(ID, replace(nickname, meta=Meta()), ROLE)), POSTS)
    assert diff_schemas(applied, schema(with_(USERS, columns=(ID, nickname, ROLE)), POSTS)) == []


# -- reverse ---------------------------------------------------------------------------------------
SAMPLES: list[Change] = [c for case in CASES for c in case[3]] + [
    RenameTable("posts", "articles"), RenameColumn("users", "email", "mail"),
    RenameConstraint("users", "pk_users", "pk_people"), RenameIndex("a", "b"), DropTrigger(TRIGGER),
]


@pytest.mark.parametrize("change", SAMPLES, ids=[describe(c) for c in SAMPLES])
def test_reverse_is_an_involution(change: Change) -> None:
    assert reverse(reverse(change)) == change
    assert reverse(change) != change


def test_reverse_examples() -> None:
    assert reverse(AddColumn("t", EMAIL)) == DropColumn("t", EMAIL)
    assert reverse(RenameColumn("t", "a", "b")) == RenameColumn("t", "b", "a")
    assert reverse(AlterColumnType("t", EMAIL, ID)) == AlterColumnType("t", ID, EMAIL)
    wider = EnumType("user_role", ("user", "admin", "owner"))
    assert reverse(AddEnumValue(ROLES, wider)) == RecreateEnum(wider, ROLES)
    assert reverse(SetComment(CommentTarget("table", "t"), None, "x")) == SetComment(CommentTarget("table", "t"),
                                                                                     "x", None)


# -- ordering ----------------------------------------------------------------------------------------
def kinds(changes: list[Change]) -> list[str]:
    return [type(c).__name__ for c in changes]


def test_new_tables_follow_their_foreign_keys() -> None:
    posts = with_(POSTS, foreign_keys={FK.name: FK})
    ordered = order_changes(diff_schemas(Schema(), schema(posts, USERS)))
    names = [c.table.name for c in ordered if isinstance(c, CreateTable)]
    assert names == ["users", "posts"]
    assert kinds(ordered)[0] == "CreateEnum"


def test_dropped_tables_go_dependents_first() -> None:
    posts = with_(POSTS, foreign_keys={FK.name: FK})
    ordered = order_changes(diff_schemas(schema(posts, USERS), Schema(enums={"user_role": ROLES})))
    assert [c.table.name for c in ordered if isinstance(c, DropTable)] == ["posts", "users"]


def test_cycle_between_new_tables_adds_one_foreign_key_after() -> None:
    back = ForeignKey("fk_users_posts", ("id",), "posts", ("id",))
    users = with_(USERS, foreign_keys={back.name: back})
    posts = with_(POSTS, foreign_keys={FK.name: FK})
    ordered = order_changes(diff_schemas(Schema(), schema(users, posts)))
    assert kinds(ordered) == ["CreateEnum", "CreateTable", "CreateTable", "AddForeignKey"]


def test_functions_before_triggers_and_drops_the_other_way() -> None:
    with_trigger = schema(with_(USERS, triggers={TRIGGER.name: TRIGGER}), functions={"touch": TOUCH})
    assert kinds(order_changes(diff_schemas(schema(USERS), with_trigger))) == ["CreateFunction", "CreateTrigger"]
    assert kinds(order_changes(diff_schemas(with_trigger, schema(USERS)))) == ["DropTrigger", "DropFunction"]


def test_enum_values_before_columns_and_views_after_tables() -> None:
    wider = {"user_role": EnumType("user_role", ("user", "admin", "owner"))}
    level = Column("level", "user_role", default="'owner'::user_role")
    desired = schema(with_(USERS, columns=(*USERS.columns, level)), POSTS, enums=wider,
                     views={VIEW.name: VIEW})
    ordered = order_changes(diff_schemas(schema(USERS), desired))
    assert kinds(ordered) == ["AddEnumValue", "CreateTable", "AddColumn", "CreateView"]


def test_sql_functions_come_after_tables() -> None:
    count = Function("post_count", "", "bigint", "sql", "SELECT count(*) FROM posts")
    ordered = order_changes(diff_schemas(schema(USERS), schema(USERS, POSTS, functions={"post_count": count})))
    assert kinds(ordered) == ["CreateTable", "CreateFunction"]


def test_views_follow_the_views_they_read() -> None:
    inner = replace(VIEW, name="a_inner")
    outer = View("z_outer", "SELECT * FROM a_inner", depends_on=("a_inner",))
    first = View("b_first", "SELECT 1")
    outer2 = View("a_outer", "SELECT * FROM b_first", depends_on=("b_first",))
    views = {v.name: v for v in (inner, outer, first, outer2)}
    ordered = order_changes(diff_schemas(schema(USERS), schema(USERS, views=views)))
    names = [c.view.name for c in ordered if isinstance(c, CreateView)]
    assert names.index("b_first") < names.index("a_outer")
    assert names.index("a_inner") < names.index("z_outer")


def test_drops_of_dependents_before_their_targets() -> None:
    current = schema(USERS, with_(POSTS, foreign_keys={FK.name: FK}), views={VIEW.name: VIEW})
    ordered = order_changes(diff_schemas(current, schema(POSTS)))
    assert kinds(ordered) == ["DropView", "DropForeignKey", "DropTable"]


def test_views_reading_a_dropped_or_retyped_column_are_recreated() -> None:
    reads_users = replace(VIEW, depends_on=("users",))
    reads_view = View("emails_again", "SELECT * FROM user_emails", depends_on=("user_emails",))
    views = {v.name: v for v in (reads_users, reads_view)}
    current = schema(USERS, views=views)
    desired = schema(with_(USERS, columns=(ID, replace(EMAIL, type="text"), ROLE)), views=views)
    ordered = order_changes(diff_schemas(current, desired))
    assert kinds(ordered) == ["DropView", "DropView", "AlterColumnType", "CreateView", "CreateView"]
    assert [c.view.name for c in ordered if isinstance(c, DropView)] == ["emails_again", "user_emails"]
    assert [c.view.name for c in ordered if isinstance(c, CreateView)] == ["user_emails", "emails_again"]


def test_views_not_reading_the_dropped_column_are_left_alone() -> None:
    reads_users = replace(VIEW, depends_on=("users",))
    current = schema(USERS, views={VIEW.name: reads_users})
    desired = schema(with_(USERS, columns=(ID, EMAIL)), views={VIEW.name: reads_users})
    assert kinds(order_changes(diff_schemas(current, desired))) == ["DropColumn"]
