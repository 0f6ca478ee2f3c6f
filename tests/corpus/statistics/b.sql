CREATE TABLE metrics (id int, value numeric, tag text);
ALTER TABLE metrics ALTER COLUMN value SET STATISTICS 1000;
ALTER TABLE metrics ALTER COLUMN tag SET STATISTICS 0;
