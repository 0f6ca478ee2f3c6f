"""Column collations come with the model of issue 19; until ``Column`` carries one, this case
gives its columns a ``collation`` the way that model will (INT013 reads the attribute)."""

from dataclasses import dataclass

from veza_schema.model import Column, ForeignKey, Index, IndexElement, PrimaryKey, Schema, Table

if "collation" in Column.__dataclass_fields__:
    Collated = Column
else:
    @dataclass(frozen=True, slots=True)
    class Collated(Column):  # type: ignore[no-redef]
        collation: str | None = None

_TS = (Column("created_at", "timestamp with time zone", default="now()"),
       Column("updated_at", "timestamp with time zone", default="now()"))

SCHEMA = Schema(tables={
    "countries": Table(
        "countries",
        (Column("id", "uuid", default="gen_random_uuid()"), Collated("code", "text", collation="C"), *_TS),
        primary_key=PrimaryKey("pk_countries", ("id",)),
        uniques={},
        indexes={"idx_countries_code_unique": Index("idx_countries_code_unique", "countries",
                                                    (IndexElement("code"),), unique=True)},
    ),
    "cities": Table(
        "cities",
        (Column("id", "uuid", default="gen_random_uuid()"), Collated("country_code", "text", collation="und-x-icu"),
         *_TS),
        primary_key=PrimaryKey("pk_cities", ("id",)),
        foreign_keys={"fk_cities_countries": ForeignKey("fk_cities_countries", ("country_code",), "countries",
                                                         ("code",), "cascade")},
        indexes={"idx_cities_country_code_btree": Index("idx_cities_country_code_btree", "cities",
                                                        (IndexElement("country_code"),))},
    ),
})
