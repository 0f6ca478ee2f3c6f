DO $$ BEGIN CREATE ROLE corpus_rls_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE documents (id int PRIMARY KEY, owner text NOT NULL, body text, tenant int);
ALTER TABLE documents ENABLE ROW LEVEL SECURITY;
ALTER TABLE documents FORCE ROW LEVEL SECURITY;
CREATE POLICY p_owner ON documents FOR ALL USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY p_tenant ON documents AS RESTRICTIVE FOR SELECT TO corpus_rls_reader USING (tenant = 1);
CREATE POLICY p_insert ON documents FOR INSERT WITH CHECK (tenant IS NOT NULL);
CREATE TABLE notes (id int);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
