"""The YAML loader refuses unknown index columns, so this case is a model built in Python."""

from veza_schema.model import Column, Index, IndexElement, PrimaryKey, Schema, Table

SCHEMA = Schema(tables={
    "users": Table(
        "users",
        (Column("id", "uuid", default="gen_random_uuid()"),
         Column("created_at", "timestamp with time zone", default="now()"),
         Column("updated_at", "timestamp with time zone", default="now()")),
        primary_key=PrimaryKey("pk_users", ("id",)),
        indexes={"idx_users_email_btree": Index("idx_users_email_btree", "users", (IndexElement("email"),))},
    ),
})
