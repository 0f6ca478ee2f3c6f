CREATE TABLE docs (id int PRIMARY KEY, title text, tags text[], body text, created_at timestamptz, n int);
CREATE INDEX idx_docs_old ON docs (n);
