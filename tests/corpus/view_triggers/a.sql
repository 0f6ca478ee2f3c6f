CREATE TABLE items (id int PRIMARY KEY, name text);
CREATE VIEW item_names AS SELECT id, name FROM items;
