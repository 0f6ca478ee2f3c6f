CREATE TABLE items (status varchar(20), price numeric, qty int,
    CONSTRAINT chk_items_status CHECK (status IN ('draft', 'live', 'gone')),
    CONSTRAINT chk_items_price CHECK (price > 0 AND price < 1000000),
    CONSTRAINT chk_items_qty CHECK (qty >= 0 OR qty IS NULL));
