CREATE TABLE items (id int PRIMARY KEY, name text);
CREATE VIEW item_names AS SELECT id, name FROM items;
CREATE FUNCTION item_names_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO items VALUES (NEW.id, NEW.name);
    RETURN NEW;
END;
$$;
CREATE TRIGGER trg_item_names_insert INSTEAD OF INSERT ON item_names FOR EACH ROW EXECUTE FUNCTION item_names_insert();
CREATE TRIGGER trg_item_names_change INSTEAD OF UPDATE OR DELETE ON item_names FOR EACH ROW
    EXECUTE FUNCTION item_names_insert();
