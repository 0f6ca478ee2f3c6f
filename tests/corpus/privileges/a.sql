DO $$ BEGIN CREATE ROLE corpus_priv_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE audit_logs (id bigint, action text);
GRANT ALL ON audit_logs TO corpus_priv_app;
CREATE FUNCTION log_it() RETURNS int LANGUAGE sql AS 'SELECT 1';
