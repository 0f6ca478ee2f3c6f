CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TABLE t (id int, v int, updated_at timestamptz);
CREATE TRIGGER trg_t_old AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch();
