"""The YAML loader refuses FKs to missing tables, so this case is a model built in Python
(as introspection or history could produce it)."""

from veza_schema.model import Column, ForeignKey, Index, IndexElement, PrimaryKey, Schema, Table

_TS = (Column("created_at", "timestamp with time zone", default="now()"),
       Column("updated_at", "timestamp with time zone", default="now()"))

SCHEMA = Schema(tables={
    "posts": Table(
        "posts",
        (Column("id", "uuid", default="gen_random_uuid()"), Column("user_id", "uuid"), *_TS),
        primary_key=PrimaryKey("pk_posts", ("id",)),
        foreign_keys={"fk_posts_users": ForeignKey("fk_posts_users", ("user_id",), "users", ("id",), "cascade")},
        indexes={"idx_posts_user_id_btree": Index("idx_posts_user_id_btree", "posts", (IndexElement("user_id"),))},
    ),
})
