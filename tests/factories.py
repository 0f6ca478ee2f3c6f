"""Builders for tests: small models for the differ and planner, YAML scenarios for the migration proofs."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from tests.helpers import REPO_ROOT
from veza_schema.diff.changes import (
    AddCheck,
    AddColumn,
    AddEnumValue,
    AddExclusion,
    AddForeignKey,
    AddPrimaryKey,
    AddUnique,
    AlterColumnCollation,
    AlterColumnDefault,
    AlterColumnGenerated,
    AlterColumnIdentity,
    AlterColumnNullability,
    AlterColumnStatistics,
    AlterColumnType,
    AlterCompositeType,
    AlterDefaultPrivileges,
    AlterExtension,
    AlterGrants,
    AlterRole,
    AlterRowSecurity,
    AlterSequence,
    AlterTablePersistence,
    Change,
    ChangePartitioning,
    ColumnUse,
    CommentTarget,
    CreateCompositeType,
    CreateEnum,
    CreateExtension,
    CreateFunction,
    CreateIndex,
    CreateNamespace,
    CreatePartitionHelper,
    CreatePolicy,
    CreateRole,
    CreateSequence,
    CreateTable,
    CreateTrigger,
    CreateView,
    DropCheck,
    DropColumn,
    DropCompositeType,
    DropEnum,
    DropExclusion,
    DropExtension,
    DropForeignKey,
    DropFunction,
    DropIndex,
    DropNamespace,
    DropPartitionHelper,
    DropPolicy,
    DropPrimaryKey,
    DropRole,
    DropSequence,
    DropTable,
    DropTrigger,
    DropUnique,
    DropView,
    GrantTarget,
    RecreateEnum,
    RenameColumn,
    RenameConstraint,
    RenameFunction,
    RenameIndex,
    RenameTable,
    ReorderColumns,
    ReplaceFunction,
    ReplaceView,
    SetComment,
    SetSequenceOwner,
)
from veza_schema.model import (
    CheckConstraint,
    Column,
    CompositeAttribute,
    CompositeType,
    EnumType,
    ExclusionConstraint,
    Extension,
    ForeignKey,
    Function,
    Index,
    IndexElement,
    Namespace,
    PartitionSpec,
    Policy,
    PrimaryKey,
    Role,
    Schema,
    SequenceObject,
    Table,
    Trigger,
    UniqueConstraint,
    View,
)

# -- models -------------------------------------------------------------------------------------
ID = Column("id", "uuid", default="gen_random_uuid()")
EMAIL = Column("email", "character varying(255)")
ROLE = Column("role", "user_role", default="'user'::user_role")
USERS = Table("users", (ID, EMAIL, ROLE), PrimaryKey("pk_users", ("id",)))
POSTS = Table("posts", (ID, Column("user_id", "uuid"), Column("title", "text")), PrimaryKey("pk_posts", ("id",)))
ROLES = EnumType("user_role", ("user", "admin"))
FK = ForeignKey("fk_posts_users", ("user_id",), "users", ("id",), on_delete="cascade")
IDX = Index("idx_posts_user_id", "posts", (IndexElement("user_id"),))
CHECK = CheckConstraint("chk_posts_title", "length(title) < 500")
TOUCH = Function("touch", "", "trigger", "plpgsql", "BEGIN RETURN NEW; END;")
TRIGGER = Trigger("trg_users_touch", "users", "touch", "before", ("update",))
VIEW = View("user_emails", "SELECT id, email FROM users")
MONTHLY = PartitionSpec("range", ("created_at",), "month", 2)
EVENTS = Table("events", (ID, Column("created_at", "timestamp with time zone")),
               PrimaryKey("pk_events", ("id", "created_at")), partition=MONTHLY)
MONEY = CompositeType("money", (CompositeAttribute("a", "numeric"),))
APP_ROLE = Role("app")
SEQUENCE = SequenceObject("invoice_numbers", start=1000)
POLICY = Policy("p_posts_own", "posts", "select", using="user_id IS NOT NULL")
EXCLUSION = ExclusionConstraint("ex_posts_title", ("title WITH =",), "btree")
MONEY2 = CompositeType("money", (CompositeAttribute("a", "numeric"), CompositeAttribute("c", "text")))


def schema(*tables: Table, **kwargs: object) -> Schema:
    base: dict[str, object] = {"tables": {t.name: t for t in tables}, "enums": {"user_role": ROLES}}
    base.update(kwargs)
    return Schema(**base)  # type: ignore[arg-type]


def with_(table: Table, **kwargs: object) -> Table:
    return replace(table, **kwargs)  # type: ignore[arg-type]


BASE = schema(USERS, POSTS)


# -- YAML scenarios ------------------------------------------------------------------------------
BASE_YAML = """\
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

EVENTS_YAML = """\
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
    """Append a YAML section (indexes:, checks: ...) to a table of BASE_YAML."""
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
    # `generate` flags: an RFC, since the seed's policy makes most changes RFC-required (and forbidden ones
    # also need --allow-forbidden)
    flags: tuple[str, ...] = ("--rfc", "RFC-0001")
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
             lambda t: t + EVENTS_YAML.replace("PREMAKE", "2")),
    Scenario("add_partitions_premake",
             lambda t: edit(t, "premake: 1", "premake: 3"),
             old=lambda t: t + EVENTS_YAML.replace("PREMAKE", "1")),
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


# -- one change of every kind ---------------------------------------------------------------------
def one_change_of_each_kind() -> list[Change]:
    """An instance of every member of the ``Change`` union, on the models above."""
    title = POSTS.column("title")
    assert title is not None
    wider = replace(title, type="character varying(500)")
    required = replace(EMAIL, nullable=False)
    optional = replace(EMAIL, nullable=True)
    four = EnumType("user_role", ("user", "moderator", "admin"))
    use = ColumnUse("users", "role", "user_role", "'user'::user_role")
    target = CommentTarget("table", "users")
    return [
        CreateExtension(Extension("pgcrypto")), DropExtension(Extension("pgcrypto")),
        CreateEnum(ROLES), DropEnum(ROLES), AddEnumValue(ROLES, four, (use,)), RecreateEnum(four, ROLES, (use,)),
        CreateCompositeType(MONEY), DropCompositeType(MONEY), AlterCompositeType(MONEY, MONEY2),
        CreateFunction(TOUCH), ReplaceFunction(TOUCH, replace(TOUCH, body="BEGIN RETURN OLD; END;")),
        DropFunction(TOUCH), RenameFunction("touch", "touch_row", ""), CreatePartitionHelper(), DropPartitionHelper(),
        CreateTable(POSTS), DropTable(POSTS), RenameTable("posts", "articles"),
        AddColumn("posts", Column("bio", "text", nullable=True)), DropColumn("posts", title),
        RenameColumn("posts", "title", "headline"), AlterColumnType("posts", title, wider),
        AlterColumnDefault("users", ROLE, replace(ROLE, default="'admin'::user_role")),
        AlterColumnNullability("users", optional, required),
        AlterColumnIdentity("posts", Column("n", "bigint"), Column("n", "bigint", identity="always")),
        AlterColumnGenerated("posts", Column("g", "text", generated="upper(title)"),
                             Column("g", "text", generated="lower(title)")),
        ChangePartitioning("events", MONTHLY, replace(MONTHLY, premake=4)),
        AddPrimaryKey("posts", PrimaryKey("pk_posts", ("id",))),
        DropPrimaryKey("posts", PrimaryKey("pk_posts", ("id",))),
        AddUnique("users", UniqueConstraint("uq_users_email", ("email",))),
        DropUnique("users", UniqueConstraint("uq_users_email", ("email",))),
        AddCheck("posts", CHECK), DropCheck("posts", CHECK), AddForeignKey("posts", FK), DropForeignKey("posts", FK),
        RenameConstraint("posts", "fk_posts_users", "fk_articles_users"),
        CreateIndex(IDX), DropIndex(IDX), RenameIndex("idx_posts_user_id", "idx_articles_user_id"),
        CreateTrigger(TRIGGER), DropTrigger(TRIGGER),
        CreateView(VIEW), ReplaceView(VIEW, replace(VIEW, query="SELECT id, email, role FROM users")), DropView(VIEW),
        SetComment(target, None, "People"),
        CreateRole(APP_ROLE), DropRole(APP_ROLE), AlterRole(APP_ROLE, replace(APP_ROLE, login=True)),
        CreateNamespace(Namespace("audit")), DropNamespace(Namespace("audit")),
        AlterGrants(GrantTarget("table", "users"), {}, {"app": ("select",)}),
        AlterDefaultPrivileges("owner", None, "tables", None, {"app": ("select",)}),
        AlterExtension(Extension("citext"), Extension("citext", version="1.6")),
        CreateSequence(SEQUENCE), DropSequence(SEQUENCE),
        AlterSequence(SEQUENCE, replace(SEQUENCE, increment=2)),
        SetSequenceOwner("invoice_numbers", None, "users.email"),
        AlterColumnCollation("users", EMAIL, replace(EMAIL, collation='"C"')),
        AlterColumnStatistics("users", EMAIL, replace(EMAIL, statistics=500)),
        AlterTablePersistence("posts", False, True),
        AlterRowSecurity("posts", (False, False), (True, False)),
        CreatePolicy(POLICY), DropPolicy(POLICY),
        AddExclusion("posts", EXCLUSION), DropExclusion("posts", EXCLUSION),
        ReorderColumns("posts", ("id", "title", "user_id"), ("id", "user_id", "title")),
    ]


# -- synthetic schemas at scale ---------------------------------------------------------------
SYNTHETIC_CORE = """module: core
tables:
  accounts:
    comment: Synthetic accounts
    columns:
      id: {type: uuid, primary_key: true, default: gen_random_uuid()}
      email: {type: varchar(255), unique: true}
      created_at: {type: timestamptz, default: now()}
      updated_at: {type: timestamptz, default: now()}
"""


def _synthetic_table(module: int, number: int) -> str:
    """A table as the scale issue describes it: a foreign key, a CHECK, four indexes (with the key's)."""
    name = f"m{module}_item_{number}"
    return f"""  {name}:
    comment: Synthetic table {number} of module m{module}
    columns:
      id: {{type: uuid, primary_key: true, default: gen_random_uuid()}}
      account_id: {{type: uuid, references: accounts.id, on_delete: cascade}}
      title: {{type: varchar(200)}}
      score: {{type: integer, default: 0}}
      created_at: {{type: timestamptz, default: now()}}
      updated_at: {{type: timestamptz, default: now()}}
      deleted_at: {{type: timestamptz, nullable: true}}
    checks:
      chk_{name}_score_range: score BETWEEN 0 AND {100 + number}
    indexes:
      idx_{name}_account_id_btree: {{columns: [account_id]}}
      idx_{name}_created_at_partial: {{columns: [created_at desc], where: deleted_at IS NULL}}
      idx_{name}_title_btree: {{expressions: [lower(title)]}}
"""


def write_synthetic_schema(directory: Path, tables: int, modules: int = 20) -> Path:
    """``tables`` tables (plus ``accounts``) in ``modules`` module files under ``directory``; lints clean."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "core.yaml").write_text(SYNTHETIC_CORE)
    per_module = -(-tables // modules)
    for module in range(modules):
        numbers = range(module * per_module, min(tables, (module + 1) * per_module))
        if not numbers:
            break
        body = "".join(_synthetic_table(module, number) for number in numbers)
        (directory / f"m{module}.yaml").write_text(f"module: m{module}\ntables:\n{body}")
    return directory


# -- rows of the shipped schema ------------------------------------------------------------------
@cache
def shipped_schema() -> Schema:
    """The model of schema/*.yaml, loaded once per test process."""
    from veza_schema.yaml.loader import load_schema

    return load_schema(REPO_ROOT / "schema")


# Values a generic value of the column's type cannot provide (CHECK constraints, formats).
# Keyed by column name, or by (table, column) for a single table.
OVERRIDES: dict[Any, Any] = {
    "email": lambda: f"u{uuid.uuid4().hex[:12]}@example.com",
    "username": lambda: f"u_{uuid.uuid4().hex[:12]}",
    ("user_consents", "consent_type"): "terms_of_service",
    ("webhooks", "url"): "https://example.com/hook",
    ("oauth_clients", "client_secret_hash"): "hash",
    ("audit_logs", "operation"): "INSERT",
    ("orders", "total"): 2,  # subtotal 1 + tax 1 - discount 0 (chk_orders_total_is_subtotal_plus_tax_minus_discount)
    ("api_keys", "key_prefix"): lambda: "vz_test_" + uuid.uuid4().hex[:8],
    ("album_tracks", "track_number"): lambda: next(_SEQUENCE),  # unique per (album, disc)
}
_SEQUENCE = itertools.count(1)

# Foreign keys a valid row needs although their columns are nullable (a CHECK asks for one of them).
FILLED_FKS: dict[str, tuple[str, ...]] = {
    "royalty_splits": ("fk_royalty_splits_tracks",),
}

_LENGTH = re.compile(r"^(?:character varying|character)\((\d+)\)$")


class RowFactory:
    """Inserts valid rows into any table of the model, parents first."""

    def __init__(self, conn: psycopg.Connection, schema: Schema | None = None) -> None:
        self.conn = conn
        self.schema = schema or shipped_schema()

    # -- values ---------------------------------------------------------------------------
    def _value(self, table: Table, column_name: str, type_text: str) -> Any:
        for key in ((table.name, column_name), column_name):
            if key in OVERRIDES:
                value = OVERRIDES[key]
                return value() if callable(value) else value
        now = dt.datetime.now(dt.UTC)
        later = re.search(r"(end|until|expires)", column_name) is not None
        if type_text.endswith("[]"):
            element = type_text[:-2]
            if element in self.schema.enums:
                return [self.schema.enums[element].values[0]]
            return [str(uuid.uuid4())] if element == "uuid" else ["x"]
        if type_text in self.schema.enums:
            return self.schema.enums[type_text].values[0]
        if type_text == "uuid":
            return str(uuid.uuid4())
        if type_text == "timestamp with time zone":
            return now + dt.timedelta(days=1) if later else now - dt.timedelta(minutes=1)
        if type_text == "date":
            return now.date() + dt.timedelta(days=1) if later else now.date()
        if type_text in ("integer", "smallint", "bigint") or type_text.startswith("numeric"):
            return 1
        if type_text == "double precision":
            return 1.0
        if type_text == "boolean":
            return False
        if type_text == "inet":
            return "10.0.0.1"
        if type_text in ("jsonb", "json"):
            return "{}"
        if type_text == "bytea":
            return b"\x01"
        match = _LENGTH.match(type_text)
        if match:
            return ("v" + uuid.uuid4().hex)[: min(int(match.group(1)), 24)]
        if type_text == "text":
            return "v" + uuid.uuid4().hex
        raise AssertionError(f"no generic value for {table.name}.{column_name} ({type_text})")

    # -- rows -----------------------------------------------------------------------------
    def insert(self, table_name: str, values: dict[str, Any] | None = None,
               fill_fks: tuple[str, ...] = ()) -> dict[str, Any]:
        """Insert one row into ``table_name``; return it as a dict (RETURNING *).

        ``values`` are used as given; required FKs (all columns NOT NULL), and the FKs named in
        ``fill_fks``, get a new parent row; other NOT NULL columns without a default get a
        generic value.
        """
        table = self.schema.tables[table_name]
        row: dict[str, Any] = dict(values or {})
        fill_fks = fill_fks + FILLED_FKS.get(table_name, ())
        for fk in table.foreign_keys.values():
            required = all(not table.column(c).nullable for c in fk.columns)  # type: ignore[union-attr]
            if (required or fk.name in fill_fks) and not any(c in row for c in fk.columns):
                parent = self.insert(fk.ref_table)
                for column, ref_column in zip(fk.columns, fk.ref_columns, strict=True):
                    row[column] = parent[ref_column]
        for column in table.columns:
            if column.name in row or column.generated or column.identity:
                continue
            overridden = (table.name, column.name) in OVERRIDES or column.name in OVERRIDES
            if overridden or (not column.nullable and column.default is None):
                row[column.name] = self._value(table, column.name, column.type)
        types = {c.name: c.type for c in table.columns}
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
            sql.Identifier(table.name),
            sql.SQL(", ").join(sql.Identifier(name) for name in row),
            sql.SQL(", ").join(sql.SQL("%s::" + types[name]) for name in row),
        )
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, list(row.values()))
            inserted = cur.fetchone()
        assert inserted is not None
        return inserted


def key_filter(table: Table, row: dict[str, Any]) -> tuple[sql.Composable, list[Any]]:
    """WHERE clause selecting ``row`` by the table's primary key."""
    assert table.primary_key is not None, table.name
    columns = table.primary_key.columns
    clause = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in columns)
    return clause, [row[c] for c in columns]


def touch(conn: psycopg.Connection, table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """A real UPDATE of the row (a column set to itself); returns the row after it."""
    pk = set(table.primary_key.columns) if table.primary_key else set()
    column = next(c.name for c in table.columns
                  if c.name not in pk and not c.generated and c.name != "updated_at")
    where, params = key_filter(table, row)
    query = sql.SQL("UPDATE {t} SET {c} = {c} WHERE {w} RETURNING *").format(
        t=sql.Identifier(table.name), c=sql.Identifier(column), w=where)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query, params)
        updated = cur.fetchone()
    assert updated is not None
    return updated
