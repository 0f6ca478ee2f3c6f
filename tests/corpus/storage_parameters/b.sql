CREATE TABLE hot (id int PRIMARY KEY, v text) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01);
ALTER TABLE hot REPLICA IDENTITY FULL;
