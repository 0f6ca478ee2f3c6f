CREATE TABLE nodes (id int PRIMARY KEY, parent int REFERENCES nodes(id), code text UNIQUE);
