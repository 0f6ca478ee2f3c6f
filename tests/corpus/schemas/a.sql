CREATE SCHEMA legacy;
CREATE TABLE legacy.old_things (id int);
