CREATE EXTENSION citext VERSION '1.5';
CREATE EXTENSION hstore;
CREATE SCHEMA ext;
CREATE EXTENSION cube SCHEMA ext;
CREATE TABLE people (name citext, attrs hstore);
