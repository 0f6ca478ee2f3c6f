CREATE TABLE logs (id bigint NOT NULL, at timestamptz NOT NULL, line text);
