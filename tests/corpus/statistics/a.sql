CREATE TABLE metrics (id int, value numeric);
ALTER TABLE metrics ALTER COLUMN id SET STATISTICS 200;
