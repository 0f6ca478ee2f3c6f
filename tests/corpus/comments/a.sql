CREATE TABLE t (id int, v text);
COMMENT ON TABLE t IS 'Old';
