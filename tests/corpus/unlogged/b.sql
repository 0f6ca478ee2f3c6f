CREATE UNLOGGED TABLE cache (k text PRIMARY KEY, v text);
CREATE TABLE scratch (id int);
CREATE UNLOGGED TABLE sessions (id uuid PRIMARY KEY, data jsonb);
