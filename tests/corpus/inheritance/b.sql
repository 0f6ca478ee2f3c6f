CREATE TABLE cities (name text, population int);
CREATE TABLE capitals (state char(2)) INHERITS (cities);
