CREATE TABLE cities (name text, population int);
