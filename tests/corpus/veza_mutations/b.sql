-- corpus: veza
DO $$ BEGIN CREATE ROLE corpus_veza_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
ALTER TABLE users ADD COLUMN nickname varchar(50);
ALTER TABLE users ADD CONSTRAINT chk_users_nickname_length CHECK (length(nickname) < 40);
CREATE INDEX idx_users_nickname ON users (nickname);
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY p_users_self ON users FOR SELECT TO corpus_veza_app USING (id IS NOT NULL);
GRANT SELECT ON users, tracks TO corpus_veza_app;
COMMENT ON TABLE tracks IS 'Tracks, changed by hand';
ALTER TABLE users ALTER COLUMN email SET STATISTICS 1000;
CREATE SEQUENCE invoice_numbers START 1000;
