"""The YAML loader refuses SQL that does not parse (exit 2, docs/security.md), so this case is a
model built in Python (as a snapshot or introspection could produce it)."""

from veza_schema.model import CheckConstraint, Column, PrimaryKey, Schema, Table

SCHEMA = Schema(tables={
    "products": Table(
        "products",
        (Column("id", "uuid", default="gen_random_uuid()"), Column("price", "numeric(10,2)"),
         Column("created_at", "timestamp with time zone", default="now()"),
         Column("updated_at", "timestamp with time zone", default="now()")),
        primary_key=PrimaryKey("pk_products", ("id",)),
        checks={"chk_products_price_positive": CheckConstraint("chk_products_price_positive", "price >= ")},
    ),
})
